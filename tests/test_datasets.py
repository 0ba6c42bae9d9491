"""Dataset adapters on small trees built from real footage; path safety; `remot dataset add/check`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.params import DatasetSpec
from pipeline.datasets import DatasetError, probe_readable, scan_dataset
from pipeline.datasets.folder import split_by_hash

ROOT = Path(__file__).resolve().parents[1]


def _copy_frames(src: Path, dst: Path, n: int = 10) -> None:
    dst.mkdir(parents=True)
    for frame in sorted(src.glob("*.png"))[:n]:
        shutil.copy(frame, dst / frame.name)


def test_iper_official_lists(tmp_path, media):
    root = tmp_path / "iPER"
    folders, videos = media["frame_folders"], media["videos"]
    _copy_frames(folders[0], root / "images_HD" / "001" / "1" / "1")
    _copy_frames(folders[1], root / "images_HD" / "001" / "1" / "2")
    (root / "iPER_256_video_release").mkdir(parents=True)
    shutil.copy(videos[2], root / "iPER_256_video_release" / "002_1_1.mp4")
    (root / "train.txt").write_text("001/1/1\n002/1/1\n")
    (root / "val.txt").write_text("001/1/2\n003/1/1\n../../etc/passwd\n")
    scan = scan_dataset("iper", DatasetSpec(kind="iper", path=str(root)))
    by_id = {v.video: v for v in scan.videos}
    assert set(by_id) == {"001__1__1", "002__1__1", "001__1__2"}
    assert by_id["001__1__1"].split == "train" and by_id["001__1__1"].is_frame_folder
    assert by_id["002__1__1"].split == "train" and not by_id["002__1__1"].is_frame_folder
    assert by_id["001__1__2"].split == "test"
    assert scan.split_counts() == {"train": 2, "val": 0, "test": 1}
    assert any("003/1/1" in p and "neither a frame folder nor an mp4" in p for p in scan.problems)
    assert any("outside the dataset root" in p for p in scan.problems)  # the ../../ entry is refused


def test_iper_without_lists_is_refused(tmp_path):
    (tmp_path / "images_HD").mkdir()
    with pytest.raises(DatasetError, match="train.txt and val.txt"):
        scan_dataset("iper", DatasetSpec(kind="iper", path=str(tmp_path)))


def test_solodance_layout(tmp_path, media):
    root = tmp_path / "SoloDance"
    _copy_frames(media["frame_folders"][0], root / "train" / "dance_a")
    _copy_frames(media["frame_folders"][1], root / "train" / "dance_b" / "images")
    _copy_frames(media["frame_folders"][2], root / "test" / "dance_c")
    (root / "test" / "empty_one").mkdir()
    scan = scan_dataset("solo", DatasetSpec(kind="solodance", path=str(root)))
    assert {(v.video, v.split) for v in scan.videos} == {("dance_a", "train"), ("dance_b", "train"),
                                                         ("dance_c", "test")}
    assert scan.frame_count() == 30
    assert any("empty_one" in p for p in scan.problems)
    (root / "test").rename(root / "testing")
    with pytest.raises(DatasetError, match="missing test"):
        scan_dataset("solo", DatasetSpec(kind="solodance", path=str(root)))


def test_folder_tree_split_and_safety(tmp_path, media):
    root = tmp_path / "mine"
    (root / "bob").mkdir(parents=True)
    shutil.copy(media["videos"][0], root / "alice.dance.mp4")
    shutil.copy(media["videos"][1], root / "bob" / "warmup.mp4")
    _copy_frames(media["frame_folders"][2], root / "carol_take1")
    (root / "notes.txt").write_text("not a video")
    outside = tmp_path / "outside.mp4"
    shutil.copy(media["videos"][0], outside)
    os.symlink(outside, root / "escape.mp4")
    spec = DatasetSpec(kind="folder", path=str(root), test_ratio=0.34, seed=3)
    scan = scan_dataset("mine", spec)
    ids = {v.video for v in scan.videos}
    assert ids == {"alice_dance", "bob__warmup", "carol_take1"}  # dots never reach an id
    assert any("outside the dataset root" in p for p in scan.problems)
    assert scan.split_counts() == {"train": 2, "val": 0, "test": 1}
    again = scan_dataset("mine", spec)
    assert [(v.video, v.split) for v in again.videos] == [(v.video, v.split) for v in scan.videos]


def test_split_by_hash_is_seeded_and_ratioed():
    ids = [f"v{i}" for i in range(20)]
    a, b = split_by_hash(ids, 0.25, 0), split_by_hash(ids, 0.25, 1)
    assert sum(s == "test" for s in a.values()) == 5
    assert a == split_by_hash(list(reversed(ids)), 0.25, 0)
    assert a != b


def test_unreadable_video_is_a_problem(tmp_path, media):
    root = tmp_path / "mixed"
    root.mkdir()
    shutil.copy(media["videos"][0], root / "good.mp4")
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video")
    scan = scan_dataset("mixed", DatasetSpec(kind="folder", path=str(root)))
    probe_readable(scan)
    assert len(scan.videos) == 3
    bad = [p for p in scan.problems if "cannot decode" in p]
    assert len(bad) == 2 and any("zero.mp4" in p for p in bad) and any("text.mp4" in p for p in bad)


def test_cli_dataset_add_and_check(tmp_path, media):
    project = tmp_path / "project"
    project.mkdir()
    params = project / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    root = project / "clips"
    root.mkdir()
    for video in media["videos"]:
        shutil.copy(video, root / video.name)
    cli = [sys.executable, "-m", "pipeline.cli", "--params", str(params)]
    added = subprocess.run(cli + ["dataset", "add", "clips", "clips", "--kind", "folder"], capture_output=True,
                           text=True)
    assert added.returncode == 0, added.stderr
    assert "videos: 3" in added.stdout and "problems: 0" in added.stdout
    text = params.read_text()
    assert "# remot parameters." in text  # comments survive the edit
    assert yaml.safe_load(text)["datasets"]["clips"] == {"kind": "folder", "path": "clips"}
    checked = subprocess.run(cli + ["dataset", "check", "clips"], capture_output=True, text=True)
    assert checked.returncode == 0 and "splits: train 2, val 0, test 1" in checked.stdout
    wrong = subprocess.run(cli + ["dataset", "add", "iper", "clips", "--kind", "iper"], capture_output=True,
                           text=True)
    assert wrong.returncode == 2 and "train.txt and val.txt" in wrong.stderr
    assert "iper" not in yaml.safe_load(params.read_text())["datasets"]  # nothing written on failure
    missing = subprocess.run(cli + ["dataset", "check", "nope"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no dataset 'nope'" in missing.stderr
