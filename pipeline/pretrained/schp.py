"""SCHP's AugmentCE2P human-parsing network (Li et al., "Self-Correction for Human Parsing", TPAMI 2020).

A plain re-implementation of ``networks/AugmentCE2P.py`` from GoGoDuck912/Self-Correction-Human-Parsing.
Module and parameter names follow the official code exactly (including its spelling ``fushion``), so the
published checkpoints (after stripping DataParallel's ``module.`` prefix) load with ``strict=True``.
``load_schp_network`` (the end of this module) reads the official checkpoints; SCHP's inference recipe around the
network is ``pipeline/parsing/schp_parser.py``.

Structure (input B x 3 x H x W, BGR, normalised; output stride 16 for the backbone, 4 for the heads):

- ResNet-101 with SCHP's deep stem (three 3x3 convs: 3->64 stride 2, 64->64, 64->128), a 3x3/2 max-pool,
  layer1..layer3 as usual and layer4 with stride 1 and dilation 2;
- ``context_encoding``: PSP pyramid pooling (bins 1, 2, 3, 6) on layer4, 2048 -> 512 channels;
- ``decoder``: fuses the context features with layer1 features -> parsing logits and 256-ch features;
- ``edge``: edge logits (2 classes) from layer1..layer3 -> 2-ch edge logits and 3x256-ch features;
- ``fushion``: 1x1 convs over [decoder features, edge features] -> the final parsing logits.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import pipeline.pretrained.weights as wf
from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.core.labels import ATR_LABELS, LIP_LABELS


class ActivatedBatchNorm(nn.Module):
    """Inference-equivalent of InPlaceABNSync (mapillary/inplace_abn as vendored in SCHP's ``modules/``).

    Batch norm followed by ``leaky_relu(0.01)`` (``activation="leaky_relu"``, the official default) or by
    nothing (``activation="none"``, used inside the ResNet, where a plain ReLU follows separately).

    Two details matter for loading the official weights:

    - its state holds exactly ``weight``, ``bias``, ``running_mean``, ``running_var``; there is no
      ``num_batches_tracked`` (InPlaceABN never registers it), which is why this is not a ``nn.BatchNorm2d``;
    - InPlaceABN's kernels scale by ``|weight| + eps`` rather than ``weight`` (it keeps the scale positive so
      the activation can be inverted in place during backward). Using the raw weight would change the output
      of any channel with a negative learned scale.
    """

    def __init__(self, num_features: int, activation: str = "leaky_relu", slope: float = 0.01,
                 eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if activation not in ("leaky_relu", "none"):
            raise ValueError(f"activation must be 'leaky_relu' or 'none', got {activation!r}")
        self.num_features, self.activation, self.slope = num_features, activation, slope
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns a tensor of x's shape: normalised, scaled by ``|weight| + eps``, shifted, activated."""
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight.abs() + self.eps, self.bias,
                         self.training, self.momentum, self.eps)
        if self.activation == "leaky_relu":
            x = F.leaky_relu(x, negative_slope=self.slope)
        return x

    def extra_repr(self) -> str:
        return f"{self.num_features}, activation={self.activation}"


def _plain_bn(num_features: int) -> ActivatedBatchNorm:
    """The official ``BatchNorm2d = partial(InPlaceABNSync, activation='none')`` used in the backbone."""
    return ActivatedBatchNorm(num_features, activation="none")


def _conv_abn(in_channels: int, out_channels: int) -> list[nn.Module]:
    """1x1 conv (no bias) + leaky ABN: the official ``Sequential(Conv2d, InPlaceABNSync)`` pattern."""
    return [nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False), ActivatedBatchNorm(out_channels)]


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, expansion 4); the 3x3 carries the stride and the dilation."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = _plain_bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = _plain_bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = _plain_bn(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class PSPModule(nn.Module):
    """Pyramid pooling (Zhao et al., PSPNet): pooled branches at ``sizes`` bins, upsampled and concatenated
    with the input, then a 3x3 conv. Returns B x out_features x h x w."""

    def __init__(self, features: int = 2048, out_features: int = 512, sizes: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        # Sequential(pool, conv, abn): official keys are stages.<i>.1.weight and stages.<i>.2.*
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d((size, size)), *_conv_abn(features, out_features))
            for size in sizes)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(features + len(sizes) * out_features, out_features, kernel_size=3, padding=1, bias=False),
            ActivatedBatchNorm(out_features),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        h, w = feats.shape[2:]
        priors = [F.interpolate(stage(feats), size=(h, w), mode="bilinear", align_corners=True)
                  for stage in self.stages]
        return self.bottleneck(torch.cat(priors + [feats], dim=1))


