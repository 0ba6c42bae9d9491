"""Bad inputs across the whole preprocessing DAG: one folder dataset mixing good videos (the shared footage) with
a corrupt mp4, a zero-byte file, text named .mp4, a single-frame video, a video without a person, a 2160x3840
video, and grayscale and RGBA frame folders goes through the real stages register -> extract -> pose -> parse ->
layout -> flow -> shards. Every unusable input is named in the right report with its reason, the usable ones
reach data/shards; and registering a wrongly laid out iPER dataset fails clearly without touching params.yaml."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from tests._fault_helpers import check_tar

ROOT = Path(__file__).resolve().parents[1]
DATASET = "mixed"
N_FRAMES = 8
GOOD_FOLDERS = ("grey_frames", "rgba_frames")
UNREADABLE = ("corrupt", "zero_bytes", "not_a_video")


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), path
    for frame in frames:
        writer.write(frame)
    writer.release()


def _stage(module: str, project: Path, *, dataset: bool = True) -> int:
    """Run one stage's real CLI entry point in this process (saves an interpreter + MediaPipe start per stage)."""
    import importlib

    argv = ["--params", str(project / "params.yaml")] + (["--dataset", DATASET] if dataset else [])
    return importlib.import_module(f"stages.{module}").main(argv)


@pytest.fixture(scope="module")
def dag(tmp_path_factory, media) -> dict:
    torch.set_num_threads(1)
    project = tmp_path_factory.mktemp("bad_inputs")
    inputs = project / "inputs"
    inputs.mkdir()
    good = [shutil.copy(v, inputs / v.name) for v in media["videos"][:2]]
    real = [cv2.imread(str(p)) for p in sorted(media["frame_folders"][0].glob("*.png"))[:N_FRAMES]]
    rng = np.random.default_rng(0)
    (inputs / "corrupt.mp4").write_bytes(rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    (inputs / "zero_bytes.mp4").write_bytes(b"")
    (inputs / "not_a_video.mp4").write_text("this is a text file with a video extension\n")
    _write_video(inputs / "single_frame.mp4", real[:1])
    _write_video(inputs / "no_person.mp4", [np.full((256, 192, 3), (200, 120, 40), np.uint8)] * N_FRAMES)
    # 2160 wide x 3840 high, a real person upscaled (portrait, like the footage).
    _write_video(inputs / "huge.mp4", [cv2.resize(f, (2160, 3840), interpolation=cv2.INTER_LINEAR)
                                       for f in real[:N_FRAMES]])
    for name in GOOD_FOLDERS:
        (inputs / name).mkdir()
    for k, frame in enumerate(real):
        cv2.imwrite(str(inputs / "grey_frames" / f"{k:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        rgba = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)
        rgba[..., 3] = 255 - 8 * k  # a real, varying alpha channel
        cv2.imwrite(str(inputs / "rgba_frames" / f"{k:05d}.png"), rgba)
    assert cv2.imread(str(inputs / "rgba_frames" / "00000.png"), cv2.IMREAD_UNCHANGED).shape[2] == 4

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = {DATASET: {"kind": "folder", "path": "inputs", "test_ratio": 0.2, "seed": 0}}
    params["extract"].update(detect_frames=4, max_frames=N_FRAMES, min_frames=N_FRAMES)
    params["flow"].update(backend="dis")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    codes = {}
    for stage in ("register", "extract", "pose", "parse", "layout", "flow"):
        codes[stage] = _stage(stage, project)
    codes["shards"] = _stage("shards", project, dataset=False)
    reports = {stage: json.loads((project / "reports" / stage / f"{DATASET}.json").read_text())
               for stage in ("register", "extract", "pose", "parse", "layout", "flow")}
    reports["shards"] = json.loads((project / "reports" / "shards.json").read_text())
    # run history (which videos this run processed) is in the untracked run logs
    logs = {stage: json.loads((project / "logs" / stage / f"{DATASET}.json").read_text())
            for stage in ("extract", "pose", "parse", "layout", "flow")}
    good_ids = sorted([p.stem.lower() for p in good] + ["huge", *GOOD_FOLDERS])
    return {"project": project, "inputs": inputs, "codes": codes, "reports": reports, "logs": logs, "good": good_ids}


def test_every_stage_succeeds_on_the_mixed_dataset(dag):
    assert dag["codes"] == dict.fromkeys(("register", "extract", "pose", "parse", "layout", "flow", "shards"), 0)


def test_unreadable_files_are_named_by_register_and_extract(dag):
    inputs, problems = dag["inputs"], dag["reports"]["register"]["problems"]
    for name in UNREADABLE:
        assert any(p.startswith(f"{inputs / name}.mp4: ") and "cannot decode" in p for p in problems), (name, problems)
    assert len(problems) == len(UNREADABLE), problems  # the odd-but-usable inputs are not flagged
    skipped = dag["reports"]["extract"]["skipped"]
    for name in UNREADABLE:
        reason = skipped[f"{DATASET}/{name}"]
        assert f"{name}.mp4: OpenCV cannot open it" in reason or "no frames could be decoded" in reason, reason


def test_short_and_empty_videos_are_skipped_with_their_reason(dag):
    skipped = dag["reports"]["extract"]["skipped"]
    assert "only 1 frames" in skipped[f"{DATASET}/single_frame"]
    assert f"at least {N_FRAMES} are needed" in skipped[f"{DATASET}/single_frame"]
    assert "no person found" in skipped[f"{DATASET}/no_person"]
    assert sorted(skipped) == sorted(f"{DATASET}/{n}" for n in (*UNREADABLE, "single_frame", "no_person"))


def test_every_extract_skip_reason_names_its_input_file(dag):
    for key, reason in dag["reports"]["extract"]["skipped"].items():
        name = key.split("/", 1)[1]
        # named relative to the project (tracked reports hold no absolute path)
        relative = (dag["inputs"] / f"{name}.mp4").relative_to(dag["project"]).as_posix()
        assert relative in reason and str(dag["project"]) not in reason, (key, reason)


def test_odd_but_usable_inputs_go_through_every_stage_to_the_shards(dag):
    project, good = dag["project"], dag["good"]
    reports = dag["reports"]
    assert sorted(k.split("/", 1)[1] for k in reports["extract"]["videos"]) == good
    assert sorted(k.split("/", 1)[1] for k in dag["logs"]["extract"]["processed"]) == good
    for stage in ("pose", "parse", "layout", "flow"):
        assert sorted(k.split("/", 1)[1] for k in reports[stage]["videos"]) == good, stage
        assert sorted(k.split("/", 1)[1] for k in dag["logs"][stage]["processed"]) == good, stage
        assert not reports[stage]["skipped"], (stage, reports[stage]["skipped"])
    frames = project / "data" / "frames" / DATASET
    huge = json.loads((frames / "huge" / "meta.json").read_text())
    assert huge["source_size"] == [3840, 2160] and huge["n_frames"] == N_FRAMES
    for name in ("huge", *GOOD_FOLDERS):
        image = cv2.imread(str(frames / name / "00000.png"), cv2.IMREAD_UNCHANGED)
        assert image.shape == (256, 192, 3), (name, image.shape)
    grey = cv2.imread(str(frames / "grey_frames" / "00003.png"))
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    # Shards: exactly the usable videos, all windows, every tar complete.
    assert not reports["shards"]["skipped"]
    shards = project / "data" / "shards"
    manifest = pq.read_table(shards / "manifest.parquet").to_pylist()
    assert sorted({r["video"] for r in manifest}) == good
    assert len(manifest) == len(good) * 3  # 8 frames, windows of 3 at stride 2
    for tar in shards.glob("*/*.tar"):
        assert len(check_tar(tar)) % 10 == 0


def test_registering_an_iper_dataset_without_its_lists_fails_and_leaves_params_alone(dag, tmp_path):
    project = dag["project"]
    bad = tmp_path / "iPER"
    (bad / "images_HD" / "001" / "1" / "1").mkdir(parents=True)
    shutil.copy(next(dag["inputs"].glob("grey_frames/*.png")), bad / "images_HD" / "001" / "1" / "1" / "00000.png")
    before = (project / "params.yaml").read_bytes()
    remot = Path(sys.executable).with_name("remot")
    command = [str(remot)] if remot.exists() else [sys.executable, "-m", "pipeline.cli"]
    result = subprocess.run([*command, "--params", str(project / "params.yaml"), "dataset", "add", "iper_bad",
                             str(bad), "--kind", "iper"], capture_output=True, text=True, cwd=project)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "train.txt and val.txt" in result.stderr and str(bad) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert (project / "params.yaml").read_bytes() == before
