"""Profiles as DVC experiments (pipeline/profiles): the -S overrides reproduce the merged profile params exactly
when DVC applies them, the weights are found inside `dvc exp run --temp` copies, per-stage wall times come from
DVC's output, and the Prefect flow refuses an unknown profile name."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from pipeline.core.errors import RemotError
from pipeline.core.params import Params
from pipeline.profiles import PROFILES, WEIGHTS_PARAMS, absolute_weights, merge, profile_params
from pipeline.profiles import experiment
from pipeline.profiles.overrides import apply_with_dvc, check_overrides, hydra_value, to_overrides

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", PROFILES)
def test_overrides_reproduce_each_profile_exactly(name):
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    want = profile_params(name, ROOT / "params.yaml")
    got = apply_with_dvc(ROOT / "params.yaml", to_overrides(base, want))
    assert got == want
    if name != "demo":
        assert got != base  # the profile changed something, so the comparison above is not vacuous


def test_overrides_replace_datasets_whole_and_survive_awkward_strings(tmp_path):
    params = tmp_path / "params.yaml"
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["datasets"]["mine"] = {"kind": "folder", "path": "/videos/mine", "test_ratio": 0.5, "seed": 3}
    params.write_text(yaml.safe_dump(base, sort_keys=False))
    tricky = ["it's", "back\\slash\\", "${not.an.interpolation}", " spaced ", "true", "1", "null", "a:b=c", ""]
    want = merge(base, {"datasets": {"demo": {"kind": "folder", "path": "data/raw/demo/videos"}},
                        "train": {"lr": 0.0005, "steps_per_epoch": None, "epochs": {"layout": 6}},
                        "merge": {"classes": {**base["merge"]["classes"], "head": ["hat", "hair", "sunglasses", "face"]}},
                        "extra": {"strings": tricky, "nested": {"deep": 1.5}}, "limits": {}})
    overrides = to_overrides(base, want)
    assert "~datasets.mine" in overrides
    assert apply_with_dvc(params, overrides) == want


def test_a_value_dvc_would_write_back_otherwise_is_refused_before_running(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  lr: 0.0002\n")
    want = {"train": {"lr": 5e-05}}  # ruamel writes 5e-05, which PyYAML reads as a string
    with pytest.raises(RemotError, match=r"train\.lr.*5e-05"):
        check_overrides(params, to_overrides({"train": {"lr": 0.0002}}, want), want, "test profile")


def test_hydra_values_are_quoted_strings_and_plain_scalars():
    assert hydra_value("true") == "'true'" and hydra_value(True) == "true" and hydra_value(None) == "null"
    assert hydra_value([1, "a"]) == "[1,'a']"
    with pytest.raises(RemotError, match="backslash"):
        hydra_value("a\\${b}")


def test_every_weights_param_is_listed_and_made_absolute(tmp_path):
    sections = {name: field.annotation for name, field in Params.model_fields.items()}
    named = {(name, key) for name, section in sections.items() if isinstance(section, type)
             and issubclass(section, BaseModel) for key in section.model_fields if key.endswith("_weights")}
    assert named == set(WEIGHTS_PARAMS)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["flow"]["raft_weights"] = "/elsewhere/raft.pth"
    del params["evaluate"]["lpips_weights"]  # the schema's default is relative too
    out = absolute_weights(params, tmp_path)
    assert out["parse"]["schp_weights"] == str(tmp_path.resolve() / "models/pretrained/schp/exp-schp-201908301523-atr.pth")
    assert out["evaluate"]["lpips_weights"] == str(tmp_path.resolve() / "models/pretrained/lpips")
    assert out["flow"]["raft_weights"] == "/elsewhere/raft.pth"
    assert params["parse"]["schp_weights"].startswith("models/")  # the input is not modified


def test_weights_copy_paths_name_the_ignored_files_not_the_readmes(tmp_path):
    for network in ("schp", "flownet2"):
        (tmp_path / "models/pretrained" / network).mkdir(parents=True)
        (tmp_path / "models/pretrained" / network / "README.md").write_text("x")
    (tmp_path / "models/pretrained/flownet2/FlowNet2_checkpoint.pth.tar").write_bytes(b"w")
    (tmp_path / "models/pretrained/schp/extra").mkdir()
    assert experiment.weights_copy_paths(tmp_path) == ["models/pretrained/flownet2/FlowNet2_checkpoint.pth.tar",
                                                       "models/pretrained/schp/extra"]


def test_stage_timings_come_from_dvc_output_lines():
    ticks = iter([0.0, 1.0, 5.0, 6.0, 6.5, 9.0, 20.0, 21.0])
    lines = ["Running stage 'demo_data':\n", "> python -m stages.demo_data\n", "Updating lock file 'dvc.lock'\n",
             "Stage 'register@demo' didn't change, skipping\n", "Running stage 'extract@demo':\n",
             "some output\n", "Updating lock file 'dvc.lock'\n", "Ran experiment(s): learn\n"]
    assert experiment.stage_timings(lines, clock=lambda: next(ticks)) == {"demo_data": 5.0, "extract@demo": 13.5}


def test_prefect_flow_refuses_an_unknown_profile():
    from prefect.exceptions import ParameterTypeError

    from pipeline.orchestration.flow import remot

    with pytest.raises(ParameterTypeError):
        remot.validate_parameters({"profile": "nope"})
    assert remot.validate_parameters({"profile": "learn"}) == {"profile": "learn"}
    with pytest.raises(RemotError, match="unknown profile 'nope'.*demo, learn, paper"):
        remot.fn(profile="nope")


def _project_copy(repo: Path) -> None:
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)


@pytest.mark.slow
def test_a_profile_runs_as_a_dvc_experiment_and_uses_the_weights_in_models_pretrained(tmp_path):
    """The learn profile, shrunk to 1 clip of 8 frames at 64x48, up to flow@demo in a throw-away clone: a fake
    official-format FlowNet2 checkpoint (git-ignored, in models/pretrained/flownet2/) reaches the stage inside
    DVC's temporary copy, the report records FlowNet2, the experiment's dvc.lock hashes the checkpoint as part of
    the weights folder, and the workspace is untouched."""
    from tests.test_flow import cheap_flownet2_state

    import torch

    repo = tmp_path / "project"
    _project_copy(repo)
    learn = repo / "pipeline/profiles/learn.yaml"
    tiny = merge(yaml.safe_load(learn.read_text()), {
        "demo": {"n_clips": 1, "n_frames": 8}, "extract": {"height": 64, "width": 48, "detect_frames": 2},
        "shards": {"window": 4}, "train": {"warmup_frames": 0},  # extraction keeps clips of a window or more
        "datasets": {"demo": {"kind": "folder", "path": "data/raw/demo/videos", "test_ratio": 0.0, "seed": 0}}})
    learn.write_text(yaml.safe_dump(tiny, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "REMOT_TORCH_THREADS": "1"}
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "project"]):
        subprocess.run(command, cwd=repo, env=env, check=True)
    weights = repo / "models/pretrained/flownet2/FlowNet2_checkpoint.pth.tar"
    torch.save({"epoch": 0, "state_dict": cheap_flownet2_state(), "best_EPE": 1e10}, weights)
    params_before = (repo / "params.yaml").read_bytes()

    done = subprocess.run([sys.executable, "-m", "pipeline.profiles", "learn", "--until", "flow@demo"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "-C models/pretrained/flownet2/FlowNet2_checkpoint.pth.tar" in done.stdout

    assert (repo / "params.yaml").read_bytes() == params_before
    assert not (repo / "data").exists()  # the stages ran in DVC's temporary copy
    rev = experiment.experiment_rev(repo, "learn")
    assert rev is not None
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(repo), rev=rev)
    report = json.loads(fs.read_text("reports/flow/demo.json"))
    print(json.dumps(report)[:3000])
    assert "flownet2" in json.dumps(report)
    lock = yaml.safe_load(fs.read_text("dvc.lock"))
    deps = {d["path"]: d for d in lock["stages"]["flow@demo"]["deps"]}
    assert deps["models/pretrained/flownet2"]["nfiles"] == 2  # README.md and the checkpoint
    exp_params = yaml.safe_load(fs.read_text("params.yaml"))
    assert exp_params == merge(yaml.safe_load(params_before), tiny)  # exactly the profile's params
    shown = subprocess.run(["dvc", "exp", "show", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    assert '"learn"' in shown.stdout


class _FakeExperimentFS:
    """The part of dvc.api.DVCFileSystem that publish() uses, over a dict of the experiment's files."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def exists(self, path: str) -> bool:
        return path in self.files or any(f.startswith(path + "/") for f in self.files)

    def isfile(self, path: str) -> bool:
        return path in self.files

    def read_bytes(self, path: str) -> bytes:
        return self.files[path]

    def ls(self, path: str, detail: bool = False) -> list[str]:
        return sorted({path + "/" + f[len(path) + 1:].split("/")[0] for f in self.files if f.startswith(path + "/")})

    def find(self, path: str) -> list[str]:
        return sorted(f for f in self.files if f.startswith(path + "/"))


