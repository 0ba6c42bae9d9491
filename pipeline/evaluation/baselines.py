"""Two reference methods the trained model should beat, computed on the same pairs and inputs.

* **copy-source**: the source person (segmented by its layout) pasted unchanged on the driving video's background
  plate - the same frame for every t. It keeps the identity perfectly and ignores the motion.
* **GAM-only**: the source foreground moved by the Global Alignment Module (eq. 4: scale by the person-box
  height ratio, shift box centre to box centre) onto the driving frame's layout, pasted on the background.
  It follows the driving person's position and size but not the pose.

Both are parameter-free. Images are uint8 RGB (H, W, 3); layouts uint8 (H, W) labels 0..5; the foreground is
composed premultiplied: ``out = warp(I_s * M_s) + (1 - warp(M_s)) * BG``, so bilinear edges stay clean.
"""
from __future__ import annotations

import numpy as np
import torch

from pipeline.core.labels import REGIONS
from pipeline.inference.generate import one_hot
from remot_models import GlobalAlignment

BACKGROUND_LABEL = REGIONS.index("background")
METHODS = ("copy_source", "gam_only")


def _to_float(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 255.0


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def copy_source(source: np.ndarray, source_layout: np.ndarray, background: np.ndarray, n_frames: int) -> np.ndarray:
    """uint8 (T, H, W, 3): the source person on ``background``, unchanged, ``n_frames`` times."""
    person = (source_layout != BACKGROUND_LABEL)[..., None]
    frame = np.where(person, source, background).astype(np.uint8)
    return np.repeat(frame[None], n_frames, axis=0)


def gam_only(source: np.ndarray, source_layout: np.ndarray, driving_layouts: np.ndarray,
             background: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3): the source foreground aligned by the GAM onto each of ``driving_layouts`` (T, H, W).

    A frame whose driving layout (or the source's) has no person pixel gets the source unmoved (the GAM's
    identity for empty masks).
    """
    t = len(driving_layouts)
    mask = (source_layout != BACKGROUND_LABEL).astype(np.float32)[..., None]
    premultiplied = np.concatenate([_to_float(source) * mask, mask], axis=-1)          # (H, W, 4)
    image = torch.from_numpy(premultiplied).permute(2, 0, 1)[None].expand(t, -1, -1, -1).contiguous()
    src_layout = one_hot(source_layout)[None].expand(t, -1, -1, -1)
    aligned = GlobalAlignment(enabled=True)(image, src_layout, one_hot(driving_layouts)).aligned
    aligned = aligned.permute(0, 2, 3, 1).numpy()                                       # (T, H, W, 4)
    rgb, alpha = aligned[..., :3], np.clip(aligned[..., 3:], 0.0, 1.0)
    return _to_uint8(rgb + (1.0 - alpha) * _to_float(background)[None])
