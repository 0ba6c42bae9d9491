"""LPIPS v0.1 (Zhang et al., CVPR 2018) with the official network definition and checkpoints, loaded offline.

Network (richzhang/PerceptualSimilarity ``lpips/lpips.py`` and ``pretrained_networks.py``):

* input RGB in [-1, 1], shifted and scaled per channel by the ``ScalingLayer`` constants
  shift = (-0.030, -0.088, -0.188), scale = (0.458, 0.448, 0.450);
* a frozen ImageNet backbone cut into 5 slices: torchvision AlexNet ``features[0:2], [2:5], [5:8], [8:10],
  [10:12]`` (channels 64, 192, 384, 256, 256) or VGG16 ``features[0:4], [4:9], [9:16], [16:23], [23:30]``
  (channels 64, 128, 256, 512, 512);
* each slice's activations unit-normalised over channels (``x / (||x||_2 + 1e-10)``), the squared difference
  of the two images' activations weighted by a learned 1x1 conv without bias (``NetLinLayer``: Dropout then
  Conv2d(C, 1, 1), so the checkpoint keys are ``lin0.model.1.weight`` ... ``lin4.model.1.weight``), averaged
  over space and summed over the 5 layers.

Weights, two files, both needed, never downloaded here:

* the linear layers: the official ``weights/v0.1/alex.pth`` or ``vgg.pth``, published in
  https://github.com/richzhang/PerceptualSimilarity (folder ``lpips/weights/v0.1/``) and shipped inside the
  PyPI package ``lpips`` (``lpips/weights/v0.1/``); looked up at ``lin_path`` (the file, or a folder holding
  ``alex.pth`` / ``v0.1/alex.pth``), then inside an installed ``lpips`` package;
* the backbone: torchvision's ImageNet checkpoint ``alexnet-owt-7be5be79.pth`` /
  ``vgg16-397923af.pth`` (https://download.pytorch.org/models/), looked up at ``backbone_path`` (file or
  folder), then in torch hub's cache ``torch.hub.get_dir()/checkpoints/``.

Both load with ``torch.load(weights_only=True)`` and strict key matching. When either file is missing,
``load_lpips`` returns :class:`pipeline.metrics.Unavailable` naming each missing file and where it is published.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torchvision

from pipeline.core.errors import BadCheckpoint
from pipeline.metrics import Unavailable

LIN_URL = "https://github.com/richzhang/PerceptualSimilarity/tree/master/lpips/weights/v0.1"
TORCHVISION_URL = "https://download.pytorch.org/models"

NETS = {
    # name: (torchvision builder, checkpoint file, slice boundaries in .features, channels per slice)
    "alex": (torchvision.models.alexnet, "alexnet-owt-7be5be79.pth", (0, 2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "vgg": (torchvision.models.vgg16, "vgg16-397923af.pth", (0, 4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
}

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class ScalingLayer(nn.Module):
    """Official LPIPS input normalisation: ``(x - shift) / scale`` per RGB channel, x in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class NetLinLayer(nn.Module):
    """A learned 1x1 conv (no bias) behind a Dropout, as in the official code: keys ``model.1.weight``."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LinLayers(nn.Module):
    """The five ``NetLinLayer``s under the official names ``lin0`` ... ``lin4``: the v0.1 file loads strictly."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        for index, count in enumerate(channels):
            self.add_module(f"lin{index}", NetLinLayer(count))

    def __getitem__(self, index: int) -> NetLinLayer:
        return getattr(self, f"lin{index}")


class BackboneSlices(nn.Module):
    """A torchvision ``features`` stack cut into the official 5 LPIPS slices; returns the 5 activations."""

    def __init__(self, features: nn.Sequential, bounds: tuple[int, ...]):
        super().__init__()
        self.slices = nn.ModuleList(features[start:end] for start, end in zip(bounds[:-1], bounds[1:]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for block in self.slices:
            x = block(x)
            outputs.append(x)
        return outputs


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance. ``name`` (e.g. "lpips-v0.1-alex") and ``info`` (weight files) record what ran."""

    def __init__(self, net: str, backbone: BackboneSlices, lins: LinLayers, info: dict):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.net = backbone
        self.lins = lins
        self.name = f"lpips-v0.1-{net}"
        self.info = info
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distances of two (N, 3, H, W) float batches in [-1, 1]: returns (N,) float, >= 0, 0 when x == y."""
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS expects two (N, 3, H, W) batches of one shape, got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        features_x = self.net(self.scaling_layer(x))
        features_y = self.net(self.scaling_layer(y))
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for index, (fx, fy) in enumerate(zip(features_x, features_y)):
            difference = (_unit_normalize(fx) - _unit_normalize(fy)) ** 2
            total = total + self.lins[index](difference).mean(dim=(1, 2, 3))
        return total

    @torch.inference_mode()
    def distance(self, generated: np.ndarray, real: np.ndarray) -> float:
        """LPIPS of two H x W x 3 uint8 RGB frames (mapped to [-1, 1] as the official ``im2tensor`` does)."""
        for label, image in (("generated", generated), ("real", real)):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"{label} frame must be H x W x 3 uint8 RGB, got {image.dtype} {image.shape}")
        device = next(self.parameters()).device
        to_tensor = lambda image: torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        x = (to_tensor(generated) / 127.5 - 1.0).to(device)
        y = (to_tensor(real) / 127.5 - 1.0).to(device)
        return float(self(x, y)[0])


def _lin_candidates(net: str, lin_path: Path | str | None) -> list[Path]:
    filename = f"{net}.pth"
    candidates = []
    if lin_path is not None:
        lin_path = Path(lin_path)
        candidates += [lin_path / filename, lin_path / "v0.1" / filename] if lin_path.is_dir() else [lin_path]
    spec = importlib.util.find_spec("lpips")  # the PyPI package ships the official files; never imported here
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "weights" / "v0.1" / filename)
    return candidates


