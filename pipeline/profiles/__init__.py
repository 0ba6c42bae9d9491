"""Named run profiles: ``params.yaml`` with a profile's values on top, run in a root folder of its own.

* ``demo`` - params.yaml as committed (``make demo``: every stage in minutes, nothing learnt).
* ``learn`` - the CPU learning run (``make learn``): 2 cores, at most 60 minutes, REMOT learns enough to
  beat the copy-source and GAM-only baselines on the demo test split.
* ``paper`` - the paper's recipe for GPU machines (256x192, vid2vid-sized networks, 10 epochs per stage).

``python -m pipeline.profiles NAME`` writes ``data/runs/NAME/params.yaml`` (the merged params; paths in it are
relative to that folder, so all its data, checkpoints, metrics and plots land there) and runs the DVC stages'
commands in the order of ``dvc.yaml`` with ``--params`` pointing at it. Every stage is incremental and training
resumes, so a killed run continues where it stopped. At the end the small results (metrics, loss curves, sample
grids, the evaluation's sample videos and the wall time per stage) are copied to ``metrics/NAME/`` and
``plots/NAME/``, which the project commits and ``dvc.yaml`` lists as metrics and plots.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import RemotError

PROFILE_DIR = Path(__file__).resolve().parent
PROFILES = ("demo", "learn", "paper")


def overlay(name: str) -> dict[str, Any]:
    """The values profile ``name`` sets on top of params.yaml."""
    if name not in PROFILES:
        raise RemotError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text()) or {}


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``top`` replaces. ``datasets`` is replaced whole
    (a profile names exactly the datasets it runs on)."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "datasets":
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def profile_params(name: str, params_file: Path) -> dict[str, Any]:
    """params.yaml (``params_file``) with profile ``name`` on top, validated by the params schema."""
    from pipeline.core.params import validate_params

    merged = merge(yaml.safe_load(Path(params_file).read_text()), overlay(name))
    validate_params(merged, f"{params_file} + profile {name}")
    return merged
