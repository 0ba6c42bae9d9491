"""Seeds derived from a params seed and names, identical on every run, process and machine."""
from __future__ import annotations

import hashlib
from typing import Any


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from sha256 of ``parts`` (not Python's per-process salted ``hash()``)."""
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def init_seed(seed: int, network: str) -> int:
    """The torch seed ``network``'s weights are initialised from (training, and evaluation's untrained control)."""
    return derive_seed("init", seed, network)
