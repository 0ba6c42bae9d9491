"""FlowNet2 (the paper's flow targets, sec. 4 "use the optical flow obtained by FlowNet2 as ground truth").

``load_flownet2`` reads the official NVIDIA/flownet2-pytorch checkpoint ``FlowNet2_checkpoint.pth.tar`` (the
converted Caffe FlowNet2 weights) into ``pipeline.pretrained.flownet2.FlowNet2``; nothing is ever downloaded.
``FlowNet2Backend`` wraps the network behind the ``FlowBackend`` interface.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.flow.base import FlowBackend, check_image_pair
from pipeline.pretrained.flownet2 import FlowNet2

FLOWNET2_FILE = "FlowNet2_checkpoint.pth.tar"
FLOWNET2_SOURCE = (
    "NVIDIA/flownet2-pytorch, README section 'Converted Caffe Pre-trained Models' "
    "(https://github.com/NVIDIA/flownet2-pytorch#converted-caffe-pre-trained-models): the 'FlowNet2' [620MB] "
    "Google Drive file https://drive.google.com/file/d/1LLYdnObBYzs7rDYYUCGscuC2nwO7y85I "
    f"(saved as {FLOWNET2_FILE}; note its licence terms)"
)
FALLBACK_NOTE = "the offline OpenCV DIS flow backend (opencv-dis-<preset>) instead"
SIZE_MULTIPLE = 64  # FlowNet2 downsamples by 64 (six stride-2 stages)


def resolve_flownet2_path(path: Path | str | None) -> Path:
    """The checkpoint file: ``path`` itself, or ``path / FlowNet2_checkpoint.pth.tar`` when ``path`` is a folder.

    ``None`` means "not configured" and resolves to the bare file name, which then is reported as missing.
    """
    if path is None:
        return Path(FLOWNET2_FILE)
    path = Path(path)
    return path / FLOWNET2_FILE if path.is_dir() else path


def _state_dict_from(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: the official ``{"state_dict": ..., "epoch", "best_EPE"}`` or a bare dict."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise BadCheckpoint(
            f"{path}: expected a FlowNet2 state dict (or the official {{'state_dict': ...}} wrapper), "
            f"got {type(checkpoint).__name__}. Use the official {FLOWNET2_FILE}."
        )
    # Checkpoints saved from nn.DataParallel prefix every key with "module."; that prefix carries no meaning.
    if checkpoint and all(k.startswith("module.") for k in checkpoint):
        checkpoint = {k[len("module."):]: v for k, v in checkpoint.items()}
    return dict(checkpoint)


def _describe_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], limit: int = 5) -> str:
    """A short human-readable list of the first missing, unexpected and wrongly shaped keys ("" when none)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong_shape = [
        f"{k} {tuple(found[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:limit])}{more}")
    return "; ".join(parts)


def load_flownet2(path: Path | str | None, device: str | torch.device = "cpu") -> FlowNet2:
    """Load the official FlowNet2 checkpoint strictly; returns the network in eval mode on ``device`` (float32).

    ``path`` is the checkpoint file or the folder holding ``FlowNet2_checkpoint.pth.tar``.
    Raises ``WeightsNotFound`` when the file is absent (naming where it is published) and ``BadCheckpoint`` when
    it cannot be read or its keys/shapes differ from the network (naming the first differing keys).
    """
    file = resolve_flownet2_path(path)
    if not file.is_file():
        raise WeightsNotFound("FlowNet2", file, FLOWNET2_SOURCE, fallback=FALLBACK_NOTE)
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt/foreign files; all mean the same here
        raise BadCheckpoint(
            f"{file}: cannot be read as a weights-only PyTorch checkpoint ({error}). "
            f"Re-download {FLOWNET2_FILE} from {FLOWNET2_SOURCE}."
        ) from error
    state = _state_dict_from(checkpoint, file)

    # Build on the meta device: no 650 MB random initialisation that the checkpoint would overwrite anyway.
    with torch.device("meta"):
        model = FlowNet2(init_weights=False)
    mismatch = _describe_mismatch(model.state_dict(), state)
    if mismatch:
        raise BadCheckpoint(f"{file} does not match FlowNet2 (with_bn=False): {mismatch}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval()


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


class FlowNet2Backend(FlowBackend):
    """FlowNet2 behind the ``FlowBackend`` interface.

    Inputs are padded (edge replication) to multiples of 64, so the flow needs no rescaling; the padding is
    cropped off the result. Use ``from_checkpoint`` for real flow; a model with random weights is only good for
    speed measurements and is then named "flownet2-random-weights" so it cannot pass as the real thing.
    """

    def __init__(self, model: FlowNet2, device: str | torch.device = "cpu", weights_path: Path | None = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.name = "flownet2" if weights_path is not None else "flownet2-random-weights"
        self.info = {
            "backend": self.name,
            "weights": str(weights_path) if weights_path is not None else None,
            "device": str(self.device),
            "torch": torch.__version__,
            "pad_multiple": SIZE_MULTIPLE,
        }

    @classmethod
    def from_checkpoint(cls, path: Path | str | None, device: str | torch.device = "cpu") -> "FlowNet2Backend":
        """Backend with the official weights (see ``load_flownet2`` for the errors it raises)."""
        return cls(load_flownet2(path, device), device, weights_path=resolve_flownet2_path(path))

    def compute(self, target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
        """Flow target -> reference, float32 (H, W, 2) in pixels (see ``pipeline.flow.base``)."""
        check_image_pair(target_rgb, reference_rgb)
        height, width = target_rgb.shape[:2]
        pair = np.stack([target_rgb, reference_rgb], axis=0)  # (2, H, W, 3)
        inputs = torch.from_numpy(pair).to(self.device).permute(3, 0, 1, 2).unsqueeze(0).float()  # (1, 3, 2, H, W)
        inputs = pad_to_multiple(inputs, SIZE_MULTIPLE)
        with torch.inference_mode():
            flow = self.model(inputs)[0, :, :height, :width]
        return np.ascontiguousarray(flow.permute(1, 2, 0).float().cpu().numpy())