class EdgeModule(nn.Module):
    """Edge branch: the same 3x3 classifier ``conv4`` applied to layer1, layer2 and layer3 features.

    Returns ``(edge, edge_fea)``: B x 2 x h1 x w1 edge logits and B x 768 x h1 x w1 features, both at
    layer1's resolution (h1 = H/4)."""

    def __init__(self, in_fea: tuple[int, int, int] = (256, 512, 1024), mid_fea: int = 256, out_fea: int = 2):
        super().__init__()
        self.conv1 = nn.Sequential(*_conv_abn(in_fea[0], mid_fea))
        self.conv2 = nn.Sequential(*_conv_abn(in_fea[1], mid_fea))
        self.conv3 = nn.Sequential(*_conv_abn(in_fea[2], mid_fea))
        self.conv4 = nn.Conv2d(mid_fea, out_fea, kernel_size=3, padding=1, bias=True)
        self.conv5 = nn.Conv2d(out_fea * 3, out_fea, kernel_size=1, bias=True)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = x1.shape[2:]

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=size, mode="bilinear", align_corners=True)

        fea1, fea2, fea3 = self.conv1(x1), self.conv2(x2), self.conv3(x3)
        edge = self.conv5(torch.cat([self.conv4(fea1), up(self.conv4(fea2)), up(self.conv4(fea3))], dim=1))
        return edge, torch.cat([fea1, up(fea2), up(fea3)], dim=1)


class DecoderModule(nn.Module):
    """Parsing decoder: context features (512 ch) upsampled onto layer1 features (256 ch -> 48 ch).

    Returns ``(seg, x)``: B x num_classes x h1 x w1 logits and the B x 256 x h1 x w1 features."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1 = nn.Sequential(*_conv_abn(512, 256))
        self.conv2 = nn.Sequential(*_conv_abn(256, 48))
        self.conv3 = nn.Sequential(*_conv_abn(304, 256), *_conv_abn(256, 256))
        self.conv4 = nn.Conv2d(256, num_classes, kernel_size=1, bias=True)

    def forward(self, xt: torch.Tensor, xl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xt = F.interpolate(self.conv1(xt), size=xl.shape[2:], mode="bilinear", align_corners=True)
        x = self.conv3(torch.cat([xt, self.conv2(xl)], dim=1))
        return self.conv4(x), x


class AugmentCE2P(nn.Module):
    """SCHP's parsing network (official class name ``ResNet`` built by ``resnet101(num_classes)``).

    Args:
        num_classes: 18 for the ATR checkpoint, 20 for LIP, 7 for Pascal-Person-Part.

    Input: B x 3 x H x W float, BGR channel order, ``(x/255 - mean) / std`` with BGR mean
    (0.406, 0.456, 0.485) and std (0.225, 0.224, 0.229) (see ``INPUT_MEAN_BGR``/``INPUT_STD_BGR``).
    """

    INPUT_MEAN_BGR = (0.406, 0.456, 0.485)
    INPUT_STD_BGR = (0.225, 0.224, 0.229)

    def __init__(self, num_classes: int = 18, layers: tuple[int, int, int, int] = (3, 4, 23, 3)):
        super().__init__()
        self.num_classes = num_classes
        self.inplanes = 128
        # SCHP's deep stem; each bn is activation='none' followed by a ReLU, as in the official code.
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = _plain_bn(64)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False)
        self.bn2 = _plain_bn(64)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3, padding=1, bias=False)
        self.bn3 = _plain_bn(128)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        # The official multi_grid=(1, 1, 1) makes every layer4 block dilation 2 * 1.
        self.layer4 = self._make_layer(512, layers[3], stride=1, dilation=2)

        self.context_encoding = PSPModule(2048, 512)
        self.edge = EdgeModule()
        self.decoder = DecoderModule(num_classes)
        self.fushion = nn.Sequential(  # sic: the official attribute name, kept for checkpoint compatibility
            nn.Conv2d(1024, 256, kernel_size=1, bias=False),
            ActivatedBatchNorm(256),
            nn.Dropout2d(0.1),
            nn.Conv2d(256, num_classes, kernel_size=1, bias=True),
        )

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                _plain_bn(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, dilation=dilation, downsample=downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Returns ``[[parsing, fusion], [edge]]`` like the official model, all at H/4 x W/4 (ceil):

        - ``parsing``: B x num_classes decoder logits;
        - ``fusion``: B x num_classes final logits (what SCHP's inference uses; see ``fusion_logits``);
        - ``edge``: B x 2 edge logits.
        """
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x2 = self.layer1(self.maxpool(x))
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        x5 = self.layer4(x4)
        parsing, parsing_fea = self.decoder(self.context_encoding(x5), x2)
        edge, edge_fea = self.edge(x2, x3, x4)
        fusion = self.fushion(torch.cat([parsing_fea, edge_fea], dim=1))
        return [[parsing, fusion], [edge]]


