"""The loop every per-video stage after extraction shares: incremental, resumable, one bad video never fatal.

A stage is a function ``process(video: VideoArtifacts, frames_meta: dict) -> dict`` that writes that video's
outputs atomically and returns a small record for the report (or raises :class:`SkipVideo` with a reason).
After it returns, a stamp ``data/<stage>/<dataset>/<video>.stamp.json`` records what the outputs were made
from (the stage's parameters and the upstream stamps). A later run keeps a video whose stamp still matches,
redoes one whose inputs or parameters changed, and removes outputs only of videos that disappeared upstream
(never of a skipped or failed one).
A run killed mid-way leaves at most a video without a stamp, which the next run redoes.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from pipeline.core import atomic
from pipeline.core.artifacts import VideoArtifacts, frame_name
from pipeline.core.hashing import fingerprint
from pipeline.core.errors import SkipVideo  # noqa: F401 (re-exported: stages raise it from here)
from pipeline.core.runlog import write_log


@dataclass
class StageReport:
    stage: str
    dataset: str
    processed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    videos: dict[str, dict] = field(default_factory=dict)
    # Wall times (the engine's work, and per processed video) go to the untracked log (pipeline/core/runlog.py), not
    # into the report or the stamps: DVC hashes those, and they must not change from one run to the next.
    seconds: float = 0.0
    video_seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The tracked report: what the outputs are, not how this run got there. Which videos were processed
        or reused depends on what was on disk before, so it goes to the run log (``run_log``) with the times."""
        return {"stage": self.stage, "dataset": self.dataset, "videos": self.videos, "skipped": self.skipped,
                "counts": {"ok": len(self.videos), "skipped": len(self.skipped)}}

    def run_log(self) -> dict:
        return {"stage": self.stage, "dataset": self.dataset, "seconds": self.seconds, "processed": self.processed,
                "reused": self.reused, "removed": self.removed, "video_seconds": self.video_seconds,
                "counts": {"processed": len(self.processed), "reused": len(self.reused),
                           "skipped": len(self.skipped)}}


def stamp_path(data_root: Path, stage: str, dataset: str, video: str) -> Path:
    return Path(data_root) / stage / dataset / f"{video}.stamp.json"


def pending_path(data_root: Path, stage: str, dataset: str, video: str) -> Path:
    """Marks a video whose stamp was dropped for a redo: its outputs (if any) are no longer vouched for, but they
    are still the stage's, so they leave with the video if it vanishes upstream before the redo succeeds."""
    return Path(data_root) / stage / dataset / f"{video}.pending.json"


def read_stamp(data_root: Path, stage: str, dataset: str, video: str) -> dict | None:
    path = stamp_path(data_root, stage, dataset, video)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def frames_identity(meta: dict) -> str:
    """What identifies a video's extracted frames: its input hash and the extraction parameters."""
    return f"{meta['input_sha256']}:{meta['params_hash']}"


def upstream_stamp(data_root: Path, stage: str, video: VideoArtifacts) -> str:
    """The digest of an upstream stage's stamp for this video, or SkipVideo naming what to run."""
    stamp = read_stamp(data_root, stage, video.dataset, video.video)
    if stamp is None:
        raise SkipVideo(f"no {stage} output for this video (it was skipped there, see "
                        f"reports/{stage}/{video.dataset}.json, or run `dvc repro {stage}@{video.dataset}`)")
    return stamp["digest"]


def iter_frames_on_disk(video: VideoArtifacts, n_frames: int) -> Iterator[np.ndarray]:
    """The extracted RGB frames one at a time (a stage that works frame by frame keeps one in memory)."""
    for k in range(n_frames):
        image = cv2.imread(str(video.frames_dir / frame_name(k)), cv2.IMREAD_COLOR)
        if image is None:
            raise SkipVideo(f"{video.frames_dir / frame_name(k)} is missing or unreadable; re-run extraction")
        yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_frames(video: VideoArtifacts, n_frames: int) -> list[np.ndarray]:
    return list(iter_frames_on_disk(video, n_frames))


