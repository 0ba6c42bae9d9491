"""Which checkpoint a network's training may resume, and what happens to one it may not: it is moved aside,
never deleted.

Days of training must survive a changed setting. Only what changes the maths of the steps already taken makes a
checkpoint unresumable (learning rates, batch size, seeds, losses, the model, the data); how the run is executed
does not: DataLoader workers, device, bf16 autocast and the number of ranks only change speed or rounding (a
resume under another worker or rank count continues with a differently ordered, equally valid stream). A
checkpoint that cannot be resumed - and the loss log that goes with it - is moved to
``models/<network>/superseded-<its fingerprint>/`` where the user can inspect, restore (move it back) or delete it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.core.hashing import fingerprint

# Fields of params.train that do not change the trajectory of the steps already taken: how long to train, how
# often to save, and how the work is executed.
NON_TRAJECTORY_FIELDS = {"epochs", "checkpoint_every", "keep_checkpoints", "out",
                         "num_workers", "device", "amp", "allow_shell_urls"}
SUPERSEDED_PREFIX = "superseded-"
LOSS_LOG = "losses.jsonl"


def run_fingerprint(params: Any, manifest_sha: str | None, world: int | None = None) -> str:
    """Hash of what the steps compute: trajectory train params, the model section and the shard manifest.

    ``world`` (the rank count) is accepted for the callers' convenience and deliberately not part of it.
    """
    train = params.train.model_dump(mode="json", exclude=NON_TRAJECTORY_FIELDS)
    return fingerprint({"train": train, "model": params.model.model_dump(mode="json"), "manifest": manifest_sha})


def network_run_files(network_dir: Path) -> list[Path]:
    """The files of a network's resumable run: ``step-*`` checkpoints, ``latest.json`` and the loss log."""
    network_dir = Path(network_dir)
    if not network_dir.is_dir():
        return []
    found = sorted(p for p in network_dir.glob("step-*") if p.is_dir())
    found += [p for p in (network_dir / "latest.json", network_dir / LOSS_LOG) if p.is_file()]
    return found


def move_aside(network_dir: Path, fingerprint: str | None) -> Path | None:
    """Move the network's run files into ``superseded-<fingerprint>[-N]/`` (a fresh folder, never merged into an
    older one); returns it, or None when there was nothing to move. Renames only: no byte is copied or lost."""
    files = network_run_files(network_dir)
    if not files:
        return None
    tag = "".join(c for c in str(fingerprint or "unknown") if c.isalnum() or c in "-_")[:32] or "unknown"
    target = Path(network_dir) / f"{SUPERSEDED_PREFIX}{tag}"
    n = 1
    while target.exists():
        n += 1
        target = Path(network_dir) / f"{SUPERSEDED_PREFIX}{tag}-{n}"
    target.mkdir()
    for path in files:
        os.replace(path, target / path.name)
    return target


def describe_difference(saved: dict[str, Any], current: dict[str, Any]) -> str:
    """Which of the fingerprinted inputs differ between a saved checkpoint's meta and the current run's."""
    diffs = [f"model.{k}" for k, v in current["model_config"].items() if saved.get("model_config", {}).get(k) != v]
    if saved.get("data_manifest_sha256") != current["data_manifest_sha256"]:
        diffs.append("the shard manifest (data changed)")
    if not diffs:
        diffs.append("train.* (lr, batch size, seed, ...)")
    return ", ".join(diffs)
