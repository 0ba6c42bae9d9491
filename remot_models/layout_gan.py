"""Layout GAN generator (paper 3.1, eq. 2a-2c): the source person's 6-region layout in the driving pose.

Inputs (conventions in ``remot_models.blocks``), time axis 1 ordered oldest first:

* ``source_layout`` L_s: (B, 6, H, W) one-hot layout of the source image.
* ``poses`` {P_d^{t-2}, P_d^{t-1}, P_d^t}: (B, 3, 3, H, W) driving pose maps in [-1, 1].
* ``prev_layouts`` {L^_d^{t-2}, L^_d^{t-1}}: (B, 2, 6, H, W) this generator's previous outputs (zeros before t=2).

Network (vid2vid encoders/decoders from ``blocks``)::

    raw   = softmax(D1(E1(L_s) + E2(P^{t-2..t}) + E3(L^{t-2..t-1})))       eq. 2a
    O, w  = D2(E2(P^{t-2..t}) + E3(L^{t-2..t-1}))                        eq. 2b  (O in pixels, w in (0,1))
    L^_d^t = raw * w + Warp(L^_d^{t-1}, O) * (1 - w)                      eq. 2c

Because ``raw`` and the warped previous layout are both distributions over the 6 regions at every pixel
(bilinear warping preserves a per-pixel sum of 1), their convex blend is one too: the output layout is
non-negative and sums to 1 over channels.

``cfg.layout_blend = False`` drops eq. 2b-2c: the output is ``raw`` (no D2, ``flow``/``weight``/``warped_previous``
None); the previous layouts still enter E3. A choice made on validation (README, "Learning on a CPU").
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from remot_models.blocks import NUM_REGIONS, Decoder, Encoder, FlowWeightDecoder, blend_with_warped_previous
from remot_models.config import ModelConfig


@dataclass
class LayoutOutput:
    """Named outputs of :class:`LayoutGenerator`; all (B, C, H, W) float at the input resolution."""

    layout: torch.Tensor        # (B, 6, H, W) final layout L^_d^t, eq. 2c; per-pixel distribution over regions
    raw: torch.Tensor           # (B, 6, H, W) softmax of D1, eq. 2a
    logits: torch.Tensor        # (B, 6, H, W) D1 output before the softmax (for a cross-entropy loss)
    flow: torch.Tensor | None   # (B, 2, H, W) O in pixels (dx, dy), eq. 2b; None without the blend
    weight: torch.Tensor | None  # (B, 1, H, W) w in (0, 1), eq. 2b
    warped_previous: torch.Tensor | None  # (B, 6, H, W) Warp(L^_d^{t-1}, O)


class LayoutGenerator(nn.Module):
    """Eq. 2a-2c. ``forward(source_layout, poses, prev_layouts) -> LayoutOutput``."""

    def __init__(self, cfg: ModelConfig, pose_channels: int = 3):
        super().__init__()
        self.pose_channels = pose_channels
        self.encode_source = Encoder(NUM_REGIONS, cfg)                  # E1^l on L_s
        self.encode_poses = Encoder(3 * pose_channels, cfg)             # E2^l on {P^{t-2}, P^{t-1}, P^t}
        self.encode_previous = Encoder(2 * NUM_REGIONS, cfg)            # E3^l on {L^{t-2}, L^{t-1}}
        self.decode_layout = Decoder(cfg, NUM_REGIONS)                  # D1^l
        self.decode_flow = FlowWeightDecoder(cfg) if cfg.layout_blend else None  # D2^l

    def forward(self, source_layout: torch.Tensor, poses: torch.Tensor, prev_layouts: torch.Tensor,
                source_features: torch.Tensor | None = None) -> LayoutOutput:
        """See the module docstring for shapes; returns a :class:`LayoutOutput`. ``source_features``:
        ``self.encode_source(source_layout)`` when the caller already has it - E1(L_s) does not depend on the
        driving frame, so a sequence computes it once (``remot_models.sequence``)."""
        _expect(poses, 3, self.pose_channels, "poses")
        _expect(prev_layouts, 2, NUM_REGIONS, "prev_layouts")
        f_pose = self.encode_poses(poses.flatten(1, 2))
        f_prev = self.encode_previous(prev_layouts.flatten(1, 2))
        if source_features is None:
            source_features = self.encode_source(source_layout)
        logits = self.decode_layout(source_features + f_pose + f_prev)
        raw = torch.softmax(logits, dim=1)
        if self.decode_flow is None:
            return LayoutOutput(layout=raw, raw=raw, logits=logits, flow=None, weight=None, warped_previous=None)
        flow, weight = self.decode_flow(f_pose + f_prev)
        layout, warped = blend_with_warped_previous(raw, prev_layouts[:, -1], flow, weight)
        return LayoutOutput(layout=layout, raw=raw, logits=logits, flow=flow, weight=weight,
                            warped_previous=warped)


def _expect(x: torch.Tensor, frames: int, channels: int, name: str) -> None:
    if x.dim() != 5 or x.shape[1] != frames or x.shape[2] != channels:
        raise ValueError(f"{name} must be (B, {frames}, {channels}, H, W) with time oldest first, "
                         f"got {tuple(x.shape)}")
