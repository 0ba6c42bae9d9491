"""torchvision RAFT (Teed & Deng, ECCV 2020) as an optional flow backend; the network and its weights files are
``pipeline.pretrained.raft`` (local files only, sha256 checked)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.flow.base import FlowBackend, check_image_pair
from pipeline.pretrained.raft import load_raft

SIZE_MULTIPLE = 8  # RAFT works at 1/8 resolution
MIN_SIDE = 128  # torchvision's 4-level correlation pyramid needs feature maps of at least 16 x 16


class RaftBackend(FlowBackend):
    """torchvision RAFT behind the ``FlowBackend`` interface (``num_flow_updates`` refinement iterations).

    Frames are scaled to [-1, 1] (torchvision's ``OpticalFlow`` preset) and padded by edge replication to
    multiples of 8 (and at least 128 px, RAFT's minimum); the padding is cropped off the flow. A model not
    loaded from a file is named "raft-<variant>-random-weights" (speed measurements only).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        variant: str,
        device: str | torch.device = "cpu",
        weights_path: Path | None = None,
        num_flow_updates: int = 12,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.num_flow_updates = num_flow_updates
        self.name = f"raft-{variant}" if weights_path is not None else f"raft-{variant}-random-weights"
        self.info = {
            "backend": self.name,
            "weights": str(weights_path) if weights_path is not None else None,
            "device": str(self.device),
            "num_flow_updates": num_flow_updates,
            "torch": torch.__version__,
        }

    @classmethod
    def from_weights(
        cls, weights: Path | str | None, device: str | torch.device = "cpu", num_flow_updates: int = 12
    ) -> "RaftBackend":
        model, variant, file = load_raft(weights, device)
        return cls(model, variant, device, weights_path=file, num_flow_updates=num_flow_updates)

    def compute(self, target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
        """Flow target -> reference, float32 (H, W, 2) in pixels (see ``pipeline.flow.base``)."""
        check_image_pair(target_rgb, reference_rgb)
        height, width = target_rgb.shape[:2]
        pair = torch.from_numpy(np.stack([target_rgb, reference_rgb])).to(self.device)
        pair = pair.permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (2, 3, H, W) in [-1, 1]
        padded_h = max(MIN_SIDE, height + -height % SIZE_MULTIPLE)
        padded_w = max(MIN_SIDE, width + -width % SIZE_MULTIPLE)
        pair = F.pad(pair, (0, padded_w - width, 0, padded_h - height), mode="replicate")
        with torch.inference_mode():
            # RAFT(image1, image2) gives flow on image1's grid pointing into image2: target -> reference.
            flow = self.model(pair[:1], pair[1:], num_flow_updates=self.num_flow_updates)[-1]
        return np.ascontiguousarray(flow[0, :, :height, :width].permute(1, 2, 0).float().cpu().numpy())
