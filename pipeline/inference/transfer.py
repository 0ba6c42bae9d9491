"""``remot transfer``: the source image's person performing the driving video's motion, as an mp4.

Order of work: the checkpoints are checked and loaded first (cheapest failure), then the source image and the
driving video are prepared (``pipeline.inference.prepare``), the networks run frame by frame with temporal state
(``pipeline.inference.generate``), and the video is written atomically (``pipeline.inference.video_io``): on
any error no output file appears. The person is composed on the driving video's background plate; the output
has the driving video's frame count and frame rate and the crop size (``extract.height x extract.width``), or
three crops wide with ``side_by_side`` (source | driving | output).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pipeline.inference.generate import START_RULE, choose_device, generate_video, load_networks
from pipeline.inference.prepare import BACKGROUND_RULE, Preprocessor
from pipeline.inference.video_io import side_by_side, write_mp4
from pipeline.params import Params, model_config


@dataclass
class TransferResult:
    out: Path
    n_frames: int
    height: int
    width: int
    fps: float                      # of the written video (the driving video's rate)
    network_frames_per_s: float     # frames / seconds inside the three networks
    total_frames_per_s: float       # frames / wall seconds of the whole command (preprocessing included)
    backends: dict[str, Any] = field(default_factory=dict)


def run_transfer(params: Params, root: Path | str, source: Path | str, driving: Path | str, out: Path | str,
                 checkpoint: Path | str | None = None, side_by_side_video: bool = False, device: str = "auto",
                 progress: bool = True) -> TransferResult:
    """Write ``out`` (mp4); see the module docstring. ``checkpoint`` defaults to ``<root>/<train.out>``."""
    started = time.perf_counter()
    root = Path(root)
    checkpoint_root = Path(checkpoint) if checkpoint is not None else root / params.train.out
    nets = load_networks(checkpoint_root, model_config(params.model), choose_device(device))
    prep = Preprocessor.from_params(params, root)
    src = prep.source(source)
    drv = prep.driving(driving)
    bar = tqdm(total=len(drv.frames), desc="transfer", unit="frame", disable=not progress, file=sys.stderr)
    try:
        video = generate_video(nets, src.image, src.layout, drv.keypoints, drv.background,
                               params.pose.thickness, on_frame=lambda _t: bar.update(1))
    finally:
        bar.close()
    frames = list(video.frames)
    if side_by_side_video:
        frames = [side_by_side(src.image, d, g) for d, g in zip(drv.frames, frames)]
    write_mp4(out, frames, drv.fps)
    elapsed = time.perf_counter() - started
    n = len(frames)
    backends = {**prep.backends, "device": str(nets.device), "torch": torch.__version__, "start": START_RULE,
                "background": BACKGROUND_RULE, "checkpoints": nets.info, "profile": params.model.profile}
    return TransferResult(Path(out), n, frames[0].shape[0], frames[0].shape[1], drv.fps,
                          n / max(video.network_seconds, 1e-9), n / max(elapsed, 1e-9), backends)
