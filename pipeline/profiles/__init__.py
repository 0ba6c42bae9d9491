"""Named run profiles: ``params.yaml`` with a profile's values on top, run as a DVC experiment.

* ``demo`` - params.yaml as committed (``make demo``: every stage in minutes, nothing learnt).
* ``learn`` - the CPU learning run (``make learn``): 2 cores, at most 60 minutes, REMOT learns enough to
  beat the copy-source and GAM-only baselines on the demo test split.
* ``paper`` - the paper's recipe for GPU machines (256x192, vid2vid-sized networks, 10 epochs per stage).

``python -m pipeline.profiles NAME`` runs ``dvc exp run --temp -n NAME`` with the profile's values as ``-S``
overrides and the git-ignored pretrained weights copied in with ``-C`` (``pipeline/profiles/experiment.py``), so
the run is the experiment ``NAME`` in ``dvc exp show``, its outputs are in DVC's cache and the workspace is not
touched. At the end the small results (metrics, loss curves, sample grids, the evaluation's sample videos and the
wall time per stage) are read from the experiment into ``metrics/NAME/`` and ``plots/NAME/``, which the project
commits and ``dvc.yaml`` lists as metrics and plots.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import RemotError

PROFILE_DIR = Path(__file__).resolve().parent
PROFILES = ("demo", "learn", "paper")
# Every params key naming pretrained weights (a file or a folder): relative to the project root, or absolute.
WEIGHTS_PARAMS = (("parse", "schp_weights"), ("flow", "flownet2_weights"), ("flow", "raft_weights"),
                  ("train", "vgg19_weights"), ("evaluate", "lpips_weights"), ("evaluate", "inception_weights"))


def check_profile(name: str) -> str:
    """``name`` if it is a profile; else a :class:`RemotError` listing the profiles."""
    if name not in PROFILES:
        raise RemotError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)} (pipeline/profiles/)")
    return name


def overlay(name: str) -> dict[str, Any]:
    """The values profile ``name`` sets on top of params.yaml."""
    check_profile(name)
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


def absolute_weights(params: dict[str, Any], root: Path) -> dict[str, Any]:
    """``params`` with every relative weights path made absolute against ``root``, the project root: for params
    written into another folder, whose stages resolve relative paths against that folder."""
    from pipeline.core.params import Params

    defaults = Params().model_dump()
    out = copy.deepcopy(params)
    for section, key in WEIGHTS_PARAMS:
        value = (out.get(section) or {}).get(key, defaults[section][key])
        if isinstance(value, str) and not Path(value).is_absolute():
            out.setdefault(section, {})[key] = str(Path(root).resolve() / value)
    return out
