"""The DVC training stages in a throw-away git repo: `dvc repro` runs train_layout, train_region and train_wcn
(the WCN after the Region GAN), `dvc exp run -S train.lr=...` re-trains, `dvc metrics diff` reports the change,
and an ablation can be queued (`dvc exp run --queue -S model.tam=false`)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.test_train import tiny_shards  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def sh(cwd: Path, env: dict, *args: str) -> str:
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_dvc_repro_experiment_and_metrics_diff(tiny_shards, tmp_path):  # noqa: F811
    repo = tmp_path / "repo"
    for package in ("pipeline", "remot_models", "stages"):
        shutil.copytree(ROOT / package, repo / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(tiny_shards, repo / "data" / "shards")
    shutil.copytree(ROOT / "models" / "pretrained" / "vgg19", repo / "models" / "pretrained" / "vgg19")  # a dep
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(epochs={"layout": 1, "region": 1, "wcn": 1}, steps_per_epoch=2, checkpoint_every=2,
                           num_workers=0, device="cpu")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {k: v for k, v in stages.items()
                                                              if k.startswith("train_")}}, sort_keys=False))
    (repo / ".gitignore").write_text("__pycache__/\n/models/*/step-*\n/models/*/latest.json\n"
                                     "/models/*/losses.jsonl\n/models/*/.tmp-*\n")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x", "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(repo)}
    sh(repo, env, "git", "init", "-q")
    sh(repo, env, "dvc", "init", "-q")
    sh(repo, env, "dvc", "config", "core.analytics", "false")
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-qm", "project")

    sh(repo, env, "dvc", "repro")
    for stage in ("layout", "region", "wcn"):
        assert (repo / "models" / stage / "final" / "modules.safetensors").is_file()
        assert json.loads((repo / "metrics" / f"train_{stage}.json").read_text())["steps"] == 2
    assert "train_wcn" in sh(repo, env, "dvc", "dag")
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-qm", "baseline")
    assert "up to date" in sh(repo, env, "dvc", "status").lower()

    sh(repo, env, "dvc", "exp", "run", "train_layout", "-S", "train.lr=0.001")
    # training files are plain outputs (only metrics/summary.json is a metrics file): named as targets
    diff = json.loads(sh(repo, env, "dvc", "metrics", "diff", "--json", "--targets", "metrics/train_layout.json",
                         "metrics/train_region.json"))
    changed = diff["metrics/train_layout.json"]
    assert changed["final_losses.g_total"]["old"] != changed["final_losses.g_total"]["new"]
    assert "metrics/train_region.json" not in diff or not any(
        v.get("diff") for k, v in diff["metrics/train_region.json"].items() if k.startswith("final_losses"))
    shown = sh(repo, env, "dvc", "exp", "show", "--json")
    assert "0.001" in shown

    sh(repo, env, "dvc", "exp", "run", "--queue", "-S", "model.tam=false")
    assert "Queued" in sh(repo, env, "dvc", "queue", "status")
