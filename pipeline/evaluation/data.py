"""Test videos of a dataset and the pairs the evaluation generates.

A test video is read from the per-video artefacts (``pipeline.artifacts``: frames, pose, layout, flow,
background; completeness checked by ``pipeline.shards.collect_video``), so every frame of the video is
available for sequential generation with temporal state (the shards hold 3-frame windows only).

Pairs (paper 4.2):

* **self** - the paper's protocol: driving = the last ``frames_per_video`` frames of a test video, source = a
  *forward* frame of the same video (``pipeline.windows.choose_source_frame``: uniformly among the frames before
  the evaluated clip, seeded by ``evaluate.seed``), so the driving frames are the ground truth.
* **cross** - cross-identity: the same driving clip, the source frame of the NEXT test video (in sorted order)
  as the source; there is no ground truth, so only FID and TCM are measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import RemotError
from pipeline.shards import LoadedVideo, VideoInputs, collect_video, find_videos
from pipeline.windows import choose_source_frame, source_seed_material


@dataclass
class TestVideo:
    """One test video, loaded whole. Arrays as in ``pipeline.shards.LoadedVideo``."""

    inputs: VideoInputs
    loaded: LoadedVideo
    start: int            # first evaluated frame
    stop: int             # one past the last evaluated frame
    source_frame: int     # the forward frame used as this video's source image

    @property
    def name(self) -> str:
        return self.inputs.video

    @property
    def clip(self) -> slice:
        return slice(self.start, self.stop)

    def source(self) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 (H, W, 3) RGB source frame, uint8 (H, W) its layout labels)."""
        return self.loaded.frames[self.source_frame], self.loaded.layouts[self.source_frame]

    def real_flow(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The flow stage's t -> t-1 flow of the evaluated clip (frames start+1 .. stop-1), as ``tcm`` takes it:
        (float32 (H, W, 2) list, float32 (H, W) validity list)."""
        flows = [self.loaded.flow[t].astype(np.float32).transpose(1, 2, 0) for t in range(self.start + 1, self.stop)]
        valid = [self.loaded.valid[t, 0].astype(np.float32) for t in range(self.start + 1, self.stop)]
        return flows, valid


@dataclass
class Pair:
    """One generation job: ``source`` video's source frame driven by ``driving``'s clip."""

    kind: str             # "self" | "cross"
    driving: TestVideo
    source: TestVideo


def load_test_videos(data_root: Path, dataset: str, frames_per_video: int, seed: int) -> tuple[list[TestVideo],
                                                                                               dict[str, str]]:
    """Every complete test-split video of ``dataset`` (sorted), and ``{video: reason}`` for those skipped."""
    videos, skipped = [], {}
    for art in find_videos(Path(data_root)):
        if art.dataset != dataset:
            continue
        inputs = collect_video(art)
        if not isinstance(inputs, VideoInputs):
            skipped[art.video] = inputs.reason
            continue
        if inputs.split != "test":
            continue
        if inputs.n_frames < 2:
            skipped[art.video] = f"{inputs.n_frames} frame(s); TCM needs at least 2"
            continue
        length = min(frames_per_video, inputs.n_frames)
        start = inputs.n_frames - length
        source = choose_source_frame(inputs.n_frames, start, source_seed_material(seed, dataset, art.video, start),
                                     stop=inputs.n_frames)
        videos.append(TestVideo(inputs, inputs.load(), start, inputs.n_frames, source))
    return videos, skipped


def make_pairs(videos: list[TestVideo], cross_identity: bool) -> list[Pair]:
    """Self pairs for every video; cross pairs (source = next video) when asked and there are >= 2 videos."""
    pairs = [Pair("self", v, v) for v in videos]
    if cross_identity and len(videos) >= 2:
        pairs += [Pair("cross", v, videos[(i + 1) % len(videos)]) for i, v in enumerate(videos)]
    return pairs


def require_videos(videos: list[TestVideo], dataset: str, skipped: dict[str, str]) -> None:
    if not videos:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())) or "no video has split 'test'"
        raise RemotError(f"dataset {dataset!r} has no complete test video to evaluate ({why}): raise the dataset's "
                         "test_ratio or run `dvc repro` up to the flow stage")
