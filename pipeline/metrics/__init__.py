"""Evaluation metrics REMOT reports (paper sec. 4.2): SSIM, PSNR, Mask-SSIM, Mask-PSNR, LPIPS, FID and TCM.

Modules: ``image`` (SSIM / PSNR and their masked variants), ``lpips`` (Zhang et al. 2018), ``fid`` (Frechet
Inception Distance), ``tcm`` (temporal consistency metric), ``report`` (per-video evaluation that records which
backend produced every number).

A metric that needs a pretrained network whose official weights file is not on disk is never estimated with
random weights: its loader returns :class:`Unavailable` with the reason (the missing file and where it is
published), and reports carry that reason in place of a number.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unavailable:
    """A metric that cannot run here. ``metric`` names it; ``reason`` names each missing file and its source."""

    metric: str
    reason: str

    def __str__(self) -> str:
        return f"{self.metric} unavailable: {self.reason}"
