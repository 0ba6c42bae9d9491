"""Discriminators: pix2pixHD multi-scale conditional PatchGAN (eq. 8, 10) and the face discriminator (3.2).

Both return, per scale, the list of every layer's output so the generator can use pix2pixHD feature
matching; the last entry of each list is the (B, 1, h, w) patch logit map (no sigmoid; the GAN objective in
``losses`` decides how to read it). Conditioning (eq. 8 takes the image *and* its mask): the image and the
condition map (region mask, layout, pose, ...) are concatenated along channels.

Face discriminator: a square box around BODY_25 face keypoints (nose, eyes, ears) is cropped out of the image
and of the condition with ``torchvision.ops.roi_align`` to ``cfg.face_crop`` pixels, then judged by a
single-scale PatchGAN. Keypoints follow OpenPose: (x, y) in pixels of the image with pixel centres at integer
coordinates, and a confidence in [0, 1] (0 = not detected).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align

from remot_models.blocks import norm_layer
from remot_models.config import ModelConfig

# BODY_25 indices of the face keypoints (copy of pipeline.core.labels.BODY25: nose, r_eye, l_eye, r_ear, l_ear).
FACE_KEYPOINTS: tuple[int, ...] = (0, 15, 16, 17, 18)


class PatchDiscriminator(nn.Module):
    """pix2pixHD ``NLayerDiscriminator`` with ``getIntermFeat=True``: 4x4 convs, LeakyReLU(0.2).

    Layers: conv s2 (no norm), ``n_layers - 1`` x (conv s2, norm), one conv s1 + norm, a 1-channel conv s1.
    ``forward(x) -> [feat_0, ..., feat_n, logits]`` (n_layers + 2 tensors).
    """

    def __init__(self, in_channels: int, ndf: int, n_layers: int, norm: str):
        super().__init__()
        pad = math.ceil((4 - 1) / 2)
        bias = norm == "none"
        stages: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, pad), nn.LeakyReLU(0.2, True))]
        nf = ndf
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            stages.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 2, pad, bias=bias), norm_layer(norm, nf),
                                        nn.LeakyReLU(0.2, True)))
        prev, nf = nf, min(nf * 2, 512)
        stages.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 1, pad, bias=bias), norm_layer(norm, nf),
                                    nn.LeakyReLU(0.2, True)))
        stages.append(nn.Conv2d(nf, 1, 4, 1, pad))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD ``MultiscaleDiscriminator``: ``num_scales`` PatchGANs on the input average-pooled 2x each time.

    ``forward(image (B, image_channels, H, W), condition (B, cond_channels, H, W))`` returns a list over scales
    (full resolution first) of ``PatchDiscriminator`` feature lists.
    """

    def __init__(self, cfg: ModelConfig, image_channels: int, cond_channels: int,
                 num_scales: int | None = None, n_layers: int | None = None):
        super().__init__()
        self.image_channels, self.cond_channels = image_channels, cond_channels
        num_scales = cfg.d_scales if num_scales is None else num_scales
        n_layers = cfg.d_layers if n_layers is None else n_layers
        self.scales = nn.ModuleList(
            PatchDiscriminator(image_channels + cond_channels, cfg.ndf, n_layers, cfg.norm) for _ in range(num_scales))

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> list[list[torch.Tensor]]:
        if image.shape[1] != self.image_channels or condition.shape[1] != self.cond_channels:
            raise ValueError(f"discriminator expects image with {self.image_channels} and condition with "
                             f"{self.cond_channels} channels, got {tuple(image.shape)} and {tuple(condition.shape)}")
        x = torch.cat([image, condition], dim=1)
        outputs = []
        for i, discriminator in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs


def face_boxes(keypoints: torch.Tensor, image_size: tuple[int, int], conf_threshold: float = 0.1,
               scale: float = 2.0, min_size_frac: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Square face boxes from BODY_25 keypoints.

    ``keypoints``: (B, 25, 3) (x, y, confidence), pixel centres at integer coordinates. ``image_size``: (H, W).
    The box is centred on the mean of the confident face keypoints (nose, eyes, ears); its side is ``scale``
    times the larger of their x / y spread (ear to ear ~ face width, so 2x leaves room for hair and chin), and
    at least ``min_size_frac * H`` (a full-body 256-px frame has faces of ~20-30 px). Returns ``boxes`` (B, 4)
    float (x0, y0, x1, y1) in continuous pixel coordinates (pixel (i, j) covers [j, j+1) x [i, i+1)), which
    may extend past the image, and ``valid`` (B,) bool: at least 2 confident face keypoints (else box = 0).
    """
    if keypoints.dim() != 3 or keypoints.shape[1:] != (25, 3):
        raise ValueError(f"expected BODY_25 keypoints (B, 25, 3), got {tuple(keypoints.shape)}")
    face = keypoints[:, list(FACE_KEYPOINTS)].detach()
    seen = face[..., 2] >= conf_threshold                                  # (B, 5)
    count = seen.sum(dim=1)
    valid = count >= 2
    weights = seen.to(face.dtype)
    centre = (face[..., :2] * weights[..., None]).sum(1) / count.clamp(min=1)[:, None] + 0.5
    big, small = torch.finfo(face.dtype).max, torch.finfo(face.dtype).min
    hi = torch.where(seen[..., None], face[..., :2], torch.full_like(face[..., :2], small)).amax(1)
    lo = torch.where(seen[..., None], face[..., :2], torch.full_like(face[..., :2], big)).amin(1)
    spread = torch.where(valid[:, None], hi - lo, torch.zeros_like(hi)).amax(1)
    side = torch.clamp(spread * scale, min=min_size_frac * image_size[0])
    boxes = torch.cat([centre - side[:, None] / 2, centre + side[:, None] / 2], dim=1)
    return boxes * valid[:, None].to(boxes.dtype), valid


def crop_faces(x: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (K, C, size, size) bilinear crops of the K valid boxes (``roi_align``, aligned=True)."""
    index = torch.nonzero(valid, as_tuple=False).flatten()
    rois = torch.cat([index[:, None].to(x.dtype), boxes[index].to(x.dtype)], dim=1)
    return roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)


class FaceDiscriminator(nn.Module):
    """Single-scale conditional PatchGAN on face crops (``cfg.face_crop`` px, ``cfg.face_d_layers`` layers).

    ``forward(image, condition, boxes, valid)`` crops both with :func:`crop_faces` and returns the same
    list-over-scales format as :class:`MultiscaleDiscriminator`, for the K valid items only; when no item has
    a face it returns ``[]`` (the losses in ``losses`` then give 0).
    """

    def __init__(self, cfg: ModelConfig, image_channels: int, cond_channels: int):
        super().__init__()
        self.crop = cfg.face_crop
        self.discriminator = MultiscaleDiscriminator(cfg, image_channels, cond_channels, num_scales=1,
                                                     n_layers=cfg.face_d_layers)

    def forward(self, image: torch.Tensor, condition: torch.Tensor, boxes: torch.Tensor,
                valid: torch.Tensor) -> list[list[torch.Tensor]]:
        if not bool(valid.any()):
            return []
        return self.discriminator(crop_faces(image, boxes, valid, self.crop),
                                  crop_faces(condition, boxes, valid, self.crop))
