"""Pixel caps read from the content's own headers, before anything is decoded.

A 389 KB PNG can declare 20000 x 20000 pixels and decode into 1.2 GB; TIFF bytes named ``00000.png``, a JPEG with
fill bytes before its first marker or a lossy WebP decode just as large. So the size is never guessed from the
file name or a few known byte layouts: images are measured by Pillow's own header parse of the bytes
(``Image.open`` is lazy: it reads the header and stops), which knows every format OpenCV decodes for us (PNG,
JPEG with any marker padding, WebP of every kind, TIFF, PPM/PGM, BMP, GIF, ...); content Pillow cannot identify
is refused rather than handed to a decoder unmeasured. Videos: OpenCV's capture reports the frame size the
container and codec headers declare when it opens, before a frame is decoded (a 3-frame 12000 x 12000 MJPG AVI
opens in 70 MB; its first ``read()`` takes 1 GB).

The cap is ``limits.max_pixels`` in params.yaml (:data:`DEFAULT_MAX_PIXELS`). Backstops for what a header parse
cannot see (a stream whose frames grow mid-way): OpenCV, our decoder, refuses to decode an image above
``OPENCV_IO_MAX_IMAGE_PIXELS`` (set to :data:`BACKSTOP_PIXELS` in ``pipeline/__init__.py`` before cv2 loads),
Pillow keeps its own ``MAX_IMAGE_PIXELS`` guard for any decode of its own, and every decoded video frame is
checked (:func:`check_frame_pixels`).
"""
from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

from pipeline.core.errors import RemotError

# Far above any frame the pipeline uses (a 4K frame is 8.3 Mpx), far below what hurts a shared machine.
DEFAULT_MAX_PIXELS = 64_000_000
# The most limits.max_pixels may be raised to; pipeline/__init__.py gives OpenCV the same ceiling (403 MB as BGR).
BACKSTOP_PIXELS = 1 << 27


class TooManyPixels(RemotError, ValueError):
    """An image or video declares more pixels than ``limits.max_pixels``."""


class ImageTooLarge(TooManyPixels):
    """An image declares more pixels than accepted."""


class VideoTooLarge(TooManyPixels):
    """A video declares (or decodes to) frames of more pixels than accepted."""


class NotAnImage(RemotError, ValueError):
    """Content no image decoder we measure can identify."""


# Pillow refuses to open an image above twice its MAX_IMAGE_PIXELS (DecompressionBombError, without the size);
# the header read lifts that for the few microseconds of the parse (nothing is decoded) so the refusal can name
# the declared size. The lock keeps two of our reads from restoring each other's value.
_PILLOW_LIMIT_LOCK = threading.Lock()


def image_header_size(path: Path | str) -> tuple[int, int] | None:
    """(width, height) from Pillow's header parse of the bytes (whatever the name), or None when Pillow cannot
    identify the content. Nothing is decoded."""
    from PIL import Image, UnidentifiedImageError

    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we refuse with our own message
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as image:  # formats=None: every plugin, chosen from the content
                return tuple(image.size)
        except UnidentifiedImageError:
            return None
        except (SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError) as exc:
            # a plugin that recognised the format but choked on a damaged header
            raise NotAnImage(f"image {path} has a damaged header ({type(exc).__name__}: {exc}); re-export it "
                             "as PNG or JPEG") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def check_image_pixels(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse an image whose header declares more than ``max_pixels``, or whose content is not an image format
    we can measure, before a byte of it is decoded."""
    size = image_header_size(Path(path))
    if size is None:
        raise NotAnImage(f"image {path} is not in an image format the pipeline reads (PNG, JPEG, WebP, TIFF, BMP, "
                         "GIF, PPM/PGM): convert it to PNG")
    _refuse_over(ImageTooLarge, f"image {path}", size, max_pixels, "per image")


def _refuse_over(kind: type[TooManyPixels], what: str, size: tuple[int, int], max_pixels: int, unit: str) -> None:
    width, height = size
    if width * height > max_pixels:
        raise kind(f"{what} declares {width}x{height} pixels, more than the {max_pixels:,} accepted {unit} "
                   "(limits.max_pixels in params.yaml): resize it (the person is cropped to extract.height x "
                   "width anyway)")


def open_video(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Any:
    """An opened ``cv2.VideoCapture`` of ``path`` whose declared frame size is within ``max_pixels``
    (:class:`VideoTooLarge` otherwise, before any frame is decoded), or None when OpenCV cannot open it. A size
    the container does not declare (0) is left to :func:`check_frame_pixels`."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        return None
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    try:
        _refuse_over(VideoTooLarge, f"video {path}", size, max_pixels, "per frame")
    except VideoTooLarge:
        capture.release()
        raise
    return capture


def check_frame_pixels(frame: Any, path: Path | str, index: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """The backstop after a decode: a frame larger than declared (a stream that grows) stops the video at once."""
    height, width = frame.shape[:2]
    _refuse_over(VideoTooLarge, f"video {path} frame {index}", (width, height), max_pixels, "per frame")
