"""One fixed, person-centred, portrait crop box per video, and applying it to frames or label maps."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropBox:
    """Integer box in source pixels, ``x1``/``y1`` exclusive; may extend past the frame (then padded)."""

    x0: int
    y0: int
    x1: int
    y1: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def crop_box_for_person(person: tuple[float, float, float, float], frame_w: int, frame_h: int, out_h: int,
                        out_w: int, margin: float) -> CropBox:
    """Box around ``person`` (x0, y0, x1, y1) with ``margin`` x person height on each side, brought to the
    output aspect ratio around the person's centre, then slid back inside the frame as far as that is possible
    without cutting the person. What still lies outside is padded by the caller."""
    px0, py0, px1, py1 = person
    pad = margin * (py1 - py0)
    x0, y0, x1, y1 = px0 - pad, py0 - pad, px1 + pad, py1 + pad
    aspect = out_w / out_h
    w, h = x1 - x0, y1 - y0
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0, y0 = cx - w / 2, cy - h / 2

    def slide(start: float, size: float, limit: int, p0: float, p1: float) -> float:
        if size >= limit:  # larger than the frame: centre on the person, pad both sides
            return start
        if start < 0:
            start = min(0.0, p0)  # move in, but never past the person's own edge
        if start + size > limit:
            start = max(limit - size, p1 - size)
        return start

    x0 = slide(x0, w, frame_w, px0, px1)
    y0 = slide(y0, h, frame_h, py0, py1)
    return CropBox(int(round(x0)), int(round(y0)), int(round(x0 + w)), int(round(y0 + h)))


def apply_crop(image: np.ndarray, box: CropBox, out_h: int, out_w: int, pad: str = "replicate",
               labels: bool = False) -> np.ndarray:
    """Cut ``box`` out of ``image`` (padding what lies outside) and resize to ``out_h x out_w``.

    ``labels=True`` uses nearest-neighbour resizing and zero padding, for label maps (ground-truth parsing).
    """
    h, w = image.shape[:2]
    left, top = max(0, -box.x0), max(0, -box.y0)
    right, bottom = max(0, box.x1 - w), max(0, box.y1 - h)
    if left or top or right or bottom:
        border = cv2.BORDER_CONSTANT if labels or pad == "constant" else cv2.BORDER_REPLICATE
        image = cv2.copyMakeBorder(image, top, bottom, left, right, border, value=0)
    cut = image[box.y0 + top:box.y1 + top, box.x0 + left:box.x1 + left]
    if labels:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if cut.shape[0] > out_h else cv2.INTER_LINEAR
    return cv2.resize(cut, (out_w, out_h), interpolation=interp)


def map_points(points: np.ndarray, box: CropBox, out_h: int, out_w: int) -> np.ndarray:
    """Map (..., 2+) source-pixel x, y coordinates into the crop's output pixels (other columns kept)."""
    out = np.array(points, dtype=np.float32, copy=True)
    sx, sy = out_w / (box.x1 - box.x0), out_h / (box.y1 - box.y0)
    # pixel centres: source x maps to (x + 0.5 - x0) * s - 0.5
    out[..., 0] = (out[..., 0] + 0.5 - box.x0) * sx - 0.5
    out[..., 1] = (out[..., 1] + 0.5 - box.y0) * sy - 0.5
    return out
