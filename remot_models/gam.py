"""Global Alignment Module (paper 3.1, eq. 4): scale and move the source person onto the driving person.

From the person masks M_s (source) and M_d^t (driving, from the generated layout L^_d^t) we take each mask's
bounding box: height H and centre c. Eq. 4 scales the source foreground by R = H_d / H_s and shifts it by
c = c_d - c_s. We read the scaling as being about the source box centre, i.e. a source point x_s lands at

    x_d = R * (x_s - c_s) + c_d,

which is the only reading under which the shift c_d - c_s puts the scaled person's centre on c_d (scaling
about the image origin would move the centre to R * c_s + c_d - c_s). The scale is isotropic, as in eq. 4.

Coordinates: continuous pixel coordinates, x to the right and y down, where pixel (i, j) covers
[j, j + 1) x [i, i + 1); a box is (x0, y0, x1, y1) with x1, y1 exclusive (so width = x1 - x0). The warp
is ``F.affine_grid`` + ``F.grid_sample`` (bilinear, zeros padding, ``align_corners=False``), batched and
differentiable with respect to the image. Zeros padding is right for foregrounds: 0 means "no person".

An empty mask (no pixel above the threshold) in either input gives the identity transform for that batch item
(scale 1, offset 0), never a NaN.

The source person's box depends on the source layout alone: a caller aligning many driving frames onto one source
(the recurrence of ``remot_models.sequence``) takes it once with :meth:`GlobalAlignment.source_boxes` and passes it
to every ``forward``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from remot_models.blocks import BACKGROUND


def person_mask(layout: torch.Tensor) -> torch.Tensor:
    """(B, 6, H, W) layout -> (B, 1, H, W) person probability = 1 - background channel."""
    return 1.0 - layout[:, BACKGROUND:BACKGROUND + 1]


def mask_boxes(mask: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding boxes of ``mask > threshold``.

    ``mask``: (B, 1, H, W) or (B, H, W). Returns ``boxes`` (B, 4) float (x0, y0, x1, y1) in continuous pixel
    coordinates with exclusive x1, y1, and ``valid`` (B,) bool, False where the mask is empty (its box is
    then all zeros). Not differentiable (box extents are discrete).
    """
    if mask.dim() == 4:
        mask = mask[:, 0]
    on = mask.detach() > threshold
    rows, cols = on.any(dim=2), on.any(dim=1)          # (B, H), (B, W)
    valid = rows.any(dim=1)

    def extent(flags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = flags.shape[1]
        first = flags.int().argmax(dim=1)               # first True (0 when none: masked out by ``valid``)
        last = n - 1 - flags.flip(1).int().argmax(dim=1)
        return first, last + 1

    y0, y1 = extent(rows)
    x0, x1 = extent(cols)
    dtype = mask.dtype if mask.is_floating_point() else torch.float32
    boxes = torch.stack([x0, y0, x1, y1], dim=1).to(dtype)
    return boxes * valid[:, None].to(dtype), valid


def box_centres_heights(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 4) boxes -> centres (B, 2) as (cx, cy) and heights (B,), in pixels."""
    centres = torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], dim=1)
    return centres, boxes[:, 3] - boxes[:, 1]


def align_boxes(source_boxes: torch.Tensor, target_boxes: torch.Tensor,
                valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 4's parameters: scale R = H_d / H_s (B,) and offset c = c_d - c_s (B, 2) in pixels (dx, dy).

    Items where ``valid`` is False (or a box has zero height) get R = 1, c = 0.
    """
    c_s, h_s = box_centres_heights(source_boxes)
    c_d, h_d = box_centres_heights(target_boxes)
    ok = (h_s > 0) & (h_d > 0)
    if valid is not None:
        ok = ok & valid
    scale = torch.where(ok, h_d / torch.where(ok, h_s, torch.ones_like(h_s)), torch.ones_like(h_s))
    offset = torch.where(ok[:, None], c_d - c_s, torch.zeros_like(c_d))
    return scale, offset


def map_points(points: torch.Tensor, source_boxes: torch.Tensor, scale: torch.Tensor,
               offset: torch.Tensor) -> torch.Tensor:
    """Where eq. 4 sends source points: (B, N, 2) (x, y) -> (B, N, 2), x_d = R (x_s - c_s) + c_s + c."""
    c_s, _ = box_centres_heights(source_boxes)
    return scale[:, None, None] * (points - c_s[:, None]) + (c_s + offset)[:, None]


def alignment_theta(source_boxes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor,
                    height: int, width: int) -> torch.Tensor:
    """(B, 2, 3) ``F.affine_grid`` matrix (align_corners=False) that samples the source for eq. 4.

    affine_grid maps each output (driving) position to the source position it reads, i.e. the inverse
    x_s = (x_d - c_d) / R + c_s, written in normalised coordinates u = 2 x / size - 1.
    """
    c_s, _ = box_centres_heights(source_boxes)
    c_d = c_s + offset
    inv = 1.0 / scale
    size = torch.tensor([width, height], dtype=scale.dtype, device=scale.device)
    # u_s = u_d / R + (1 / R - 2 c_d / (R size) + 2 c_s / size - 1), per axis
    shift = inv[:, None] * (1.0 - 2.0 * c_d / size) + 2.0 * c_s / size - 1.0   # (B, 2)
    theta = torch.zeros(scale.shape[0], 2, 3, dtype=scale.dtype, device=scale.device)
    theta[:, 0, 0] = inv
    theta[:, 1, 1] = inv
    theta[:, :, 2] = shift
    return theta


def affine_warp(image: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp (B, C, H, W) by (B, 2, 3) ``theta`` (bilinear, zeros outside, align_corners=False)."""
    grid = F.affine_grid(theta.to(image.dtype), list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass
class AlignmentOutput:
    """Output of :class:`GlobalAlignment`."""

    aligned: torch.Tensor   # (B, C, H, W) the input image(s) after eq. 4
    theta: torch.Tensor     # (B, 2, 3) affine_grid matrix used (identity where disabled/empty)
    scale: torch.Tensor     # (B,) R
    offset: torch.Tensor    # (B, 2) c = c_d - c_s in pixels


class GlobalAlignment(nn.Module):
    """Eq. 4 as a parameter-free module: ``forward(image, source_layout, driving_layout) -> AlignmentOutput``.

    ``image`` (B, C, H, W) is anything in the source frame (foreground, stacked region images, masks);
    ``source_layout`` L_s and ``driving_layout`` L^_d^t are (B, 6, H, W). With ``enabled=False`` (the paper's
    "RGN w/o GAM" ablation) the image is returned unchanged (no resampling at all), with an identity theta.
    """

    def __init__(self, enabled: bool = True, threshold: float = 0.5):
        super().__init__()
        self.enabled = enabled
        self.threshold = threshold

    def source_boxes(self, source_layout: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The source person's box and validity, (B, 4) and (B,) as :func:`mask_boxes` (eq. 4's H_s and c_s)."""
        return mask_boxes(person_mask(source_layout), self.threshold)

    def forward(self, image: torch.Tensor, source_layout: torch.Tensor, driving_layout: torch.Tensor,
                source_boxes: tuple[torch.Tensor, torch.Tensor] | None = None) -> AlignmentOutput:
        """``source_boxes``: ``self.source_boxes(source_layout)`` when the caller already has it."""
        b, _, h, w = image.shape
        if not self.enabled:
            theta = torch.eye(2, 3, dtype=image.dtype, device=image.device).expand(b, 2, 3).clone()
            ones = torch.ones(b, dtype=image.dtype, device=image.device)
            return AlignmentOutput(image, theta, ones, torch.zeros(b, 2, dtype=image.dtype, device=image.device))
        src_boxes, src_ok = self.source_boxes(source_layout) if source_boxes is None else source_boxes
        dst_boxes, dst_ok = mask_boxes(person_mask(driving_layout), self.threshold)
        ok = src_ok & dst_ok
        scale, offset = align_boxes(src_boxes, dst_boxes, ok)
        theta = alignment_theta(src_boxes, scale, offset, h, w)
        # Resampling with an identity grid is only identity up to ~1e-5, so empty-mask items skip it.
        aligned = torch.where(ok.view(b, 1, 1, 1), affine_warp(image, theta), image)
        return AlignmentOutput(aligned, theta, scale, offset)
