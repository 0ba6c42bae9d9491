"""Reading and writing mp4 videos with OpenCV, atomically: a reader sees no file or a complete one.

Frames are RGB uint8 (H, W, 3) everywhere in the pipeline; OpenCV wants BGR, so the conversion happens here.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from pipeline.core.atomic import TEMP_PREFIX, set_mode_like
from pipeline.core.errors import RemotError

FOURCC = "mp4v"  # MPEG-4 Part 2: the encoder every opencv-python wheel ships (H.264 needs an external codec)


class VideoWriteError(RemotError):
    """OpenCV could not write the video (no encoder for the container, disk full, ...)."""


def write_mp4(path: Path | str, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write ``frames`` (T >= 1 RGB uint8 (H, W, 3), all one size) to ``path`` as an mp4 at ``fps``.

    Atomic: the video is encoded into a temporary sibling (``.tmp-<name>-XXXX.mp4``; OpenCV picks the
    container from the extension) and ``os.replace``d onto ``path`` only after it was written completely and
    reads back with T frames; on any error the temporary is removed and ``path`` is left as it was.
    Returns ``path``.
    """
    path = Path(path)
    if not frames:
        raise VideoWriteError(f"{path}: no frames to write")
    height, width = frames[0].shape[:2]
    for index, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
            raise ValueError(f"{path}: frame {index} is {frame.dtype} {frame.shape}, expected uint8 "
                             f"({height}, {width}, 3) like frame 0")
    if not fps or fps <= 0:
        raise ValueError(f"{path}: fps must be > 0, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.stem}-", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC), float(fps), (width, height))
        if not writer.isOpened():
            raise VideoWriteError(f"{path}: OpenCV has no {FOURCC!r} mp4 encoder here (cv2 {cv2.__version__})")
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        written = count_frames(tmp)
        if written != len(frames):
            raise VideoWriteError(f"{path}: wrote {len(frames)} frames but the file holds {written} "
                                  "(disk full or encoder failure)")
        set_mode_like(tmp, path)  # mkstemp makes 0600: the umask (or the replaced file's mode) decides instead
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_mp4_stream(path: Path | str, frames: Iterable[np.ndarray], fps: float,
                     on_encoded: Callable[[int], None] | None = None) -> tuple[Path, int, tuple[int, int]]:
    """:func:`write_mp4` for frames that arrive one at a time (a generator): each is encoded as it comes, so
    memory does not grow with the video's length. Same atomicity, checks, read-back and permissions.
    ``on_encoded(count)`` runs once every frame is encoded, before the read-back (a caller timing the two).
    Returns (path, frames written, (height, width))."""
    path = Path(path)
    if not fps or fps <= 0:
        raise ValueError(f"{path}: fps must be > 0, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.stem}-", suffix=".mp4", dir=path.parent)
    os.close(fd)
    count, shape, writer = 0, None, None
    try:
        try:
            for frame in frames:
                if shape is None:
                    shape = frame.shape
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC), float(fps),
                                             (shape[1], shape[0]))
                    if not writer.isOpened():
                        raise VideoWriteError(f"{path}: OpenCV has no {FOURCC!r} mp4 encoder here "
                                              f"(cv2 {cv2.__version__})")
                if frame.dtype != np.uint8 or frame.shape != shape or len(shape) != 3 or shape[2] != 3:
                    raise ValueError(f"{path}: frame {count} is {frame.dtype} {frame.shape}, expected uint8 "
                                     f"{shape} (H, W, 3) like frame 0")
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                count += 1
        finally:
            if writer is not None:
                writer.release()
        if count == 0:
            raise VideoWriteError(f"{path}: no frames to write")
        if on_encoded is not None:
            on_encoded(count)
        written = count_frames(tmp)
        if written != count:
            raise VideoWriteError(f"{path}: wrote {count} frames but the file holds {written} "
                                  "(disk full or encoder failure)")
        set_mode_like(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path, count, (int(shape[0]), int(shape[1]))


def count_frames(path: Path | str) -> int:
    """Frames OpenCV decodes from ``path`` (decoded, not the container's claim); 0 when unreadable."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        return 0
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count


def read_video(path: Path | str) -> tuple[list[np.ndarray], float]:
    """All frames of ``path`` as RGB uint8 (H, W, 3) and its frame rate (0.0 when the container has none)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RemotError(f"{path}: OpenCV cannot open it (not a video, or an unsupported codec)")
    frames = []
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return frames, fps


def side_by_side(*columns: np.ndarray) -> np.ndarray:
    """RGB uint8 images of one height placed left to right (e.g. source | driving | output), (H, sum W, 3)."""
    heights = {c.shape[0] for c in columns}
    if len(heights) != 1:
        raise ValueError(f"side_by_side needs images of one height, got {sorted(heights)}")
    return np.concatenate(columns, axis=1)
