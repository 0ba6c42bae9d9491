"""The project's PNG encoder (pipeline/core/png.py: extracted frames, shard strips): any PNG reader gets the image back exactly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core.png import encode_png
from pipeline.shards.png_bytes import plain_png
from pipeline.shards.reader import checked_png


def _images(media) -> list[np.ndarray]:
    """Real frames (shared footage or generated clips) stacked as the shards' strips, their grey versions, and
    random and edge-case arrays (wrap-around of the Up filter, one row, one column)."""
    rng = np.random.default_rng(0)
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
              for folder in media["frame_folders"] for p in sorted(folder.glob("*.png"))[:3]]
    strip = np.concatenate(frames[:3])
    return [strip, cv2.cvtColor(strip, cv2.COLOR_RGB2GRAY), *frames,
            rng.integers(0, 256, (37, 23, 3), dtype=np.uint8), rng.integers(0, 6, (40, 17), dtype=np.uint8),
            np.tile(np.array([[0], [255]], np.uint8), (8, 5)), np.zeros((1, 9, 3), np.uint8),
            np.full((9, 1), 7, np.uint8)]


def test_decodes_to_the_same_pixels(media):
    for image in _images(media):
        data = encode_png(image)
        color = image.ndim == 3
        assert plain_png(data, image.shape[:2], color)  # what the shard writer may copy as it is
        assert np.array_equal(checked_png(data, color, image.shape[:2], "test"), image)  # the loader's decode
        assert data == encode_png(image.copy())  # deterministic


def test_non_contiguous_input_is_encoded_as_its_values():
    image = np.arange(24 * 10 * 3, dtype=np.uint8).reshape(24, 10, 3)[::2, ::-1]
    assert np.array_equal(cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_png(image), np.uint8), cv2.IMREAD_COLOR),
                                       cv2.COLOR_BGR2RGB), image)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint16), np.zeros((4, 4, 4), np.uint8), np.zeros(4, np.uint8)])
def test_rejects_what_it_cannot_write(bad):
    with pytest.raises(ValueError, match="encode_png"):
        encode_png(bad)
