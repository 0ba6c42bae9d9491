"""``remot transfer``: the source image's person performing the driving video's motion, as an mp4.

Order of work: the checkpoints are checked and loaded first (cheapest failure), then the source image and the
driving video are prepared (``pipeline.inference.prepare``), the networks run frame by frame with temporal state
(``pipeline.inference.generate``), and the video is written atomically (``pipeline.inference.video_io``): on
any error no output file appears. The person is composed on the driving video's background plate; the output
has the driving video's frame count and frame rate and the crop size (``extract.height x extract.width``), or
three crops wide with ``side_by_side`` (source | driving | output).
"""
from __future__ import annotations

import os
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
from pipeline.errors import RemotError
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


class OutputRefused(RemotError):
    """``--out`` names an input, an existing file without ``--force``, or something that is not a file."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(out: Path | str, inputs: dict[str, Path | str], force: bool = False) -> Path:
    """``out`` when writing it loses nothing: never one of ``inputs`` (name -> path, even with ``force``: the
    input is read while the output is written), and an existing file only with ``force`` (and only a writable
    one: a read-only file is the user's way of saying keep it)."""
    out = Path(out)
    for name, path in inputs.items():
        if _same_file(out, Path(path)):
            raise OutputRefused(f"--out {out} is the {name} input itself: write the result to another path")
    if out.is_dir():
        raise OutputRefused(f"--out {out} is a folder: give a file name ending in .mp4")
    if out.exists() or out.is_symlink():
        if not force:
            raise OutputRefused(f"--out {out} already exists: pass --force to overwrite it, or choose another path")
        # the mode bits as well as access(): root may write anything, but a 0444 file was still meant to stay
        if not os.access(out, os.W_OK) or not os.stat(out).st_mode & 0o222:
            raise OutputRefused(f"--out {out} is read-only: make it writable (chmod u+w) if it may be overwritten")
    return out


def run_transfer(params: Params, root: Path | str, source: Path | str, driving: Path | str, out: Path | str,
                 checkpoint: Path | str | None = None, side_by_side_video: bool = False, device: str = "auto",
                 progress: bool = True, force: bool = False) -> TransferResult:
    """Write ``out`` (mp4); see the module docstring. ``checkpoint`` defaults to ``<root>/<train.out>``.
    ``out`` must not be an input, nor an existing file unless ``force`` (:func:`check_output`)."""
    started = time.perf_counter()
    check_output(out, {"source": source, "driving": driving}, force)
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
