"""Seeds derived from a params seed and names, identical on every run, process and machine."""
from __future__ import annotations

from typing import Any

from pipeline.core.hashing import text_int


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from sha256 of ``parts`` (not Python's per-process salted ``hash()``)."""
    return text_int("\x1f".join(str(p) for p in parts), 8) >> 1


def init_seed(seed: int, network: str) -> int:
    """The torch seed ``network``'s weights are initialised from (training, and evaluation's untrained control)."""
    return derive_seed("init", seed, network)
