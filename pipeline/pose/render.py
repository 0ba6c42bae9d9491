"""Pose-connection map P (paper 3.1): the 25 BODY_25 keypoints drawn as OpenPose-coloured limbs."""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.core.labels import BODY25_COLORS, BODY25_LIMBS


def render_pose_map(keypoints: np.ndarray, height: int, width: int, thickness: int = 4,
                    conf_threshold: float = 0.1) -> np.ndarray:
    """Draw one person's skeleton on black.

    ``keypoints``: (25, 3) float, columns x, y in pixels of the target image and confidence in [0, 1].
    A limb is drawn only when both of its joints reach ``conf_threshold``, so missing joints leave gaps
    rather than lines to the origin. Returns a (height, width, 3) uint8 RGB image; a limb's colour is
    OpenPose's colour for its second joint.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (25, 3):
        raise ValueError(f"expected BODY_25 keypoints of shape (25, 3), got {keypoints.shape}")
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for a, b in BODY25_LIMBS:
        if keypoints[a, 2] < conf_threshold or keypoints[b, 2] < conf_threshold:
            continue
        pa = (int(round(float(keypoints[a, 0]))), int(round(float(keypoints[a, 1]))))
        pb = (int(round(float(keypoints[b, 0]))), int(round(float(keypoints[b, 1]))))
        cv2.line(canvas, pa, pb, BODY25_COLORS[b], thickness, lineType=cv2.LINE_AA)
    return canvas
