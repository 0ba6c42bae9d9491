"""Region GAN generator (paper 3.1, eq. 3, 5 and 11): each person region of the source in the driving pose.

One generator is shared by the 5 person regions (head, top, bottom, shoes, limbs): the regions are folded
into the batch, so a (B, ...) call runs the generator on B * 5 items. For region i::

    I_s,i      = I_s * L_s,i                                        source region image (0 outside)
    I^_d,i^t   = D1(E1(L^_d,i^t) + E2({I^_d,i^{t-1}, I^_d,i^{t-2}, GAM(I_s,i)}))    eq. 5 (eq. 3 without GAM)
    FG^_d,r^t  = sum_i I^_d,i^t                                     eq. 11

Design choice the paper leaves implicit: the decoder's tanh output is multiplied by the region's mask
L^_d,i^t, so every region image is 0 outside its region, like its ground truth I_d,i = I_d * L_d,i, and the
sum of eq. 11 cannot let one region paint over another.

Exception to eq. 5, ``cfg.refine`` (default True): the decoder output corrects the GAM-aligned source person,
``I^_d,i^t = tanh(atanh(GAM(FG_s)) + D1(...)) * L^_d,i^t`` with GAM(FG_s) = sum_i GAM(I_s,i), D1's last layer
zero-initialised, so the untrained generator already pastes the aligned source (the GAM-only baseline's person)
and training learns what the pose changes. Each region refines the whole aligned person rather than its own
aligned region so that a pixel the Layout GAN labels wrongly (top for limbs) still starts from the source's
pixel there instead of 0. Drawn from nothing (``refine = False``, eq. 5 as written), the regions of the
1,000-step CPU learning run kept the source's colours but turned its patterns into noise. The GAM transform is computed once per frame from the
whole-person masks (eq. 4) and applied to every source region. With ``cfg.gam = False`` the source regions
enter unaligned (exactly I_s,i, no resampling).

What depends on the source alone - the region images I_s,i and the GAM's source person box - is
:meth:`RegionGenerator.prepare_source`; a caller generating many frames of one source (``remot_models.sequence``)
prepares it once and passes it to every ``forward``, which otherwise prepares it itself.

Inputs (conventions in ``remot_models.blocks``): ``layout`` L^_d^t (B, 6, H, W) from the Layout GAN;
``source_image`` I_s (B, 3, H, W) in [-1, 1]; ``source_layout`` L_s (B, 6, H, W); ``prev_regions``
(B, 2, 5, 3, H, W) the generator's outputs at (t-2, t-1), oldest first (zeros before t = 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from remot_models.blocks import NUM_PERSON_REGIONS, Decoder, Encoder, refine, zero_head
from remot_models.config import ModelConfig
from remot_models.gam import GlobalAlignment


@dataclass
class RegionOutput:
    """Named outputs of :class:`RegionGenerator`."""

    regions: torch.Tensor           # (B, 5, 3, H, W) I^_d,i^t, in [-1, 1], 0 outside region i
    foreground: torch.Tensor        # (B, 3, H, W) FG^_d,r^t = sum of regions (eq. 11), in [-1, 1]
    aligned_source: torch.Tensor    # (B, 5, 3, H, W) GAM(I_s,i) as fed to E2
    aligned_foreground: torch.Tensor  # (B, 3, H, W) GAM(FG_s) = sum of aligned regions (input of WCN's E1)
    theta: torch.Tensor             # (B, 2, 3) GAM affine_grid matrix (identity when disabled)


@dataclass
class PreparedSource:
    """What the Region GAN derives from the source alone (:meth:`RegionGenerator.prepare_source`)."""

    regions: torch.Tensor                           # (B, 5, 3, H, W) I_s,i
    boxes: tuple[torch.Tensor, torch.Tensor]        # the GAM's source person box (B, 4) and validity (B,)


def source_regions(source_image: torch.Tensor, source_layout: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) image and (B, 6, H, W) layout -> (B, 5, 3, H, W) region images I_s,i = I_s * L_s,i."""
    masks = source_layout[:, :NUM_PERSON_REGIONS].unsqueeze(2)          # (B, 5, 1, H, W)
    return source_image.unsqueeze(1) * masks


class RegionGenerator(nn.Module):
    """Eq. 5 / 11. ``forward(layout, source_image, source_layout, prev_regions, prepared=None) -> RegionOutput``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.encode_mask = Encoder(1, cfg)                # E1^r on the region mask L^_d,i^t
        self.encode_appearance = Encoder(9, cfg)          # E2^r on {I^_d,i^{t-1}, I^_d,i^{t-2}, GAM(I_s,i)}
        self.decode = Decoder(cfg, 3)                     # D1^r
        self.refine = cfg.refine
        if self.refine:
            zero_head(self.decode)
        self.align = GlobalAlignment(enabled=cfg.gam)

    def prepare_source(self, source_image: torch.Tensor, source_layout: torch.Tensor) -> PreparedSource:
        """Everything ``forward`` derives from (I_s, L_s) alone, to compute once for many driving frames."""
        return PreparedSource(source_regions(source_image, source_layout), self.align.source_boxes(source_layout))

    def forward(self, layout: torch.Tensor, source_image: torch.Tensor, source_layout: torch.Tensor,
                prev_regions: torch.Tensor, prepared: PreparedSource | None = None) -> RegionOutput:
        """``prepared``: ``self.prepare_source(source_image, source_layout)`` when the caller already has it."""
        b, _, h, w = layout.shape
        n = NUM_PERSON_REGIONS
        if prev_regions.shape != (b, 2, n, 3, h, w):
            raise ValueError(f"prev_regions must be (B, 2, 5, 3, H, W) = {(b, 2, n, 3, h, w)} with time "
                             f"oldest first, got {tuple(prev_regions.shape)}")
        if prepared is None:
            prepared = self.prepare_source(source_image, source_layout)
        elif prepared.regions.shape != (b, n, 3, h, w):
            raise ValueError(f"prepared source regions must be (B, 5, 3, H, W) = {(b, n, 3, h, w)}, got "
                             f"{tuple(prepared.regions.shape)}")
        alignment = self.align(prepared.regions.flatten(1, 2), source_layout, layout, prepared.boxes)
        aligned = alignment.aligned.view(b, n, 3, h, w)

        masks = layout[:, :n].reshape(b * n, 1, h, w)
        # paper order {t-1, t-2, source}; fold regions into the batch: (B*5, 9, H, W)
        appearance = torch.cat([prev_regions[:, 1], prev_regions[:, 0], aligned], dim=2).flatten(0, 1)
        decoded = self.decode(self.encode_mask(masks) + self.encode_appearance(appearance)).view(b, n, 3, h, w)
        aligned_foreground = aligned.sum(dim=1)
        # every region refines the whole aligned person (broadcast over the regions), so a wrong label still
        # shows the source
        images = refine(aligned_foreground.unsqueeze(1), decoded) if self.refine else torch.tanh(decoded)
        regions = images * layout[:, :n].unsqueeze(2)
        return RegionOutput(regions=regions, foreground=regions.sum(dim=1), aligned_source=aligned,
                            aligned_foreground=aligned_foreground, theta=alignment.theta)
