"""Frame extraction on real footage: counts, size, one fixed crop, incrementality, bad inputs, kill -9."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.core.params import DatasetSpec, ExtractParams
from pipeline.datasets import read_video_list, scan_dataset
from pipeline.extract.crop import CropBox, apply_crop, crop_box_for_person, map_points
from pipeline.extract.decode import iter_frames
from pipeline.extract.run import run_extraction

ROOT = Path(__file__).resolve().parents[1]
FAST = ExtractParams(detect_frames=4)


def _folder_dataset(tmp_path: Path, videos: list[Path], name: str = "clips") -> Path:
    root = tmp_path / name
    root.mkdir(parents=True, exist_ok=True)
    for video in videos:
        shutil.copy(video, root / video.name)
    return root


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_crop_box_geometry():
    # A person in the middle of a 640x480 frame: portrait 3:4 box, margin kept, fully inside.
    box = crop_box_for_person((300, 100, 340, 400), 640, 480, 256, 192, margin=0.1)
    assert abs((box.x1 - box.x0) / (box.y1 - box.y0) - 0.75) < 0.01
    assert box.y0 <= 100 - 29 and box.y1 >= 400 + 29
    # Near the left edge: slid inside rather than padded, without cutting the person.
    box = crop_box_for_person((5, 100, 45, 400), 640, 480, 256, 192, margin=0.1)
    assert box.x0 == 0 and box.x1 >= 45
    points = map_points(np.array([[5.0, 100.0], [45.0, 400.0]]), box, 256, 192)
    assert (points[:, 0] >= 0).all() and (points[:, 0] <= 192).all()


def test_apply_crop_pads_outside_the_frame():
    image = np.full((100, 80, 3), 200, np.uint8)
    out = apply_crop(image, CropBox(-20, 0, 60, 100), 100, 80, pad="constant")
    assert out.shape == (100, 80, 3)
    assert (out[:, :15] == 0).all() and (out[:, 25:] == 200).all()


def test_extracts_real_videos_with_one_fixed_crop(tmp_path, media):
    root = _folder_dataset(tmp_path, media["videos"])
    scan = scan_dataset("clips", DatasetSpec(kind="folder", path=str(root)))
    report = run_extraction("clips", scan.videos, tmp_path / "data", FAST, 8, tmp_path / "report.json")
    assert len(report.processed) == 3 and not report.skipped
    for video in scan.videos:
        out = tmp_path / "data" / "frames" / "clips" / video.video
        meta = json.loads((out / "meta.json").read_text())
        frames = sorted(out.glob("*.png"))
        n_source = sum(1 for _ in iter_frames(video.source, False, 30.0))
        assert meta["n_frames"] == len(frames) == n_source
        assert meta["size"] == [256, 192] and meta["split"] == video.split
        assert meta["detector"].startswith("mediapipe") and len(meta["input_sha256"]) == 64
        box = CropBox(**meta["crop_box"])
        # Stable crop: every written frame is the same box applied to its source frame.
        for k, (_, source) in enumerate(iter_frames(video.source, False, 30.0)):
            written = _read_rgb(frames[k])
            assert written.shape == (256, 192, 3)
            assert np.array_equal(written, apply_crop(source, box, 256, 192))
        # The whole person box lies inside the crop.
        x0, y0, x1, y1 = meta["person_box"]
        mapped = map_points(np.array([[x0, y0], [x1, y1]]), box, 256, 192)
        assert (mapped[:, 0] >= -1).all() and (mapped[:, 0] <= 193).all()
        assert (mapped[:, 1] >= -1).all() and (mapped[:, 1] <= 257).all()


def test_target_fps_drops_frames(tmp_path, media):
    root = _folder_dataset(tmp_path, media["videos"][:1])
    scan = scan_dataset("clips", DatasetSpec(kind="folder", path=str(root)))
    cfg = ExtractParams(detect_frames=4, fps=10.0)
    run_extraction("clips", scan.videos, tmp_path / "data", cfg, 4, tmp_path / "r.json")
    meta = json.loads(next((tmp_path / "data" / "frames" / "clips").glob("*/meta.json")).read_text())
    # Expected from the clip itself (the shared footage is 32 frames at ~30 fps, the generated fallback another
    # length and rate): output frame k is the first source frame at or after time k / 10 s, to half a frame.
    capture = cv2.VideoCapture(str(media["videos"][0]))
    native_fps, n_source = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert native_fps > 10.0, "the test needs a clip recorded faster than 10 fps"
    step = native_fps / 10.0
    expected = [i for i in (math.ceil(k * step - 0.5) for k in range(n_source)) if i < n_source]
    expected = sorted(set(expected))
    assert meta["n_frames"] == len(expected) < n_source
    assert meta["source_frames"] == expected and meta["fps"] == 10.0


def test_incremental_only_new_video_then_all_on_param_change(tmp_path, media):
    videos = media["videos"]
    root = _folder_dataset(tmp_path, videos[:2])
    spec = DatasetSpec(kind="folder", path=str(root))
    first = run_extraction("clips", scan_dataset("clips", spec).videos, tmp_path / "d", FAST, 8, tmp_path / "r")
    assert len(first.processed) == 2
    frames_dir = tmp_path / "d" / "frames"
    pixels = {p: p.stat().st_mtime_ns for p in frames_dir.rglob("*.png")}
    metas = {p: json.loads(p.read_text()) for p in frames_dir.rglob("meta.json")}
    stamps = {p: p.stat().st_mtime_ns for p in metas}
    shutil.copy(videos[2], root / videos[2].name)
    scan = scan_dataset("clips", spec)
    second = run_extraction("clips", scan.videos, tmp_path / "d", FAST, 8, tmp_path / "r")
    assert len(second.processed) == 1 and len(second.reused) == 2
    assert second.processed[0].endswith(videos[2].stem.lower())
    assert all(p.stat().st_mtime_ns == t for p, t in pixels.items())  # no reused frame is rewritten
    # A third video can move an existing one to the other split (the folder split ranks all ids by a seeded
    # hash, so which one depends on the names: the generated fallback clips re-split, the shared ones do not).
    # The split is recorded in meta.json, so exactly the re-split videos' meta.json change, by the split alone.
    splits = {v.video: v.split for v in scan.videos}
    for path, old in metas.items():
        new = json.loads(path.read_text())
        if old["split"] == splits[path.parent.name]:
            assert path.stat().st_mtime_ns == stamps[path] and new == old  # untouched
        else:
            assert new == {**old, "split": splits[path.parent.name]}
    changed = ExtractParams(detect_frames=4, margin=0.1)
    third = run_extraction("clips", scan_dataset("clips", spec).videos, tmp_path / "d", changed, 8, tmp_path / "r")
    assert len(third.processed) == 3 and not third.reused
    (root / videos[0].name).unlink()  # a removed video's outputs leave with it
    fourth = run_extraction("clips", scan_dataset("clips", spec).videos, tmp_path / "d", changed, 8, tmp_path / "r")
    assert len(fourth.removed) == 1 and len(fourth.reused) == 2


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_bad_inputs_are_reported_and_skipped(tmp_path, media):
    root = _folder_dataset(tmp_path, media["videos"][:1])
    good = root / media["videos"][0].name
    (root / "zero_bytes.mp4").write_bytes(b"")
    (root / "not_a_video.mp4").write_text("hello, I am text")
    rng = np.random.default_rng(0)
    (root / "corrupt.mp4").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    real = [_read_rgb(p) for p in sorted(media["frame_folders"][0].glob("*.png"))[:12]]
    _write_video(root / "too_short.mp4", real[:3])
    _write_video(root / "no_person.mp4", [np.full((256, 192, 3), (40, 120, 200), np.uint8)] * 12)
    grey = root / "grey_frames"
    grey.mkdir()
    for k, frame in enumerate(real):
        cv2.imwrite(str(grey / f"{k:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    scan = scan_dataset("clips", DatasetSpec(kind="folder", path=str(root)))
    report_path = tmp_path / "reports" / "extract.json"
    report = run_extraction("clips", scan.videos, tmp_path / "data", FAST, 8, report_path)
    reasons = json.loads(report_path.read_text())["skipped"]
    assert sorted(report.processed) == sorted([f"clips/{good.stem.lower()}", "clips/grey_frames"])
    for name in ("zero_bytes", "not_a_video", "corrupt"):
        reason = reasons[f"clips/{name}"]
        assert f"{name}.mp4: OpenCV cannot open it" in reason or "no frames could be decoded" in reason, reason
    # A truncated mp4 decodes until the cut: it is skipped for being too short (or unreadable).
    assert any(s in reasons["clips/truncated"] for s in ("cannot open", "no frames", "frames after resampling"))
    assert "only 3 frames" in reasons["clips/too_short"] and "min_frames" in reasons["clips/too_short"]
    assert "no person found" in reasons["clips/no_person"]
    grey_frame = _read_rgb(next((tmp_path / "data" / "frames" / "clips" / "grey_frames").glob("*.png")))
    assert grey_frame.shape == (256, 192, 3)
    # Only bad videos: the stage fails, and still writes its report.
    bad_only = [v for v in scan.videos if v.video in ("zero_bytes", "no_person")]
    with pytest.raises(RuntimeError, match="every video failed"):
        run_extraction("bad", bad_only, tmp_path / "data2", FAST, 8, tmp_path / "bad.json")
    assert set(json.loads((tmp_path / "bad.json").read_text())["skipped"]) == {"clips/zero_bytes",
                                                                              "clips/no_person"}


def _project(tmp_path: Path, videos: list[Path]) -> Path:
    """A throwaway project folder with params.yaml naming one folder dataset of the given videos."""
    project = tmp_path / "project"
    project.mkdir()
    _folder_dataset(project, videos, "clips")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = {"clips": {"kind": "folder", "path": "clips"}}
    params["extract"]["detect_frames"] = 4
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return project


def test_killed_run_leaves_no_partial_video_and_resumes(tmp_path, media):
    project = _project(tmp_path, media["videos"])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = ["--params", str(project / "params.yaml"), "--dataset", "clips"]
    subprocess.run([sys.executable, "-m", "stages.register", *args], check=True, env=env, capture_output=True)
    frames = project / "data" / "frames" / "clips"
    proc = subprocess.Popen([sys.executable, "-m", "stages.extract", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(frames.glob("*/meta.json")):
        time.sleep(0.05)
    # Wait for the second video to be mid-write, then kill -9.
    while time.time() < deadline and not any(p.name.startswith(".tmp-") for p in frames.iterdir()):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [p for p in frames.iterdir() if not p.name.startswith(".tmp-")]
    assert 1 <= len(finished) < 3
    for video_dir in finished:  # whatever carries a final name is complete
        meta = json.loads((video_dir / "meta.json").read_text())
        assert len(list(video_dir.glob("*.png"))) == meta["n_frames"]
    rerun = subprocess.run([sys.executable, "-m", "stages.extract", *args], env=env, capture_output=True,
                           text=True)
    assert rerun.returncode == 0, rerun.stderr
    # which videos this run redid is run history: the untracked log (pipeline/core/runlog.py), not the report
    report = json.loads((project / "logs" / "extract" / "clips.json").read_text())
    assert report["counts"]["reused"] == len(finished)
    assert report["counts"]["processed"] == 3 - len(finished)
    assert not [p for p in frames.iterdir() if p.name.startswith(".tmp-")]
    assert len(read_video_list(project / "data" / "registry" / "clips.json", project)) == 3
