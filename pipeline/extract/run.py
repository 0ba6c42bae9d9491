"""The extraction stage's library: every registered video -> fixed person crop -> resized PNG frames + meta.

Incremental: a video whose output records the same input hash and the same extraction parameters is kept as
it is, so adding one video to a dataset processes only that video, and changing an ``extract`` parameter
reprocesses all. One bad video is reported and skipped; the stage fails only when every video fails.
"""
from __future__ import annotations

import hashlib
import json
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from pipeline.core import atomic
from pipeline.core.artifacts import VideoArtifacts, frame_name
from pipeline.core.image_limits import DEFAULT_MAX_PIXELS
from pipeline.core.png import encode_png
from pipeline.core.hashing import update_from_file
from pipeline.core.params import ExtractParams, section_fingerprint
from pipeline.core.runlog import write_log
from pipeline.datasets.base import VideoEntry, list_frames
from pipeline.extract.crop import apply_crop, crop_box_for_person
from pipeline.extract.decode import DecodeError, iter_frames, source_info
from pipeline.extract.decode_once import DecodedOnce
from pipeline.extract.person_box import DETECTOR_NAME, clip_person_box
from pipeline.stage.per_video import SkipVideo

# 2: meta.json holds no absolute path, mtime or patch-level version (byte-identical across clones); the
# input's (size, mtime) moved to an untracked cache beside the outputs.
META_VERSION = 2
STAT_CACHE = Path(".cache") / "extract"  # under data_root; not a DVC output


@dataclass
class ExtractReport:
    processed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # skipped now, previous outputs kept
    held: list[str] = field(default_factory=list)  # not registered now, but the scan had gaps: outputs kept

    def as_dict(self) -> dict:
        """The tracked report (the same whatever was on disk before); run history is in ``run_log``."""
        return {"videos": sorted(self.processed + self.reused), "skipped": self.skipped,
                "counts": {"ok": len(self.processed) + len(self.reused), "skipped": len(self.skipped)}}

    def run_log(self) -> dict:
        return {"processed": self.processed, "reused": self.reused, "removed": self.removed, "kept": self.kept,
                "held": self.held, "counts": {"processed": len(self.processed), "reused": len(self.reused),
                           "skipped": len(self.skipped)}}


def input_fingerprint(video: VideoEntry) -> dict:
    """Size and mtime of the input (cheap), used to avoid re-hashing unchanged inputs."""
    files = list_frames(video.source) if video.is_frame_folder else [video.source]
    return {"files": len(files), "bytes": sum(f.stat().st_size for f in files),
            "mtime_ns": max((f.stat().st_mtime_ns for f in files), default=0)}


def input_sha256(video: VideoEntry) -> str:
    digest = hashlib.sha256()
    files = list_frames(video.source) if video.is_frame_folder else [video.source]
    for path in files:
        digest.update(path.name.encode())
        update_from_file(digest, path)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import mediapipe

    # Python as major.minor: the pins fix the libraries, while the patch level varies between machines.
    return {"python": ".".join(platform.python_version_tuple()[:2]), "opencv": cv2.__version__,
            "numpy": np.__version__, "mediapipe": mediapipe.__version__}


def stat_cache_path(data_root: Path, video: VideoEntry) -> Path:
    return Path(data_root) / STAT_CACHE / video.dataset / f"{video.video}.json"


def source_label(source: Path, project_root: Path) -> str:
    """The input as recorded in meta.json: relative to the project when inside it (the same in every clone);
    an input outside the project keeps its absolute path, which is then part of what identifies it."""
    try:
        return Path(source).resolve().relative_to(Path(project_root).resolve()).as_posix()
    except ValueError:
        return str(source)


def _up_to_date(video: VideoEntry, meta_path: Path, params_hash: str, cache_path: Path) -> Optional[dict]:
    """The existing output's meta when it was made from the same input bytes with the same parameters.

    The input's (size, mtime) from the untracked cache saves re-hashing an untouched input; without a matching
    cache entry (a fresh clone, a touched file) the input is hashed. meta.json is never rewritten here.
    """
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("params_hash") != params_hash or meta.get("meta_version") != META_VERSION:
        return None
    if len(list_frames(meta_path.parent)) != meta.get("n_frames"):
        return None
    cheap = input_fingerprint(video)
    try:
        cached = json.loads(cache_path.read_text())
    except (OSError, json.JSONDecodeError):
        cached = {}
    if cached.get("input_stat") == cheap and cached.get("input_sha256") == meta.get("input_sha256"):
        return meta
    if input_sha256(video) == meta.get("input_sha256"):
        atomic.write_json(cache_path, {"input_stat": cheap, "input_sha256": meta["input_sha256"]})
        return meta
    return None


