"""DVC remote storage against a local-directory remote: `dvc push` from one git+DVC project, `git clone` +
`dvc pull` into a fresh folder, which must then be up to date (nothing re-runs), and the pulled shards must
stream into training through `pipe:cat <path>` URLs."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", DVC_NO_ANALYTICS="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _tar_hashes(project: Path) -> dict[str, str]:
    shards = project / "data" / "shards"
    return {p.relative_to(shards).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(shards.glob("*/*.tar"))}


@pytest.fixture(scope="module")
def pushed(tmp_path_factory) -> dict[str, Path]:
    """A project that ran `dvc repro shards` on 2 demo clips x 10 frames, committed, and pushed to a local
    remote; plus a `git clone` of it that ran `dvc pull`."""
    base = tmp_path_factory.mktemp("dvc_remote")
    project = base / "origin"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    for folder in ("pipeline", "stages", "remot_models", "models/pretrained"):  # the weights' folders: DVC deps
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pth*"))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["demo"].update(n_clips=2, n_frames=10)
    params["extract"].update(detect_frames=4)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], project)
    _run([DVC, "init", "-q"], project)
    _run([DVC, "config", "core.analytics", "false"], project)
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "init"], project)
    _run([DVC, "repro", "shards"], project)
    _run([DVC, "remote", "add", "-d", "local", str(base / "remote")], project)
    _run(["git", "add", "-A"], project)  # dvc.lock, .dvc/config and whatever git is meant to carry
    _run(["git", "commit", "-qm", "repro shards"], project)
    push = _run([DVC, "push"], project)
    clone = base / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], base)
    # Only the preprocessing ran, so only its outputs have hashes: pull `shards` and everything upstream of it
    # (a bare `dvc pull` also tries the never-run train_* outputs and fails on them).
    pull = _run([DVC, "pull", "--with-deps", "shards"], clone)
    return {"project": project, "clone": clone, "remote": base / "remote", "push": push, "pull": pull}


def test_push_then_pull_restores_identical_shards(pushed):
    project, clone, remote = pushed["project"], pushed["clone"], pushed["remote"]
    assert (remote / "files" / "md5").is_dir() and any((remote / "files" / "md5").rglob("*"))
    original = _tar_hashes(project)
    assert original and {k.split("/")[0] for k in original} == {"train", "test"}
    assert _tar_hashes(clone) == original
    # The per-video outputs came along too (the clone holds the whole cached DAG, not only the shards).
    for folder in ("frames/demo", "pose/demo", "layout/demo", "flow/demo", "background/demo"):
        assert any((clone / "data" / folder).iterdir()), folder
    assert (clone / "data" / "shards" / "manifest.parquet").read_bytes() == \
        (project / "data" / "shards" / "manifest.parquet").read_bytes()


def test_clone_after_pull_is_up_to_date_and_nothing_reruns(pushed):
    clone = pushed["clone"]
    status = _run([DVC, "status", "--with-deps", "shards"], clone)
    assert "up to date" in status.stdout, status.stdout
    repro = _run([DVC, "repro", "shards"], clone)
    assert "Running stage" not in repro.stdout, repro.stdout


def test_clone_data_is_complete_without_the_reports(pushed):
    """What `dvc status` says besides the reports: every cached output and every dependency is unchanged."""
    clone = pushed["clone"]
    status = json.loads(_run([DVC, "status", "--with-deps", "shards", "--json"], clone).stdout or "{}")
    problems = []
    for stage, entries in status.items():
        for entry in entries:
            if isinstance(entry, dict):
                for kind, changes in entry.items():
                    for path, change in changes.items() if isinstance(changes, dict) else []:
                        if not path.startswith("reports/"):
                            problems.append((stage, kind, path, change))
            else:
                problems.append((stage, entry))
    assert not problems, problems


def test_training_reads_pulled_shards_through_pipe_urls(pushed):
    import torch

    from pipeline.shards.reader import make_loader

    torch.set_num_threads(1)
    clone = pushed["clone"]
    shards = clone / "data" / "shards"
    manifest = pq.read_table(shards / "manifest.parquet").to_pylist()
    seen = []
    for split in ("train", "test"):
        urls = [f"pipe:cat {p}" for p in sorted((shards / split).glob("*.tar"))]
        assert urls, split
        loader = make_loader(urls, batch_size=2, shuffle_buffer=0, allow_shell_urls=True)  # our own trusted URLs
        for batch in loader:
            b = batch["frames"].shape[0]
            assert batch["frames"].shape[1:] == (3, 3, 256, 192) and batch["frames"].dtype == torch.float32
            assert float(batch["frames"].min()) >= -1.0 and float(batch["frames"].max()) <= 1.0
            assert batch["layouts"].shape == (b, 3, 6, 256, 192)
            assert torch.allclose(batch["layouts"].sum(dim=2), torch.ones(b, 3, 256, 192))
            assert batch["flow"].shape == (b, 3, 2, 256, 192) and torch.isfinite(batch["flow"]).all()
            for meta in batch["meta"]:
                assert meta["url"].startswith("pipe:cat ") and meta["split"] == split
                seen.append(meta["key"])
    assert sorted(seen) == sorted(row["key"] for row in manifest)
