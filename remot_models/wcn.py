"""Whole Composition Network (paper 3.2, eq. 12-15): refine the coarse foreground and add the background.

Inputs (conventions in ``remot_models.blocks``), time axis 1 ordered oldest first:

* ``layouts`` {L^_d^{t-2}, L^_d^{t-1}, L^_d^t}: (B, 3, 6, H, W) generated layouts.
* ``poses`` {P_d^{t-2}, P_d^{t-1}, P_d^t}: (B, 3, 3, H, W).
* ``coarse_foreground`` FG^_d,r^t: (B, 3, H, W), the Region GAN's sum of regions (eq. 11).
* ``prev_foregrounds`` {FG^_d^{t-2}, FG^_d^{t-1}}: (B, 2, 3, H, W), this network's previous ``foreground``
  outputs (zeros before t = 2).
* ``aligned_source`` GAM(FG_s): (B, 3, H, W), e.g. ``RegionOutput.aligned_foreground``.
* ``background`` BG: (B, 3, H, W) background plate of the driving frame, in [-1, 1].
* ``prev_frame`` I^_d^{t-1}: (B, 3, H, W), this network's previous ``output`` (zeros at t = 0).

Network::

    F3 = E3({L^_d^{t-2..t}, P_d^{t-2..t}}),  F2 = E2({FG^_d^{t-2}, FG^_d^{t-1}, FG^_d,r^t}),  F1 = E1(GAM(FG_s))
    FG^_d^t = tanh(D1(F3 + TAM(F1, F2)))                                   eq. 14 (TAM: eq. 12-13)
    m       = sigmoid(D2(F2 + F3))                                         soft background mask
    raw     = m * BG + FG^_d^t                                             eq. 15
    O, w    = D_flow(F2 + F3)                                              "same strategy as Layout GAN"
    I^_d^t  = raw * w + Warp(I^_d^{t-1}, O) * (1 - w)                      as eq. 2c

The flow branch reads F2 + F3 (previous outputs and driving pose/layout, not the source), as D2^l does in the
Layout GAN. Eq. 15 is additive and is kept as written: the frame lies in [-1, 1] only where FG^_d^t is ~0
wherever m is ~1, which the reconstruction loss teaches; values are in [-2, 2] by construction and are not
clamped (a clamp would cut gradients).

Exception to eq. 14-15, ``cfg.refine`` (default True): the paper's WCN "refines the coarse person image", and
it does so literally here: ``FG^_d^t = tanh(atanh(FG^_d,r^t) + D1(...))`` and ``m = sigmoid(logit(L^_d,bg^t) +
D2(...))``, D1 and D2's last layers zero-initialised, so the untrained WCN outputs the "w/o WCN" composition below
and training learns corrections to it. ``refine = False`` is eq. 14-15 as written.

``cfg.wcn_blend = False`` drops the temporal blend: ``I^_d^t = raw`` (no flow branch; ``flow``/``weight``/
``warped_previous`` None), a choice made on validation (README, "Learning on a CPU").

Ablations: ``cfg.tam = False`` replaces TAM(F1, F2) by F1 + F2 ("REMOT w/o TAM"). ``cfg.wcn = False``
("REMOT w/o WCN") builds no networks at all: the output is the coarse foreground plus the background where the
generated layout says background, ``I = FG^_d,r^t + L^_d,bg^t * BG`` - eq. 15 with the layout's background
channel as m and the Region GAN's foreground as FG; ``flow``/``weight``/``warped_previous`` are then None.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from remot_models.blocks import (BACKGROUND, NUM_REGIONS, Decoder, Encoder, FlowWeightDecoder,
                                 blend_with_warped_previous, refine, refine_probability, zero_head)
from remot_models.config import ModelConfig
from remot_models.tam import TextureAlignment


@dataclass
class CompositionOutput:
    """Named outputs of :class:`WholeCompositionNetwork`; (B, C, H, W) float."""

    output: torch.Tensor            # (B, 3, H, W) final frame I^_d^t
    raw: torch.Tensor               # (B, 3, H, W) m * BG + FG before the temporal blend (eq. 15)
    foreground: torch.Tensor        # (B, 3, H, W) FG^_d^t in [-1, 1] (eq. 14); feed back as prev_foregrounds
    mask: torch.Tensor              # (B, 1, H, W) m in (0, 1): where the background shows
    flow: torch.Tensor | None       # (B, 2, H, W) O in pixels
    weight: torch.Tensor | None     # (B, 1, H, W) w in (0, 1)
    warped_previous: torch.Tensor | None  # (B, 3, H, W) Warp(I^_d^{t-1}, O)


class WholeCompositionNetwork(nn.Module):
    """Eq. 12-15. ``forward(layouts, poses, coarse_foreground, prev_foregrounds, aligned_source, background,
    prev_frame) -> CompositionOutput`` (see the module docstring for shapes and the ``wcn=False`` path)."""

    def __init__(self, cfg: ModelConfig, pose_channels: int = 3):
        super().__init__()
        self.enabled = cfg.wcn
        self.pose_channels = pose_channels
        if not self.enabled:
            return
        self.encode_source = Encoder(3, cfg)                                      # E1^w on GAM(FG_s)
        self.encode_foregrounds = Encoder(9, cfg)                                 # E2^w
        self.encode_layout_pose = Encoder(3 * (NUM_REGIONS + pose_channels), cfg)  # E3^w
        self.texture_alignment = TextureAlignment(enabled=cfg.tam, temperature=cfg.tam_temperature)
        self.decode_foreground = Decoder(cfg, 3)                                  # D1^w
        self.decode_mask = Decoder(cfg, 1)                                        # D2^w
        self.refine = cfg.refine
        if self.refine:
            zero_head(self.decode_foreground)
            zero_head(self.decode_mask)
        self.decode_flow = FlowWeightDecoder(cfg) if cfg.wcn_blend else None

    def forward(self, layouts: torch.Tensor, poses: torch.Tensor, coarse_foreground: torch.Tensor,
                prev_foregrounds: torch.Tensor, aligned_source: torch.Tensor, background: torch.Tensor,
                prev_frame: torch.Tensor) -> CompositionOutput:
        if layouts.dim() != 5 or layouts.shape[1:3] != (3, NUM_REGIONS):
            raise ValueError(f"layouts must be (B, 3, 6, H, W), oldest first, got {tuple(layouts.shape)}")
        if not self.enabled:
            mask = layouts[:, -1, BACKGROUND:BACKGROUND + 1]
            output = coarse_foreground + mask * background
            return CompositionOutput(output=output, raw=output, foreground=coarse_foreground, mask=mask,
                                     flow=None, weight=None, warped_previous=None)
        if poses.dim() != 5 or poses.shape[1:3] != (3, self.pose_channels):
            raise ValueError(f"poses must be (B, 3, {self.pose_channels}, H, W), got {tuple(poses.shape)}")
        if prev_foregrounds.dim() != 5 or prev_foregrounds.shape[1:3] != (2, 3):
            raise ValueError(f"prev_foregrounds must be (B, 2, 3, H, W), got {tuple(prev_foregrounds.shape)}")

        f3 = self.encode_layout_pose(torch.cat([layouts.flatten(1, 2), poses.flatten(1, 2)], dim=1))
        f2 = self.encode_foregrounds(torch.cat([prev_foregrounds.flatten(1, 2), coarse_foreground], dim=1))
        f1 = self.encode_source(aligned_source)
        foreground = self.decode_foreground(f3 + self.texture_alignment(f1, f2))
        mask = self.decode_mask(f2 + f3)
        if self.refine:
            foreground = refine(coarse_foreground, foreground)
            mask = refine_probability(layouts[:, -1, BACKGROUND:BACKGROUND + 1], mask)
        else:
            foreground, mask = torch.tanh(foreground), torch.sigmoid(mask)
        raw = mask * background + foreground
        if self.decode_flow is None:
            return CompositionOutput(output=raw, raw=raw, foreground=foreground, mask=mask, flow=None, weight=None,
                                     warped_previous=None)
        flow, weight = self.decode_flow(f2 + f3)
        output, warped = blend_with_warped_previous(raw, prev_frame, flow, weight)
        return CompositionOutput(output=output, raw=raw, foreground=foreground, mask=mask, flow=flow,
                                 weight=weight, warped_previous=warped)
