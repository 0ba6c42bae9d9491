"""Accuracy metrics for the perception stages: layout mean IoU and keypoint PCK."""
from __future__ import annotations

import numpy as np


def layout_miou(pred: np.ndarray, gt: np.ndarray, n_classes: int = 6) -> dict:
    """Per-class IoU of two label maps and their mean.

    ``pred``, ``gt``: integer label maps of the same shape with values in 0..n_classes-1 (for layouts: 0..5 in
    ``labels.REGIONS`` order). Only classes present in ``pred`` or ``gt`` are scored (a class absent from both
    has no defined IoU). Returns ``{"per_class": {class_index: IoU in [0, 1]}, "miou": mean of those}``;
    ``miou`` is nan when both maps are empty of every class (impossible for full label maps).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"layout_miou: pred shape {pred.shape} differs from gt shape {gt.shape}")
    for name, arr in (("pred", pred), ("gt", gt)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(f"layout_miou: {name} has labels outside 0..{n_classes - 1}")
    per_class: dict[int, float] = {}
    for c in range(n_classes):
        p, g = pred == c, gt == c
        union = int(np.count_nonzero(p | g))
        if union:
            per_class[c] = int(np.count_nonzero(p & g)) / union
    miou = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return {"per_class": per_class, "miou": miou}


def pck(pred_kps: np.ndarray, gt_kps: np.ndarray, threshold: float = 0.1, conf_min: float = 0.1) -> float:
    """PCK@threshold: fraction of GT-visible joints whose prediction lies within threshold x person size.

    ``pred_kps``, ``gt_kps``: (25, 3) or (T, 25, 3) arrays (x, y in pixels, confidence). A joint is GT-visible
    when its GT confidence is >= ``conf_min``; only those count. Person size = the **larger side** of the
    axis-aligned bounding box of that frame's GT-visible joints (not its diagonal). A predicted joint with
    confidence below ``conf_min`` counts as a miss. Returns a float in [0, 1], or nan when no joint is
    GT-visible.
    """
    pred = np.asarray(pred_kps, dtype=np.float64)
    gt = np.asarray(gt_kps, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-2:] != (25, 3):
        raise ValueError(f"pck: expected matching (..., 25, 3) arrays, got {pred.shape} and {gt.shape}")
    pred, gt = pred.reshape(-1, 25, 3), gt.reshape(-1, 25, 3)
    hits = total = 0
    for p, g in zip(pred, gt):
        visible = g[:, 2] >= conf_min
        if not visible.any():
            continue
        extent = g[visible, :2].max(axis=0) - g[visible, :2].min(axis=0)
        size = float(extent.max())
        dist = np.linalg.norm(p[visible, :2] - g[visible, :2], axis=1)
        found = p[visible, 2] >= conf_min
        hits += int(np.count_nonzero(found & (dist <= threshold * size)))
        total += int(visible.sum())
    return hits / total if total else float("nan")
