"""torchvision RAFT (Teed & Deng, ECCV 2020) as an optional flow backend, from locally present weights only.

torchvision publishes RAFT weights as ``raft_large_*.pth`` / ``raft_small_*.pth`` (the file names come from
``torchvision.models.optical_flow.Raft_{Large,Small}_Weights``). We never download: the file must already be
in the given path or in the torch hub cache (``torch.hub.get_dir()/checkpoints``, where torchvision itself
caches them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.flow.base import FlowBackend, check_image_pair


def _file_name(weights) -> str:
    return weights.url.rsplit("/", 1)[-1]


# Search order: the best general-purpose large model first, then the other large ones, then the small ones.
PREFERRED_RAFT_FILE = _file_name(Raft_Large_Weights.C_T_SKHT_V2)
RAFT_FILES = [PREFERRED_RAFT_FILE] + [
    _file_name(w) for w in list(Raft_Large_Weights) + list(Raft_Small_Weights) if _file_name(w) != PREFERRED_RAFT_FILE
]
RAFT_SOURCE = (
    f"torchvision's published RAFT weights, e.g. {Raft_Large_Weights.C_T_SKHT_V2.url} "
    "(torchvision.models.optical_flow.Raft_Large_Weights.C_T_SKHT_V2); put the file in the given weights folder "
    "or in the torch hub cache folder <torch.hub.get_dir()>/checkpoints"
)
FALLBACK_NOTE = "the offline OpenCV DIS flow backend (opencv-dis-<preset>) instead"
SIZE_MULTIPLE = 8  # RAFT works at 1/8 resolution
MIN_SIDE = 128  # torchvision's 4-level correlation pyramid needs feature maps of at least 16 x 16


def hub_checkpoint_dir() -> Path:
    """torchvision's own download cache, ``<torch hub dir>/checkpoints`` (only read, never written)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_raft_weights(weights: Path | str | None) -> Path:
    """The RAFT weights file to use.

    ``weights`` may be a file (``.pth``): that file, else the same file name in the torch hub cache; a folder:
    the first torchvision RAFT file name (``RAFT_FILES`` order) in it, else in the hub cache; ``None``: the hub
    cache only. Raises ``WeightsNotFound`` naming the expected file when there is none.
    """
    given = Path(weights) if weights is not None else None
    if given is not None and given.suffix == ".pth":
        candidates = [given, hub_checkpoint_dir() / given.name]
    else:
        folders = ([given] if given is not None else []) + [hub_checkpoint_dir()]
        candidates = [folder / name for name in RAFT_FILES for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsNotFound("RAFT (torchvision)", candidates[0], RAFT_SOURCE, fallback=FALLBACK_NOTE)


def load_raft(weights: Path | str | None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str, Path]:
    """Build torchvision RAFT with ``weights=None`` and strictly load the local file found by ``find_raft_weights``.

    The variant comes from the file name (``raft_small*`` / ``raft_large*``); for other names both are tried.
    Returns (model in eval mode on ``device``, variant "large" | "small", weights file).
    Raises ``WeightsNotFound`` (no file) or ``BadCheckpoint`` (unreadable, or fits neither variant).
    """
    file = find_raft_weights(weights)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise BadCheckpoint(f"{file}: cannot be read as a weights-only PyTorch checkpoint ({error})") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BadCheckpoint(f"{file}: expected a RAFT state dict, got {type(state).__name__}")

    builders = {"large": raft_large, "small": raft_small}
    if file.name.startswith("raft_small"):
        variants = ["small"]
    elif file.name.startswith("raft_large"):
        variants = ["large"]
    else:
        variants = ["large", "small"]
    errors = []
    for variant in variants:
        model = builders[variant](weights=None, progress=False)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            errors.append(f"raft_{variant}: {str(error)[:400]}")
            continue
        return model.to(device).eval(), variant, file
    raise BadCheckpoint(f"{file} does not match torchvision {' or '.join('raft_' + v for v in variants)}: {errors}")


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
