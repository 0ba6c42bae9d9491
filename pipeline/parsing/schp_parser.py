"""SCHP human parsing: SCHP's own inference recipe around the official network.

The network and its checkpoint loader live in ``pipeline/pretrained/schp.py``; this module reproduces what
SCHP's ``simple_extractor.py`` / ``evaluate.py`` do around it (GoGoDuck912/Self-Correction-Human-Parsing):

1. person box = the whole frame, widened or heightened to the network input's aspect ratio and centred
   (``SimpleFolderDataset._box2cs``), then an affine warp into the input (``utils/transforms.get_affine_transform``),
   bilinear, black border;
2. BGR channel order (they read frames with ``cv2.imread``), ``/255`` then BGR mean/std normalisation;
3. test-time flip (``evaluate.py --flip``; ``parse.schp_flip``, default true): the mirrored frame's logits get
   their left/right classes swapped and are mirrored back, then averaged with the plain logits. The official
   ``simple_extractor.py`` runs no flipped pass: ``parse.schp_flip: false`` does the same (half the time; the
   parser is then recorded as ``schp-<dataset>-noflip``);
4. the fusion logits are upsampled (bilinear, ``align_corners=True``) to the input size, warped back to the
   frame with the inverse affine (bilinear, per channel), and argmax gives the labels.

Nothing is downloaded: a missing checkpoint raises ``WeightsNotFound`` naming the file and where SCHP
publishes it. Which backend ran (``schp-atr``/``schp-lip``, ``-noflip`` without the flipped pass) and the
checkpoint's sha256 are in ``SCHPParser.info``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pipeline.pretrained.schp import (SCHP_CHECKPOINTS, AugmentCE2P, SCHPCheckpointSpec, fusion_logits,
                                     load_schp_network)

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
    """The official SCHP checkpoint (``pipeline.pretrained.schp.load_schp_network``: its errors) wrapped in SCHP's
    inference recipe; ``flip`` averages the mirrored pass as ``evaluate.py --flip`` does (``parse.schp_flip``;
    ``simple_extractor.py`` does not)."""
    model, info = load_schp_network(path, dataset, device)
    if not flip:
        info = dict(info, backend=f"{info['backend']}-noflip")
    return SCHPParser(model, SCHP_CHECKPOINTS[dataset], info, torch.device(device), flip=flip)
