"""Issue 22 items 4 and 5: image and video sizes come from the decoder's own header parse of the real content
(never the file name or a few known byte layouts) and anything over ``limits.max_pixels`` is refused, with one
line naming the file, before a pixel is decoded; OpenCV's own ceiling is the backstop."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.errors import RemotError, SkipVideo
from pipeline.core.image_limits import (BACKSTOP_PIXELS, ImageTooLarge, NotAnImage, VideoTooLarge, check_frame_pixels,
                                        check_image_pixels)
from pipeline.core.params import ExtractParams, Params, ParamsError, validate_params
from pipeline.extract.decode import DecodeError, iter_frames, source_info
from tests import _bombs
from tests.test_security import _png_declaring

ROOT = Path(__file__).resolve().parents[1]

BOMBS = {  # name: (bytes, declared width, height); each file is a few KB at most
    "tiff": (lambda: _bombs.tiff_declaring(12000, 12000), 12000, 12000),
    "jpeg-padded": (lambda: _bombs.jpeg_declaring(12000, 12000, padding=1), 12000, 12000),
    "jpeg-padded-3": (lambda: _bombs.jpeg_declaring(12000, 12000, padding=3), 12000, 12000),
    "webp-lossy": (lambda: _bombs.webp_lossy_declaring(9000, 9000), 9000, 9000),
    "webp-lossless": (lambda: _bombs.webp_lossless_declaring(9000, 9000), 9000, 9000),
    "pgm": (lambda: _bombs.pgm_declaring(12000, 12000), 12000, 12000),
    "bmp": (lambda: _bombs.bmp_declaring(12000, 12000), 12000, 12000),
    "png": (lambda: _png_declaring(20000, 20000), 20000, 20000),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
@pytest.mark.parametrize("name", ["00000.png", "00000.jpg"])
def test_declared_image_size_is_read_from_the_content_whatever_the_name(tmp_path, kind, name):
    make, width, height = BOMBS[kind]
    folder = tmp_path / "frames"
    folder.mkdir()
    bomb = folder / name
    bomb.write_bytes(make())
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ImageTooLarge, match=f"{width}x{height}") as refused:
        check_image_pixels(bomb)
    assert str(bomb) in str(refused.value) and "limits.max_pixels" in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1
    with pytest.raises(DecodeError, match=f"{width}x{height}"):  # a dataset's frame folder
        list(iter_frames(folder, True, 25.0))
    with pytest.raises(RemotError, match=f"{width}x{height}"):  # the source image of `remot transfer`
        from pipeline.inference.prepare import Preprocessor

        Preprocessor(Params(), None).source(bomb)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm", ".pgm"])
def test_well_formed_images_of_every_kind_pass_and_decode(tmp_path, ext):
    folder = tmp_path / "frames"
    folder.mkdir()
    image = np.full((30, 40) if ext == ".pgm" else (30, 40, 3), 90, np.uint8)
    assert cv2.imwrite(str(tmp_path / f"x{ext}"), image)
    (folder / "00000.png").write_bytes((tmp_path / f"x{ext}").read_bytes())  # any name: the content decides
    check_image_pixels(folder / "00000.png")
    [(_, frame)] = list(iter_frames(folder, True, 25.0))
    assert frame.shape == (30, 40, 3)
    with pytest.raises(DecodeError, match="40x30"):
        list(iter_frames(folder, True, 25.0, max_pixels=1000))


def test_content_no_decoder_we_measure_knows_is_refused(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "00000.png").write_bytes(b"plain text, not an image")
    with pytest.raises(NotAnImage, match="00000.png"):
        check_image_pixels(folder / "00000.png")
    with pytest.raises(DecodeError, match="not in an image format"):
        list(iter_frames(folder, True, 25.0))


def test_max_pixels_is_a_validated_param():
    assert Params().limits.max_pixels == 64_000_000
    assert validate_params({"limits": {"max_pixels": 1000}}).limits.max_pixels == 1000
    for bad in (0, BACKSTOP_PIXELS + 1):
        with pytest.raises(ParamsError, match="limits.max_pixels"):
            validate_params({"limits": {"max_pixels": bad}})
    with pytest.raises(ParamsError, match="limits"):
        validate_params({"limits": {"max_pixel": 5}})


def test_opencv_ceiling_is_the_backstop_and_a_users_value_wins(tmp_path):
    """What the header parse cannot see is stopped by OpenCV's own ceiling, which the library sets before cv2
    loads (cv2 reads it once, at import)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    env["PYTHONPATH"] = str(ROOT)
    shown = subprocess.run([sys.executable, "-c", "import os, pipeline, cv2; "
                            "print(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert shown == str(BACKSTOP_PIXELS)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((100, 100), np.uint8))
    code = f"import pipeline, cv2\ntry:\n    cv2.imread({str(tmp_path / 'a.png')!r})\nexcept cv2.error:\n    print('refused')"
    run = subprocess.run([sys.executable, "-c", code], env={**env, "OPENCV_IO_MAX_IMAGE_PIXELS": "1000"},
                         capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "refused"


# ------------------------------------------------------------------ videos (item 5)


@pytest.fixture(scope="module")
def avi_bomb(tmp_path_factory) -> Path:
    """A 3-frame 12000x12000 MJPG AVI (~5 MB; decoding one frame takes ~1 GB)."""
    path = tmp_path_factory.mktemp("bomb") / "huge.avi"
    path.write_bytes(_bombs.mjpg_avi_declaring(12000))
    return path


@pytest.fixture
def no_decoding(monkeypatch) -> list[str]:
    """Every cv2.VideoCapture records a decode (read/grab/retrieve) in the returned list."""
    real, decodes = cv2.VideoCapture, []

    class Watched:
        def __init__(self, *args, **kwargs):
            self._capture = real(*args, **kwargs)

        def __getattr__(self, name):
            if name in ("read", "grab", "retrieve"):
                decodes.append(name)
            return getattr(self._capture, name)

    monkeypatch.setattr(cv2, "VideoCapture", Watched)
    return decodes


def test_the_crafted_container_is_a_real_video(tmp_path):
    small = tmp_path / "small.avi"
    small.write_bytes(_bombs.mjpg_avi_declaring(64))
    frames = [frame for _, frame in iter_frames(small, False, source_info(small, False).native_fps)]
    assert len(frames) == 3 and frames[0].shape == (64, 64, 3)


def test_video_over_the_cap_is_refused_before_its_first_frame_is_decoded(avi_bomb, tmp_path, no_decoding, capsys):
    from pipeline.cli import main as remot
    from pipeline.core.artifacts import VideoArtifacts
    from pipeline.datasets.base import VideoEntry
    from pipeline.extract.run import extract_video
    from pipeline.inference.prepare import DrivingVideoError, Preprocessor

    with pytest.raises(DecodeError, match="12000x12000"):
        source_info(avi_bomb, False)
    with pytest.raises(DecodeError, match="12000x12000"):
        list(iter_frames(avi_bomb, False, 25.0))
    with pytest.raises(DrivingVideoError, match="12000x12000"):
        Preprocessor(Params(), None)._open_driving(avi_bomb)
    with pytest.raises(SkipVideo, match="12000x12000"):
        extract_video(VideoEntry("d", "huge", avi_bomb, False, "train"), VideoArtifacts(tmp_path / "data", "d", "huge"),
                      ExtractParams(), "h", 8)

    dataset = tmp_path / "videos"
    dataset.mkdir()
    (dataset / "huge.avi").write_bytes(avi_bomb.read_bytes())
    project = tmp_path / "proj"
    project.mkdir()
    (project / "params.yaml").write_text("data_root: data\n")
    assert remot(["--params", str(project / "params.yaml"), "dataset", "add", "mine", str(dataset), "--kind",
                  "folder"]) == 0
    printed = capsys.readouterr().out
    assert "problems: 1" in printed
    [line] = [line for line in printed.splitlines() if "12000x12000" in line]
    assert str(dataset / "huge.avi") in line and "limits.max_pixels" in line
    assert no_decoding == []  # refused from the headers: no frame was ever decoded


def test_a_decoded_frame_over_the_cap_stops_the_video():
    with pytest.raises(VideoTooLarge, match="frame 5"):
        check_frame_pixels(np.zeros((100, 100, 3), np.uint8), "v.mp4", 5, max_pixels=1000)
