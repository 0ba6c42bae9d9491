"""Evaluation metrics REMOT reports (paper sec. 4.2): SSIM, PSNR, Mask-SSIM, Mask-PSNR, LPIPS, FID and TCM.

Modules: ``image`` (SSIM / PSNR and their masked variants), ``fid`` (Frechet Inception Distance), ``tcm``
(temporal consistency metric), ``motion`` (AKD, MKR, moved-region scores), ``report`` (per-video evaluation that
records which backend produced every number).

A metric that needs a pretrained network whose official weights file is not on disk is never estimated with
random weights: :func:`load_or_unavailable` turns its ``pipeline.pretrained`` loader's ``WeightsNotFound`` into
:class:`Unavailable` with the reason (the missing file and where it is published), and reports carry that reason
in place of a number. LPIPS (Zhang et al. 2018) is ``pipeline.pretrained.lpips_network.LPIPS`` itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

from pipeline.core.errors import WeightsNotFound

T = TypeVar("T")


@dataclass(frozen=True)
class Unavailable:
    """A metric that cannot run here. ``metric`` names it; ``reason`` names each missing file and its source."""

    metric: str
    reason: str

    def __str__(self) -> str:
        return f"{self.metric} unavailable: {self.reason}"


def load_or_unavailable(metric: str, load: Callable[..., T], *args, **kwargs) -> T | Unavailable:
    """``load(*args, **kwargs)`` (a ``pipeline.pretrained`` loader), or ``Unavailable`` naming every missing file
    and its source: evaluation goes on without that metric. A present but wrong file still raises
    ``BadCheckpoint``: scoring with other weights than the ones named would be a wrong number, not a missing one."""
    try:
        return load(*args, **kwargs)
    except WeightsNotFound as missing:
        return Unavailable(metric, str(missing))
