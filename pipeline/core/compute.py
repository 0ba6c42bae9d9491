"""Where torch runs: the thread cap every entry point applies and the device choice of training and inference."""
from __future__ import annotations

import os

import torch

from pipeline.core.errors import RemotError


def cap_torch_threads() -> None:
    """At most ``REMOT_TORCH_THREADS`` torch threads: on a shared machine extra threads stall each other."""
    torch.set_num_threads(max(1, min(torch.get_num_threads(), int(os.environ.get("REMOT_TORCH_THREADS", "64")))))


def choose_device(preference: str = "auto", local_rank: int | None = None, setting: str = "device") -> torch.device:
    """``auto``: CUDA when available (``local_rank``'s GPU under torchrun), else CPU; ``cuda`` without a GPU is
    an error naming ``setting``."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise RemotError(f"{setting} is 'cuda' but no CUDA device is available: set {setting}: auto or cpu")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        if local_rank is None:
            return torch.device("cuda")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")
