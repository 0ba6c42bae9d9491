"""The real DAG under `dvc repro` in a throwaway git repo: every preprocessing stage on small generated data,
then adding one video re-processes only that video, and changing an extract parameter re-processes all."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))
PREPROCESSING = ["shards", "perception_metrics"]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", DVC_NO_ANALYTICS="1", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _set_params(project: Path, **sections) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _report(project: Path, stage: str) -> dict:
    """What the last run of ``stage`` processed / reused: its untracked run log (pipeline/core/runlog.py)."""
    return json.loads((project / "logs" / stage / "demo.json").read_text())["counts"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("dvc_project")
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    for folder in ("pipeline", "stages", "remot_models", "models/pretrained"):  # the weights' folders: DVC deps
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pth*"))
    _set_params(project, demo={"n_clips": 2, "n_frames": 10}, extract={"detect_frames": 4})
    _run(["git", "init", "-q"], project)
    _run([DVC, "init", "-q"], project)
    _run([DVC, "config", "core.analytics", "false"], project)
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "init"], project)
    _run([DVC, "repro", *PREPROCESSING], project)
    return project


def test_whole_dag_runs_and_is_then_up_to_date(project):
    for stage in ("extract", "pose", "parse", "layout", "flow"):
        assert _report(project, stage)["processed"] == 2, stage
    shards = sorted(p.relative_to(project / "data" / "shards") for p in (project / "data" / "shards").rglob("*.tar"))
    assert {p.parts[0] for p in shards} == {"train", "test"}
    summary = json.loads((project / "metrics" / "shards.json").read_text())
    assert summary["train"]["samples"] + summary["test"]["samples"] == 2 * 4  # windows of 3, stride 2, 10 frames
    perception = json.loads((project / "metrics" / "perception.json").read_text())
    assert perception["parser"] == ["offline-mediapipe-geometry-v1"] and perception["schp"].startswith("not measured")
    assert perception["layout_miou"] > 0.5 and perception["pose_pck@0.1"] > 0.5  # sanity, not quality: see metrics
    assert perception["pose_detection_rate"] >= 0.9 and perception["pose_excluded_videos"] == 0
    assert sorted(p.name for p in (project / "reports" / "qa" / "demo").glob("*.png")) == [
        "demo_00_walk.png", "demo_01_wave.png"]
    status = _run([DVC, "status", *PREPROCESSING], project)
    assert "up to date" in status.stdout
    # Weights are dependencies of exactly the stages they change: a FlowNet2 file makes flow@demo stale, and
    # only it (parse, which the SCHP folder feeds, and everything upstream stay up to date).
    weights = project / "models" / "pretrained" / "flownet2" / "FlowNet2_checkpoint.pth.tar"
    weights.write_bytes(b"stand-in: dvc status only hashes it")
    try:
        stale = _run([DVC, "status", "--with-deps", *PREPROCESSING], project).stdout
        assert "flow@demo:" in stale and "models/pretrained/flownet2" in stale, stale
        assert not any(f"{stage}@demo:" in stale for stage in ("extract", "pose", "parse", "layout")), stale
    finally:
        weights.unlink()
    assert "up to date" in _run([DVC, "status", "--with-deps", *PREPROCESSING], project).stdout


def _splits(project: Path) -> dict[str, str]:
    rows = json.loads((project / "data" / "registry" / "demo.json").read_text())["videos"]
    return {row["video"]: row["split"] for row in rows}


def test_adding_a_video_processes_only_that_video(project):
    tars = {p: p.stat().st_mtime_ns for p in (project / "data" / "shards").rglob("*.tar")}
    before = _splits(project)
    _set_params(project, demo={"n_clips": 3})
    _run([DVC, "repro", *PREPROCESSING], project)
    for stage in ("extract", "pose", "parse", "layout", "flow"):
        counts = _report(project, stage)
        assert (counts["processed"], counts["reused"]) == (1, 2), (stage, counts)
    # Shards: the new video, plus any video the hash split moved to the other split, and nothing else.
    after = _splits(project)
    moved = {video for video, split in before.items() if after[video] != split}
    rewritten = {path.split("__", 1)[1].rsplit("-", 1)[0] for path in
                 json.loads((project / "logs" / "shards" / "shards.json").read_text())["written"]}
    assert "demo_02_jumping_jacks" in rewritten and rewritten <= {"demo_02_jumping_jacks", *moved}
    unchanged = [p for p in tars if not any(v in p.name for v in moved)]
    assert unchanged and all(p.stat().st_mtime_ns == tars[p] for p in unchanged)


def test_changing_an_extract_parameter_reprocesses_all(project):
    _set_params(project, extract={"margin": 0.1})
    _run([DVC, "repro", "extract@demo"], project)
    assert _report(project, "extract")["processed"] == 3
