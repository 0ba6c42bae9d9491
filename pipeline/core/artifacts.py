"""Where each stage puts its per-video outputs, in one place so stages and readers never disagree.

Layout under the data root (default ``data/``), one entry per (dataset, video)::

    frames/<dataset>/<video>/00000.png ...   RGB crops (H x W from params, default 256 x 192)
    frames/<dataset>/<video>/meta.json       source, fps, crop box, frame count, split, input hash, versions
    pose/<dataset>/<video>.parquet           BODY_25 keypoints: video, frame, joint, x, y, conf
    pose/<dataset>/<video>.mask.npz          MediaPipe person masks, uint8 (T, H, W) 0..255
    parsing/<dataset>/<video>/00000.png      uint8 ATR labels (18 classes), + meta.json (which parser ran)
    layout/<dataset>/<video>/00000.png       uint8 merged labels 0..5 in ``labels.REGIONS`` order, + meta.json
    flow/<dataset>/<video>.npz               flow t -> t-1 (float16, T x 2 x H x W; frame 0 is zero), valid mask
    background/<dataset>/<video>.png         background plate (RGB)

Every per-video stage also writes ``<stage>/<dataset>/<video>.stamp.json`` (see ``pipeline/stage/per_video.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


# The arrays of a flow file (``VideoArtifacts.flow_file``, an npz): named once here for its writer
# (pipeline/flow/select.py) and its reader (pipeline/shards/writer.py). FLOW_FIELD float16 (T, 2, H, W) flow
# t -> t-1 in pixels; VALID_FIELD uint8 (T, 1, H, W) forward-backward mask; BACKEND_FIELD 0-d str, who computed it.
FLOW_FIELD, VALID_FIELD, BACKEND_FIELD = "flow", "valid", "backend"
FLOW_FILE_FIELDS = (FLOW_FIELD, VALID_FIELD, BACKEND_FIELD)


def frame_name(index: int) -> str:
    """File name of frame ``index``; zero-padded so lexical order is temporal order."""
    return f"{index:05d}.png"


@dataclass(frozen=True)
class VideoArtifacts:
    root: Path
    dataset: str
    video: str

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames" / self.dataset / self.video

    @property
    def frames_meta(self) -> Path:
        return self.frames_dir / "meta.json"

    @property
    def pose_table(self) -> Path:
        return self.root / "pose" / self.dataset / f"{self.video}.parquet"

    @property
    def person_masks(self) -> Path:
        return self.root / "pose" / self.dataset / f"{self.video}.mask.npz"

    @property
    def parsing_dir(self) -> Path:
        return self.root / "parsing" / self.dataset / self.video

    @property
    def layout_dir(self) -> Path:
        return self.root / "layout" / self.dataset / self.video

    @property
    def flow_file(self) -> Path:
        return self.root / "flow" / self.dataset / f"{self.video}.npz"

    @property
    def background_file(self) -> Path:
        return self.root / "background" / self.dataset / f"{self.video}.png"
