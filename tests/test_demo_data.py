"""The generated demo dataset: layout, determinism, ground truth that agrees with the pixels, MediaPipe finds
the figure, and idempotent re-runs."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.core.labels import ATR, ATR_LABELS, BODY25
from pipeline.demo_data import generate_demo_dataset, measure_pose_detection, plan_clip, read_video
from pipeline.demo_data.render import render_background

N_CLIPS, N_FRAMES = 6, 4        # one clip per motion, a few frames each: fast but covers every code path
H, W = 256, 192


@pytest.fixture(scope="module")
def demo_a(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_a")
    generate_demo_dataset(out, n_clips=N_CLIPS, n_frames=N_FRAMES, seed=0)
    return out


@pytest.fixture(scope="module")
def demo_b(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_b")
    generate_demo_dataset(out, n_clips=N_CLIPS, n_frames=N_FRAMES, seed=0)
    return out


def _manifest(out: Path) -> dict:
    return json.loads((out / "demo.json").read_text())


def _labels(out: Path, clip: str) -> np.ndarray:
    """(n_frames, H, W) uint8 label maps of a clip."""
    files = sorted((out / "ground_truth" / clip / "parsing").glob("*.png"))
    return np.stack([np.asarray(Image.open(f)) for f in files])


def _files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def test_layout_shapes_and_dtypes(demo_a):
    manifest = _manifest(demo_a)
    assert manifest["seed"] == 0 and manifest["generator_version"]
    clips = manifest["clips"]
    assert len(clips) == N_CLIPS
    assert len({c["motion"] for c in clips}) == N_CLIPS, "each default clip should show a different motion"
    assert {c["appearance"]["bottom"] for c in clips} == {"pants", "skirt"}
    scales = [c["scale"] for c in clips]
    assert all(0.55 <= s <= 0.9 for s in scales) and max(scales) - min(scales) > 0.15
    for clip in clips:
        name = clip["name"]
        assert re.fullmatch(r"[a-z0-9_]+", name), name
        frames = read_video(demo_a / "videos" / f"{name}.mp4")
        assert len(frames) == N_FRAMES and all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
        kp = np.load(demo_a / "ground_truth" / name / "keypoints.npy")
        assert kp.dtype == np.float32 and kp.shape == (N_FRAMES, 25, 3)
        assert set(np.unique(kp[..., 2])) <= {0.0, 1.0}
        pngs = sorted((demo_a / "ground_truth" / name / "parsing").glob("*.png"))
        assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(N_FRAMES)]
        with Image.open(pngs[0]) as im:
            assert im.mode == "L" and im.size == (W, H)
        assert clip["frames"] == N_FRAMES and clip["background"]["wall_top"]


def test_same_seed_gives_identical_outputs(demo_a, demo_b):
    files_a, files_b = _files(demo_a), _files(demo_b)
    assert [p.relative_to(demo_a) for p in files_a] == [p.relative_to(demo_b) for p in files_b]
    for fa, fb in zip(files_a, files_b):
        if fa.suffix in (".png", ".npy", ".json"):
            assert fa.read_bytes() == fb.read_bytes(), fa.relative_to(demo_a)
    for video in (demo_a / "videos").glob("*.mp4"):
        frames_a, frames_b = read_video(video), read_video(demo_b / "videos" / video.name)
        assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b, strict=True)), video.name


def test_different_seed_differs(demo_a, tmp_path):
    generate_demo_dataset(tmp_path, n_clips=2, n_frames=N_FRAMES, seed=1)
    for clip in _manifest(tmp_path)["clips"]:
        name = clip["name"]
        kp_0 = np.load(demo_a / "ground_truth" / name / "keypoints.npy")
        kp_1 = np.load(tmp_path / "ground_truth" / name / "keypoints.npy")
        assert np.abs(kp_0[..., :2] - kp_1[..., :2]).max() > 5.0
        f0 = read_video(demo_a / "videos" / f"{name}.mp4")[0].astype(int)
        f1 = read_video(tmp_path / "videos" / f"{name}.mp4")[0].astype(int)
        assert np.abs(f0 - f1).mean() > 10.0


def test_labels_are_valid_atr_and_cover_a_person(demo_a):
    seen = set()
    for clip in _manifest(demo_a)["clips"]:
        labels = _labels(demo_a, clip["name"])
        assert labels.max() < len(ATR_LABELS)
        seen |= set(np.unique(labels).tolist())
        person = (labels > 0).mean(axis=(1, 2))
        assert np.all((person > 0.03) & (person < 0.5)), person
        bottom = ATR[clip["appearance"]["bottom"]]
        assert (labels == bottom).any(axis=(1, 2)).all()
    expected = {"background", "hair", "face", "upper_clothes", "skirt", "pants", "left_shoe", "right_shoe",
                "left_arm", "right_arm", "left_leg", "right_leg"}
    assert {ATR[n] for n in expected} <= seen


def test_label_map_agrees_with_pixels(demo_a):
    """Background-labelled pixels show the empty scene; face pixels are skin-coloured; person pixels are not
    the scene."""
    manifest = _manifest(demo_a)
    for index, clip in enumerate(manifest["clips"]):
        plan = plan_clip(index, manifest["seed"], N_FRAMES, H, W, manifest["fps"])
        plate = render_background(plan["background"], H, W)
        skin = np.array(clip["appearance"]["skin"], float)
        clothes = [np.array(clip["appearance"][k], float) for k in ("top", "bottom_colour", "hair")]
        frames = read_video(demo_a / "videos" / f"{clip['name']}.mp4")
        labels = _labels(demo_a, clip["name"])
        for frame, lab in zip(frames, labels):
            diff = np.abs(frame.astype(float) - plate).mean(axis=2)
            person = lab > 0
            # Stay 3 px away from the outline: anti-aliasing and mp4 compression blur the edge.
            near = cv2.dilate(person.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            assert np.median(diff[~near]) < 4.0
            assert np.median(diff[cv2.erode(person.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0]) > 15.0

            face = cv2.erode((lab == ATR["face"]).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert face.sum() >= 10
            median = np.median(frame[face].astype(float), axis=0)
            ratio = median / skin
            # Shading scales all channels alike, so the face keeps the skin's hue.
            assert 0.45 < ratio.mean() < 1.25 and ratio.max() - ratio.min() < 0.25, (clip["name"], median, skin)
            assert np.linalg.norm(median - skin * ratio.mean()) < min(np.linalg.norm(median - c) for c in clothes)


def test_body_parts_are_stacked_head_to_feet(demo_a):
    """In image rows: head above the top, the top above the bottom garment, the bottom above the shoes."""
    for clip in _manifest(demo_a)["clips"]:
        bottom = ATR[clip["appearance"]["bottom"]]
        for lab in _labels(demo_a, clip["name"]):
            rows = np.arange(H)[:, None] * np.ones((1, W))
            head = np.median(rows[np.isin(lab, [ATR["hair"], ATR["face"]])])
            top = np.median(rows[lab == ATR["upper_clothes"]])
            low = np.median(rows[lab == bottom])
            shoes = np.median(rows[np.isin(lab, [ATR["left_shoe"], ATR["right_shoe"]])])
            assert head < top < low < shoes, (clip["name"], head, top, low, shoes)


def test_left_and_right_are_the_persons_own(demo_a):
    """A person facing the camera has their left arm, leg, shoe and keypoints on the image's right."""
    clip = next(c for c in _manifest(demo_a)["clips"] if c["motion"] == "jumping_jacks")
    assert abs(clip["knobs"]["yaw"]) < 0.3
    kp = np.load(demo_a / "ground_truth" / clip["name"] / "keypoints.npy")
    for joint in ("shoulder", "hip", "ankle"):
        assert np.all(kp[:, BODY25[f"l_{joint}"], 0] > kp[:, BODY25[f"r_{joint}"], 0])
    cols = np.arange(W)[None, :] * np.ones((H, 1))
    for lab in _labels(demo_a, clip["name"]):
        for left, right in (("left_arm", "right_arm"), ("left_leg", "right_leg"), ("left_shoe", "right_shoe")):
            if (lab == ATR[left]).sum() > 20 and (lab == ATR[right]).sum() > 20:
                assert cols[lab == ATR[left]].mean() > cols[lab == ATR[right]].mean(), left


