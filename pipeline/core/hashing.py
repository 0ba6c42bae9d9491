"""Digests: of files, read in 1 MiB blocks so a large video or checkpoint never sits in memory whole, of
JSON-able values (the one canonical form every fingerprint of parameters and inputs uses), and of text (names,
seed material) as hex or as an integer. Every sha256 of the library's own values goes through here, so a
fingerprint or a draw written to a user's files has one definition."""
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


def text_sha256(text: str | bytes) -> Any:
    """A ``hashlib.sha256`` object of ``text`` (a str as UTF-8; a lone surrogate, as in an undecodable file
    name, as its original byte: ``surrogateescape``)."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text))


def text_hex(text: str | bytes, length: int = 64) -> str:
    """The first ``length`` hex characters of the sha256 of ``text`` (:func:`text_sha256`)."""
    return text_sha256(text).hexdigest()[:length]


def text_int(text: str | bytes, n_bytes: int = 32) -> int:
    """The first ``n_bytes`` bytes of the sha256 of ``text`` as a big-endian unsigned integer: deterministic on
    every run, process and machine (unlike Python's salted ``hash()``), for seeds and uniform draws."""
    return int.from_bytes(text_sha256(text).digest()[:n_bytes], "big")


def fingerprint(value: Any, length: int = 16) -> str:
    """The first ``length`` hex characters of the sha256 of ``value`` as canonical JSON (:func:`json_sha256`):
    parameter sections, training runs and per-video stage inputs are identified by it."""
    return json_sha256(value).hexdigest()[:length]
