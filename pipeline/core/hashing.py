"""Digests: of files, read in 1 MiB blocks so a large video or checkpoint never sits in memory whole, and of
JSON-able values (the one canonical form every fingerprint of parameters and inputs uses)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

BLOCK = 1 << 20


def update_from_file(digest: Any, path: Path | str) -> None:
    """Feed the bytes of ``path`` to a ``hashlib`` object."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)


def file_digest(path: Path | str, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``path``."""
    digest = hashlib.new(algorithm)
    update_from_file(digest, path)
    return digest.hexdigest()


def json_sha256(value: Any) -> Any:
    """A ``hashlib.sha256`` object fed with ``value`` as canonical JSON (``json.dumps(value, sort_keys=True)``,
    default separators, UTF-8): callers may ``update`` it further (the shards stage adds file hashes)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode())


def fingerprint(value: Any, length: int = 16) -> str:
    """The first ``length`` hex characters of the sha256 of ``value`` as canonical JSON (:func:`json_sha256`):
    parameter sections, training runs and per-video stage inputs are identified by it."""
    return json_sha256(value).hexdigest()[:length]
