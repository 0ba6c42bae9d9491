"""REMOT training losses (paper 3.1, eq. 6-10; temporal terms from vid2vid).

* :func:`reconstruction_loss` - eq. 6, mean L1 in pixel space.
* :func:`perceptual_loss` - eq. 7: L1 between the activations of a frozen feature network (content) and between
  their Gram matrices (style). The network is an argument: any module mapping images in [-1, 1] to a list of
  feature maps (the pipeline passes VGG19's relu1_1 .. relu5_1); this package holds no pretrained network.
* :func:`discriminator_loss`, :func:`generator_adversarial_loss` - eq. 8-10 with the objective chosen in
  ``ModelConfig.gan_objective``: ``vanilla`` is eq. 8/10's log-likelihood (non-saturating for G, BCE on
  logits), ``lsgan`` the pix2pixHD / vid2vid default, ``hinge`` the hinge loss. Summed over the scales k.
* :func:`feature_matching_loss` - pix2pixHD's discriminator feature matching.
* :func:`flow_loss`, :func:`warp_loss` - vid2vid's flow supervision (L1 to a reference flow, e.g. FlowNet2)
  and warp loss (L1 between the previous real frame warped by the predicted flow and the current real frame),
  both weighted by an optional per-pixel confidence (e.g. 0 where the reference flow is occluded).

Discriminator outputs are lists over scales of per-layer feature lists (see ``discriminators``); the last
feature of each scale is the patch logit map. An empty list (no face in the batch) gives a zero loss.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from remot_models.blocks import flow_warp


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Eq. 6: mean absolute error, a scalar."""
    return F.l1_loss(fake, real)


def area_normalised_l1(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                       eps: float = 1.0) -> torch.Tensor:
    """Eq. 6 normalised by a region's area: sum |fake - real| * mask / (C * sum(mask)) per item, averaged over
    the items whose mask is not empty (empty masks contribute 0). ``mask`` (B, 1, H, W) broadcasts over C.

    Per-region normalisation gives a 20-pixel head the same weight as a 2000-pixel torso, which an L1 averaged
    over the whole frame does not (eq. 9 sums the regions' losses; this is each region's mean error)."""
    c = fake.shape[1]
    area = mask.flatten(1).sum(1)
    err = ((fake - real).abs() * mask).flatten(1).sum(1) / (c * area + eps)
    present = (area > 0).to(err.dtype)
    return (err * present).sum() / present.sum().clamp_min(1.0)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix normalised by C * H * W."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def perceptual_loss(vgg: nn.Module, fake: torch.Tensor, real: torch.Tensor,
                    layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """Eq. 7 on images in [-1, 1]: ``{"content": sum_j w_j |phi_j(fake) - phi_j(real)|_1,
    "style": sum_j w_j |G_j(fake) - G_j(real)|_1}`` (scalars; L1 = mean absolute error).

    Eq. 7 sums the layers unweighted, hence the default ``layer_weights``; the caller weights content and
    style by ``lambda_per`` and ``lambda_style``. The real image's features carry no gradient.
    """
    fake_feats = vgg(fake)
    with torch.no_grad():
        real_feats = vgg(real)
    content = fake.new_zeros(())
    style = fake.new_zeros(())
    for weight, f, r in zip(layer_weights, fake_feats, real_feats):
        content = content + weight * F.l1_loss(f, r)
        style = style + weight * F.l1_loss(gram_matrix(f), gram_matrix(r))
    return {"content": content, "style": style}


def _logits(outputs: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [scale[-1] for scale in outputs]


def _zero(outputs: list[list[torch.Tensor]]) -> torch.Tensor:
    return outputs[0][-1].new_zeros(()) if outputs else torch.zeros(())


def discriminator_loss(real_outputs: list[list[torch.Tensor]], fake_outputs: list[list[torch.Tensor]],
                       objective: str) -> torch.Tensor:
    """Eq. 10 (written as a loss to minimise), summed over scales: real patches -> "real", fake -> "fake".

    Pass ``fake_outputs`` from a discriminator call on a *detached* fake. Returns a scalar.
    """
    loss = _zero(real_outputs)
    for real, fake in zip(_logits(real_outputs), _logits(fake_outputs)):
        if objective == "lsgan":
            loss = loss + F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
        elif objective == "hinge":
            loss = loss + F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        elif objective == "vanilla":
            loss = loss + F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) \
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        else:
            raise ValueError(f"unknown GAN objective {objective!r}; expected lsgan | hinge | vanilla")
    return loss


def generator_adversarial_loss(fake_outputs: list[list[torch.Tensor]], objective: str) -> torch.Tensor:
    """Eq. 8, summed over scales: the generator wants its patches judged real. Returns a scalar."""
    loss = _zero(fake_outputs)
    for fake in _logits(fake_outputs):
        if objective == "lsgan":
            loss = loss + F.mse_loss(fake, torch.ones_like(fake))
        elif objective == "hinge":
            loss = loss - fake.mean()
        elif objective == "vanilla":
            loss = loss + F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        else:
            raise ValueError(f"unknown GAN objective {objective!r}; expected lsgan | hinge | vanilla")
    return loss


def feature_matching_loss(real_outputs: list[list[torch.Tensor]],
                          fake_outputs: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD feature matching: sum over scales and intermediate layers (not the logits) of
    L1(fake_feat, real_feat.detach()), weighted 4 / (n_layers + 1) per layer and 1 / num_scales per scale.
    Returns a scalar (multiply by ``lambda_feat``)."""
    loss = _zero(fake_outputs)
    num_scales = len(fake_outputs)
    for real_feats, fake_feats in zip(real_outputs, fake_outputs):
        n_layers = len(fake_feats) - 2
        layer_weight = 4.0 / (n_layers + 1)
        for real, fake in zip(real_feats[:-1], fake_feats[:-1]):
            loss = loss + layer_weight / num_scales * F.l1_loss(fake, real.detach())
    return loss


def _confidence_weighted_l1(a: torch.Tensor, b: torch.Tensor, confidence: torch.Tensor | None) -> torch.Tensor:
    """vid2vid's ``MaskedL1Loss``: the mean over every pixel, low-confidence ones weighted down, not divided by the
    confidence's area as :func:`area_normalised_l1` is (flow supervision is per frame, not per region)."""
    if confidence is None:
        return F.l1_loss(a, b)
    return F.l1_loss(a * confidence, b * confidence)


def flow_loss(flow: torch.Tensor, target_flow: torch.Tensor,
              confidence: torch.Tensor | None = None) -> torch.Tensor:
    """vid2vid's flow L1: predicted (B, 2, H, W) vs reference flow in pixels, masked by ``confidence``
    (B, 1, H, W) in [0, 1] where given (vid2vid's ``MaskedL1Loss``). Returns a scalar."""
    return _confidence_weighted_l1(flow, target_flow, confidence)


def warp_loss(previous: torch.Tensor, flow: torch.Tensor, current: torch.Tensor,
              confidence: torch.Tensor | None = None) -> torch.Tensor:
    """vid2vid's warp loss: L1 between ``flow_warp(previous, flow)`` and ``current`` (both (B, C, H, W),
    usually the real frames t-1 and t), weighted by ``confidence`` (B, 1, H, W) (0 = occluded / unreliable).
    Returns a scalar."""
    return _confidence_weighted_l1(flow_warp(previous, flow), current, confidence)
