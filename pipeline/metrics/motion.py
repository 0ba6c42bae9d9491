"""Motion scores: did the generated person move where the driving person moved?

Image scores barely reward motion: pasting the unmoved source person scores almost as well as moving it, since
most of the person does not move between two frames of one video. These scores look only at motion:

* **AKD** (average keypoint distance, FOMM / TPSMM's protocol): the project's pose model is run on the generated
  frames and compared with the keypoints it found on the real frames; per keypoint confident in both, the
  distance divided by the real person's height (the span of its confident keypoints), averaged over keypoints
  and frames. Lower is better.
* **MKR** (missing keypoint rate): the share of keypoints confident in the real frame that are not confident in
  the generated one (a smeared limb is missed). Lower is better.
* **Moved region** PSNR / L1: over the pixels where the real frame's person and the source frame's person differ
  (XOR of the two person masks), where a pasted, unmoved source is wrong by construction. PSNR higher, L1
  (0-255 units) lower is better.
* **Layout** diagnostics of the Layout GAN: mean IoU over the 6 regions of its predicted layouts against the
  ground-truth layouts, and the IoU of the limbs region alone.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from pipeline.core.labels import REGIONS

CONFIDENT = 0.3          # keypoint confidence that counts as "found" (the pose stage's smoothing threshold)
LIMBS = REGIONS.index("limbs")


def person_height(keypoints: np.ndarray, confident: float = CONFIDENT) -> float:
    """Vertical span of a frame's confident (25, 3) keypoints, in pixels; nan with fewer than 2."""
    ys = keypoints[keypoints[:, 2] > confident, 1]
    return float(ys.max() - ys.min()) if len(ys) >= 2 else math.nan


def keypoint_scores(generated: np.ndarray, real: np.ndarray, confident: float = CONFIDENT) -> dict[str, float]:
    """AKD and MKR of generated (T, 25, 3) keypoints against real (T, 25, 3) ones (x, y in pixels, conf).

    AKD is nan when no keypoint is confident in both; MKR nan when the real frames have none."""
    if generated.shape != real.shape or generated.ndim != 3 or generated.shape[1:] != (25, 3):
        raise ValueError(f"need two (T, 25, 3) keypoint arrays, got {generated.shape} and {real.shape}")
    distances, found, missed = [], 0, 0
    for g, r in zip(generated, real):
        in_real = r[:, 2] > confident
        in_both = in_real & (g[:, 2] > confident)
        found += int(in_real.sum())
        missed += int((in_real & ~in_both).sum())
        height = person_height(r, confident)
        if in_both.any() and math.isfinite(height) and height > 0:
            distances.extend(np.linalg.norm(g[in_both, :2] - r[in_both, :2], axis=1) / height)
    return {"akd": float(np.mean(distances)) if distances else math.nan,
            "mkr": missed / found if found else math.nan}


def moved_region(real_person: np.ndarray, source_person: np.ndarray) -> np.ndarray:
    """Bool (H, W): pixels that are person in exactly one of the real frame and the source frame."""
    return np.logical_xor(real_person, source_person)


def moved_region_scores(generated: Iterable[np.ndarray], real: Iterable[np.ndarray],
                        regions: Iterable[np.ndarray]) -> dict[str, float]:
    """PSNR (dB) and mean absolute error (0-255) of uint8 (H, W, 3) frames over each frame's bool (H, W) moved
    region, pooled over all frames' moved pixels (nan when no pixel moved)."""
    squared, absolute, count = 0.0, 0.0, 0
    for g, r, m in zip(generated, real, regions):
        if not m.any():
            continue
        diff = g[m].astype(np.float64) - r[m].astype(np.float64)
        squared += float((diff ** 2).sum())
        absolute += float(np.abs(diff).sum())
        count += diff.size
    if count == 0:
        return {"psnr": math.nan, "l1": math.nan}
    mse = squared / count
    return {"psnr": math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse), "l1": absolute / count}


def layout_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """mIoU over the regions present in either (T, H, W) label video (labels 0..5) and the limbs region's IoU,
    each IoU pooled over all frames."""
    if predicted.shape != truth.shape:
        raise ValueError(f"layouts of different shapes {predicted.shape} and {truth.shape}")
    ious = {}
    for label in range(len(REGIONS)):
        p, t = predicted == label, truth == label
        union = int((p | t).sum())
        if union:
            ious[label] = int((p & t).sum()) / union
    return {"layout_miou": float(np.mean(list(ious.values()))) if ious else math.nan,
            "limbs_iou": ious.get(LIMBS, math.nan)}
