"""Pickle-free training checkpoints: tensors in safetensors, everything else in JSON.

One checkpoint is a folder::

    models/<network>/step-000123/
        modules.safetensors      every network's state_dict, keys "<module>.<param>" (generator., discriminator., ...)
        optimizers.safetensors   every tensor of every optimizer state, keys "<optimizer>/<param index>/<name>"
        rng.safetensors          torch CPU (and CUDA) generator states, numpy's MT19937 key array
        state.json               step, epoch, loader position, optimizer param groups and non-tensor state,
                                 scheduler states, python/numpy RNG scalars, and ``meta`` (git revision, params
                                 hash, data manifest hash, model config, backends)
    models/<network>/latest.json   {"step": 123, "dir": "step-000123"}: the newest complete checkpoint

Crash safety: a checkpoint is written into a temporary sibling folder (``.tmp-step-...``), renamed into place,
and only then is ``latest.json`` replaced (atomically). A kill at any moment leaves ``latest.json`` naming a
complete folder; leftover temporaries are removed at the next start. Nothing here calls ``torch.load``.
"""
from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from pipeline.core import atomic
from pipeline.core.errors import BadCheckpoint
from remot_models import LayoutGenerator, RegionGenerator, WholeCompositionNetwork
from remot_models.config import ModelConfig

LATEST = "latest.json"
FORMAT = 1


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


@dataclass
class TrainingState:
    """Counters that locate a run in its schedule. ``batches_in_epoch`` = batches of ``epoch`` already consumed
    (the loader is fast-forwarded by that many on resume); ``step`` = optimizer steps done in total."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ optimizers


def flatten_optimizer(name: str, state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors ``{"<name>/<param>/<key>": tensor}`` and a JSON index
    ``{"param_groups": ..., "scalars": {param: {key: number}}, "tensors": {param: [keys]}}``."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    tensor_keys: dict[str, list[str]] = {}
    for param, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{param}/{key}"] = value.detach().cpu().contiguous()
                tensor_keys.setdefault(str(param), []).append(key)
            else:
                scalars.setdefault(str(param), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars, "tensors": tensor_keys}


def unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], index: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer`: an ``optimizer.load_state_dict`` argument."""
    state: dict[int, dict[str, Any]] = {}
    for param, keys in index["tensors"].items():
        for key in keys:
            state.setdefault(int(param), {})[key] = tensors[f"{name}/{param}/{key}"]
    for param, entries in index["scalars"].items():
        state.setdefault(int(param), {}).update(entries)
    return {"state": state, "param_groups": index["param_groups"]}


# ------------------------------------------------------------------------------------------------ RNG


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every global RNG's state as (tensors, JSON-able scalars): torch CPU/CUDA, numpy, python ``random``."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).astype(np.int64))
    version, internal, gauss_next = random.getstate()
    scalars = {"numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
               "python": {"version": version, "state": list(internal), "gauss_next": gauss_next}}
    return tensors, scalars


