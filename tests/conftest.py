"""Shared fixtures. Real footage lives beside the project in ../shared/footage and is never copied in."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REMOT_SHARED", ROOT.parent / "shared"))


def pytest_collection_modifyitems(config, items):
    # Every test that takes the ``media`` fixture is marked ``media``: .ci/run re-runs exactly these with the
    # shared footage hidden (REMOT_SHARED=/nonexistent), so the generated fallback stays tested.
    for item in items:
        if "media" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.media)


@pytest.fixture(scope="session")
def footage_dir() -> Path:
    """``../shared/footage`` (3 clips x 32 frames, 6 stills); tests that need it skip where it is absent."""
    path = SHARED / "footage"
    if not (path / "clips").is_dir():
        pytest.skip(f"shared footage not found at {path}")
    return path


@pytest.fixture(scope="session")
def footage_clips(footage_dir: Path) -> dict[str, Path]:
    """Clip name -> folder of 32 consecutive 256x192 RGB PNG frames."""
    return {p.name: p for p in sorted((footage_dir / "clips").iterdir()) if p.is_dir()}


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, list[Path]]:
    """Real people to build dataset trees from: the shared footage where present, else generated demo clips.

    Returns ``{"videos": [mp4, ...], "frame_folders": [folder of PNGs, ...]}`` with three of each.
    """
    footage = SHARED / "footage"
    if (footage / "videos").is_dir():
        return {"videos": sorted((footage / "videos").glob("*.mp4")),
                "frame_folders": sorted(p for p in (footage / "clips").iterdir() if p.is_dir())}
    import cv2

    from pipeline.demo_data import generate_demo_dataset

    out = tmp_path_factory.mktemp("demo_media")
    generate_demo_dataset(out, n_clips=3, n_frames=12, seed=0)
    videos = sorted((out / "videos").glob("*.mp4"))
    folders = []
    for video in videos:
        folder = out / "frames" / video.stem
        folder.mkdir(parents=True)
        capture = cv2.VideoCapture(str(video))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            cv2.imwrite(str(folder / f"{index:05d}.png"), frame)
            index += 1
        folders.append(folder)
    return {"videos": videos, "frame_folders": folders}


@pytest.fixture
def one_thread_seeded():
    """Torch on one thread with seed 0 for the test's duration (repeatable timings and random weights)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
