"""Extraction decodes a clip once when its frames fit the buffer, and again per walk when they do not."""
from __future__ import annotations

import numpy as np

from pipeline.extract.decode_once import DecodedOnce


def clip(calls: list, n: int = 5):
    def decode():
        calls.append(1)
        for k in range(n):
            yield k, np.full((4, 4, 3), k, np.uint8)
    return decode


def walks(once: DecodedOnce) -> list[list[int]]:
    return [[int(f[0, 0, 0]) + 10 * i for i, f in once.walk()] for _ in range(3)]


def test_small_clip_is_decoded_once_and_replayed():
    calls: list = []
    once = DecodedOnce(clip(calls), budget_bytes=5 * 48)
    assert walks(once) == [[0, 11, 22, 33, 44]] * 3
    assert len(calls) == 1


def test_clip_over_budget_is_decoded_on_every_walk():
    calls: list = []
    once = DecodedOnce(clip(calls), budget_bytes=5 * 48 - 1)
    assert walks(once) == [[0, 11, 22, 33, 44]] * 3
    assert len(calls) == 3