def fusion_logits(outputs: list[list[torch.Tensor]]) -> torch.Tensor:
    """The final parsing logits (B x C x H/4 x W/4) from ``AugmentCE2P.forward``'s output, i.e. the
    official ``output[0][-1]``."""
    return outputs[0][-1]


# --------------------------------------------------------------------------------------------------------
# Loading the official checkpoints


SCHP_README_URL = "https://github.com/GoGoDuck912/Self-Correction-Human-Parsing#simple-out-of-box-extractor"


@dataclass(frozen=True)
class SCHPCheckpointSpec:
    """What SCHP publishes for one label set, and what its recipe uses with it."""

    dataset: str
    file_name: str  # official checkpoint file name
    url: str  # the Google Drive link given in SCHP's README
    labels: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width) of the network input, from simple_extractor.dataset_settings
    flip_pairs: tuple[tuple[int, int], ...]  # left/right classes swapped for the mirrored pass

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def how_to_get(self) -> str:
        return f"{self.url} (file {self.file_name}, linked from the SCHP README: {SCHP_README_URL})"

    @property
    def weights(self) -> wf.WeightsFile:
        """The checkpoint as a weights file. SCHP publishes no digest: its sha256 is recorded, not checked."""
        return wf.WeightsFile(f"SCHP human parser ({self.dataset.upper()})", self.file_name, None, self.how_to_get)


SCHP_CHECKPOINTS: dict[str, SCHPCheckpointSpec] = {
    "atr": SCHPCheckpointSpec(
        dataset="atr",
        file_name="exp-schp-201908301523-atr.pth",
        url="https://drive.google.com/file/d/1ruJg4lqR_jgQPj-9K0PP-L2vJERYOxLP/view?usp=sharing",
        labels=ATR_LABELS,
        input_size=(512, 512),
        # left/right shoe, leg, arm
        flip_pairs=((9, 10), (12, 13), (14, 15)),
    ),
    "lip": SCHPCheckpointSpec(
        dataset="lip",
        file_name="exp-schp-201908261155-lip.pth",
        url="https://drive.google.com/file/d/1k4dllHpu0bdx38J7H28rVVLpU-kOHmnH/view?usp=sharing",
        labels=LIP_LABELS,
        input_size=(473, 473),  # SCHP's LIP setting; ATR uses 512 x 512
        # left/right arm, leg, shoe (evaluate.py's flipped_idx)
        flip_pairs=((14, 15), (16, 17), (18, 19)),
    ),
}

# Where the final classifier's out-channels (the class count) can be read from a state dict.
_CLASSIFIER_KEY = "fushion.3.weight"


