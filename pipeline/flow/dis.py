"""OpenCV DIS optical flow (Kroeger et al., ECCV 2016): the offline default backend, needs no weights.

Much less accurate than FlowNet2 on large, non-rigid motion, but deterministic, CPU-fast and always available;
outputs record ``opencv-dis-<preset>`` so nobody mistakes it for FlowNet2 targets.
"""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.flow.base import FlowBackend, check_image_pair

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class DisFlowBackend(FlowBackend):
    """DIS flow on grayscale frames; ``preset`` is one of ``DIS_PRESETS`` (default "medium")."""

    def __init__(self, preset: str = "medium"):
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(DIS_PRESETS)}")
        self.preset = preset
        self.name = f"opencv-dis-{preset}"
        self.info = {"backend": self.name, "opencv": cv2.__version__, "preset": preset, "input": "grayscale"}
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])

    def compute(self, target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
        """Flow target -> reference, float32 (H, W, 2) in pixels (see ``pipeline.flow.base``)."""
        check_image_pair(target_rgb, reference_rgb)
        target = cv2.cvtColor(target_rgb, cv2.COLOR_RGB2GRAY)
        reference = cv2.cvtColor(reference_rgb, cv2.COLOR_RGB2GRAY)
        # DIS.calc(I0, I1) returns f with I0(x) ~ I1(x + f(x)): exactly our target -> reference convention.
        flow = self._dis.calc(target, reference, None)
        return np.ascontiguousarray(flow, dtype=np.float32)
