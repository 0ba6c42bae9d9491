"""Find the person over a clip: MediaPipe Pose (landmarks + segmentation) on evenly spaced frames.

The union of the per-frame boxes is the clip's person box, so the crop never moves (a crop that follows the
person frame by frame would add camera motion that the flow targets and the generator then have to model).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

DETECTOR_NAME = "mediapipe-pose-0.10.21-static-c1"
HEAD_EXTENSION = 0.10  # landmarks stop at the eyes/ears: extend the box upwards for the top of the head
SOLE_EXTENSION = 0.03  # ... and slightly down for the soles


def person_box(rgb: np.ndarray, pose) -> Optional[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) of the person in ``rgb`` (pixels), or None when MediaPipe finds nobody."""
    result = pose.process(rgb)
    if result.pose_landmarks is None:
        return None
    h, w = rgb.shape[:2]
    pts = np.array([(lm.x * w, lm.y * h) for lm in result.pose_landmarks.landmark
                     if lm.visibility > 0.3])
    if len(pts) == 0:
        return None
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    height = y1 - y0
    y0 -= HEAD_EXTENSION * height
    y1 += SOLE_EXTENSION * height
    if result.segmentation_mask is not None:
        ys, xs = np.nonzero(result.segmentation_mask > 0.5)
        if len(xs):
            x0, y0 = min(x0, xs.min()), min(y0, ys.min())
            x1, y1 = max(x1, xs.max() + 1), max(y1, ys.max() + 1)
    x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
    x1, y1 = min(float(w), float(x1)), min(float(h), float(y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def clip_person_box(frames: Sequence[np.ndarray]) -> tuple[Optional[tuple[float, float, float, float]], int]:
    """Union of the person boxes over ``frames``; returns (box or None, number of frames with a person)."""
    import mediapipe as mp

    boxes = []
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True,
                                min_detection_confidence=0.5) as pose:
        for frame in frames:
            box = person_box(frame, pose)
            if box is not None:
                boxes.append(box)
    if not boxes:
        return None, 0
    arr = np.array(boxes)
    return (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max())), len(boxes)