def test_publish_copies_the_experiments_results_and_drops_stale_samples(tmp_path, monkeypatch):
    import dvc.api

    files = {"metrics/eval.json": b'{"e": 1}', "metrics/summary.json": b'{"s": 1}',
             "metrics/perception.json": b'{"stale": 1}',  # not a stage of a profile run: not published
             "plots/train/layout.csv": b"step\n1\n", "reports/eval/samples/a__self.mp4": b"mp4",
             "reports/eval/samples/a__self.json": b"{}"}
    monkeypatch.setattr(dvc.api, "DVCFileSystem", lambda root, rev: _FakeExperimentFS(files))
    old = tmp_path / "plots/learn/samples/gone__self.mp4"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    experiment.publish(tmp_path, "learn", "abc123", {"train_wcn": 61.04}, 125.0)
    assert (tmp_path / "metrics/learn/eval.json").read_bytes() == b'{"e": 1}'
    assert (tmp_path / "metrics/learn/summary.json").exists()
    assert not (tmp_path / "metrics/learn/perception.json").exists()
    assert (tmp_path / "plots/learn/layout.csv").read_bytes() == b"step\n1\n"
    assert sorted(p.name for p in (tmp_path / "plots/learn/samples").iterdir()) == ["a__self.mp4"]
    wall = json.loads((tmp_path / "metrics/learn/wall_time.json").read_text())
    assert wall["experiment_rev"] == "abc123" and wall["stages_seconds"] == {"train_wcn": 61.0}
    assert wall["total_minutes"] == 2.08
