"""Issue 16 item 3 (transfer): the streamed driving preparation gives the networks exactly what the whole-video
preparation gives them on a clip of up to PLATE_FRAMES frames (so outputs do not change), the streamed mp4 writer
keeps write_mp4's guarantees, and image headers declaring huge sizes are refused before decoding."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.errors import RemotError
from pipeline.core.image_limits import ImageTooLarge, check_image_pixels, image_header_size
from pipeline.core.params import Params
from pipeline.extract.decode import DecodeError, iter_frames
from pipeline.inference.prepare import PLATE_FRAMES, Preprocessor
from pipeline.inference.video_io import VideoWriteError, read_video, write_mp4_stream
from tests.test_security import _png_declaring


def test_streamed_driving_matches_the_whole_video_preparation(media, tmp_path):
    video = media["videos"][0]
    prep = Preprocessor.from_params(Params(), tmp_path)
    whole = prep.driving(video)
    assert len(whole.frames) <= PLATE_FRAMES
    streamed = prep.driving_stream(video)
    assert streamed.n_frames == len(whole.frames) and streamed.fps == whole.fps
    assert streamed.crop_box == whole.crop_box
    np.testing.assert_array_equal(streamed.keypoints, whole.keypoints)
    np.testing.assert_array_equal(streamed.background, whole.background)
    crops = list(streamed.crops())
    assert len(crops) == len(whole.frames) and all(np.array_equal(a, b) for a, b in zip(crops, whole.frames))


def test_streamed_writer_is_atomic_and_checks_frames(tmp_path):
    frames = [np.full((32, 48, 3), v, np.uint8) for v in (0, 60, 120, 180)]
    path, n, size = write_mp4_stream(tmp_path / "a.mp4", iter(frames), 10.0)
    assert n == 4 and size == (32, 48) and len(read_video(path)[0]) == 4

    def broken():
        yield frames[0]
        yield np.zeros((16, 16, 3), np.uint8)

    with pytest.raises(ValueError, match="frame 1"):
        write_mp4_stream(tmp_path / "b.mp4", broken(), 10.0)
    with pytest.raises(VideoWriteError, match="no frames"):
        write_mp4_stream(tmp_path / "c.mp4", iter([]), 10.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]  # no temporaries, no partial files



def test_huge_declared_images_are_refused_from_their_headers(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_declaring(20000, 20000))
    assert bomb.stat().st_size < 1_000_000 and image_header_size(bomb) == (20000, 20000)
    with pytest.raises(ImageTooLarge, match="20000x20000"):
        check_image_pixels(bomb)
    # the source image of `remot transfer`: refused before decoding
    with pytest.raises(RemotError, match="20000x20000"):
        Preprocessor.from_params(Params(), tmp_path).source(bomb)
    # a frame folder of a dataset: extraction's decoder refuses it
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "00000.png").write_bytes(bomb.read_bytes())
    with pytest.raises(DecodeError, match="20000x20000"):
        list(iter_frames(folder, True, 25.0))
    # well-formed images of every common kind report their size
    image = np.zeros((30, 40, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".webp"):
        cv2.imwrite(str(tmp_path / f"x{ext}"), image)
        size = image_header_size(tmp_path / f"x{ext}")
        assert size in ((40, 30), None) and (ext == ".webp" or size == (40, 30)), (ext, size)
        check_image_pixels(tmp_path / f"x{ext}")
    Path(tmp_path / "x.png").unlink()
