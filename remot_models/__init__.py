"""REMOT networks (Yang et al., MM'22, section 3) as plain ``nn.Module``s: no file I/O, no pipeline imports.

Tensor conventions (images in [-1, 1], 6-channel layouts in ``REGIONS`` order, flow in pixels, explicit
temporal state) are documented in ``remot_models.blocks``.
"""
from __future__ import annotations

import torch.nn as nn

from remot_models.blocks import BACKGROUND, NUM_PERSON_REGIONS, NUM_REGIONS, REGIONS, flow_warp
from remot_models.config import PROFILES, ModelConfig
from remot_models.discriminators import FaceDiscriminator, MultiscaleDiscriminator, face_boxes
from remot_models.gam import GlobalAlignment, align_boxes, mask_boxes
from remot_models.layout_gan import LayoutGenerator, LayoutOutput
from remot_models.losses import VGG19Features
from remot_models.region_gan import RegionGenerator, RegionOutput
from remot_models.tam import TextureAlignment, fused_tam, naive_tam
from remot_models.wcn import CompositionOutput, WholeCompositionNetwork


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``module`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "BACKGROUND", "NUM_PERSON_REGIONS", "NUM_REGIONS", "REGIONS", "PROFILES", "ModelConfig",
    "CompositionOutput", "FaceDiscriminator", "GlobalAlignment", "LayoutGenerator", "LayoutOutput",
    "MultiscaleDiscriminator", "RegionGenerator", "RegionOutput", "TextureAlignment", "VGG19Features",
    "WholeCompositionNetwork", "align_boxes", "count_parameters", "face_boxes", "flow_warp", "fused_tam",
    "mask_boxes", "naive_tam",
]
