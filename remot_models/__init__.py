"""REMOT networks (Yang et al., MM'22, section 3) as plain ``nn.Module``s: no file I/O, no pipeline imports.

Tensor conventions (images in [-1, 1], 6-channel layouts in ``REGIONS`` order, flow in pixels, explicit
temporal state) are documented in ``remot_models.blocks``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn

# Imported on first use (PEP 562): ``pipeline.core.params`` needs only ``remot_models.config``, and importing the
# package eagerly would load torch and torchvision (seconds) into every preprocessing stage's start-up.
_EXPORTS = {
    "remot_models.blocks": ("BACKGROUND", "NUM_PERSON_REGIONS", "NUM_REGIONS", "REGIONS", "flow_warp"),
    "remot_models.config": ("PROFILES", "ModelConfig"),
    "remot_models.discriminators": ("FaceDiscriminator", "MultiscaleDiscriminator", "face_boxes"),
    "remot_models.gam": ("GlobalAlignment", "align_boxes", "mask_boxes"),
    "remot_models.layout_gan": ("LayoutGenerator", "LayoutOutput"),
    "remot_models.region_gan": ("RegionGenerator", "RegionOutput"),
    "remot_models.tam": ("TextureAlignment", "fused_tam", "naive_tam"),
    "remot_models.wcn": ("CompositionOutput", "WholeCompositionNetwork"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'remot_models' has no attribute {name!r}")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``module`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "BACKGROUND", "NUM_PERSON_REGIONS", "NUM_REGIONS", "REGIONS", "PROFILES", "ModelConfig",
    "CompositionOutput", "FaceDiscriminator", "GlobalAlignment", "LayoutGenerator", "LayoutOutput",
    "MultiscaleDiscriminator", "RegionGenerator", "RegionOutput", "TextureAlignment",
    "WholeCompositionNetwork", "align_boxes", "count_parameters", "face_boxes", "flow_warp", "fused_tam",
    "mask_boxes", "naive_tam",
]
