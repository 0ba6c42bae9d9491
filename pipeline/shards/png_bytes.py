"""Reuse a stage's PNG file as a shard member instead of decoding and re-encoding it.

A PNG already on disk (an extracted frame, a layout, a background plate) is copied into the tar as it is when
the loader is bound to decode it to the very array a re-encode would hold: the shard writer read the same file
with the same OpenCV flags the loader uses (``IMREAD_COLOR`` for colour, ``IMREAD_UNCHANGED`` for labels), so
decoding the bytes again gives the same pixels. The header is still checked, so that only plain, non-interlaced
8-bit RGB (colour) or grey (labels) images of the expected size are copied; anything else is re-encoded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.core.png import COLOR_TYPE, SIGNATURE


def plain_png(data: bytes, shape: tuple[int, int], color: bool) -> bool:
    """True when ``data`` is a PNG header of ``shape`` (H, W), 8-bit, RGB or grey per ``color``, not interlaced."""
    if len(data) < 33 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        return False
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, color_type, interlace = data[24], data[25], data[28]
    return (height, width) == tuple(shape) and depth == 8 and color_type == COLOR_TYPE[color] and interlace == 0


class StoredPngs:
    """Bytes of the PNG files one video's shards copy, read once each (a frame is in several windows)."""

    def __init__(self, shape: tuple[int, int], encode: Callable[[np.ndarray], bytes]):
        self.shape, self.encode = tuple(shape), encode
        self.cache: dict[Path, bytes] = {}

    def get(self, path: Path, array: np.ndarray, color: bool) -> bytes:
        """The file's bytes when they are a plain PNG (see the module docstring), else ``array`` encoded."""
        data = self.cache.get(path)
        if data is None:
            data = Path(path).read_bytes()
            if not plain_png(data, self.shape, color):
                data = self.encode(array)
            self.cache[path] = data
        return data
