"""File digests, read in 1 MiB blocks so a large video or checkpoint never sits in memory whole."""
from __future__ import annotations

import hashlib
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
