"""Small files that declare huge images or videos (decompression bombs), built without ever holding the pixels
they declare, except :func:`mjpg_avi_declaring`'s one grey JPEG frame (issue 22 items 4 and 5)."""
from __future__ import annotations

import io
import struct

import cv2
import numpy as np


def _encoded(ext: str, params: list[int] | None = None) -> bytearray:
    ok, data = cv2.imencode(ext, np.full((16, 16, 3), 128, np.uint8), params or [])
    assert ok
    return bytearray(data.tobytes())


def tiff_declaring(width: int, height: int) -> bytes:
    """A little-endian baseline TIFF header (grey, one strip) declaring width x height: ~130 bytes."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1),
               (278, 4, height), (279, 4, 1)]
    offset_of_data = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = offset_of_data if tag == 273 else value
        ifd += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\0"


def jpeg_declaring(width: int, height: int, padding: int = 1) -> bytes:
    """A 16x16 JPEG whose start-of-frame declares width x height, with ``padding`` fill bytes (0xFF) after the
    start-of-image marker (legal: any marker may be preceded by fill bytes)."""
    data = _encoded(".jpg")
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data[:2]) + b"\xff" * padding + bytes(data[2:])


def webp_lossy_declaring(width: int, height: int) -> bytes:
    """A simple-format lossy WebP (VP8 chunk, no VP8X header) whose key frame declares width x height."""
    data = _encoded(".webp", [cv2.IMWRITE_WEBP_QUALITY, 50])
    assert data[12:16] == b"VP8 "
    start = data.find(b"\x9d\x01\x2a")
    data[start + 3:start + 7] = struct.pack("<HH", width, height)
    return bytes(data)


def webp_lossless_declaring(width: int, height: int) -> bytes:
    """A lossless WebP (VP8L chunk) declaring width x height in its 14-bit size fields."""
    data = _encoded(".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])
    header = data.find(b"VP8L") + 8
    assert data[header] == 0x2F
    bits = int.from_bytes(data[header + 1:header + 5], "little") & ~((1 << 28) - 1)
    data[header + 1:header + 5] = (bits | (width - 1) | ((height - 1) << 14)).to_bytes(4, "little")
    return bytes(data)


def pgm_declaring(width: int, height: int) -> bytes:
    return f"P5\n{width} {height}\n255\n".encode() + b"\0" * 16


def bmp_declaring(width: int, height: int) -> bytes:
    data = _encoded(".bmp")
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def mjpg_avi_declaring(side: int, n_frames: int = 3, fps: int = 25) -> bytes:
    """An AVI of ``n_frames`` identical grey side x side MJPG frames (the JPEG of a 12000^2 frame is ~1.7 MB;
    the one grey frame is held once, as 1 byte per pixel, while it is encoded)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, "JPEG", quality=50)
    jpeg = buffer.getvalue()

    def chunk(fourcc: bytes, body: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")

    def listing(kind: bytes, body: bytes) -> bytes:
        return b"LIST" + struct.pack("<I", len(body) + 4) + kind + body

    avih = struct.pack("<14I", 1_000_000 // fps, 0, 0, 0x10, n_frames, 0, 1, len(jpeg), side, side, 0, 0, 0, 0)
    strh = b"vidsMJPG" + struct.pack("<IHHIIIIIIIIhhhh", 0, 0, 0, 0, 1, fps, 0, n_frames, len(jpeg), 0xFFFFFFFF,
                                     0, 0, 0, side, side)
    strf = struct.pack("<IiiHH4sIiiII", 40, side, side, 1, 24, b"MJPG", side * side * 3, 0, 0, 0, 0)
    header = listing(b"hdrl", chunk(b"avih", avih) + listing(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movie = listing(b"movi", b"".join(chunk(b"00dc", jpeg) for _ in range(n_frames)))
    index, offset = b"", 4
    for _ in range(n_frames):
        index += b"00dc" + struct.pack("<III", 0x10, offset, len(jpeg))
        offset += 8 + len(jpeg) + len(jpeg) % 2
    body = b"AVI " + header + movie + chunk(b"idx1", index)
    return b"RIFF" + struct.pack("<I", len(body)) + body
