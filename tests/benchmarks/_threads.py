"""Thread limits for benchmarks (a leading underscore keeps the runner from taking this for an area)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import cv2
import torch


@contextlib.contextmanager
def limited_threads(single: bool = True) -> Iterator[None]:
    """torch and OpenCV on one thread inside the block when ``single`` (comparable CPU numbers on a shared
    machine); the previous settings are restored afterwards."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    if single:
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)
