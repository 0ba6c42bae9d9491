"""SCHP human parsing: the official-checkpoint loader and SCHP's own inference recipe.

The network lives in ``pipeline/pretrained/schp.py``; this module does the I/O and reproduces what SCHP's
``simple_extractor.py`` / ``evaluate.py`` do around it (GoGoDuck912/Self-Correction-Human-Parsing):

1. person box = the whole frame, widened or heightened to the network input's aspect ratio and centred
   (``SimpleFolderDataset._box2cs``), then an affine warp into the input (``utils/transforms.get_affine_transform``),
   bilinear, black border;
2. BGR channel order (they read frames with ``cv2.imread``), ``/255`` then BGR mean/std normalisation;
3. test-time flip (``evaluate.py --flip``): the mirrored frame's logits get their left/right classes swapped
   and are mirrored back, then averaged with the plain logits;
4. the fusion logits are upsampled (bilinear, ``align_corners=True``) to the input size, warped back to the
   frame with the inverse affine (bilinear, per channel), and argmax gives the labels.

Nothing is downloaded: a missing checkpoint raises ``WeightsNotFound`` naming the file and where SCHP
publishes it. Which backend ran (``schp-atr``/``schp-lip``) and the checkpoint's sha256 are in
``SCHPParser.info``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.core.hashing import file_digest
from pipeline.core.labels import ATR_LABELS, LIP_LABELS
from pipeline.pretrained.schp import AugmentCE2P, fusion_logits

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


# --------------------------------------------------------------------------------------------------------
# SCHP's person-centred affine transform (rotation 0, as their inference uses)


def person_center_scale(width: int, height: int, aspect_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """SCHP's ``_box2cs`` for the whole-frame box ``[0, 0, width - 1, height - 1]``.

    Returns ``(center, scale)``, float32 arrays ``[x, y]`` and ``[w, h]`` in frame pixels: the box is grown
    along one axis until ``w / h == aspect_ratio`` (input width / input height), keeping its centre.
    """
    w, h = float(width - 1), float(height - 1)
    center = np.array([w * 0.5, h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w, h], dtype=np.float32)


def affine_transform(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int],
                     inverse: bool = False) -> np.ndarray:
    """SCHP's ``get_affine_transform`` with no rotation or shift.

    Returns a 2x3 float64 matrix mapping frame pixels to input pixels (``inverse=True``: input to frame).
    ``output_size`` is (height, width). The box centre goes to ``((W-1)/2, (H-1)/2)`` and half the box
    width to ``(W-1)/2`` pixels, i.e. a uniform scale ``(W-1) / scale[0]``.
    """
    out_h, out_w = output_size
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, -0.5 * scale[0]], dtype=np.float32)
    dst[0] = [(out_w - 1) * 0.5, (out_h - 1) * 0.5]
    dst[1] = dst[0] + np.array([0.0, -(out_w - 1) * 0.5], dtype=np.float32)
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point making (a, b, c) a right angle at b, as SCHP's ``get_3rd_point``."""
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def flip_permutation(num_classes: int, flip_pairs: tuple[tuple[int, int], ...]) -> list[int]:
    """Channel order that swaps each left/right pair: ``logits[perm]`` relabels a mirrored prediction."""
    perm = list(range(num_classes))
    for left, right in flip_pairs:
        perm[left], perm[right] = right, left
    return perm


# --------------------------------------------------------------------------------------------------------
# The parser


