"""Read frames from a video file (OpenCV) or a folder of images, optionally resampled to a target frame rate."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from pipeline.core.image_limits import ImageTooLarge, check_image_pixels
from pipeline.datasets.base import list_frames

# Frame folders carry no rate; iPER and SoloDance were recorded at 25-30 fps. Recorded in meta as assumed.
FRAME_FOLDER_FPS = 25.0


class DecodeError(Exception):
    """The input cannot be decoded; the message says why."""


@dataclass(frozen=True)
class SourceInfo:
    native_fps: float
    fps_assumed: bool


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any OpenCV decode result (grey, BGR, BGRA, 16-bit) -> uint8 RGB."""
    if image.dtype != np.uint8:
        image = (image / (np.iinfo(image.dtype).max / 255.0)).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def source_info(source: Path, is_frame_folder: bool) -> SourceInfo:
    if is_frame_folder:
        return SourceInfo(FRAME_FOLDER_FPS, True)
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise DecodeError(f"{source}: OpenCV cannot open it (not a video, or an unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not fps or not np.isfinite(fps) or fps <= 0:
        return SourceInfo(FRAME_FOLDER_FPS, True)
    return SourceInfo(float(fps), False)


def _raw_frames(source: Path, is_frame_folder: bool) -> Iterator[np.ndarray]:
    if is_frame_folder:
        for path in list_frames(source):
            try:
                check_image_pixels(path)  # from the header, before decoding
            except ImageTooLarge as exc:
                raise DecodeError(str(exc)) from None
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise DecodeError(f"{path}: not a readable image")
            yield to_rgb(image)
        return
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise DecodeError(f"{source}: OpenCV cannot open it (not a video, or an unsupported codec)")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break  # end of stream; a truncated file simply ends early
            yield to_rgb(frame)
    finally:
        capture.release()


def iter_frames(source: Path, is_frame_folder: bool, native_fps: float, target_fps: Optional[float] = None,
                max_frames: Optional[int] = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(source_index, rgb uint8 HxWx3)``; with ``target_fps`` below the native rate, frames are dropped
    so that output frame k is the source frame nearest to time k / target_fps."""
    step = native_fps / target_fps if target_fps and target_fps < native_fps else 1.0
    next_keep, produced = 0.0, 0
    for index, frame in enumerate(_raw_frames(source, is_frame_folder)):
        if max_frames is not None and produced >= max_frames:
            return
        if index + 0.5 >= next_keep:
            yield index, frame
            produced += 1
            next_keep += step
