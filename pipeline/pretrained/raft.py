"""torchvision's RAFT (Teed & Deng, ECCV 2020): its published weights, loaded from local files only.

torchvision publishes RAFT weights as ``raft_large_*.pth`` / ``raft_small_*.pth`` (the file names come from
``torchvision.models.optical_flow.Raft_{Large,Small}_Weights``; each ends in the first 8 hex characters of its
sha256, checked here). We never download: the file must already be in the given path or in the torch hub cache
(``torch.hub.get_dir()/checkpoints``, where torchvision itself caches them). The flow stage's backend around the
network is ``pipeline.flow.raft_backend``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small

import pipeline.pretrained.weights as wf
from pipeline.core.errors import BadCheckpoint, WeightsNotFound


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


def weights_file(name: str) -> wf.WeightsFile:
    """A RAFT file as a weights file: torchvision's names carry the first 8 hex of their sha256
    (``raft_large_C_T_SKHT_V2-ff5fadd5.pth``); another name has no known digest (recorded only)."""
    return RAFT_WEIGHTS.get(name) or wf.WeightsFile("RAFT (torchvision)", name, None, RAFT_SOURCE)


RAFT_WEIGHTS = {name: wf.WeightsFile("RAFT (torchvision)", name, name.rsplit("-", 1)[1].split(".")[0], RAFT_SOURCE)
                for name in RAFT_FILES}


def find_raft_weights(weights: Path | str | None) -> Path:
    """The RAFT weights file to use.

    ``weights`` may be a file (``.pth``): that file, else the same file name in the torch hub cache; a folder:
    the first torchvision RAFT file name (``RAFT_FILES`` order) in it, else in the hub cache; ``None``: the hub
    cache only. Raises ``WeightsNotFound`` naming the expected file when there is none.
    """
    given = Path(weights) if weights is not None else None
    if given is not None and given.suffix == ".pth":
        candidates = [given, wf.hub_checkpoints() / given.name]
    else:
        folders = ([given] if given is not None else []) + [wf.hub_checkpoints()]
        candidates = [folder / name for name in RAFT_FILES for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsNotFound("RAFT (torchvision)", candidates[0], RAFT_SOURCE)


def load_raft(weights: Path | str | None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str, Path]:
    """Build torchvision RAFT with ``weights=None`` and strictly load the local file found by ``find_raft_weights``.

    The variant comes from the file name (``raft_small*`` / ``raft_large*``); for other names both are tried.
    Returns (model in eval mode on ``device``, variant "large" | "small", weights file).
    Raises ``WeightsNotFound`` (no file) or ``BadCheckpoint`` (another sha256 than its torchvision name says,
    unreadable, or fits neither variant).
    """
    file = find_raft_weights(weights)
    wf.verify(weights_file(file.name), file)
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
