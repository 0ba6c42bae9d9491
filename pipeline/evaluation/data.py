"""Test videos of a dataset and the pairs the evaluation generates.

A test video is read from the per-video artefacts (``pipeline.core.artifacts``: frames, pose, layout, flow,
background; completeness checked by ``pipeline.shards.writer.collect_video``), so every frame of the video is
available for sequential generation with temporal state (the shards hold 3-frame windows only).

Pairs (paper 4.2):

* **self** - the paper's protocol: driving = the last ``frames_per_video`` frames of a test video (null: the
  whole remainder, every frame after the first), source = a *forward* frame of the same video
  (``pipeline.shards.windows.choose_source_frame``: uniformly among the frames before the evaluated clip, seeded by
  ``evaluate.seed``), so the driving frames are the ground truth.
* **cross** - cross-identity: the same driving clip, with the source frame of the next test video (sorted order)
  that shows ANOTHER person (:func:`person_id`): iPER ids are ``<person>__<clothing>__<action>``, so the
  person is the first part; a SoloDance folder is one person. A ``folder`` dataset cannot say who is who: each
  video is taken as its own person (documented in README; name such videos so that this holds). A video with
  no other person in the test split gets no cross pair. There is no ground truth, so only FID and TCM.

Memory: only a video's evaluated clip is read (its frames, layouts and flow), one video at a time (a one-slot
cache, pairs ordered by driving video), and a source reads just its source frame and layout, so memory is
bounded by ``frames_per_video``, not by the split or the videos' lengths (the flow file is compressed, so it is
read whole and sliced: a transient of about 0.2 MB per frame at 256x192).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.core.artifacts import frame_name

from pipeline.core.errors import RemotError
from pipeline.shards.windows import choose_source_frame, source_seed_material
from pipeline.shards.writer import LoadedVideo, VideoInputs, collect_video, find_videos


_LOADED: dict[str, Any] = {"key": None, "video": None}  # the one video held in memory (see module doc)


@dataclass
class TestVideo:
    """One test video; the arrays of its evaluated clip (``pipeline.shards.writer.LoadedVideo``, index 0 = frame
    ``start``) are read on first use of ``loaded``."""

    inputs: VideoInputs
    start: int            # first evaluated frame
    stop: int             # one past the last evaluated frame
    source_frame: int     # the forward frame used as this video's source image
    person: str = ""      # who is in it (:func:`person_id`), for cross pairs

    @property
    def loaded(self) -> LoadedVideo:
        key = str(self.inputs.artifacts.frames_dir)
        if _LOADED["key"] != key:
            _LOADED.update(key=None, video=None)  # drop the previous video before reading the next
            _LOADED.update(key=key, video=self.inputs.load(self.start, self.stop))
        return _LOADED["video"]

    @property
    def name(self) -> str:
        return self.inputs.video

    @property
    def clip(self) -> slice:
        return slice(self.start, self.stop)

    def source(self) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 (H, W, 3) RGB source frame, uint8 (H, W) its layout labels), read alone from disk."""
        art, name = self.inputs.artifacts, frame_name(self.source_frame)
        frame = cv2.imread(str(art.frames_dir / name), cv2.IMREAD_COLOR)
        layout = cv2.imread(str(art.layout_dir / name), cv2.IMREAD_UNCHANGED)
        if frame is None or layout is None:
            raise RemotError(f"{art.frames_dir / name} or {art.layout_dir / name} is unreadable: rerun "
                             "`dvc repro` up to the layout stage")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), layout

    def real_flow(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The flow stage's t -> t-1 flow of the evaluated clip (frames start+1 .. stop-1), as ``tcm`` takes it:
        (float32 (H, W, 2) list, float32 (H, W) validity list)."""
        n = self.stop - self.start
        flows = [self.loaded.flow[t].astype(np.float32).transpose(1, 2, 0) for t in range(1, n)]
        valid = [self.loaded.valid[t, 0].astype(np.float32) for t in range(1, n)]
        return flows, valid


@dataclass
class Pair:
    """One generation job: ``source`` video's source frame driven by ``driving``'s clip."""

    kind: str             # "self" | "cross"
    driving: TestVideo
    source: TestVideo


def release_loaded_video() -> None:
    """Drop the video held in memory (after a dataset's evaluation)."""
    _LOADED.update(key=None, video=None)


def person_id(kind: str, video: str) -> str:
    """Who a video shows: iPER ``<person>__<clothing>__<action>`` -> ``<person>``; SoloDance and folder
    datasets: the video itself (a SoloDance folder is one person; a folder dataset cannot tell)."""
    return video.split("__", 1)[0] if kind == "iper" else video


def load_test_videos(data_root: Path, dataset: str, frames_per_video: int | None, seed: int,
                     kind: str = "folder", split: str = "test") -> tuple[list[TestVideo], dict[str, str]]:
    """Every complete video of ``dataset``'s ``split`` (test, or val to compare recipes), sorted, and
    ``{video: reason}`` for those skipped.

    ``frames_per_video``: the evaluated clip is the video's last N frames; None = every frame after the first.
    Nothing is loaded here beyond each video's metadata."""
    videos, skipped = [], {}
    for art in find_videos(Path(data_root)):
        if art.dataset != dataset:
            continue
        inputs = collect_video(art)
        if not isinstance(inputs, VideoInputs):
            skipped[art.video] = inputs.reason
            continue
        if inputs.split != split:
            continue
        if inputs.n_frames < 2:
            skipped[art.video] = f"{inputs.n_frames} frame(s); TCM needs at least 2"
            continue
        length = inputs.n_frames - 1 if frames_per_video is None else min(frames_per_video, inputs.n_frames)
        start = inputs.n_frames - length
        source = choose_source_frame(inputs.n_frames, start, source_seed_material(seed, dataset, art.video, start),
                                     stop=inputs.n_frames)
        videos.append(TestVideo(inputs, start, inputs.n_frames, source, person_id(kind, art.video)))
    return videos, skipped


def make_pairs(videos: list[TestVideo], cross_identity: bool) -> list[Pair]:
    """Per video (sorted), its self pair then, when asked, its cross pair: the source of the next video in
    sorted (cyclic) order that shows another person; none when every other test video shows the same person.
    Ordered by driving video so each video is loaded once."""
    pairs = []
    for i, video in enumerate(videos):
        pairs.append(Pair("self", video, video))
        if not cross_identity:
            continue
        others = [videos[(i + k) % len(videos)] for k in range(1, len(videos))]
        source = next((o for o in others if o.person != video.person), None)
        if source is not None:
            pairs.append(Pair("cross", video, source))
    return pairs


def require_videos(videos: list[TestVideo], dataset: str, skipped: dict[str, str], split: str = "test") -> None:
    if not videos:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) or f"no video has split {split!r}"
        ratio = "val_ratio" if split == "val" else "test_ratio"
        raise RemotError(f"dataset {dataset!r} has no complete {split} video to evaluate ({why}): raise the "
                         f"dataset's {ratio} or run `dvc repro` up to the flow stage")