def restore_rng(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda_"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][:torch.cuda.device_count()])
    n = scalars["numpy"]
    np.random.set_state((n["kind"], tensors["numpy_keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    p = scalars["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


# ------------------------------------------------------------------------------------------------ save / load


def save_checkpoint(network_dir: Path, state: TrainingState, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any],
                    keep: int = 3) -> Path:
    """Write ``network_dir/step-<step>/`` (temp folder + rename), then point ``latest.json`` at it; keep the
    newest ``keep`` step folders. Returns the checkpoint folder."""
    network_dir = Path(network_dir)
    final = network_dir / step_dir_name(state.step)
    with atomic.replace_dir(final) as tmp:
        write_checkpoint_files(tmp, state, modules, optimizers, schedulers)
    atomic.write_json(network_dir / LATEST, {"step": state.step, "dir": final.name})
    steps = sorted(p for p in network_dir.glob("step-*") if p.is_dir())
    for old in steps[:-keep] if keep > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def write_checkpoint_files(folder: Path, state: TrainingState, modules: dict[str, torch.nn.Module],
                           optimizers: dict[str, torch.optim.Optimizer], schedulers: dict[str, Any]) -> None:
    """The checkpoint files into an existing (empty) folder; see the module docstring."""
    weights = {f"{name}.{k}": v.detach().cpu().contiguous()
               for name, module in modules.items() for k, v in module.state_dict().items()}
    save_file(weights, str(folder / "modules.safetensors"))
    opt_tensors: dict[str, torch.Tensor] = {}
    opt_index: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        tensors, index = flatten_optimizer(name, optimizer.state_dict())
        opt_tensors.update(tensors)
        opt_index[name] = index
    save_file(opt_tensors, str(folder / "optimizers.safetensors"))
    rng_tensors, rng_scalars = capture_rng()
    save_file(rng_tensors, str(folder / "rng.safetensors"))
    atomic.write_json(folder / "state.json", {
        "format": FORMAT, "step": state.step, "epoch": state.epoch, "batches_in_epoch": state.batches_in_epoch,
        "modules": sorted(modules), "optimizers": opt_index,
        "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
        "rng": rng_scalars, "meta": state.meta,
    })


def latest_checkpoint(network_dir: Path) -> Path | None:
    """The folder ``latest.json`` names, or None when there is no complete checkpoint."""
    atomic.remove_stale_temps(network_dir)
    pointer = Path(network_dir) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(network_dir) / json.loads(pointer.read_text())["dir"]
    if not (folder / "state.json").is_file():
        raise BadCheckpoint(f"{pointer} names {folder}, which is missing or incomplete; delete {pointer} to "
                            "start its training afresh")
    return folder


def read_state(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "state.json"
    if not path.is_file():
        raise BadCheckpoint(f"{folder} is not a training checkpoint: {path.name} is missing")
    state = json.loads(path.read_text())
    meta = state.get("meta", {})
    # Checkpoints written before the trained network was called a network name it under "stage"; readers see
    # "network" either way, and the next save of a resumed run writes only the new key.
    if "stage" in meta and "network" not in meta:
        meta["network"] = meta.pop("stage")
    return state


def check_model_config(folder: Path, expected: dict[str, Any], what_to_run: str) -> None:
    """Raise :class:`BadCheckpoint` naming every ``model.*`` field on which ``folder``'s checkpoint differs."""
    saved = read_state(folder)["meta"].get("model_config", {})
    saved_profile = read_state(folder)["meta"].get("profile")
    diffs = [f"model.{k}: checkpoint {saved.get(k)!r} vs params {v!r}" for k, v in sorted(expected.items())
             if k in saved and saved[k] != v]
    if not diffs:
        return
    profile = f" (checkpoint profile {saved_profile!r})" if saved_profile else ""
    raise BadCheckpoint(f"{folder} was trained with a different model{profile}: " + "; ".join(diffs)
                        + f". Set these params back or retrain it: {what_to_run}")


def load_modules(folder: Path, modules: dict[str, torch.nn.Module], device: torch.device | str = "cpu") -> None:
    """Load ``modules.safetensors`` strictly into ``modules`` (by name prefix)."""
    path = Path(folder) / "modules.safetensors"
    if not path.is_file():
        raise BadCheckpoint(f"{path} is missing: the checkpoint folder is incomplete")
    weights = load_file(str(path), device=str(device))
    for name, module in modules.items():
        prefix = name + "."
        sub = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sub, strict=True)
        except RuntimeError as err:
            raise BadCheckpoint(f"{path}: {name} does not match the network built from params: {err}") from err


def load_checkpoint(folder: Path, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                    schedulers: dict[str, Any], device: torch.device | str = "cpu",
                    restore_rng_state: bool = True) -> TrainingState:
    """Restore everything :func:`write_checkpoint_files` saved; returns the :class:`TrainingState`."""
    folder = Path(folder)
    saved = read_state(folder)
    load_modules(folder, modules, device)
    opt_tensors = load_file(str(folder / "optimizers.safetensors"), device=str(device))
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(unflatten_optimizer(name, opt_tensors, saved["optimizers"][name]))
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(saved["schedulers"][name])
    if restore_rng_state:
        restore_rng(load_file(str(folder / "rng.safetensors")), saved["rng"])
    return TrainingState(step=saved["step"], epoch=saved["epoch"], batches_in_epoch=saved["batches_in_epoch"],
                         meta=saved["meta"])


# The three REMOT networks in training order: each later one trains on the earlier ones' outputs.
NETWORKS: tuple[str, ...] = ("layout", "region", "wcn")


def build_generator(network: str, cfg: ModelConfig) -> torch.nn.Module:
    """The untrained generator of ``network`` (layout | region | wcn)."""
    return {"layout": LayoutGenerator, "region": RegionGenerator, "wcn": WholeCompositionNetwork}[network](cfg)
