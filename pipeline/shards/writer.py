"""Pack per-video artefacts into reproducible WebDataset shards: one sample per temporal window.

Inputs are the per-video outputs laid out by :mod:`pipeline.core.artifacts` (frames + meta.json, pose parquet, layout
PNGs + meta.json, flow npz, background PNG). :func:`collect_video` checks that a video has all of them and returns
a :class:`VideoInputs`, or a :class:`Skip` whose reason names the missing or incomplete file and the stage to run;
a skipped video is reported, never sharded. Reasons name the stage to rerun by its ``dvc.yaml`` name (frames
come from ``extract``, layouts from ``parse`` then ``merge``; then ``pose``, ``flow``, ``background``).
:func:`write_shards` writes the samples, :func:`write_manifest` the per-sample table and split summary.

Output layout under ``out_dir``::

    <split>/<dataset>__<video>-000000.tar    samples of one video, at most ``shard_max_samples`` per tar
    <split>/<dataset>__<video>-000001.tar    ...

and, outside ``out_dir`` (untracked: it holds this machine's absolute paths and mtimes, so it must not be part of
the DVC output, which is byte-identical on every machine), ``<out_dir>/../.cache/<out_dir name>/shards-index.json``
(:func:`index_path`): per video the input fingerprint, tar hashes and manifest rows. Without it (a fresh clone)
every video is re-encoded once and tars whose bytes are unchanged are left as they are.

``<split>`` is the video's ``split`` from frames/meta.json (train, val or test); a video lives in exactly one
split folder. ``<dataset>`` and ``<video>`` are sanitised to ``[A-Za-z0-9_-]`` (anything else becomes ``-``);
two videos that sanitise to the same name are an error.

Sample = one window ``[start, stop)`` of T = ``window_length`` frames (see :mod:`pipeline.shards.windows`), with key
``<dataset>__<video>__w<start:06d>`` (no dots: WebDataset splits key and field at the first dot). H, W = the
video's frame size. Fields (tar member ``<key>.<field>``):

    frames.png         uint8 RGB, the T frames stacked vertically: (T*H, W, 3); frame i is rows i*H..(i+1)*H
    layouts.png        uint8 (T*H, W), labels 0..5 in ``labels.REGIONS`` order, stacked like frames
    pose.npy           float32 (T, 25, 3): BODY_25 keypoints per frame, columns x, y (pixels of the frame,
                       origin top-left) and confidence in [0, 1]; joints not detected have confidence 0
    flow.npy.gz        gzip (mtime 0) of an int16 npy (T, 2, H, W): flow t -> t-1 in 1/32 px
                       (``schema.FLOW_STEPS_PER_PIXEL``; the reader divides), channel 0 = dx, 1 = dy, on frame
                       t's grid (``frame[t-1]`` sampled at x + flow(x) ~ ``frame[t](x)``, as in
                       :mod:`pipeline.flow.base`). Entry 0 is zeroed: each window starts like a fresh video, so
                       the flow only ever links frames that are both in the window.
    valid.png          uint8 (T*H, W) in {0, 1}: 1 where the flow is trustworthy; entry 0 is all 0
    background.png     uint8 RGB (H, W, 3): the video's background plate
    source.png         uint8 RGB (H, W, 3): the source frame (a forward frame of the same video,
                       :func:`pipeline.shards.windows.choose_source_frame`)
    source_layout.png  uint8 (H, W) labels 0..5 of the source frame
    source_pose.npy    float32 (25, 3) keypoints of the source frame, as in pose.npy
    meta.json          dataset, video, split, fps, video_n_frames, frames (the T frame indices),
                       window_start/stop, source_frame, source_rule, height, width, regions, backends
                       {pose, parser, flow} (which backends produced the inputs), format

Byte reproducibility: members are written in sorted order (sample by start, then field name) with fixed tar
metadata (mtime 0, uid/gid 0, uname/gname "", mode 0o644, GNU format), strip PNGs with one fixed filter and zlib
level (:mod:`pipeline.core.png`), single images (background, source frame and layout) as the stages' own
PNG files, copied when they are plain 8-bit PNGs (:mod:`pipeline.shards.png_bytes`), arrays by ``np.save`` to
memory, gzip with mtime 0, JSON with sorted keys; the source frame comes from sha256 of (seed, dataset, video,
start). The same inputs, parameters and library versions (zlib) therefore give identical tar bytes.

Crash safety: each tar is written to a temporary sibling ``.tmp-<name>-XXXX`` (which never matches ``*.tar``)
and ``os.replace``d into place, so a killed run never leaves a truncated ``.tar`` under its final name; the next
run deletes the temporaries. The index is rewritten (atomically) after every video.

Incremental cost: a video's tars depend only on that video's input files and the window/seed parameters, whose
hash (the *fingerprint*) is kept in the index. On a re-run a video whose fingerprint is unchanged and whose
tars are still on disk with the recorded size and mtime is not touched at all (tars keep their bytes and
mtime); input hashes are cached by (size, mtime), so checking an unchanged video costs a ``stat`` per input file.
Adding a video therefore costs encoding that video's windows only. A video whose inputs changed is re-encoded,
and each of its tars is replaced only if its sha256 differs from the file on disk. ``out_dir`` mirrors exactly
the videos passed in: tars of videos no longer listed (or now in another split) are deleted. Changing
``window_length``, ``stride``, ``shard_max_samples`` or ``seed`` changes every fingerprint, so every video is
re-encoded.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core import atomic
from pipeline.core.artifacts import (BACKEND_FIELD, FLOW_FIELD, FLOW_FILE_FIELDS, VALID_FIELD, VideoArtifacts,
                                     frame_name)
from pipeline.core.errors import RemotError
from pipeline.core.hashing import file_digest, json_sha256
from pipeline.core.labels import REGIONS
from pipeline.core.png import ENCODING as PNG_ENCODING, encode_png
from pipeline.shards import schema
from pipeline.shards.png_bytes import StoredPngs
from pipeline.shards.schema import FORMAT_VERSION
from pipeline.shards.windows import choose_source_frame, plan_windows, source_seed_material

# schema.FORMAT_VERSION is part of every fingerprint: bumping it rebuilds all shards.
SPLITS: tuple[str, ...] = ("train", "val", "test")
INDEX_NAME = "shards-index.json"
N_JOINTS = 25
# Fixed-point flow at level 1 deflates to 15% of its raw bytes, level 6 to 11% in three times the time (DIS flow
# of 64-frame demo clips); float16 deflated to 85% at either level.
FLOW_GZIP_LEVEL = 1
SOURCE_RULE = "forward-v1: uniform over frames before the window; after it when the window starts at 0"


class ShardInputError(RemotError):
    """An input file passed the completeness checks but its content is unusable (wrong size, labels, ...)."""


@dataclass(frozen=True)
class Skip:
    """A video that was not sharded, and why (the reason names the file and the stage to run)."""

    dataset: str
    video: str
    reason: str


@dataclass(frozen=True, eq=False)
class VideoInputs:
    """A video whose artefacts are all present and consistent; arrays are loaded by :meth:`load` when sharded."""

    artifacts: VideoArtifacts
    split: str
    fps: float
    n_frames: int
    height: int
    width: int
    keypoints: np.ndarray  # float32 (n_frames, 25, 3): x, y in pixels, confidence (0 = not detected)
    backends: dict[str, str]  # {"pose": ..., "parser": ..., "flow": ...}
    input_files: tuple[Path, ...]  # every file the shards are made from, for the fingerprint

    @property
    def dataset(self) -> str:
        return self.artifacts.dataset

    @property
    def video(self) -> str:
        return self.artifacts.video

    @property
    def stem(self) -> str:
        """Sanitised ``<dataset>__<video>``: the prefix of this video's tar names and sample keys."""
        return f"{sanitize(self.dataset)}__{sanitize(self.video)}"

    def load(self, start: int = 0, stop: int | None = None) -> LoadedVideo:
        """Read frames ``start .. stop - 1`` (all by default): frames, layouts, their flow, and the background
        (raises :class:`ShardInputError` on bad content). Index 0 of the arrays is frame ``start``."""
        art, shape = self.artifacts, (self.height, self.width)
        indices = range(start, self.n_frames if stop is None else stop)
        frames = np.stack([_read_png(art.frames_dir / frame_name(i), shape, color=True, stage="`extract` stage")
                           for i in indices])
        layouts = np.stack([_read_png(art.layout_dir / frame_name(i), shape, color=False,
                                      stage="`parse` and `layout` stages") for i in indices])
        if layouts.max(initial=0) >= len(REGIONS):
            bad = indices[int(np.argmax(layouts.reshape(len(indices), -1).max(axis=1) >= len(REGIONS)))]
            raise ShardInputError(f"{art.layout_dir / frame_name(bad)} holds label {int(layouts[bad - start].max())}, "
                                  f"but layouts use 0..{len(REGIONS) - 1}: rerun the `parse` and `layout` stages")
        with np.load(art.flow_file, allow_pickle=False) as npz:  # compressed: read whole, keep the slice
            flow = np.array(npz[FLOW_FIELD][indices.start:indices.stop], dtype=np.float16)
            valid = (np.asarray(npz[VALID_FIELD][indices.start:indices.stop]) > 0).astype(np.uint8)
        background = _read_png(art.background_file, shape, color=True, stage="`layout` stage (it writes the background plates)")
        return LoadedVideo(frames=frames, layouts=layouts, flow=flow, valid=valid, background=background)


