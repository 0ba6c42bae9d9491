"""Issue 16 item 2 (training): a checkpoint is never deleted because settings changed. Execution settings (worker
count, device, amp, rank count) do not invalidate resume; a checkpoint made under other maths is moved aside to
``<stage>/superseded-<fingerprint>/`` with its loss log, byte for byte."""
from __future__ import annotations

import json

import torch
import yaml

from pipeline.core.params import load_params
from pipeline.training.resume import move_aside, run_fingerprint
from pipeline.training.runner import train_network
from tests.test_train import make_project, tiny_shards  # noqa: F401  (fixture)

torch.set_num_threads(1)


def _edit(root, **train):
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(train)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return load_params(root / "params.yaml")


def test_execution_settings_do_not_change_the_fingerprint(tmp_path, tiny_shards):  # noqa: F811
    root = make_project(tmp_path / "p", tiny_shards)
    base = run_fingerprint(load_params(root / "params.yaml"), "m", 1)
    assert run_fingerprint(_edit(root, num_workers=7, device="auto", amp=False), "m", 4) == base
    assert run_fingerprint(_edit(root, lr=1e-3), "m", 1) != base
    assert run_fingerprint(load_params(root / "params.yaml"), "other-manifest", 1) != run_fingerprint(
        load_params(root / "params.yaml"), "m", 1)


def test_changed_workers_resume_and_changed_maths_moves_the_run_aside(tmp_path, tiny_shards):  # noqa: F811
    root = make_project(tmp_path / "p", tiny_shards, steps_per_epoch=1, checkpoint_every=1,
                        epochs={"layout": 2, "region": 1, "wcn": 1})
    first = train_network("layout", load_params(root / "params.yaml"), root)
    stage_dir = root / "models" / "layout"
    assert first.steps == 2
    # more epochs and another worker count: the same run continues
    params = _edit(root, num_workers=1, epochs={"layout": 3, "region": 1, "wcn": 1})
    second = train_network("layout", params, root)
    assert second.resumed_from == 2 and second.steps == 3
    saved = {p.name: p.read_bytes() for p in stage_dir.glob("step-*/modules.safetensors")}
    saved_names = sorted(p.name for p in stage_dir.glob("step-*"))
    log = (stage_dir / "losses.jsonl").read_bytes()
    old_fp = json.loads((stage_dir / sorted(saved_names)[-1] / "state.json").read_text())["meta"]["fingerprint"]
    # another learning rate changes the maths: a fresh run, the old one kept intact beside it
    third = train_network("layout", _edit(root, lr=1e-3, num_workers=0), root)
    assert third.resumed_from is None and third.steps == 3
    aside = stage_dir / f"superseded-{old_fp}"
    assert sorted(p.name for p in aside.glob("step-*")) == saved_names
    assert (aside / "losses.jsonl").read_bytes() == log and (aside / "latest.json").is_file()
    assert {p.name: p.read_bytes() for p in aside.glob("step-*/modules.safetensors")} == saved
    assert len(list(stage_dir.glob("step-*"))) >= 1  # the new run's own checkpoints


def test_move_aside_never_merges_into_an_older_superseded_folder(tmp_path):
    stage = tmp_path / "layout"
    for round_ in range(2):
        (stage / "step-000001").mkdir(parents=True)
        (stage / "step-000001" / "x").write_text(str(round_))
        (stage / "losses.jsonl").write_text(f"{round_}\n")
        move_aside(stage, "abc")
    assert (stage / "superseded-abc" / "step-000001" / "x").read_text() == "0"
    assert (stage / "superseded-abc-2" / "step-000001" / "x").read_text() == "1"
    assert move_aside(stage, "abc") is None  # nothing left to move
