"""Background plates: the scene without the person, the ``BG`` that the Whole Composition Network adds (paper
sec. 3.2, "we add the background image to the generated person image").

Method (static camera assumed, as in the paper's datasets):

1. Each person mask is dilated by ``dilate_px`` so the soft halo at the person's outline (hair, motion blur,
   mask errors) does not leak into the plate.
2. Each pixel's value is the temporal median over the frames where it is outside the dilated mask. The median
   ignores the odd frame with a shadow or a mask miss, which a mean would smear in.
3. Pixels that are inside the (dilated) mask in every frame were never seen; they are filled by OpenCV's Telea
   inpainting from the surrounding plate. That fill is a plausible guess, not observed background.
"""
from __future__ import annotations

import cv2
import numpy as np


def _check_inputs(frames: list[np.ndarray], person_masks: list[np.ndarray]) -> tuple[int, int]:
    if not frames:
        raise ValueError("background_plate needs at least one frame")
    if len(frames) != len(person_masks):
        raise ValueError(f"{len(frames)} frames but {len(person_masks)} person masks")
    height, width = frames[0].shape[:2]
    for index, (frame, mask) in enumerate(zip(frames, person_masks)):
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {index}: expected uint8 ({height}, {width}, 3), got {frame.dtype} {frame.shape}")
        if mask.shape != (height, width):
            raise ValueError(f"person mask {index}: expected ({height}, {width}), got {mask.shape}")
    return height, width


def background_seen(person_masks: list[np.ndarray], dilate_px: int = 5) -> np.ndarray:
    """Per frame, where the background is visible: bool (T, H, W), True outside the dilated person mask."""
    size = 2 * dilate_px + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)) if dilate_px > 0 else None
    seen = []
    for mask in person_masks:
        person = np.asarray(mask, dtype=bool).astype(np.uint8)
        if kernel is not None:
            person = cv2.dilate(person, kernel)
        seen.append(person == 0)
    return np.stack(seen)


def background_plate(
    frames: list[np.ndarray],
    person_masks: list[np.ndarray],
    dilate_px: int = 5,
    inpaint_radius: int = 5,
    rows_per_chunk: int = 32,
) -> np.ndarray:
    """Background plate of a static-camera video.

    ``frames``: T RGB uint8 (H, W, 3); ``person_masks``: T bool (H, W), True on the person.
    Returns RGB uint8 (H, W, 3): per-pixel temporal median of the frames where the pixel is background (outside
    the mask dilated by ``dilate_px``); pixels never seen as background are inpainted (Telea, ``inpaint_radius``).
    Raises ValueError when no pixel is ever background (nothing to build a plate from).
    Works on ``rows_per_chunk`` image rows at a time to keep memory bounded on long videos.
    """
    height, width = _check_inputs(frames, person_masks)
    seen = background_seen(person_masks, dilate_px)  # (T, H, W)
    never_seen = ~seen.any(axis=0)
    if never_seen.all():
        raise ValueError(
            f"background_plate: the person masks (dilated by {dilate_px} px) cover every pixel in every frame, "
            "so no background was ever visible; check the masks or lower dilate_px"
        )

    stack = np.stack(frames)  # (T, H, W, 3) uint8
    plate = np.zeros((height, width, 3), dtype=np.uint8)
    for top in range(0, height, rows_per_chunk):
        rows = slice(top, top + rows_per_chunk)
        plate[rows] = _median_of_seen(stack[:, rows], seen[:, rows])

    if never_seen.any():
        plate = cv2.inpaint(plate, never_seen.astype(np.uint8), inpaint_radius, cv2.INPAINT_TELEA)
    return plate


def _median_of_seen(samples: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per pixel and channel, the median of ``samples`` (T, h, W, 3) uint8 over the frames where ``seen``
    (T, h, W) is True, rounded half to even; 0 where no frame saw it. The mean of the two middle values for an
    even count, as ``np.nanmedian`` gives, but by one sort of uint16 values with unseen ones pushed past 255:
    ``nanmedian`` goes through masked arrays and took two thirds of the layout stage's time."""
    values = samples.astype(np.uint16)
    values[~seen] = 256  # sorts after every real value, so the seen ones come first
    values.sort(axis=0)
    count = np.broadcast_to(seen.sum(axis=0)[None, ..., None], (1, *values.shape[1:]))
    low = np.take_along_axis(values, np.maximum(count - 1, 0) // 2, axis=0)[0].astype(np.float32)
    high = np.take_along_axis(values, count // 2, axis=0)[0].astype(np.float32)
    median = np.rint((low + high) / 2)
    return np.where(count[0] > 0, median, 0).astype(np.uint8)
