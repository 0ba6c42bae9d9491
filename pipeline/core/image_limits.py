"""Pixel caps read from image headers, before anything is decoded.

A 389 KB PNG can declare 20000 x 20000 pixels; OpenCV's own limit (2^30 pixels) lets it decode into 1.2 GB (and
more on the way to RGB). Images from datasets and from the command line are checked here first.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import RemotError

# Far above any frame the pipeline uses (a 4K frame is 8.3 Mpx), far below what hurts a shared machine.
MAX_IMAGE_PIXELS = 64_000_000


class ImageTooLarge(RemotError, ValueError):
    """An image declares more pixels than accepted."""


def image_header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) declared in a PNG, JPEG, BMP, GIF or WebP header, read without decoding; None if unknown."""
    import struct

    with open(path, "rb") as handle:
        head = handle.read(32)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:2] == b"BM" and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            if head[12:16] == b"VP8X":
                return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
            return None
        if head[:2] == b"\xff\xd8":  # JPEG: walk the segments to the start-of-frame marker
            handle.seek(2)
            while True:
                marker = handle.read(2)
                if len(marker) < 2 or marker[0] != 0xFF:
                    return None
                if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                    continue
                length = int.from_bytes(handle.read(2), "big")
                if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):
                    body = handle.read(5)
                    return int.from_bytes(body[3:5], "big"), int.from_bytes(body[1:3], "big")
                handle.seek(length - 2, 1)
    return None


def check_image_pixels(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse an image whose header declares more than ``max_pixels`` before a byte of it is decoded."""
    size = image_header_size(Path(path))
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageTooLarge(f"image {path} declares {size[0]}x{size[1]} pixels, more than the {max_pixels:,} "
                         "accepted: resize it (the person is cropped to extract.height x width anyway)")