def load_schp_network(path: Path | str, dataset: str = "atr",
                      device: str | torch.device = "cpu") -> tuple[AugmentCE2P, dict]:
    """Loads an official SCHP checkpoint (``exp-schp-201908301523-atr.pth`` / ``exp-schp-201908261155-lip.pth``)
    into :class:`AugmentCE2P`, in eval mode on ``device``, and says what ran (``backend``, ``checkpoint``,
    ``sha256``, ``labels``, ``input_size``).

    Accepts the official ``{"state_dict": {"module.<key>": tensor}, ...}`` file or a bare state dict, with or
    without DataParallel's ``module.`` prefix. ``num_batches_tracked`` entries (absent from the official
    files; present if someone re-saved the weights from an ``nn.BatchNorm2d`` port) are ignored. SCHP publishes no
    digest of its files, so the sha256 is recorded (``pipeline.pretrained.weights.verify`` with none to check).

    Raises ``WeightsNotFound`` if the file is missing, ``BadCheckpoint`` if it cannot be read, has another
    class count than ``dataset`` needs, or its keys/shapes differ from the network's.
    """
    if dataset not in SCHP_CHECKPOINTS:
        raise ValueError(f"SCHP dataset must be one of {sorted(SCHP_CHECKPOINTS)}, got {dataset!r}")
    spec = SCHP_CHECKPOINTS[dataset]
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFound(f"SCHP human parser ({dataset.upper()})", path, spec.how_to_get)
    digest = wf.verify(spec.weights, path)

    state = read_state_dict(path)
    found_classes = state[_CLASSIFIER_KEY].shape[0] if _CLASSIFIER_KEY in state else None
    if found_classes is not None and found_classes != spec.num_classes:
        other = [name for name, s in SCHP_CHECKPOINTS.items() if s.num_classes == found_classes]
        hint = f" (that is the {other[0].upper()} label set: ask for dataset={other[0]!r})" if other else ""
        raise BadCheckpoint(
            f"{path}: checkpoint has {found_classes} classes ({_CLASSIFIER_KEY}) but dataset={dataset!r} needs "
            f"{spec.num_classes}{hint}; the {dataset.upper()} checkpoint is {spec.file_name}")

    # Built on the meta device: every tensor comes from the checkpoint, so random init would be wasted work.
    with torch.device("meta"):
        model = AugmentCE2P(spec.num_classes)
    _check_keys(path, model, state)
    model.load_state_dict(state, strict=True, assign=True)
    info = {"backend": f"schp-{dataset}", "checkpoint": str(path), "sha256": digest,
            "labels": list(spec.labels), "input_size": list(spec.input_size)}
    return model.to(torch.device(device)).eval(), info


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Reads a checkpoint without unpickling code. Returns ``{key: float32 tensor}`` with any ``module.``
    prefix removed and ``num_batches_tracked`` entries dropped. Raises ``BadCheckpoint`` naming the file."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt / non-weights files
        raise BadCheckpoint(f"{path}: cannot read as a weights-only torch checkpoint ({exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}); expected SCHP's .pth file") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        top = sorted(map(str, obj))[:5] if isinstance(obj, dict) else type(obj).__name__
        raise BadCheckpoint(f"{path}: expected a state dict of tensors or {{'state_dict': ...}}, found {top}")

    state = {}
    for key, value in obj.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key.endswith("num_batches_tracked"):
            continue
        state[key] = value.float() if value.is_floating_point() else value
    return state


def _check_keys(path: Path, model: torch.nn.Module, state: dict[str, torch.Tensor], show: int = 5) -> None:
    """Raises ``BadCheckpoint`` listing the first ``show`` missing, unexpected and mis-shaped keys, if any."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and state[k].shape != v.shape]
    problems = []
    for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs network)", misshaped)):
        if keys:
            more = f" (+{len(keys) - show} more)" if len(keys) > show else ""
            problems.append(f"{len(keys)} {name}: {', '.join(keys[:show])}{more}")
    if problems:
        raise BadCheckpoint(f"{path}: does not match SCHP's AugmentCE2P network: " + "; ".join(problems))