def run_video_stage(stage: str, dataset: str, data_root: Path, stage_key: str,
                    upstream: Callable[[VideoArtifacts, dict], list[str]],
                    process: Callable[[VideoArtifacts, dict], dict],
                    outputs: Callable[[VideoArtifacts], list[Path]], report_path: Path,
                    engine=None) -> StageReport:
    """Run ``process`` over every extracted video of ``dataset``.

    ``stage_key``: fingerprint of the stage's own parameters and code version. ``upstream(video, meta)``
    returns the upstream identities the outputs depend on (raising SkipVideo when one is missing).
    ``outputs(video)`` lists the files/folders the stage writes for a video (removed with the video).
    ``engine``: the ``preprocess`` params section (in-process when None); ``process`` must then be picklable.
    Raises RuntimeError when there were videos and none went through.
    """
    from pipeline.stage.executor import run_all

    data_root = Path(data_root)
    report = StageReport(stage, dataset)
    stage_dir = data_root / stage / dataset
    atomic.remove_stale_temps(stage_dir)
    frames_dir = data_root / "frames" / dataset
    names = sorted(p.name for p in frames_dir.iterdir() if (p / "meta.json").is_file()) if frames_dir.is_dir() else []
    todo: list[tuple[VideoArtifacts, dict, str]] = []
    for name in names:  # cheap checks here; the work itself goes to the engine
        video = VideoArtifacts(data_root, dataset, name)
        key = f"{dataset}/{name}"
        try:
            meta = json.loads(video.frames_meta.read_text())
            sources = [frames_identity(meta), *upstream(video, meta)]
        except (SkipVideo, OSError, ValueError, KeyError) as exc:
            report.skipped[key] = str(exc) if isinstance(exc, SkipVideo) else f"{type(exc).__name__}: {exc}"
            continue
        digest = fingerprint([stage_key, sources], 24)
        old = read_stamp(data_root, stage, dataset, name)
        if old and old.get("digest") == digest and all(p.exists() for p in outputs(video)):
            report.reused.append(key)
            report.videos[key] = {k: v for k, v in old.get("info", {}).items() if k != "seconds"}
            continue
        if old is not None or any(p.exists() for p in outputs(video)):
            atomic.write_json(pending_path(data_root, stage, dataset, name), {"previous": old})
        stamp_path(data_root, stage, dataset, name).unlink(missing_ok=True)
        todo.append((video, meta, digest))

    def record(index: int, outcome) -> None:  # as each video finishes: a later kill keeps its stamp
        video, _, digest = todo[index]
        key = f"{dataset}/{video.video}"
        if outcome.skipped is not None:
            report.skipped[key] = outcome.skipped
            return
        info = {k: v for k, v in outcome.info.items() if k != "seconds"}
        report.video_seconds[key] = outcome.info.get("seconds")
        atomic.write_json(stamp_path(data_root, stage, dataset, video.video), {"digest": digest, "info": info})
        pending_path(data_root, stage, dataset, video.video).unlink(missing_ok=True)
        report.processed.append(key)
        report.videos[key] = info

    started = time.perf_counter()
    run_all(process, [(video, meta) for video, meta, _ in todo], engine, name=f"{stage}-{dataset}", on_done=record)
    report.seconds = round(time.perf_counter() - started, 3)
    for key, reason in report.skipped.items():
        print(f"{stage}: skipped {key}: {reason}")
    # Only videos that vanished upstream (left the registry, so extraction removed their frames) lose their
    # outputs. A skipped or failed video keeps them: its stamp was already dropped when its work started, so the
    # next stage sees no stamp and skips it rather than consuming stale outputs, and the next run redoes it.
    known = set()
    for suffix in (".stamp.json", ".pending.json"):
        known |= {p.name[: -len(suffix)] for p in stage_dir.glob("*" + suffix)} if stage_dir.is_dir() else set()
    for name in sorted(known - set(names)):
        outs = [p for p in outputs(VideoArtifacts(data_root, dataset, name)) if p.exists()]
        for path in outs:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        stamp_path(data_root, stage, dataset, name).unlink(missing_ok=True)
        pending_path(data_root, stage, dataset, name).unlink(missing_ok=True)
        report.removed.append(f"{dataset}/{name}")
    atomic.write_json(report_path, report.as_dict())
    write_log(report_path, report.run_log())
    if names and not report.processed and not report.reused:
        raise RuntimeError(f"{stage}: every video of {dataset} failed; reasons are in {report_path}")
    return report
