"""What every dataset adapter produces: a list of videos with their split, plus problems found on the way."""
from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import RemotError
from pipeline.core.hashing import text_hex

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
SPLITS = ("train", "val", "test")


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
    # Paths (relative to root) the scan could not read: what they hold is unknown, so a video registered from
    # there before may still exist. The stages remove nothing while a scan has any (pipeline/extract/run.py).
    unreadable: list[str] = field(default_factory=list)

    def cannot_read(self, path: Path, exc: BaseException, where: str = "") -> None:
        """Record ``path`` as unreadable: one reported problem, and a gap that keeps every output."""
        try:
            relative = Path(path).relative_to(self.root).as_posix()
        except ValueError:
            relative = str(path)
        self.unreadable.append(relative)
        self.problems.append(f"{where}{path}: cannot be read ({entry_error(exc)}); the scan is incomplete, so no "
                             "video's outputs are removed until it can be read (fix its permissions)")

    def skip_entry(self, path: Path, exc: BaseException) -> None:
        """One entry that raised one of ``ENTRY_ERRORS``: a gap when unreadable, else a bad entry skipped."""
        if is_unreadable(exc):
            self.cannot_read(path, exc)
        else:
            self.problems.append(f"{path}: cannot be read ({entry_error(exc)}); skipped")

    def split_counts(self) -> dict[str, int]:
        counts = {s: 0 for s in SPLITS}
        for v in self.videos:
            counts[v.split] = counts.get(v.split, 0) + 1
        return counts

    def frame_count(self) -> int:
        return sum(len(list_frames(v.source)) for v in self.videos if v.is_frame_folder)


MAX_ID = 96  # ids become file names (plus suffixes) and WebDataset keys: far below the 255-byte name limit


def name_hash(relative: str, n: int = 10) -> str:
    return text_hex(relative, n)


def safe_id(relative: str) -> str:
    """A file-name-safe, dot-free id from a relative path (WebDataset keys must not contain dots).

    ASCII names map as they always did (``Bob/Warm Up`` -> ``bob__warm_up``). A name with characters that have no
    ASCII spelling (``日本``) keeps its ASCII part and gets a stable hash of the whole name appended, so two such
    names never collapse into one id (or into none); so does a name longer than ``MAX_ID``.
    """
    text = re.sub(r"[^a-z0-9_-]+", "_", relative.lower().replace("/", "__")).strip("_")
    if not relative.isascii() or not text or len(text) > MAX_ID:
        text = f"{text[:MAX_ID - 11] or 'video'}_{name_hash(relative)}".lstrip("_")
    return text


def unique_ids(candidates: list[tuple[str, str]], problems: list[str]) -> list[str]:
    """Distinct ids for ``(id, relative path)`` pairs, in order: the first keeps its id, a later duplicate gets
    ``<id>_<hash of its relative path>`` and one reported problem naming both (neither input is lost).

    A made-up id is itself checked: it must not be an id already given out nor one that another candidate makes
    of its own name (a crafted ``a__1__1_<hash of 'A/1/1'>`` next to ``a/1/1`` and ``A/1/1``); when it is, the
    hash is salted with a counter until it is free, so no two videos ever share an id whatever the names."""
    natural = {vid for vid, _ in candidates}
    taken: dict[str, str] = {}
    out = []
    for vid, relative in candidates:
        final = vid
        if vid in taken:
            salt = 0
            final = f"{vid[:MAX_ID - 11]}_{name_hash(relative)}"
            while final in taken or final in natural:
                salt += 1
                final = f"{vid[:MAX_ID - 11]}_{name_hash(f'{relative}#{salt}')}"
            problems.append(f"{relative}: its video id {vid!r} is also made by {taken[vid]}; kept as {final!r}")
        taken[final] = relative
        out.append(final)
    return out


def frames_outside_root(root: Path, folder: Path) -> str | None:
    """A problem when a frame of ``folder`` is a symlink resolving outside the dataset root, else None."""
    root_resolved = root.resolve()
    for frame in list_frames(folder):
        if frame.is_symlink() and not frame.resolve().is_relative_to(root_resolved):
            return (f"{frame}: frame symlink resolves to {frame.resolve()}, outside the dataset root "
                    f"{root_resolved}; video {folder} skipped")
    return None


# What one bad entry can raise while its path is looked at (a 300-character name, a NUL byte, a symlink loop,
# a permission error): caught per entry, reported as one problem, the scan goes on.
ENTRY_ERRORS = (OSError, ValueError, RuntimeError)


# Errors that say the entry itself is bad (a name too long, a loop, gone): the entry cannot be a video. Any other
# OSError (permission denied, an I/O error) says nothing about what the path holds.
BAD_NAME_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.EINVAL,
                             errno.EILSEQ})


def is_unreadable(exc: BaseException) -> bool:
    """True when ``exc`` leaves unknown what a path holds (permission, I/O), False for a bad entry."""
    return isinstance(exc, OSError) and exc.errno not in BAD_NAME_ERRNOS


def entry_error(exc: BaseException) -> str:
    """A short reason for one of ``ENTRY_ERRORS`` (an OSError's text repeats the possibly huge path)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {str(exc)[:160]}"


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
