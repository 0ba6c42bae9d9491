"""The preprocessing stages give byte-identical outputs in two clones at different paths (and at other times).

Two copies of the project's run files (params.yaml with a small demo profile) at different depths and names run
every preprocessing stage, demo_data to shards, as `dvc repro` does (``python -m stages.<stage>``). Every file
under the DVC outputs of those stages (dvc.yaml) must then be the same bytes in both, and none may hold the
copy's path. Untracked run facts (logs/, data/.cache/) may differ and are not compared.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = [("demo_data",), ("register", "--dataset", "demo"), ("extract", "--dataset", "demo"),
          ("pose", "--dataset", "demo"), ("parse", "--dataset", "demo"), ("layout", "--dataset", "demo"),
          ("flow", "--dataset", "demo"), ("perception_metrics", "--dataset", "demo"), ("shards",)]


def _tracked_outputs() -> list[str]:
    """Every out / metrics / plots path of the preprocessing stages in dvc.yaml, for the dataset ``demo``."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    paths = []
    for name in ("demo_data", "register", "extract", "pose", "parse", "layout", "flow", "perception_metrics",
                 "shards"):
        body = stages[name].get("do", stages[name])
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind, []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                paths.append(path.replace("${key}", "demo"))
    return paths


def _clone(target: Path) -> Path:
    target.mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["demo"].update(n_clips=3, n_frames=10)
    params["extract"].update(detect_frames=4)
    params["flow"].update(backend="dis")
    (target / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(ROOT / "stages", target / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _run_stages(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    for stage, *args in STAGES:
        result = subprocess.run([sys.executable, "-m", f"stages.{stage}", *args], cwd=project, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (stage, result.stderr[-2000:])


def _files(project: Path, paths: list[str]) -> dict[str, bytes]:
    found = {}
    for rel in paths:
        path = project / rel
        assert path.exists(), f"{rel} was not written"
        for file in sorted([path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())):
            found[file.relative_to(project).as_posix()] = file.read_bytes()
    return found


@pytest.mark.slow
def test_preprocessing_outputs_are_byte_identical_in_two_clones(tmp_path):
    paths = _tracked_outputs()
    first = _clone(tmp_path / "a" / "remot")
    second = _clone(tmp_path / "elsewhere" / "deeper" / "remot-copy")
    _run_stages(first)
    _run_stages(second)
    one, two = _files(first, paths), _files(second, paths)
    assert sorted(one) == sorted(two)
    assert len(one) > 100  # frames, poses, layouts, flows, tars, reports: the comparison is not vacuous
    differing = [rel for rel in one if one[rel] != two[rel]]
    assert not differing, differing
    for rel, data in one.items():
        for root in (str(first), str(second), str(tmp_path)):
            assert root.encode() not in data, f"{rel} holds the absolute path {root}"
    # The run facts that may differ did go somewhere: the untracked logs.
    assert (first / "logs" / "pose" / "demo.json").is_file()
