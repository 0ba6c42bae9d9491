"""Replay a video's decoded frames instead of decoding it again.

Extraction walks a clip three times (count the frames, sample them for the person box, crop the chosen box), and
the crop box is known only after the last sampled frame, so one streaming pass cannot do it. The first walk keeps
the decoded frames while they fit in ``budget_bytes``; later walks replay them. A clip too large for the budget
(long HD footage) is decoded again on each walk, as before, so memory stays bounded.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np

# 512 MB: ~3,400 frames at the demo's 192x256, ~85 s of 1080p at 30 fps.
DEFAULT_BUDGET = int(os.environ.get("REMOT_DECODE_BUFFER_MB", "512")) * 2**20


class DecodedOnce:
    """``walk()`` yields what ``decode()`` yields (``(index, frame)`` pairs), decoding at most once when it fits."""

    def __init__(self, decode: Callable[[], Iterator[tuple[int, np.ndarray]]], budget_bytes: int = DEFAULT_BUDGET):
        self.decode, self.budget = decode, budget_bytes
        self.frames: list[tuple[int, np.ndarray]] | None = None
        self.decodes = 0

    def walk(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.frames is not None:
            yield from self.frames
            return
        self.decodes += 1
        kept: list[tuple[int, np.ndarray]] | None = [] if self.budget > 0 else None
        size = 0
        for index, frame in self.decode():
            if kept is not None:
                size += frame.nbytes
                if size > self.budget:
                    kept = None  # over budget: later walks decode again
                else:
                    kept.append((index, frame))
            yield index, frame
        self.frames = kept
