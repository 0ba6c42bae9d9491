"""params.yaml is validated once by one schema; errors name the key and what it accepts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.params import ParamsError, load_params, validate_params

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert params.extract.height == 256 and params.extract.width == 192
    assert "demo" in params.datasets


def test_misspelt_key_is_named_with_suggestion():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["extract"]["heigth"] = raw["extract"].pop("height")
    with pytest.raises(ParamsError) as err:
        validate_params(raw)
    message = str(err.value)
    assert "extract.heigth: unknown key" in message
    assert "did you mean 'height'" in message
    assert "width" in message  # lists the allowed keys


def test_unknown_section_and_wrong_type_and_literal():
    with pytest.raises(ParamsError) as err:
        validate_params({"extrct": {}, "pose": {"model_complexity": 5}, "extract": {"height": "tall"}})
    message = str(err.value)
    assert "extrct: unknown key" in message and "did you mean 'extract'" in message
    assert "pose.model_complexity" in message and "0, 1 or 2" in message
    assert "extract.height" in message and "tall" in message


def test_dataset_entry_is_checked():
    with pytest.raises(ParamsError) as err:
        validate_params({"datasets": {"Bad.Name": {"kind": "folder", "path": "x"}}})
    assert "Bad.Name" in str(err.value)
    with pytest.raises(ParamsError) as err:
        validate_params({"datasets": {"mine": {"kind": "youtube", "path": "x"}}})
    assert "datasets.mine.kind" in str(err.value) and "'iper', 'solodance' or 'folder'" in str(err.value)
    with pytest.raises(ParamsError) as err:
        validate_params({"datasets": {"mine": {"kind": "folder", "path": "x", "ratio": 0.2}}})
    assert "datasets.mine.ratio: unknown key" in str(err.value) and "test_ratio" in str(err.value)


def test_landscape_crop_refused():
    with pytest.raises(ParamsError, match="must not exceed extract.height"):
        validate_params({"extract": {"height": 192, "width": 256}})


def test_merge_map_is_validated():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["merge"]["classes"]["limbs"].remove("left_leg")
    with pytest.raises(ParamsError, match="left_leg"):
        validate_params(raw)


def test_cli_params_check(tmp_path):
    good = subprocess.run([sys.executable, "-m", "pipeline.cli", "--params", str(ROOT / "params.yaml"),
                           "params", "check"], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "params.yaml"
    bad.write_text("shards:\n  windw: 3\n")
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "--params", str(bad), "params", "check"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "shards.windw: unknown key" in result.stderr and "window" in result.stderr
    assert "Traceback" not in result.stderr
