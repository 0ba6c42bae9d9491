"""Fault tolerance: kill -9 in the middle of the flow, shards and training stages and re-run; the disk filling up
while a shard or a checkpoint is being written. Whatever carries a final name must be complete and loadable, the
re-run must finish the rest (training from its last checkpoint), and a full disk must leave the previous outputs
intact with a clear ENOSPC error."""
from __future__ import annotations

import errno
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import load_file

from pipeline.core import checkpoint as ckpt
from pipeline.core.artifacts import frame_name
from pipeline.core.params import load_params
from pipeline.shards.reader import make_loader
import pipeline.shards.writer as shards_module
from pipeline.shards.writer import collect_video, write_manifest, write_shards
from pipeline.training.runner import StoppedEarly, read_log, train_network
from tests._fault_helpers import (check_npz, check_tar, full_disk_os, kill_when, run_stage_cli, small_tmpfs,
                                  start_stage, temporaries)
from tests.test_shards import fabricate_video, tar_stamps
from tests.test_train import build_shards, make_project

torch.set_num_threads(1)


def _write_params(project: Path, **sections) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    params = {"datasets": {"clips": {"kind": "folder", "path": "clips"}}, **sections}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return project / "params.yaml"


# ------------------------------------------------------------------------------------------------ flow


@pytest.fixture(scope="module")
def flow_project(tmp_path_factory, footage_clips) -> Path:
    """A project whose data/frames/clips holds 6 extracted videos (10 real 256x192 frames each)."""
    project = tmp_path_factory.mktemp("flow_kill")
    _write_params(project, flow={"backend": "dis", "dis_preset": "medium"})
    clips = list(footage_clips.values())
    for i in range(6):
        out = project / "data" / "frames" / "clips" / f"v{i}"
        out.mkdir(parents=True)
        frames = sorted(clips[i % len(clips)].glob("*.png"))[(i // len(clips)) * 10:][:10]
        for k, frame in enumerate(frames):
            shutil.copy(frame, out / frame_name(k))
        (out / "meta.json").write_text(json.dumps({
            "dataset": "clips", "video": f"v{i}", "split": "train", "fps": 25.0, "n_frames": len(frames),
            "input_sha256": f"sha-{i}", "params_hash": "test"}))
    return project


@pytest.fixture(scope="module")
def flow_killed(flow_project) -> dict:
    """Kill -9 the flow stage once two videos are finished (ideally while the third writes its npz), look at
    what is on disk, then re-run it to the end."""
    import os

    args = ["--params", str(flow_project / "params.yaml"), "--dataset", "clips"]
    out = flow_project / "data" / "flow" / "clips"
    two_done: list[float] = []

    def mid_write() -> bool:
        names = os.listdir(out) if out.is_dir() else []
        if not two_done:
            if sum(1 for n in names if n.endswith(".npz") and not n.startswith(".tmp-")) >= 2:
                two_done.append(time.time())
            return False
        return any(n.startswith(".tmp-") for n in names) or time.time() - two_done[0] > 0.3

    killed = kill_when(start_stage("stages.flow", *args), mid_write)
    state = {"killed": killed, "out": out,
             "stamped": sorted(p.name.removesuffix(".stamp.json") for p in out.glob("*.stamp.json")),
             "finished": sorted(p.stem for p in out.glob("*.npz")),
             "loaded": {p.stem: check_npz(p) for p in out.glob("*.npz")}}  # raises on a truncated npz
    state["rerun"] = run_stage_cli("stages.flow", *args)
    state["report"] = json.loads((flow_project / "logs" / "flow" / "clips.json").read_text())  # run history
    state["tracked_report"] = json.loads((flow_project / "reports" / "flow" / "clips.json").read_text())
    return state


def test_flow_killed_mid_run_leaves_only_complete_npz_and_the_rerun_finishes(flow_killed):
    assert flow_killed["killed"], "the flow stage finished before the kill"
    assert 2 <= len(flow_killed["finished"]) < 6
    for arrays in flow_killed["loaded"].values():  # anything under a final name is complete
        assert arrays["flow"].dtype == np.float16 and arrays["flow"].shape == (10, 2, 256, 192)
        assert arrays["valid"].shape == (10, 1, 256, 192)
    rerun, report, out = flow_killed["rerun"], flow_killed["report"], flow_killed["out"]
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert report["counts"]["processed"] + report["counts"]["reused"] == 6 and not report["counts"]["skipped"]
    assert flow_killed["tracked_report"]["counts"] == {"ok": 6, "skipped": 0}
    assert not temporaries(out)
    for i in range(6):
        arrays = check_npz(out / f"v{i}.npz")
        assert np.isfinite(arrays["flow"].astype(np.float32)).all()
        assert str(arrays["backend"]).startswith("opencv-dis")
    assert sorted(p.name for p in out.glob("*.stamp.json")) == [f"v{i}.stamp.json" for i in range(6)]


def test_flow_rerun_after_a_kill_redoes_only_unfinished_videos(flow_killed):
    finished, stamped, report = flow_killed["finished"], flow_killed["stamped"], flow_killed["report"]
    assert len(stamped) >= len(finished) - 1, (finished, stamped)  # at most the video being written lacks one
    assert sorted(report["reused"]) == [f"clips/{n}" for n in stamped] and report["counts"]["reused"] >= 1
    assert report["counts"]["processed"] == 6 - len(stamped)


# ------------------------------------------------------------------------------------------------ shards


def _shard_inputs(data_root: Path) -> None:
    """6 fabricated videos (4 train, 2 test), 14 frames of 256x192 each, every artefact present."""
    for i in range(6):
        fabricate_video(data_root, "clips", f"v{i}", "train" if i < 4 else "test", n_frames=14, height=256,
                        width=192, offset=5 * i, speed=1 + i % 3)


@pytest.fixture(scope="module")
def shard_project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("shards_kill")
    _write_params(project, shards={"window": 3, "stride": 2, "max_samples_per_shard": 2, "seed": 0})
    _shard_inputs(project / "data")
    return project


def test_shards_killed_mid_run_never_expose_a_truncated_tar(shard_project, tmp_path):
    args = ["--params", str(shard_project / "params.yaml")]
    out = shard_project / "data" / "shards"
    first_tar: list[float] = []

    def mid_write() -> bool:
        if not first_tar:
            if out.is_dir() and any(out.glob("*/*.tar")):
                first_tar.append(time.time())
            return False
        return bool(temporaries(out)) or time.time() - first_tar[0] > 0.3

    assert kill_when(start_stage("stages.shards", *args), mid_write), "the shards stage finished before the kill"
    partial = sorted(out.glob("*/*.tar"))
    assert partial and len(partial) < 18  # 6 videos x 6 windows, 2 per tar -> 3 tars each
    for tar in partial:
        assert check_tar(tar)
    if shards_module.index_path(out).exists():
        json.loads(shards_module.index_path(out).read_text())

    rerun = run_stage_cli("stages.shards", *args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not temporaries(out)
    # The resumed result is byte-identical to an uninterrupted run.
    reference = tmp_path / "reference"
    shutil.copytree(shard_project / "data", reference, ignore=shutil.ignore_patterns("shards"))
    write_shards([collect_video(a) for a in shards_module.find_videos(reference)], reference / "shards", 3, 2, 2, 0)
    assert {k: v[0] for k, v in tar_stamps(out).items()} == {k: v[0] for k, v in tar_stamps(reference / "shards").items()}
    assert len(tar_stamps(out)) == 18
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len(manifest) == 6 * 6
    assert sum(len(check_tar(tar)) for tar in out.glob("*/*.tar")) == 6 * 6 * 10  # samples x 10 fields
    for split in ("train", "test"):
        keys = [m["key"] for batch in make_loader(out, split, shuffle_buffer=0) for m in batch["meta"]]
        assert sorted(keys) == sorted(r["key"] for r in manifest if r["split"] == split)


def _two_videos(data_root: Path) -> list:
    arts = [fabricate_video(data_root, "ds", f"v{i}", "train", n_frames=10, offset=3 * i, speed=i + 1)
            for i in range(2)]
    return [collect_video(a) for a in arts]


def _assert_previous_shards_intact(out: Path, before: dict[str, tuple[str, int]], changed_ok: dict[str, str]) -> None:
    """Every tar is complete and either its previous bytes or (for ``changed_ok``) the new run's bytes."""
    assert not temporaries(out)
    now = tar_stamps(out)
    assert set(now) == set(before)
    for rel, (sha, _mtime) in now.items():
        assert sha == before[rel][0] or sha == changed_ok.get(rel), rel
        check_tar(out / rel)
    index = json.loads(shards_module.index_path(out).read_text())
    assert set(index["videos"]) == {"ds__v0", "ds__v1"}
    keys = [m["key"] for batch in make_loader(out, "train", shuffle_buffer=0) for m in batch["meta"]]
    assert len(keys) == 2 * 4


def test_disk_full_while_writing_a_shard_keeps_previous_shards(tmp_path, monkeypatch):
    videos = _two_videos(tmp_path / "data")
    out = tmp_path / "shards"
    write_shards(videos, out, 3, 2, 64, seed=0)
    before = tar_stamps(out)
    # What seed 1 would write (its source frames differ), to recognise v0's replaced tar below.
    new = tmp_path / "new"
    write_shards(videos, new, 3, 2, 64, seed=1)
    after = {rel: sha for rel, (sha, _) in tar_stamps(new).items()}
    assert after["train/ds__v0-000000.tar"] != before["train/ds__v0-000000.tar"][0]
    # The disk fills up half-way through v1's tar: v0's new tar fits.
    budget = (new / "train" / "ds__v0-000000.tar").stat().st_size + 5000
    monkeypatch.setattr(shards_module, "os", full_disk_os(out, budget))
    with pytest.raises(OSError) as err:
        write_shards(videos, out, 3, 2, 64, seed=1)
    assert err.value.errno == errno.ENOSPC and "ds__v1-000000.tar" in str(err.value.filename)
    _assert_previous_shards_intact(out, before, {"train/ds__v0-000000.tar": after["train/ds__v0-000000.tar"]})
    assert tar_stamps(out)["train/ds__v1-000000.tar"][0] == before["train/ds__v1-000000.tar"][0]
    monkeypatch.undo()
    # The manifest write (pipeline.core.atomic) hitting a full disk leaves the previous manifest too.
    report = write_shards(videos, out, 3, 2, 64, seed=0)
    write_manifest(report, out / "manifest.parquet")
    manifest = (out / "manifest.parquet").read_bytes()
    import pipeline.core.atomic as atomic_module

    monkeypatch.setattr(atomic_module, "os", full_disk_os(out, 100))
    with pytest.raises(OSError, match="No space left"):
        write_manifest(report, out / "manifest.parquet")
    monkeypatch.undo()
    assert (out / "manifest.parquet").read_bytes() == manifest and not temporaries(out)
    # With space again, the interrupted run completes.
    write_shards(videos, out, 3, 2, 64, seed=1)
    assert {rel: sha for rel, (sha, _) in tar_stamps(out).items()} == after


def test_real_full_tmpfs_while_writing_shards(tmp_path):
    videos = _two_videos(tmp_path / "data")
    with small_tmpfs(tmp_path / "mnt", "1m") as mnt:
        if mnt is None:
            pytest.skip("cannot mount a tmpfs here (needs root); the fake full disk above covers the logic")
        out = mnt / "shards"
        write_shards(videos, out, 3, 2, 64, seed=0)
        before = tar_stamps(out)
        tar_size = max((out / rel).stat().st_size for rel in before)
        # Fill the file system until only about half a tar still fits.
        import os

        stat = os.statvfs(mnt)
        free = stat.f_bavail * stat.f_frsize
        (mnt / "filler").write_bytes(b"\0" * max(0, free - tar_size // 2))
        with pytest.raises(OSError) as err:
            write_shards(videos, out, 3, 2, 64, seed=1)
        assert err.value.errno == errno.ENOSPC
        _assert_previous_shards_intact(out, before, {})
        (mnt / "filler").unlink()
        write_shards(videos, out, 3, 2, 64, seed=1)
        for rel in tar_stamps(out):
            check_tar(out / rel)


# ------------------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory) -> Path:
    return build_shards(tmp_path_factory.mktemp("fault-train-shards"))


def test_training_killed_mid_run_resumes_from_its_last_checkpoint(tiny_shards, tmp_path):
    root = make_project(tmp_path / "p", tiny_shards, checkpoint_every=1, keep_checkpoints=2,
                        epochs={"layout": 6, "region": 1, "wcn": 1})
    stage_dir = root / "models" / "layout"

    def past_step_3() -> bool:
        try:
            return json.loads((stage_dir / "latest.json").read_text())["step"] >= 3
        except (OSError, ValueError):
            return False

    assert kill_when(start_stage("stages.train_layout", "--params", str(root / "params.yaml")), past_step_3)
    latest = json.loads((stage_dir / "latest.json").read_text())
    assert 3 <= latest["step"] < 12 and not (stage_dir / "final").exists()
    folder = stage_dir / latest["dir"]
    assert json.loads((folder / "state.json").read_text())["step"] == latest["step"]
    for name in ("modules", "optimizers", "rng"):
        assert load_file(str(folder / f"{name}.safetensors"))

    rerun = run_stage_cli("stages.train_layout", "--params", str(root / "params.yaml"))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming from {folder}" in rerun.stdout
    metrics = json.loads((root / "metrics" / "train_layout.json").read_text())
    assert metrics["resumed_from_step"] == latest["step"] and metrics["steps"] == 12
    log = read_log(stage_dir / "losses.jsonl")
    assert [r["step"] for r in log] == list(range(1, 13))  # continues the killed run's log, no gap, no repeat
    assert not temporaries(stage_dir) and sorted(p.name for p in stage_dir.glob("step-*")) == [
        "step-000011", "step-000012"]


def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(tiny_shards, tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", tiny_shards)  # 6 steps, a checkpoint every 2
    stage_dir = root / "models" / "layout"
    real_save = ckpt.save_file
    calls = []

    def save_until_full(tensors, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 5:  # the optimizer file of the step-4 checkpoint: half of it fits
            real_save(tensors, filename, *args, **kwargs)
            data = Path(filename).read_bytes()
            Path(filename).write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", save_until_full)
    with pytest.raises(OSError) as err:
        train_network("layout", load_params(root / "params.yaml"), root)
    assert err.value.errno == errno.ENOSPC and "step-000004" in err.value.filename
    monkeypatch.undo()
    assert json.loads((stage_dir / "latest.json").read_text()) == {"step": 2, "dir": "step-000002"}
    assert sorted(p.name for p in stage_dir.iterdir() if p.is_dir()) == ["step-000002"]  # no partial folder
    from pipeline.training.steps import LayoutSteps
    from remot_models.config import ModelConfig

    steps = LayoutSteps(ModelConfig.from_profile("tiny"), torch.device("cpu"), 2e-4, (0.5, 0.999), False)
    scheds = {n: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0) for n, o in steps.optimizers.items()}
    assert ckpt.load_checkpoint(stage_dir / "step-000002", steps.modules, steps.optimizers, scheds).step == 2
    result = train_network("layout", load_params(root / "params.yaml"), root)
    assert result.resumed_from == 2 and result.steps == 6


def test_a_torn_loss_log_line_does_not_block_resume(tiny_shards, tmp_path):
    root = make_project(tmp_path / "p", tiny_shards)
    with pytest.raises(StoppedEarly):
        train_network("layout", load_params(root / "params.yaml"), root, stop_after=3)
    losses = root / "models" / "layout" / "losses.jsonl"
    with open(losses, "a") as handle:  # what a write cut short by a full disk or a crash leaves
        handle.write('{"step": 4, "epoch": 1, "g_to')
    result = train_network("layout", load_params(root / "params.yaml"), root)
    assert result.resumed_from == 2 and [r["step"] for r in read_log(losses)] == list(range(1, 7))