def _backbone_candidates(filename: str, backbone_path: Path | str | None) -> list[Path]:
    candidates = []
    if backbone_path is not None:
        backbone_path = Path(backbone_path)
        candidates.append(backbone_path / filename if backbone_path.is_dir() else backbone_path)
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / filename)
    return candidates


def _load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or pickled-object file
        raise BadCheckpoint(f"{path}: cannot be read as a plain tensor checkpoint ({err})") from err


def build_backbone(net: str, state: dict | None, source: Path | str = "<random>") -> BackboneSlices:
    """The 5-slice backbone from a torchvision ``alexnet`` / ``vgg16`` state dict (``None``: random init).

    The ``features.*`` keys must match torchvision's exactly (strict); other keys may only be the unused
    ``classifier.*`` head of the same checkpoint. Raises ``BadCheckpoint`` naming ``source`` otherwise.
    """
    builder, _, bounds, _ = NETS[net]
    if state is None:
        return BackboneSlices(builder(weights=None).features, bounds)
    feature_state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    stray = sorted(k for k in state if not k.startswith(("features.", "classifier.")))
    if stray:
        raise BadCheckpoint(f"{source}: not a torchvision {builder.__name__} checkpoint, unexpected keys {stray[:5]}")
    with torch.device("meta"):  # every tensor comes from the checkpoint, so skip the random init
        features = builder(weights=None).features
    try:
        features.load_state_dict(feature_state, strict=True, assign=True)
    except RuntimeError as err:
        raise BadCheckpoint(f"{source}: does not match torchvision {builder.__name__}.features: {err}") from err
    return BackboneSlices(features, bounds)


def load_lpips(net: str = "alex", lin_path: Path | str | None = None,
               backbone_path: Path | str | None = None) -> LPIPS | Unavailable:
    """LPIPS v0.1 with the official weights, or ``Unavailable`` naming every missing file and its source.

    ``net``: "alex" (the paper's default LPIPS) or "vgg". See the module doc for where each file is looked up.
    A file that exists but does not match the network raises ``pipeline.core.errors.BadCheckpoint``.
    """
    if net not in NETS:
        raise ValueError(f"unknown LPIPS network {net!r}; choose one of {sorted(NETS)}")
    _, backbone_file, _, channels = NETS[net]
    lin_candidates = _lin_candidates(net, lin_path)
    backbone_candidates = _backbone_candidates(backbone_file, backbone_path)
    lin_file = next((p for p in lin_candidates if p.is_file()), None)
    backbone = next((p for p in backbone_candidates if p.is_file()), None)
    missing = []
    if lin_file is None:
        missing.append(f"LPIPS linear weights {net}.pth (looked in {', '.join(map(str, lin_candidates))}; published "
                       f"at {LIN_URL}/{net}.pth and inside the PyPI package 'lpips')")
    if backbone is None:
        missing.append(f"backbone {backbone_file} (looked in {', '.join(map(str, backbone_candidates))}; published "
                       f"at {TORCHVISION_URL}/{backbone_file})")
    if missing:
        return Unavailable(f"lpips-{net}", "missing " + "; missing ".join(missing))

    lins = LinLayers(channels)
    try:
        lins.load_state_dict(_load_state(lin_file), strict=True)
    except RuntimeError as err:
        raise BadCheckpoint(f"{lin_file}: not the official LPIPS v0.1 {net} linear weights "
                            f"(keys lin0.model.1.weight ... lin4.model.1.weight): {err}") from err
    slices = build_backbone(net, _load_state(backbone), backbone)
    return LPIPS(net, slices, lins, {"lin_weights": str(lin_file), "backbone_weights": str(backbone)})