def test_visible_keypoints_lie_on_the_person(demo_a):
    core = [BODY25[n] for n in ("neck", "mid_hip", "l_shoulder", "r_shoulder", "l_hip", "r_hip", "nose")]
    for clip in _manifest(demo_a)["clips"]:
        kp = np.load(demo_a / "ground_truth" / clip["name"] / "keypoints.npy")
        for f, lab in enumerate(_labels(demo_a, clip["name"])):
            person = cv2.dilate((lab > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0   # 2 px tolerance
            visible = kp[f, :, 2] > 0
            assert visible.sum() >= 15, clip["name"]
            assert kp[f, core, 2].mean() >= 0.8
            x, y = np.round(kp[f, visible, 0]).astype(int), np.round(kp[f, visible, 1]).astype(int)
            assert np.all((0 <= x) & (x < W) & (0 <= y) & (y < H))
            assert person[y, x].all(), (clip["name"], f, np.flatnonzero(visible)[~person[y, x]])
    # The figure stays whole in frame: nothing of the person touches the border.
    for clip in _manifest(demo_a)["clips"]:
        lab = _labels(demo_a, clip["name"])
        border = np.concatenate([lab[:, 0], lab[:, -1], lab[:, :, 0], lab[:, :, -1]], axis=1)
        assert (border == 0).all(), clip["name"]


def test_mediapipe_finds_the_figure(tmp_path):
    pytest.importorskip("mediapipe")
    generate_demo_dataset(tmp_path, n_clips=2, n_frames=8, seed=0)
    result = measure_pose_detection(tmp_path)
    # Measured on the default 6 x 32 dataset: 100% of frames detected, ~6 px mean joint error.
    for name, stats in result["clips"].items():
        assert stats["frames"] == 8
        assert stats["detection_rate"] >= 0.7, (name, stats)
        assert stats["mean_error_px"] is not None and stats["mean_error_px"] < 15.0, (name, stats)


def test_rerun_does_no_work_and_cleans_up_a_killed_run(tmp_path):
    first = generate_demo_dataset(tmp_path, n_clips=2, n_frames=3, seed=0)
    assert first["skipped"] == [] and len(first["generated"]) == 2
    stamps = {p: p.stat().st_mtime_ns for p in _files(tmp_path)}

    # A killed run leaves its temp folder behind; the next run removes it and touches nothing finished.
    leftover = tmp_path / f".tmp_{first['generated'][0]}"
    (leftover / "gt").mkdir(parents=True)
    (leftover / "gt" / "half_written.png").write_bytes(b"\x89PNG")
    again = generate_demo_dataset(tmp_path, n_clips=2, n_frames=3, seed=0)
    assert again["generated"] == [] and again["skipped"] == first["generated"]
    assert not leftover.exists()
    assert {p: p.stat().st_mtime_ns for p in _files(tmp_path)} == stamps

    # An incomplete clip (its mp4 never moved into place) is regenerated, and only that one.
    name = first["generated"][1]
    parsing = (tmp_path / "ground_truth" / name / "parsing" / "00000.png").read_bytes()
    (tmp_path / "videos" / f"{name}.mp4").unlink()
    shutil.rmtree(tmp_path / "ground_truth" / name / "parsing")
    third = generate_demo_dataset(tmp_path, n_clips=2, n_frames=3, seed=0)
    assert third["generated"] == [name]
    assert (tmp_path / "ground_truth" / name / "parsing" / "00000.png").read_bytes() == parsing
    assert len(read_video(tmp_path / "videos" / f"{name}.mp4")) == 3
