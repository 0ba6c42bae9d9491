"""``remot transfer``: the source image's person performing the driving video's motion, as an mp4.

Order of work: the checkpoints are checked and loaded first (cheapest failure), then the source image and the
driving video are prepared (``pipeline.inference.prepare``; the driving video streamed in decode passes), the
networks run frame by frame with temporal state (``pipeline.inference.generate.iter_generate``) and each frame is
encoded as it comes, atomically (``pipeline.inference.video_io.write_mp4_stream``): on any error no output file
appears, and memory does not grow with the driving video's length. ``--out`` is checked first of all: never an
input (the source, the driving video, the checkpoint's files, the params file), never a file inside the folders
the pipeline manages (data, models, metrics, plots, reports: :func:`managed_folders`), never an existing file
without ``force``. The person is composed on the driving video's background plate;
the output has the driving video's frame count and frame rate and the crop size (``extract.height x
extract.width``), or three crops wide with ``side_by_side`` (source | driving | output).
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

from pipeline.core.compute import choose_device
from pipeline.core.errors import RemotError
from pipeline.core.params import Params, model_config
from pipeline.inference.generate import START_RULE, autocast, iter_generate, load_networks
from pipeline.inference.prepare import BACKGROUND_RULE, PLATE_FRAMES, Preprocessor
from pipeline.inference.video_io import side_by_side, write_mp4_stream


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
    # wall seconds per phase: startup (checkpoints loaded, MediaPipe imported: paid once per command, whatever
    # the video's length), source, driving (decode passes, person box, pose, plate), frames (networks, the pose
    # maps and the encoding, interleaved), finish (read-back of the written file); networks: the part of frames
    # spent inside the three networks
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        """Frames / wall seconds after start-up: the per-video rate a longer video or a second call approaches."""
        after_startup = sum(self.seconds.get(k, 0.0) for k in ("source", "driving", "frames", "finish"))
        return self.n_frames / max(after_startup, 1e-9)


class OutputRefused(RemotError):
    """``--out`` names an input, an existing file without ``--force``, or something that is not a file."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def managed_folders(params: Params, root: Path, checkpoint_root: Path) -> list[tuple[str, Path]]:
    """Folders no ``--out`` may write into, even with ``--force``: the checkpoint being loaded, and the project's
    DVC-managed outputs (data_root, train.out, metrics, plots, reports). A result written there would replace a
    weights file or a stage output (which DVC would then report as changed, or silently put back)."""
    root = Path(root)
    return [("checkpoint folder", Path(checkpoint_root)), ("data folder", root / params.data_root),
            ("models folder", root / params.train.out), ("models folder", root / "models"),
            ("metrics folder", root / "metrics"), ("plots folder", root / "plots"), ("reports folder", root / "reports")]


def check_output(out: Path | str, inputs: dict[str, Path | str], force: bool = False,
                 protected: list[tuple[str, Path]] = ()) -> Path:
    """``out`` when writing it loses nothing: never one of ``inputs`` (name -> path, even with ``force``: the
    input is read while the output is written), never inside one of ``protected`` ((name, folder), even with
    ``force``), and an existing file only with ``force`` (and only a writable one: a read-only file is the user's
    way of saying keep it)."""
    out = Path(out)
    for name, path in inputs.items():
        if _same_file(out, Path(path)):
            raise OutputRefused(f"--out {out} is the {name} input itself: write the result to another path")
    # resolve() follows symlinks in the existing part of the path, so a link into a protected folder is caught
    target = out.resolve()
    for name, folder in protected:
        if target.is_relative_to(Path(folder).resolve()):
            raise OutputRefused(f"--out {out} is inside the {name} {folder}, which the pipeline manages "
                                "(--force does not change that): write the result outside it")
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
                 progress: bool = True, force: bool = False, params_file: Path | str | None = None,
                 precision: str = "fp32") -> TransferResult:
    """Write ``out`` (mp4); see the module docstring. ``checkpoint`` defaults to ``<root>/<train.out>``.
    ``precision``: the networks' arithmetic (``pipeline.inference.generate.PRECISIONS``; bf16 is faster on CPUs
    with bfloat16 instructions and approximates float32).
    ``out`` must not be an input (``params_file`` included), nor inside :func:`managed_folders`, nor an existing
    file unless ``force`` (:func:`check_output`)."""
    started = time.perf_counter()
    root = Path(root)
    checkpoint_root = Path(checkpoint) if checkpoint is not None else root / params.train.out
    inputs = {"source": source, "driving": driving, "params file": params_file or root / "params.yaml"}
    check_output(out, inputs, force, managed_folders(params, root, checkpoint_root))
    autocast(torch.device("cpu"), precision)  # an unknown precision fails before anything is loaded
    nets = load_networks(checkpoint_root, model_config(params.model), choose_device(device))
    prep = Preprocessor.from_params(params, root)
    import mediapipe  # noqa: F401  (its import is most of the pose model's start-up: counted as such)
    seconds = {"startup": time.perf_counter() - started}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        seconds[name] = now - mark
        mark = now

    src = prep.source(source)
    phase("source")
    # Streamed: the driving video is decoded in passes (prepare.driving_stream) and every generated frame is
    # encoded as soon as it exists, so memory does not grow with the video's length or resolution.
    drv = prep.driving_stream(driving)
    phase("driving")
    network_seconds = 0.0
    bar = tqdm(total=drv.n_frames, desc="transfer", unit="frame", disable=not progress, file=sys.stderr)

    def frames():
        nonlocal network_seconds
        crops = drv.crops() if side_by_side_video else None
        for generated in iter_generate(nets, src.image, src.layout, drv.keypoints, drv.background,
                                       params.pose.thickness, precision, details=False):
            network_seconds += generated.network_seconds
            bar.update(1)
            yield side_by_side(src.image, next(crops), generated.frame) if crops is not None else generated.frame

    def frames_done(n_frames: int) -> None:  # called between the last frame and the read-back check
        phase("frames")

    try:
        _, n, (height, width) = write_mp4_stream(out, frames(), drv.fps, on_encoded=frames_done)
    finally:
        bar.close()
    phase("finish")
    seconds["networks"] = network_seconds
    elapsed = time.perf_counter() - started
    backends = {**prep.backends, "device": str(nets.device), "torch": torch.__version__, "start": START_RULE,
                "background": BACKGROUND_RULE, "checkpoints": nets.info, "profile": params.model.profile,
                "background_frames": min(drv.n_frames, PLATE_FRAMES), "precision": precision}
    return TransferResult(Path(out), n, height, width, drv.fps, n / max(network_seconds, 1e-9),
                          n / max(elapsed, 1e-9), backends, seconds)