def extract_video(video: VideoEntry, out: VideoArtifacts, cfg: ExtractParams, params_hash: str,
                  min_frames: int, project_root: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Decode, find the person, crop and write one video atomically; returns its meta record. A video or image
    declaring more than ``max_pixels`` per frame (``limits.max_pixels``) is skipped before it is decoded."""
    try:
        info = source_info(video.source, video.is_frame_folder, max_pixels)
        clip = DecodedOnce(lambda: iter_frames(video.source, video.is_frame_folder, info.native_fps, cfg.fps,
                                               cfg.max_frames, max_pixels))
        # Pass 1: sample frames for the detector without holding the whole clip in memory (unless it is small
        # enough for DecodedOnce to keep it).
        n_total = sum(1 for _ in clip.walk())
        if n_total == 0:
            raise SkipVideo(f"{video.source}: no frames could be decoded (empty, truncated or corrupt file)")
        if n_total < min_frames:
            raise SkipVideo(f"{video.source}: only {n_total} frames after resampling; at least {min_frames} are needed "
                            "(extract.min_frames, at least one training window)")
        wanted = set(np.linspace(0, n_total - 1, min(cfg.detect_frames, n_total)).round().astype(int).tolist())
        samples = [f for k, (_, f) in enumerate(clip.walk()) if k in wanted]
        height, width = samples[0].shape[:2]
        person, n_found = clip_person_box(samples)
        if person is None:
            raise SkipVideo(f"{video.source}: no person found on any of {len(samples)} sampled frames "
                            "(is the person fully visible? a video of several people or none cannot be used)")
        box = crop_box_for_person(person, width, height, cfg.height, cfg.width, cfg.margin)
        # Pass 2: crop and write.
        with atomic.replace_dir(out.frames_dir) as tmp:
            source_indices = []
            for k, (index, frame) in enumerate(clip.walk()):
                if frame.shape[:2] != (height, width):
                    raise SkipVideo(f"{video.source}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the first was "
                                    f"{width}x{height}: a clip must keep one size")
                crop = apply_crop(frame, box, cfg.height, cfg.width, cfg.pad)
                # five stages decode every frame: the PNG encoder whose files decode fastest (pipeline/core/png.py)
                (tmp / frame_name(k)).write_bytes(encode_png(crop))
                source_indices.append(index)
            meta = {
                "meta_version": META_VERSION, "dataset": video.dataset, "video": video.video,
                "split": video.split, "source": source_label(video.source, project_root or out.root.parent),
                "source_is_frame_folder": video.is_frame_folder, "input_sha256": input_sha256(video),
                "native_fps": info.native_fps, "fps_assumed": info.fps_assumed,
                "fps": min(cfg.fps, info.native_fps) if cfg.fps else info.native_fps,
                "n_frames": len(source_indices), "source_frames": source_indices,
                "source_size": [height, width], "size": [cfg.height, cfg.width],
                "crop_box": box.as_dict(), "person_box": [round(v, 2) for v in person],
                "detector": DETECTOR_NAME, "detected_on": f"{n_found}/{len(samples)} sampled frames",
                "params_hash": params_hash, "versions": library_versions(),
            }
            atomic.write_json(tmp / "meta.json", meta)
        atomic.write_json(stat_cache_path(out.root, video),
                          {"input_stat": input_fingerprint(video), "input_sha256": meta["input_sha256"]})
        return meta
    except DecodeError as exc:
        raise SkipVideo(str(exc)) from None


class SourceInsideOutputs(RuntimeError):
    """A registered video lives inside a folder the pipeline writes (it would be overwritten or removed)."""


def check_sources_outside_outputs(videos: list[VideoEntry], data_root: Path) -> None:
    """Refuse to run when a video's file or frame folder is inside data_root's stage outputs (only
    ``data_root/raw`` holds inputs there): the stage would overwrite or remove the raw inputs themselves."""
    root = Path(data_root).resolve()
    for video in videos:
        source = Path(video.source).resolve()
        if source.is_relative_to(root) and not source.is_relative_to(root / "raw"):
            raise SourceInsideOutputs(f"{video.source} (dataset {video.dataset!r}) is inside data_root {root}, "
                                      "whose folders the stages overwrite and remove: move the dataset outside it "
                                      f"(or under {root / 'raw'}) and update datasets.{video.dataset}.path")


def run_extraction(dataset: str, videos: list[VideoEntry], data_root: Path, cfg: ExtractParams,
                   min_frames: int, report_path: Path, engine=None, project_root: Path | None = None,
                   unreadable: Sequence[str] = (), max_pixels: int = DEFAULT_MAX_PIXELS) -> ExtractReport:
    """Extract every video of ``dataset``; write ``report_path``; raise RuntimeError only if none succeeded.

    ``engine``: the ``preprocess`` params section (see ``pipeline/stage/executor.py``); in-process when None.
    ``project_root``: sources inside it are recorded relative to it (default: ``data_root``'s parent).
    ``unreadable``: paths the register scan could not read (``read_unreadable``); while there are any, no
    video's outputs are removed. ``max_pixels``: ``limits.max_pixels`` (see :func:`extract_video`).
    """
    project_root = Path(project_root) if project_root is not None else Path(data_root).parent
    from pipeline.stage.executor import run_all

    params_hash = section_fingerprint(cfg) + f"-min{min_frames}"
    report = ExtractReport()
    dataset_dir = Path(data_root) / "frames" / dataset
    atomic.remove_stale_temps(dataset_dir)
    check_sources_outside_outputs(videos, Path(data_root))
    todo = []
    for video in videos:
        key = f"{video.dataset}/{video.video}"
        out = VideoArtifacts(Path(data_root), video.dataset, video.video)
        try:
            meta = _up_to_date(video, out.frames_meta, params_hash, stat_cache_path(data_root, video))
        except OSError as exc:
            report.skipped[key] = f"{type(exc).__name__}: {exc}"
            continue
        if meta is None:
            todo.append((video, out, cfg, params_hash, min_frames, project_root, max_pixels))
            continue
        if meta.get("split") != video.split:  # a re-split moves no pixels: update the record only
            atomic.write_json(out.frames_meta, {**meta, "split": video.split})
        report.reused.append(key)
    outcomes = run_all(extract_video, todo, engine, name=f"extract-{dataset}")
    for (video, *_), outcome in zip(todo, outcomes):
        key = f"{video.dataset}/{video.video}"
        if outcome.skipped is not None:
            # Sources inside the project are named relative to it, as in meta.json (the same in every clone).
            reason = outcome.skipped.replace(str(video.source), source_label(video.source, project_root))
            report.skipped[key] = reason
            print(f"extract: skipped {key}: {reason}")
        else:
            report.processed.append(key)
    # Only videos that left the registry lose their outputs. A skip or an error (an unreadable input, a transient
    # EIO) keeps the last good extraction: downstream stages stay consistent with it, and nothing the user made
    # days ago disappears because of a hiccup now. A scan that could not read part of the dataset did not see
    # those videos leave (a folder made unreadable is not a video deleted), so then nothing is removed at all;
    # the downstream stages remove only what extraction removed.
    registered = {v.video for v in videos}
    if dataset_dir.is_dir():
        for video_dir in sorted(p for p in dataset_dir.iterdir() if p.is_dir()):
            if video_dir.name in registered or video_dir.name.startswith(atomic.TEMP_PREFIX):
                continue
            if unreadable:
                report.held.append(f"{dataset}/{video_dir.name}")
            else:
                shutil.rmtree(video_dir)
                report.removed.append(f"{dataset}/{video_dir.name}")
    if report.held:
        print(f"extract: kept the outputs of {len(report.held)} video(s) no longer registered, because the scan of "
              f"{dataset} could not read {', '.join(unreadable[:3])}{' ...' if len(unreadable) > 3 else ''}; "
              "they are removed once a scan reads the whole dataset")
    for key in report.skipped:
        if (dataset_dir / key.split("/", 1)[1] / "meta.json").is_file():
            report.kept.append(key)
    atomic.write_json(report_path, report.as_dict())
    write_log(report_path, report.run_log())
    if videos and not report.processed and not report.reused:
        raise RuntimeError(f"every video failed extraction; reasons are in {report_path}")
    return report
