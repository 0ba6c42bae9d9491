"""FlowNet2 (the paper's flow targets, sec. 4 "use the optical flow obtained by FlowNet2 as ground truth") as a
flow backend.

``pipeline.pretrained.flownet2.load_flownet2`` reads the official NVIDIA/flownet2-pytorch checkpoint
``FlowNet2_checkpoint.pth.tar``; nothing is ever downloaded. ``FlowNet2Backend`` wraps the network behind the
``FlowBackend`` interface. FlowNet2 takes sizes that are multiples of 64; ``flow.flownet2_fit`` says how a frame
gets there:

* ``pad`` (default): pad the frames at the bottom/right by edge replication to the next multiple of 64 and crop
  the padding off the flow, so every pixel gets a flow;
* ``crop``: what the official ``main.py --inference`` does (its datasets' ``StaticCenterCrop`` to the largest
  multiples of 64): the centred crop only; the pixels outside it get flow 0 and are marked invalid
  (:meth:`FlowNet2Backend.coverage`). Recorded as ``flownet2-crop``.

Both are the same where a frame's sides are multiples of 64 (the demo's 256 x 192).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.flow.base import FlowBackend, check_image_pair
from pipeline.pretrained.flownet2 import FlowNet2, load_flownet2, resolve_flownet2_path

SIZE_MULTIPLE = 64  # FlowNet2 downsamples by 64 (six stride-2 stages)
FITS = ("pad", "crop")


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (..., H, W) at the bottom/right by edge replication up to multiples of ``multiple``."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return images
    lead = images.shape[:-2]
    flat = images.reshape((-1, 1) + tuple(images.shape[-2:]))
    flat = F.pad(flat, (0, pad_w, 0, pad_h), mode="replicate")
    return flat.reshape(lead + tuple(flat.shape[-2:]))


def center_crop_box(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> tuple[slice, slice]:
    """The official ``StaticCenterCrop`` to the largest multiples of ``multiple``: (rows, columns) slices."""
    crop_h, crop_w = height // multiple * multiple, width // multiple * multiple
    if crop_h == 0 or crop_w == 0:
        raise ValueError(f"a {height} x {width} frame has no {multiple} x {multiple} centre crop; use "
                         "flow.flownet2_fit: pad")
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return slice(top, top + crop_h), slice(left, left + crop_w)


class FlowNet2Backend(FlowBackend):
    """FlowNet2 behind the ``FlowBackend`` interface; ``fit`` is ``pad`` or ``crop`` (module docstring).

    The flow needs no rescaling either way. Use ``from_checkpoint`` for real flow; a model with random weights is
    only good for speed measurements and is then named "flownet2-random-weights" so it cannot pass as the real
    thing.
    """

    def __init__(self, model: FlowNet2, device: str | torch.device = "cpu", weights_path: Path | None = None,
                 fit: str = "pad"):
        if fit not in FITS:
            raise ValueError(f"FlowNet2 fit must be one of {FITS}, got {fit!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.fit = fit
        self.name = "flownet2" if weights_path is not None else "flownet2-random-weights"
        if fit == "crop":
            self.name += "-crop"
        self.info = {
            "backend": self.name,
            "weights": str(weights_path) if weights_path is not None else None,
            "sha256": getattr(model, "sha256", None),
            "device": str(self.device),
            "torch": torch.__version__,
            "fit": f"{fit} to multiples of {SIZE_MULTIPLE}",
        }

    @classmethod
    def from_checkpoint(cls, path: Path | str | None, device: str | torch.device = "cpu",
                        fit: str = "pad") -> "FlowNet2Backend":
        """Backend with the official weights (see ``load_flownet2`` for the errors it raises)."""
        return cls(load_flownet2(path, device), device, weights_path=resolve_flownet2_path(path), fit=fit)

    def coverage(self, height: int, width: int) -> np.ndarray | None:
        """Where the flow was computed: None (everywhere) with ``pad``; the centre crop's pixels with ``crop``."""
        if self.fit == "pad":
            return None
        rows, cols = center_crop_box(height, width)
        inside = np.zeros((height, width), dtype=bool)
        inside[rows, cols] = True
        return inside

    def compute(self, target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
        """Flow target -> reference, float32 (H, W, 2) in pixels (see ``pipeline.flow.base``); with ``crop``,
        0 outside :meth:`coverage`."""
        check_image_pair(target_rgb, reference_rgb)
        height, width = target_rgb.shape[:2]
        rows, cols = (slice(0, height), slice(0, width)) if self.fit == "pad" else center_crop_box(height, width)
        pair = np.stack([target_rgb[rows, cols], reference_rgb[rows, cols]], axis=0)  # (2, h, w, 3)
        inputs = torch.from_numpy(pair).to(self.device).permute(3, 0, 1, 2).unsqueeze(0).float()  # (1, 3, 2, h, w)
        size = inputs.shape[-2:]
        inputs = pad_to_multiple(inputs, SIZE_MULTIPLE)  # a no-op for the crop
        with torch.inference_mode():
            flow = self.model(inputs)[0, :, :size[0], :size[1]]
        flow = flow.permute(1, 2, 0).float().cpu().numpy()
        if self.fit == "pad":
            return np.ascontiguousarray(flow)
        full = np.zeros((height, width, 2), dtype=np.float32)
        full[rows, cols] = flow
        return full