@dataclass(frozen=True, eq=False)
class LoadedVideo:
    frames: np.ndarray  # uint8 (N, H, W, 3) RGB
    layouts: np.ndarray  # uint8 (N, H, W) labels 0..5
    flow: np.ndarray  # float16 (N, 2, H, W) t -> t-1
    valid: np.ndarray  # uint8 (N, 1, H, W) in {0, 1}
    background: np.ndarray  # uint8 (H, W, 3) RGB


@dataclass
class ShardReport:
    """What :func:`write_shards` did, plus the manifest rows of every sample now in ``out_dir``."""

    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per sample: shard, key, dataset, video, ...
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)  # stem -> dataset, video, split, fps, n_frames
    written: list[Path] = field(default_factory=list)  # tars created or replaced by this run
    kept: list[Path] = field(default_factory=list)  # tars left untouched (same content already on disk)
    removed: list[Path] = field(default_factory=list)  # stale tars and temporaries deleted
    skipped: list[Skip] = field(default_factory=list)
    bytes_written: int = 0

    def summary(self) -> dict[str, dict[str, float | int]]:
        """Per split: samples, videos, frames (of those videos) and hours of footage (frames / fps / 3600)."""
        out: dict[str, dict[str, float | int]] = {}
        for split in sorted({v["split"] for v in self.videos.values()}):
            vids = [v for v in self.videos.values() if v["split"] == split]
            out[split] = {
                "samples": sum(1 for r in self.rows if r["split"] == split),
                "videos": len(vids),
                "frames": sum(v["n_frames"] for v in vids),
                "hours": sum(v["n_frames"] / v["fps"] for v in vids) / 3600.0,
            }
        return out