class SCHPParser:
    """A loaded SCHP network plus SCHP's inference recipe. Build it with ``load_schp``.

    ``info`` records what ran: ``backend`` ("schp-atr"/"schp-lip"), ``checkpoint`` (path), ``sha256``,
    ``labels``, ``input_size``, ``flip``.
    """

    def __init__(self, model: AugmentCE2P, spec: SCHPCheckpointSpec, info: dict, device: torch.device,
                 flip: bool = True):
        self.model = model.eval()
        self.spec = spec
        self.device = device
        self.flip = flip
        self.info = dict(info, flip=flip)
        self._perm = flip_permutation(spec.num_classes, spec.flip_pairs)
        self._mean = torch.tensor(AugmentCE2P.INPUT_MEAN_BGR, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(AugmentCE2P.INPUT_STD_BGR, dtype=torch.float32).view(3, 1, 1)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    def preprocess(self, rgb: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Warps an RGB frame into the network input.

        Returns ``(x, center, scale)``: x is 1 x 3 x H_in x W_in float32 (BGR, normalised), and
        ``center``/``scale`` describe the person box (see ``person_center_scale``) for the inverse warp.
        """
        _check_rgb(rgb)
        height, width = rgb.shape[:2]
        in_h, in_w = self.spec.input_size
        center, scale = person_center_scale(width, height, in_w / in_h)
        trans = affine_transform(center, scale, self.spec.input_size)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        warped = cv2.warpAffine(bgr, trans, (in_w, in_h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        x = torch.from_numpy(warped).permute(2, 0, 1).float().div_(255.0)
        x = (x - self._mean) / self._std
        return x.unsqueeze(0), center, scale

    @torch.inference_mode()
    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Fusion logits for a prepared batch, upsampled to the batch's own size.

        ``x``: B x 3 x H x W (as from ``preprocess``). Returns B x C x H x W float32 on CPU. No flipping.
        """
        out = fusion_logits(self.model(x.to(self.device)))
        return F.interpolate(out, size=x.shape[2:], mode="bilinear", align_corners=True).float().cpu()

    @torch.inference_mode()
    def parse_logits(self, rgb: np.ndarray) -> np.ndarray:
        """Per-class logits for an RGB frame.

        ``rgb``: H x W x 3 uint8. Returns C x H x W float32 (C = 18 for ATR, 20 for LIP), in the frame's
        pixel grid, label order ``self.labels``. These are averaged logits, not probabilities.
        """
        x, center, scale = self.preprocess(rgb)
        if self.flip:
            out = fusion_logits(self.model(torch.cat([x, x.flip(-1)]).to(self.device)))
            # The mirrored pass sees a left arm where the plain pass sees a right arm: relabel, then mirror back.
            logits = 0.5 * (out[0] + out[1][self._perm].flip(-1))
        else:
            logits = fusion_logits(self.model(x.to(self.device)))[0]
        logits = F.interpolate(logits[None], size=self.spec.input_size, mode="bilinear", align_corners=True)
        logits = logits[0].float().cpu().numpy()

        height, width = rgb.shape[:2]
        inverse = affine_transform(center, scale, self.spec.input_size, inverse=True)
        return np.stack([
            cv2.warpAffine(channel, inverse, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            for channel in logits
        ]).astype(np.float32, copy=False)

    def parse(self, rgb: np.ndarray) -> np.ndarray:
        """Labels for an RGB frame: H x W uint8 in ``[0, C)``, label order ``self.labels``."""
        return self.parse_logits(rgb).argmax(axis=0).astype(np.uint8)


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"SCHP expects an H x W x 3 uint8 RGB frame, got {got}; "
                         "convert with np.asarray(PIL.Image.open(path).convert('RGB'))")


# --------------------------------------------------------------------------------------------------------
# Loading


def load_schp(path: Path | str, dataset: str = "atr", device: str | torch.device = "cpu",
              flip: bool = True) -> SCHPParser:
    """Loads an official SCHP checkpoint (``exp-schp-201908301523-atr.pth`` / ``exp-schp-201908261155-lip.pth``).

    Accepts the official ``{"state_dict": {"module.<key>": tensor}, ...}`` file or a bare state dict, with or
    without DataParallel's ``module.`` prefix. ``num_batches_tracked`` entries (absent from the official
    files; present if someone re-saved the weights from an ``nn.BatchNorm2d`` port) are ignored.

    Raises ``WeightsNotFound`` if the file is missing, ``BadCheckpoint`` if it cannot be read, has another
    class count than ``dataset`` needs, or its keys/shapes differ from the network's.
    Returns an ``SCHPParser`` in eval mode on ``device``; ``flip`` enables SCHP's flip averaging.
    """
    if dataset not in SCHP_CHECKPOINTS:
        raise ValueError(f"SCHP dataset must be one of {sorted(SCHP_CHECKPOINTS)}, got {dataset!r}")
    spec = SCHP_CHECKPOINTS[dataset]
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFound(f"SCHP human parser ({dataset.upper()})", path, spec.how_to_get)

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
    device = torch.device(device)
    model = model.to(device).eval()

    info = {
        "backend": f"schp-{dataset}",
        "checkpoint": str(path),
        "sha256": file_digest(path),
        "labels": list(spec.labels),
        "input_size": list(spec.input_size),
    }
    return SCHPParser(model, spec, info, device, flip=flip)


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


