"""VGG19 for the perceptual loss (paper eq. 7): torchvision's official ImageNet checkpoint, loaded offline.

The checkpoint is torchvision's ``vgg19-dcbb9e9d.pth`` (``VGG19_Weights.IMAGENET1K_V1``), published at
https://download.pytorch.org/models/vgg19-dcbb9e9d.pth. Nothing is downloaded here: the file is looked up at
the given path (the file itself, or a folder holding it) and then in torch hub's cache
(``torch.hub.get_dir()/checkpoints/``, where ``torchvision`` would have saved it). When it is absent we warn,
naming the file and the URL, and fall back to a seeded random-init VGG19 - usable for plumbing, not for
training quality - and say so in the returned ``info`` so the run records which backend ran.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from remot_models.losses import VGG19Features

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILENAME}"


def find_vgg19_checkpoint(path: Path | None) -> Path | None:
    """The first existing checkpoint among ``path`` (file, or folder + official name) and the hub cache."""
    candidates: list[Path] = []
    if path is not None:
        path = Path(path)
        candidates.append(path / VGG19_FILENAME if path.is_dir() else path)
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME)
    return next((c for c in candidates if c.is_file()), None)


def load_vgg19(path: Path | None = None, seed: int = 0) -> tuple[VGG19Features, dict]:
    """VGG19 features for eq. 7, and an ``info`` dict recording which weights ran.

    Returns ``(VGG19Features, {"vgg19": "torchvision-imagenet", "path": ...})`` when the official checkpoint is
    found; it is read with ``torch.load(weights_only=True)`` and loaded with strict torchvision key matching
    (a mismatch raises :class:`pipeline.core.errors.BadCheckpoint` naming the file). Otherwise warns and returns a
    random-init VGG19 built under ``torch.manual_seed(seed)`` (the global RNG is left untouched) with
    ``{"vgg19": f"random-init(seed={seed})", "reason": ...}``.
    """
    checkpoint = find_vgg19_checkpoint(path)
    if checkpoint is None:
        looked = path if path is not None else Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME
        reason = str(WeightsNotFound("VGG19 (perceptual loss)", looked,
                                     f"{VGG19_URL} (torchvision's VGG19_Weights.IMAGENET1K_V1; put it at that "
                                     f"path or in {Path(torch.hub.get_dir()) / 'checkpoints'})",
                                     fallback=f"a random-init VGG19 (seed={seed}), so eq. 7 is not perceptual"))
        warnings.warn(reason, stacklevel=2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vgg = torchvision.models.vgg19(weights=None)
        return VGG19Features(vgg), {"vgg19": f"random-init(seed={seed})", "reason": reason}

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    with torch.device("meta"):  # every tensor is replaced by the checkpoint's, so skip the random init
        vgg = torchvision.models.vgg19(weights=None)
    try:
        vgg.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise BadCheckpoint(f"{checkpoint} is not torchvision's VGG19 ImageNet checkpoint ({VGG19_URL}): "
                            f"{err}") from err
    return VGG19Features(vgg), {"vgg19": "torchvision-imagenet", "path": str(checkpoint)}
