"""Background plates on synthetic video with a known background and a known moving occluder."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.layout.background import background_plate

HEIGHT, WIDTH = 64, 96
BOX_TOP, BOX_BOTTOM, BOX_WIDTH = 8, 56, 50
BOX_LEFTS = list(range(0, 45, 4))  # 12 frames; the box covers x in [44, 50) in every one of them
OCCLUDER_RGB = (10, 10, 10)


def background() -> np.ndarray:
    noise = np.random.default_rng(0).random((HEIGHT, WIDTH, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (80 + smooth * 120).astype(np.uint8)  # values in [80, 200]


def video(mask_shrink_px: int) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """(background, frames, person masks): a dark box slides right over the background.

    Each pixel under the box's path is covered in most frames, so a plain temporal median would return the box;
    the masks are the box shrunk by ``mask_shrink_px`` on every side (an imperfect segmentation).
    """
    plate = background()
    rng = np.random.default_rng(1)
    frames, masks = [], []
    for left in BOX_LEFTS:
        frame = plate.copy()
        frame[BOX_TOP:BOX_BOTTOM, left : left + BOX_WIDTH] = OCCLUDER_RGB
        frame = np.clip(frame.astype(np.int16) + rng.integers(-2, 3, frame.shape), 0, 255).astype(np.uint8)
        mask = np.zeros((HEIGHT, WIDTH), bool)
        s = mask_shrink_px
        mask[BOX_TOP + s : BOX_BOTTOM - s, left + s : left + BOX_WIDTH - s] = True
        frames.append(frame)
        masks.append(mask)
    return plate, frames, masks


def ever_uncovered(margin: int) -> np.ndarray:
    """Pixels at least ``margin`` px outside the box in at least one frame (from the box geometry alone)."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    uncovered = np.zeros((HEIGHT, WIDTH), bool)
    for left in BOX_LEFTS:
        inside = (
            (rows >= BOX_TOP - margin) & (rows < BOX_BOTTOM + margin)
            & (cols >= left - margin) & (cols < left + BOX_WIDTH + margin)
        )
        uncovered |= ~inside
    return uncovered


def test_plate_recovers_background_where_it_was_ever_seen():
    truth, frames, masks = video(mask_shrink_px=0)
    plate = background_plate(frames, masks, dilate_px=0)
    assert plate.shape == (HEIGHT, WIDTH, 3) and plate.dtype == np.uint8
    seen = ever_uncovered(margin=0)
    error = np.abs(plate.astype(np.int16) - truth)[seen]
    assert error.mean() < 1.5 and error.max() <= 3  # only the +-2 frame noise remains

    naive = np.median(np.stack(frames), axis=0)  # the check above is not trivially met without masks
    assert np.abs(naive.astype(np.int16) - truth)[seen].mean() > 20


def test_dilation_absorbs_masks_that_are_too_small():
    truth, frames, masks = video(mask_shrink_px=2)  # 2 px of occluder outside every mask
    plate = background_plate(frames, masks, dilate_px=5)
    seen = ever_uncovered(margin=6)
    error = np.abs(plate.astype(np.int16) - truth)[seen]
    assert error.mean() < 1.5 and error.max() <= 3

    undilated = background_plate(frames, masks, dilate_px=0)  # without dilation the box edges leak in
    assert np.abs(undilated.astype(np.int16) - truth)[ever_uncovered(margin=0)].max() > 40


def test_never_seen_pixels_are_inpainted_from_the_background():
    truth, frames, masks = video(mask_shrink_px=0)
    plate = background_plate(frames, masks, dilate_px=3)
    always_covered = ~ever_uncovered(margin=0)
    assert always_covered.sum() > 200  # the test really has a region never seen
    filled = plate[always_covered].astype(np.int16)
    # Telea fills from the surrounding plate: values within the background's range, not black, not the occluder.
    assert filled.min() >= int(truth.min()) - 5 and filled.max() <= int(truth.max()) + 5
    assert np.abs(filled - truth[always_covered]).mean() < 40


def test_masks_covering_everything_are_an_error():
    _, frames, _ = video(mask_shrink_px=0)
    full = [np.ones((HEIGHT, WIDTH), bool)] * len(frames)
    with pytest.raises(ValueError, match="cover every pixel"):
        background_plate(frames, full)


def test_mismatched_inputs_are_an_error():
    _, frames, masks = video(mask_shrink_px=0)
    with pytest.raises(ValueError, match="person masks"):
        background_plate(frames, masks[:-1])
    with pytest.raises(ValueError, match="person mask 0"):
        background_plate(frames, [m[:, :10] for m in masks])


def test_plate_median_is_numpys_nanmedian_of_the_seen_frames():
    """The plate's per-pixel median (one sort of uint16 values) equals np.nanmedian over the frames where the
    pixel is background, rounded half to even, for odd and even counts and pixels never seen (0)."""
    import warnings

    from pipeline.layout.background import _median_of_seen

    rng = np.random.default_rng(1)
    for frames in (1, 2, 7, 64):
        samples = rng.integers(0, 256, (frames, 9, 11, 3), dtype=np.uint8)
        seen = rng.random((frames, 9, 11)) < 0.6
        seen[:, 0, 0] = False
        masked = samples.astype(np.float32)
        masked[~seen] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.rint(np.nan_to_num(np.nanmedian(masked, axis=0), nan=0.0)).astype(np.uint8)
        assert np.array_equal(_median_of_seen(samples, seen), expected), frames