# ----------------------------------------------------------------------------------------------- naming


def sanitize(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``-`` (keys must hold no dots)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    if not cleaned:
        raise ValueError("an empty dataset or video name cannot name a shard")
    return cleaned


def sample_key(stem: str, start: int) -> str:
    """Key of the window starting at ``start``; zero-padded so lexical order is temporal order."""
    return f"{stem}__w{start:06d}"


def find_videos(root: Path) -> list[VideoArtifacts]:
    """Every (dataset, video) with a ``frames/<dataset>/<video>/`` folder under ``root``, sorted.

    Hidden folders (such as a killed extract run's ``.tmp-*`` temporaries) are not videos and are left out.
    """
    frames = Path(root) / "frames"
    if not frames.is_dir():
        return []
    return [VideoArtifacts(Path(root), d.name, v.name)
            for d in sorted(frames.iterdir()) if d.is_dir() and not d.name.startswith(".")
            for v in sorted(d.iterdir()) if v.is_dir() and not v.name.startswith(".")]


# ----------------------------------------------------------------------------------------------- collect


def _incomplete(kind: str, files: list[Path], stage: str) -> str | None:
    """A skip reason when some of a video's per-frame files are missing, else None."""
    missing = [p for p in files if not p.is_file()]
    if not missing:
        return None
    return f"incomplete {kind}: {missing[0]} missing ({len(missing)} of {len(files)}): rerun {stage}"


def collect_video(artifacts: VideoArtifacts) -> VideoInputs | Skip:
    """Check that every artefact of one video is present and complete.

    Returns :class:`VideoInputs` (keypoints loaded, images left on disk) or :class:`Skip` whose reason names the
    first missing or incomplete file and the stage that makes it. Checks: frames/meta.json (dataset, video,
    split in train/val/test, fps > 0, n_frames >= 1) and all n_frames PNGs; the pose parquet has the columns
    video, frame, joint, x, y, conf and rows for every frame; layout/ has meta.json and n_frames PNGs; the flow
    npz has ``flow`` float16 (n_frames, 2, H, W), ``valid`` (n_frames, 1, H, W) and ``backend``; the background
    PNG exists and is H x W.
    """
    art = artifacts

    def skip(reason: str) -> Skip:
        return Skip(art.dataset, art.video, reason)

    # Frames and their meta.
    if not art.frames_meta.is_file():
        return skip(f"missing frames meta {art.frames_meta}: run the `extract` stage")
    try:
        meta = json.loads(art.frames_meta.read_text())
        split, fps, n_frames = str(meta["split"]), float(meta["fps"]), int(meta["n_frames"])
    except (ValueError, KeyError, TypeError) as exc:
        return skip(f"unreadable frames meta {art.frames_meta} ({exc!r}): rerun the `extract` stage")
    if split not in SPLITS:
        return skip(f"{art.frames_meta} has split {split!r}, expected one of {SPLITS}: fix the dataset's split list")
    if not (fps > 0 and n_frames >= 1):
        return skip(f"{art.frames_meta} has fps={fps}, n_frames={n_frames}: rerun the `extract` stage")
    frame_files = [art.frames_dir / frame_name(i) for i in range(n_frames)]
    if problem := _incomplete("frames", frame_files, "the `extract` stage"):
        return skip(problem)
    first = cv2.imread(str(frame_files[0]), cv2.IMREAD_COLOR)
    if first is None:
        return skip(f"unreadable frame {frame_files[0]}: rerun the `extract` stage")
    height, width = first.shape[:2]

    # Pose.
    pose = _collect_pose(art, n_frames)
    if isinstance(pose, str):
        return skip(pose)
    keypoints, pose_backend = pose

    # Layout (merged 6-region labels) and which parser made it.
    if not art.layout_dir.is_dir():
        return skip(f"missing layout folder {art.layout_dir}: run the `parse` and `layout` stages")
    layout_meta = art.layout_dir / "meta.json"
    if not layout_meta.is_file():
        return skip(f"missing layout meta {layout_meta} (incomplete layout): rerun the `parse` and `layout` stages")
    try:
        parser = str(json.loads(layout_meta.read_text())["parser"])
    except (ValueError, KeyError, TypeError) as exc:
        return skip(f"unreadable layout meta {layout_meta} ({exc!r}): rerun the `parse` and `layout` stages")
    layout_files = [art.layout_dir / frame_name(i) for i in range(n_frames)]
    if problem := _incomplete("layout", layout_files, "the `parse` and `layout` stages"):
        return skip(problem)

    # Flow.
    flow = _collect_flow(art.flow_file, n_frames, height, width)
    if flow.startswith("problem:"):
        return skip(flow.removeprefix("problem:"))
    flow_backend = flow

    # Background.
    if not art.background_file.is_file():
        return skip(f"missing background file {art.background_file}: run the `layout` stage (it writes the background plates)")
    background = cv2.imread(str(art.background_file), cv2.IMREAD_COLOR)
    if background is None or background.shape[:2] != (height, width):
        got = None if background is None else background.shape[:2]
        return skip(f"background {art.background_file} is unreadable or not {height}x{width} (got {got}): "
                    f"rerun the `layout` stage (it writes the background plates)")

    inputs = (art.frames_meta, *frame_files, art.pose_table, layout_meta, *layout_files, art.flow_file,
              art.background_file)
    return VideoInputs(artifacts=art, split=split, fps=fps, n_frames=n_frames, height=height, width=width,
                       keypoints=keypoints, backends={"pose": pose_backend, "parser": parser, "flow": flow_backend},
                       input_files=inputs)


def _collect_pose(art: VideoArtifacts, n_frames: int) -> tuple[np.ndarray, str] | str:
    """(keypoints float32 (n_frames, 25, 3), backend) from the pose parquet, or a skip reason."""
    path = art.pose_table
    if not path.is_file():
        return f"missing pose file {path}: run the `pose` stage"
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        return f"unreadable pose file {path} ({exc}): rerun the `pose` stage"
    needed = ("video", "frame", "joint", "x", "y", "conf")
    absent = [c for c in needed if c not in table.column_names]
    if absent:
        return f"pose file {path} lacks columns {absent}: rerun the `pose` stage"
    metadata = table.schema.metadata or {}
    backend = metadata.get(b"backend", b"unknown").decode("utf-8", "replace")
    videos = np.asarray(table["video"].to_pylist(), dtype=object)
    if len(videos) and not np.any(videos == art.video):
        return f"pose file {path} has no rows for video {art.video!r}: rerun the `pose` stage"
    rows = videos == art.video
    frame = np.asarray(table["frame"].to_numpy(zero_copy_only=False))[rows].astype(np.int64)
    joint = np.asarray(table["joint"].to_numpy(zero_copy_only=False))[rows].astype(np.int64)
    values = np.stack([np.asarray(table[c].to_numpy(zero_copy_only=False), dtype=np.float32)[rows]
                       for c in ("x", "y", "conf")], axis=1)
    if len(frame) and (frame.min() < 0 or frame.max() >= n_frames or joint.min() < 0 or joint.max() >= N_JOINTS):
        return (f"pose file {path} has frame/joint indices outside 0..{n_frames - 1} / 0..{N_JOINTS - 1}: "
                f"rerun the `pose` stage")
    keypoints = np.zeros((n_frames, N_JOINTS, 3), dtype=np.float32)
    keypoints[frame, joint] = values
    # A NaN coordinate means "not detected": make it an explicit zero-confidence joint.
    undetected = ~np.isfinite(keypoints).all(axis=2)
    keypoints[undetected] = 0.0
    covered = np.zeros(n_frames, dtype=bool)
    covered[frame] = True
    if not covered.all():
        first = int(np.argmin(covered))
        return (f"incomplete pose file {path}: rows for {int(covered.sum())} of {n_frames} frames "
                f"(first missing frame {first}): rerun the `pose` stage")
    return keypoints, backend


def _npy_header(zf: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array in an npz, read from its header without loading the data."""
    with zf.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read(handle)
    return tuple(shape), np.dtype(dtype)


def _collect_flow(path: Path, n_frames: int, height: int, width: int) -> str:
    """The flow backend name, or ``"problem:<skip reason>"``."""
    if not path.is_file():
        return f"problem:missing flow file {path}: run the `flow` stage"
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            absent = [f"{n}.npy" for n in FLOW_FILE_FIELDS if f"{n}.npy" not in names]
            if absent:
                return f"problem:incomplete flow file {path} (no {absent}): rerun the `flow` stage"
            flow_shape, flow_dtype = _npy_header(zf, f"{FLOW_FIELD}.npy")
            valid_shape, _ = _npy_header(zf, f"{VALID_FIELD}.npy")
        with np.load(path, allow_pickle=False) as npz:
            backend = str(npz[BACKEND_FIELD])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return f"problem:unreadable (truncated?) flow file {path} ({exc}): rerun the `flow` stage"
    if flow_shape != (n_frames, 2, height, width) or flow_dtype != np.float16:
        return (f"problem:incomplete flow file {path}: flow is {flow_dtype} {flow_shape}, expected float16 "
                f"{(n_frames, 2, height, width)}: rerun the `flow` stage")
    if valid_shape != (n_frames, 1, height, width):
        return (f"problem:incomplete flow file {path}: valid is {valid_shape}, expected "
                f"{(n_frames, 1, height, width)}: rerun the `flow` stage")
    return backend


def _read_png(path: Path, shape: tuple[int, int], *, color: bool, stage: str) -> np.ndarray:
    """RGB (H, W, 3) or single-channel (H, W) uint8 image; raises ShardInputError naming the file otherwise."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ShardInputError(f"cannot read {path}: rerun the {stage}")
    if color:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim != 2 or image.dtype != np.uint8:
        raise ShardInputError(f"{path} is {image.dtype} {image.shape}, expected uint8 labels (H, W): "
                              f"rerun the {stage}")
    if image.shape[:2] != shape:
        raise ShardInputError(f"{path} is {image.shape[:2]}, expected {shape} like frame 0: rerun the {stage}")
    return image


# ----------------------------------------------------------------------------------------------- encode


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _strip(images: np.ndarray) -> np.ndarray:
    """(T, H, W[, C]) -> (T*H, W[, C]): frames stacked vertically so one PNG holds the whole window."""
    return images.reshape(images.shape[0] * images.shape[1], *images.shape[2:])


def fixed_point_flow(flow: np.ndarray, path: Path) -> np.ndarray:
    """Flow in pixels -> int16 in 1/``schema.FLOW_STEPS_PER_PIXEL`` px (rounded to nearest); a non-finite or
    out-of-range vector (beyond +-1023 px) raises :class:`ShardInputError` naming the flow file ``path``."""
    steps = np.rint(flow.astype(np.float32) * schema.FLOW_STEPS_PER_PIXEL)
    limit = np.iinfo(np.int16).max
    if not np.isfinite(steps).all() or np.abs(steps).max(initial=0) > limit:
        raise ShardInputError(f"{path} holds flow that is not finite or beyond +-{limit // schema.FLOW_STEPS_PER_PIXEL}"
                              " px: rerun the `flow` stage")
    return steps.astype("<i2")


def encode_window(video: VideoInputs, data: LoadedVideo, start: int, stop: int, seed: int,
                  stored: StoredPngs | None = None) -> list[tuple[str, bytes]]:
    """The members ``(<key>.<field>, bytes)`` of one window's sample, sorted by name (see the module docstring).
    Single images are the stages' own PNG files, copied (``stored``: one per video, so each is read once)."""
    stored = stored if stored is not None else StoredPngs((video.height, video.width), encode_png)
    art = video.artifacts
    source = choose_source_frame(video.n_frames, start,
                                 source_seed_material(seed, video.dataset, video.video, start), stop=stop)
    key = sample_key(video.stem, start)
    flow = data.flow[start:stop].copy()
    valid = data.valid[start:stop].copy()
    # Frame 0 of the window has no predecessor inside the window.
    flow[0] = 0
    valid[0] = 0
    meta = {
        "format": FORMAT_VERSION, "key": key, "dataset": video.dataset, "video": video.video, "split": video.split,
        "fps": video.fps, "video_n_frames": video.n_frames, "frames": list(range(start, stop)),
        "window_start": start, "window_stop": stop, "source_frame": source, "source_rule": SOURCE_RULE,
        "height": video.height, "width": video.width, "regions": list(REGIONS), "backends": dict(video.backends),
    }
    fields = {
        schema.BACKGROUND: stored.get(art.background_file, data.background, color=True),
        schema.FLOW: gzip.compress(_npy(fixed_point_flow(flow, art.flow_file)), compresslevel=FLOW_GZIP_LEVEL,
                                   mtime=0),
        schema.FRAMES: encode_png(_strip(data.frames[start:stop])),
        schema.LAYOUTS: encode_png(_strip(data.layouts[start:stop])),
        schema.META: json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("utf-8"),
        schema.POSE: _npy(video.keypoints[start:stop].astype("<f4")),
        schema.SOURCE: stored.get(art.frames_dir / frame_name(source), data.frames[source], color=True),
        schema.SOURCE_LAYOUT: stored.get(art.layout_dir / frame_name(source), data.layouts[source],
                                          color=False),
        schema.SOURCE_POSE: _npy(video.keypoints[source].astype("<f4")),
        schema.VALID: encode_png(_strip(valid[:, 0])),
    }
    return [(f"{key}.{name}", fields[name]) for name in sorted(fields)]


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    tar.addfile(info, io.BytesIO(data))


def _stamp(path: Path, sha256: str) -> dict[str, Any]:
    st = path.stat()
    return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _stamp_matches(path: Path, stamp: dict[str, Any]) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return st.st_size == stamp.get("size") and st.st_mtime_ns == stamp.get("mtime_ns")


# ----------------------------------------------------------------------------------------------- write


def _input_fingerprint(video: VideoInputs, params: dict[str, Any], cache: dict[str, list]) -> str:
    """sha256 over the format version, shard parameters and every input file's content hash.

    ``cache`` maps an input path to [size, mtime_ns, sha256] from earlier runs; a file whose size and mtime are
    unchanged is not re-read. It is updated in place.
    """
    digest = json_sha256({"format": FORMAT_VERSION, **params})
    root = video.artifacts.root
    for path in video.input_files:
        st = path.stat()
        cached = cache.get(str(path))
        if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
            file_hash = cached[2]
        else:
            file_hash = file_digest(path)
            cache[str(path)] = [st.st_size, st.st_mtime_ns, file_hash]
        digest.update(f"{path.relative_to(root).as_posix()}\x00{file_hash}\n".encode())
    return digest.hexdigest()


def index_path(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.parent / ".cache" / out_dir.name / INDEX_NAME


def _load_index(out_dir: Path) -> dict[str, Any]:
    path = index_path(out_dir)
    try:
        index = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {"format": FORMAT_VERSION, "videos": {}, "input_hashes": {}}
    index.setdefault("videos", {})
    index.setdefault("input_hashes", {})
    return index


def _write_tar(final: Path, members: Iterable[tuple[str, bytes]]) -> tuple[bool, dict[str, Any]]:
    """Write ``members`` as a tar at ``final`` via a temporary sibling; returns (replaced?, stamp).

    When ``final`` already holds exactly these bytes it is left alone (its mtime is kept).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{atomic.TEMP_PREFIX}{final.name}-", dir=final.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for name, data in members:
                    _tar_member(tar, name, data)
            handle.flush()
            os.fsync(handle.fileno())
        new_hash = file_digest(tmp)
        if final.is_file() and file_digest(final) == new_hash:
            tmp.unlink()
            return False, _stamp(final, new_hash)
        os.replace(tmp, final)
        return True, _stamp(final, new_hash)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_shards(videos: Iterable[VideoInputs | Skip], out_dir: Path, window_length: int, stride: int,
                 shard_max_samples: int, seed: int = 0, workers: int = 1) -> ShardReport:
    """Write one tar series per video under ``out_dir/<split>/`` and return a :class:`ShardReport`.

    ``videos`` are the results of :func:`collect_video`; a :class:`Skip` is recorded in the report and nothing
    is written for it. A video too short for one window is skipped too. See the module docstring for the
    sample fields, naming, reproducibility and what a re-run rewrites. Raises ValueError when one
    (dataset, video) is passed twice or two videos sanitise to the same name, and :class:`ShardInputError`
    when an input's content is unusable. ``workers`` > 1 encodes that many videos at once on spawned worker
    processes; the tars are the same bytes either way.
    """
    if shard_max_samples < 1:
        raise ValueError(f"shard_max_samples must be >= 1, got {shard_max_samples}")
    plan_windows(0, window_length, stride)  # validates length and stride
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ShardReport(out_dir=out_dir)
    for folder in [out_dir, *(p for p in sorted(out_dir.iterdir()) if p.is_dir())]:
        report.removed.extend(atomic.remove_stale_temps(folder))
    inputs = _distinct_inputs(videos, report)
    params = {"window_length": window_length, "stride": stride, "shard_max_samples": shard_max_samples,
              "seed": seed, "png": PNG_ENCODING, "flow_gzip_level": FLOW_GZIP_LEVEL}
    index = _load_index(out_dir)
    expected: set[str] = set()
    jobs: list[VideoJob] = []
    sharded: list[VideoInputs] = []
    for video in sorted(inputs, key=lambda v: (v.split, v.stem)):
        windows = plan_windows(video.n_frames, window_length, stride)
        if not windows:
            report.skipped.append(Skip(video.dataset, video.video,
                                       f"{video.n_frames} frames, fewer than window_length={window_length}"))
            continue
        chunks = [windows[i:i + shard_max_samples] for i in range(0, len(windows), shard_max_samples)]
        tars = [f"{video.split}/{video.stem}-{i:06d}.tar" for i in range(len(chunks))]
        fingerprint = _input_fingerprint(video, params, index["input_hashes"])
        old = index["videos"].get(video.stem)
        expected.update(tars)
        sharded.append(video)
        if (old is not None and old.get("fingerprint") == fingerprint and list(old["tars"]) == tars
                and all(_stamp_matches(out_dir / t, old["tars"][t]) for t in tars)):
            report.kept.extend(out_dir / t for t in tars)
        else:
            jobs.append(VideoJob(video, out_dir, tars, chunks, seed, fingerprint))
    for job, written in zip(jobs, _run_jobs(jobs, workers)):
        index["videos"][job.video.stem] = written.entry
        report.written.extend(written.written)
        report.kept.extend(written.kept)
        report.bytes_written += written.bytes_written
        # Saved after every video so a killed run does not redo finished videos.
        atomic.write_json(index_path(out_dir), index)
    for video in sharded:
        entry = index["videos"][video.stem]
        report.videos[video.stem] = {k: entry[k] for k in ("dataset", "video", "split", "fps", "n_frames")}
        report.rows.extend({**row, "dataset": entry["dataset"], "video": entry["video"], "split": entry["split"]}
                           for row in entry["samples"])
    _remove_unexpected(out_dir, expected, report)
    index["videos"] = {stem: e for stem, e in index["videos"].items() if stem in report.videos}
    live = {str(p) for v in inputs for p in v.input_files}
    index["input_hashes"] = {p: h for p, h in index["input_hashes"].items() if p in live}
    atomic.write_json(index_path(out_dir), index)
    report.rows.sort(key=lambda r: (r["shard"], r["key"]))
    return report


def _distinct_inputs(videos: Iterable[VideoInputs | Skip], report: ShardReport) -> list[VideoInputs]:
    """The videos to shard; a :class:`Skip` goes to the report; a video twice, or two videos with one
    sanitised name, is a ValueError."""
    inputs: list[VideoInputs] = []
    seen: dict[str, VideoInputs] = {}
    for item in videos:
        if isinstance(item, Skip):
            report.skipped.append(item)
            continue
        other = seen.get(item.stem)
        if other is not None:
            if (other.dataset, other.video) == (item.dataset, item.video):
                raise ValueError(f"video {item.dataset}/{item.video} passed twice (splits {other.split!r} and "
                                 f"{item.split!r}); a video belongs to exactly one split")
            raise ValueError(f"videos {other.dataset}/{other.video} and {item.dataset}/{item.video} both sanitise "
                             f"to {item.stem!r}; rename one")
        seen[item.stem] = item
        inputs.append(item)
    return inputs


@dataclass(frozen=True, eq=False)
class VideoJob:
    """One video to encode into its tars (picklable: it runs on a worker process when ``workers`` > 1)."""

    video: VideoInputs
    out_dir: Path
    tars: list[str]
    chunks: list[list[tuple[int, int]]]
    seed: int
    fingerprint: str


@dataclass(frozen=True)
class VideoWritten:
    entry: dict[str, Any]  # the video's index entry
    written: list[Path]  # tars created or replaced
    kept: list[Path]  # tars whose new bytes equal the file on disk
    bytes_written: int


def _run_jobs(jobs: list[VideoJob], workers: int) -> Iterable[VideoWritten]:
    """Each job's result, in job order, as it finishes. With ``workers`` > 1 the jobs run on spawned worker
    processes; an error in a worker (a :class:`ShardInputError`) is raised here as it would be in-process."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_write_video, jobs)
        return
    from pipeline.stage.executor import spawned_pool

    with spawned_pool(workers, len(jobs)) as pool:
        yield from pool.map(_write_video, jobs)


def _write_video(job: VideoJob) -> VideoWritten:
    """Encode one video's windows into its tars (a tar whose bytes did not change is kept)."""
    video = job.video
    data = video.load()
    stamps, rows, written, kept, size = {}, [], [], [], 0
    stored = StoredPngs((video.height, video.width), encode_png)
    for rel, chunk in zip(job.tars, job.chunks):
        members = (m for start, stop in chunk for m in encode_window(video, data, start, stop, job.seed, stored))
        replaced, stamps[rel] = _write_tar(job.out_dir / rel, members)
        (written if replaced else kept).append(job.out_dir / rel)
        size += stamps[rel]["size"] if replaced else 0
        for start, stop in chunk:
            source = choose_source_frame(video.n_frames, start, source_seed_material(
                job.seed, video.dataset, video.video, start), stop=stop)
            rows.append({"shard": rel, "key": sample_key(video.stem, start),
                         "frames": list(range(start, stop)), "source_frame": source})
    entry = {"dataset": video.dataset, "video": video.video, "split": video.split, "fps": video.fps,
             "n_frames": video.n_frames, "fingerprint": job.fingerprint, "tars": stamps, "samples": rows}
    return VideoWritten(entry, written, kept, size)


def _remove_unexpected(out_dir: Path, expected: set[str], report: ShardReport) -> None:
    """Tars of videos no longer listed, moved to another split, or with fewer windows now."""
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        for tar_path in sorted(folder.glob("*.tar")):
            if tar_path.relative_to(out_dir).as_posix() not in expected:
                tar_path.unlink()
                report.removed.append(tar_path)


# ----------------------------------------------------------------------------------------------- manifest

MANIFEST_SCHEMA = pa.schema([
    ("shard", pa.string()), ("key", pa.string()), ("dataset", pa.string()), ("video", pa.string()),
    ("split", pa.string()), ("frames", pa.list_(pa.int32())), ("source_frame", pa.int32()),
])


def write_manifest(report: ShardReport, parquet_path: Path, metrics_path: Path | None = None) -> dict[str, Any]:
    """Write the per-sample manifest (parquet, :data:`MANIFEST_SCHEMA`, one row per sample, sorted by shard and
    key) and, when ``metrics_path`` is given, the summary as JSON; both atomically. Returns the summary
    (:meth:`ShardReport.summary`): per split samples, videos, frames, hours.
    """
    columns = {name: [row[name] for row in report.rows] for name in MANIFEST_SCHEMA.names}
    table = pa.Table.from_pydict(columns, schema=MANIFEST_SCHEMA)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    atomic.write_bytes(Path(parquet_path), buffer.getvalue().to_pybytes())
    summary = report.summary()
    if metrics_path is not None:
        atomic.write_json(Path(metrics_path), summary)
    return summary

