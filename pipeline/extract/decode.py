"""Read frames from a video file (OpenCV) or a folder of images, optionally resampled to a target frame rate."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from pipeline.core import image_limits
from pipeline.core.image_limits import DEFAULT_MAX_PIXELS, NotAnImage, TooManyPixels, check_frame_pixels, check_image_pixels
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


def open_video(source: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> "cv2.VideoCapture":
    """An opened capture of ``source`` whose declared frame size is within ``max_pixels`` (checked before any
    frame is decoded), else :class:`DecodeError` naming the file."""
    try:
        capture = image_limits.open_video(source, max_pixels)
    except TooManyPixels as exc:
        raise DecodeError(str(exc)) from None
    if capture is None:
        raise DecodeError(f"{source}: OpenCV cannot open it (not a video, or an unsupported codec)")
    return capture


def source_info(source: Path, is_frame_folder: bool, max_pixels: int = DEFAULT_MAX_PIXELS) -> SourceInfo:
    if is_frame_folder:
        return SourceInfo(FRAME_FOLDER_FPS, True)
    capture = open_video(source, max_pixels)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not fps or not np.isfinite(fps) or fps <= 0:
        return SourceInfo(FRAME_FOLDER_FPS, True)
    return SourceInfo(float(fps), False)


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One image file as uint8 RGB, measured from its header first; :class:`DecodeError` naming it otherwise."""
    try:
        check_image_pixels(path, max_pixels)  # from the header, before decoding
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except (TooManyPixels, NotAnImage) as exc:
        raise DecodeError(str(exc)) from None
    except cv2.error as exc:  # OpenCV's own pixel ceiling (pipeline/__init__.py), the backstop
        raise DecodeError(f"{path}: OpenCV refused to decode it ({str(exc).strip().splitlines()[-1]})") from None
    if image is None:
        raise DecodeError(f"{path}: not a readable image")
    return to_rgb(image)


def _raw_frames(source: Path, is_frame_folder: bool, max_pixels: int) -> Iterator[np.ndarray]:
    if is_frame_folder:
        for path in list_frames(source):
            yield read_image(path, max_pixels)
        return
    capture = open_video(source, max_pixels)
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break  # end of stream; a truncated file simply ends early
            try:
                check_frame_pixels(frame, source, index, max_pixels)
            except TooManyPixels as exc:
                raise DecodeError(str(exc)) from None
            yield to_rgb(frame)
            index += 1
    finally:
        capture.release()


def iter_frames(source: Path, is_frame_folder: bool, native_fps: float, target_fps: Optional[float] = None,
                max_frames: Optional[int] = None,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(source_index, rgb uint8 HxWx3)``; with ``target_fps`` below the native rate, frames are dropped
    so that output frame k is the source frame nearest to time k / target_fps. Images and videos over
    ``max_pixels`` (``limits.max_pixels``) are refused from their headers, before decoding."""
    step = native_fps / target_fps if target_fps and target_fps < native_fps else 1.0
    next_keep, produced = 0.0, 0
    for index, frame in enumerate(_raw_frames(source, is_frame_folder, max_pixels)):
        if max_frames is not None and produced >= max_frames:
            return
        if index + 0.5 >= next_keep:
            yield index, frame
            produced += 1
            next_keep += step
