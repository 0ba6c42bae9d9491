"""What every dataset adapter produces: a list of videos with their split, plus problems found on the way."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import RemotError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
SPLITS = ("train", "test")


class DatasetError(RemotError):
    """The dataset's layout is wrong in a way that makes the whole dataset unusable."""


class UnsafePath(DatasetError):
    """A path would leave the dataset root (``..``, an absolute path, or a symlink pointing out)."""


@dataclass(frozen=True)
class VideoEntry:
    """One input video: a video file or a folder of frames."""

    dataset: str
    video: str  # safe id: lowercase letters, digits, '_' and '-'; unique within the dataset
    source: Path
    is_frame_folder: bool
    split: str


@dataclass
class Scan:
    dataset: str
    kind: str
    root: Path
    videos: list[VideoEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def split_counts(self) -> dict[str, int]:
        counts = {s: 0 for s in SPLITS}
        for v in self.videos:
            counts[v.split] = counts.get(v.split, 0) + 1
        return counts

    def frame_count(self) -> int:
        return sum(len(list_frames(v.source)) for v in self.videos if v.is_frame_folder)


def safe_id(relative: str) -> str:
    """A file-name-safe, dot-free id from a relative path (WebDataset keys must not contain dots)."""
    text = re.sub(r"[^a-z0-9_-]+", "_", relative.lower().replace("/", "__")).strip("_")
    if not text:
        raise DatasetError(f"cannot make an id from {relative!r}")
    return text


def inside(root: Path, candidate: Path) -> Path:
    """Resolve ``candidate`` (relative to ``root``) and refuse it if it escapes ``root``."""
    root_resolved = root.resolve()
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root_resolved):
        raise UnsafePath(f"{candidate} resolves to {resolved}, outside the dataset root {root_resolved}; "
                         "dataset entries must stay inside the dataset folder")
    return resolved


def list_frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def is_frame_folder(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS
