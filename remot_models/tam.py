"""Texture Alignment Module (paper 3.2, eq. 12-13): fuse source features F1 into generated features F2.

F1 = E1^w(aligned source foreground) and F2 = E2^w(previous + coarse foregrounds), both (B, c, h, w), are
reshaped to H1, H2 in R^{c x hw}. Eq. 12 builds the cosine-similarity affinity

    A[i, j] = softmax( <H1_i, H2_j> / (|H1_i| |H2_j|) / tau ),   i indexes F1 (source), j indexes F2 (generated)

and eq. 13 is ``F_12 = reshape(H1 . A + H2)``, where (H1 . A)[:, j] = sum_i H1[:, i] A[i, j].

Our reading (the paper does not name the softmax axis): the softmax runs over i, the source positions, so
every column of A sums to 1 and (H1 . A)[:, j] is a convex combination of source features - the source
texture "aligned" to generated position j - which is then added to H2 at j. A softmax over j would leave
H1 . A an unnormalised sum whose scale depends on hw. In attention terms, for every generated position j:

    query = H2_j / |H2_j|,  key = H1_i / |H1_i|,  value = H1_i (unnormalised),  scale = 1 (plain cosine),

so eq. 13 is ``scaled_dot_product_attention(q=norm(H2^T), k=norm(H1^T), v=H1^T, scale=1/tau) + H2``, which
PyTorch computes without materialising the (hw x hw) affinity.

The temperature tau (``ModelConfig.tam_temperature``) is our addition; tau = 1 is eq. 12 as printed. Cosines
lie in [-1, 1], so with tau = 1 the largest weight over hw positions is at most e^2 / (e^2 + hw - 1): about 1%
at the paper's 32x24 bottleneck, and TAM degenerates to "mean of F1 plus F2". Correspondence networks scale
cosine logits for this reason (CoCosNet: x100, i.e. tau = 0.01), which lets attention pick the matching
source position. ``naive_tam`` builds A explicitly and is the
reference the fused version is tested against. TAM has no parameters.

With ``enabled=False`` (the paper's "REMOT w/o TAM" ablation) the module returns F1 + F2.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_EPS = 1e-8  # guards the L2 normalisation of all-zero feature vectors


def _check(f1: torch.Tensor, f2: torch.Tensor) -> None:
    if f1.shape != f2.shape or f1.dim() != 4:
        raise ValueError(f"TAM expects F1 and F2 of the same shape (B, c, h, w), got {tuple(f1.shape)} "
                         f"and {tuple(f2.shape)}")


def fused_tam(f1: torch.Tensor, f2: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Eq. 12-13 via ``F.scaled_dot_product_attention``. (B, c, h, w) x 2 -> (B, c, h, w)."""
    _check(f1, f2)
    b, c, h, w = f1.shape
    # (B, hw, c), rows = positions. Contiguous on purpose: with transposed strides PyTorch's CPU SDPA falls
    # back to the math kernel, which materialises the affinity (measured 1.3 GB instead of 16 MB at 128x96).
    h1 = f1.flatten(2).transpose(1, 2).contiguous()         # source positions i
    h2 = f2.flatten(2).transpose(1, 2).contiguous()         # generated positions j
    aligned = F.scaled_dot_product_attention(
        F.normalize(h2, dim=-1, eps=_EPS), F.normalize(h1, dim=-1, eps=_EPS), h1, scale=1.0 / temperature)
    return aligned.transpose(1, 2).reshape(b, c, h, w) + f2


def naive_tam(f1: torch.Tensor, f2: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Eq. 12-13 literally, materialising A (B, hw, hw); the reference for :func:`fused_tam`."""
    _check(f1, f2)
    b, c, h, w = f1.shape
    h1 = f1.flatten(2)                                      # (B, c, hw)
    h2 = f2.flatten(2)
    cosine = F.normalize(h1, dim=1, eps=_EPS).transpose(1, 2) @ F.normalize(h2, dim=1, eps=_EPS)  # [i, j]
    affinity = torch.softmax(cosine / temperature, dim=1)                 # softmax over source positions i
    return (h1 @ affinity + h2).reshape(b, c, h, w)


class TextureAlignment(nn.Module):
    """``forward(f1, f2)``: eq. 12-13 (fused, temperature ``temperature``) when enabled, F1 + F2 when disabled. Shapes (B, c, h, w)."""

    def __init__(self, enabled: bool = True, temperature: float = 1.0):
        super().__init__()
        self.enabled, self.temperature = enabled, temperature

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            _check(f1, f2)
            return f1 + f2
        return fused_tam(f1, f2, self.temperature)
