"""REMOT operators: flow warp (eq. 2c), TAM (eq. 12-13), face boxes and crops, and the losses (eq. 6-10, vid2vid
flow terms). Inputs are made here or read from the shared footage (skipped where absent)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.pretrained.vgg19 import VGG19Features
from remot_models import ModelConfig, MultiscaleDiscriminator, flow_warp, fused_tam, naive_tam
from remot_models.discriminators import crop_faces, face_boxes
from remot_models.losses import (discriminator_loss, feature_matching_loss, flow_loss,
                                 generator_adversarial_loss, gram_matrix, perceptual_loss, reconstruction_loss,
                                 warp_loss)
from remot_models.tam import TextureAlignment


pytestmark = pytest.mark.usefixtures("one_thread_seeded")


@pytest.fixture(scope="module")
def frame(footage_clips) -> torch.Tensor:
    """First frame of the first shared clip as (1, 3, 256, 192) in [-1, 1]."""
    path = sorted(next(iter(footage_clips.values())).glob("*.png"))[0]
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None] / 127.5 - 1


def shift_flow(dx: float, dy: float, h: int = 256, w: int = 192) -> torch.Tensor:
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


# ----------------------------------------------------------------------------------------------- flow warp
def test_zero_flow_is_exact_identity(frame):
    assert torch.equal(flow_warp(frame, torch.zeros(1, 2, *frame.shape[-2:])), frame)


@pytest.mark.parametrize("dx, dy", [(3, 0), (0, -5), (7, 2), (-4, -9)])
def test_integer_flow_moves_pixels_exactly(frame, dx, dy):
    out = flow_warp(frame, shift_flow(dx, dy))
    h, w = frame.shape[-2:]
    # out(x, y) = frame(x + dx, y + dy) wherever x + dx, y + dy is inside the image
    ys, xs = slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx))
    ys_src, xs_src = slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx))
    assert torch.equal(out[..., ys, xs], frame[..., ys_src, xs_src])
    # border padding: positions past the right / bottom edge read the last column / row
    if dx > 0:
        assert torch.equal(out[..., ys, -dx:], frame[..., ys_src, -1:].expand(-1, -1, -1, dx))
    if dy > 0:
        assert torch.equal(out[..., -dy:, xs], frame[..., -1:, xs_src].expand(-1, -1, dy, -1))


def test_fractional_flow_matches_grid_sample_border_bilinear():
    image = torch.randn(2, 3, 24, 20)
    flow = torch.randn(2, 2, 24, 20) * 4
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(20.0), indexing="ij")
    grid = torch.stack([(xs + flow[:, 0]) / 19 * 2 - 1, (ys + flow[:, 1]) / 23 * 2 - 1], dim=-1)
    reference = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    assert torch.allclose(flow_warp(image, flow), reference, atol=1e-4)


def test_flow_warp_gradients_reach_image_and_flow():
    image = torch.randn(1, 3, 16, 12, requires_grad=True)
    flow = (torch.randn(1, 2, 16, 12) * 2).requires_grad_()
    (flow_warp(image, flow) * torch.randn(1, 3, 16, 12)).sum().backward()
    assert image.grad.abs().sum() > 0 and flow.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------- TAM
@pytest.mark.parametrize("shape", [(2, 16, 12, 9), (1, 32, 64, 48)])
def test_fused_tam_equals_naive(shape):
    f1, f2 = torch.randn(shape), torch.randn(shape)
    assert torch.allclose(fused_tam(f1, f2), naive_tam(f1, f2), atol=1e-5)


def test_tam_softmax_runs_over_source_positions():
    """If every source position carries the same feature v, each generated position receives exactly v:
    the affinity columns sum to 1 over the source positions (eq. 13 reading), whatever F2 is."""
    v = torch.randn(1, 8, 1, 1)
    f1 = v.expand(1, 8, 6, 5).clone()
    f2 = torch.randn(1, 8, 6, 5)
    assert torch.allclose(fused_tam(f1, f2), f2 + v, atol=1e-5)
    assert torch.allclose(naive_tam(f1, f2), f2 + v, atol=1e-5)


def test_tam_aligns_a_matching_texture():
    """A source position whose texture matches the generated one gets more weight than the rest."""
    f2 = torch.zeros(1, 4, 1, 2)
    f2[0, :, 0, 0] = torch.tensor([1.0, 0, 0, 0])
    f2[0, :, 0, 1] = torch.tensor([0, 1.0, 0, 0])
    f1 = torch.zeros(1, 4, 1, 2)
    f1[0, :, 0, 0] = torch.tensor([0, 2.0, 0, 0])      # matches generated position 1
    f1[0, :, 0, 1] = torch.tensor([3.0, 0, 0, 0])      # matches generated position 0
    aligned = fused_tam(f1, f2) - f2
    # position 0 mostly receives f1 at source position 1 (channel 0), position 1 mostly channel 1
    assert aligned[0, 0, 0, 0] > aligned[0, 1, 0, 0] and aligned[0, 1, 0, 1] > aligned[0, 0, 0, 1]


@pytest.mark.parametrize("temperature", [1.0, 0.01])
def test_fused_tam_equals_naive_with_temperature(temperature):
    f1, f2 = torch.randn(2, 16, 8, 6), torch.randn(2, 16, 8, 6)
    assert torch.allclose(fused_tam(f1, f2, temperature), naive_tam(f1, f2, temperature), atol=1e-4)


def test_tam_attention_concentrates_at_realistic_size():
    """At the paper's 32x24 bottleneck (768 positions), F2 = a spatially permuted copy of F1 plus noise: with the
    temperature (0.01) each generated position takes >= 90% of its weight from its true source position and the
    aligned features reproduce the permuted source; with eq. 12 literally (temperature 1) the largest weight stays
    near 1/768 * e^2, so the "aligned" features are about the mean of F1 (issue: TAM cannot attend at real sizes)."""
    torch.manual_seed(0)
    c, h, w = 64, 32, 24
    f1 = torch.randn(1, c, h, w)
    perm = torch.randperm(h * w)
    f2 = f1.flatten(2)[:, :, perm].reshape(1, c, h, w) + 0.3 * torch.randn(1, c, h, w)

    def weights(temperature):
        h1, h2 = f1.flatten(2), f2.flatten(2)
        cos = F.normalize(h1, dim=1).transpose(1, 2) @ F.normalize(h2, dim=1)
        return torch.softmax(cos / temperature, dim=1)[0]             # [source i, generated j]

    sharp, literal = weights(0.01), weights(1.0)
    on_match = sharp[perm, torch.arange(h * w)]
    assert on_match.min() > 0.9
    assert literal.max() < 0.02
    target = f1.flatten(2)[:, :, perm].reshape(1, c, h, w)
    aligned_sharp = fused_tam(f1, f2, 0.01) - f2
    aligned_literal = fused_tam(f1, f2, 1.0) - f2
    assert F.l1_loss(aligned_sharp, target) < 0.1
    assert F.l1_loss(aligned_literal, target) > 0.7                    # ~ E|N(0,1)| = 0.8: no alignment


def test_tam_off_is_plain_addition():
    f1, f2 = torch.randn(1, 8, 6, 5), torch.randn(1, 8, 6, 5)
    assert torch.equal(TextureAlignment(enabled=False)(f1, f2), f1 + f2)
    assert not torch.allclose(TextureAlignment(enabled=True)(f1, f2), f1 + f2)


# ----------------------------------------------------------------------------------------------- face
def test_face_boxes_from_body25_keypoints():
    kp = torch.zeros(3, 25, 3)
    # item 0: nose, eyes and ears (spread 16 px in x) -> side 32 px
    for joint, (x, y) in {0: (96, 40), 15: (92, 36), 16: (100, 36), 17: (88, 38), 18: (104, 38)}.items():
        kp[0, joint] = torch.tensor([x, y, 0.9])
    # item 1: only nose and one eye, 4 px apart -> the minimum side 0.1 * 256
    kp[1, 0] = torch.tensor([50.0, 30.0, 0.8])
    kp[1, 16] = torch.tensor([54.0, 27.0, 0.8])
    # item 2: a single confident face point is not enough
    kp[2, 0] = torch.tensor([50.0, 30.0, 0.8])
    boxes, valid = face_boxes(kp, (256, 192))
    assert valid.tolist() == [True, True, False]
    cx, cy = 96 + 0.5, (40 + 36 + 36 + 38 + 38) / 5 + 0.5
    assert torch.allclose(boxes[0], torch.tensor([cx - 16, cy - 16, cx + 16, cy + 16]))
    assert torch.allclose(boxes[1, 2:] - boxes[1, :2], torch.tensor([25.6, 25.6]))
    assert torch.equal(boxes[2], torch.zeros(4))


def test_crop_faces_samples_the_box():
    """On a horizontal ramp image(x) = column index, crop column k of a box [x0, x1) reads the pixel-index
    coordinate x0 + (k + 0.5) * (x1 - x0) / S - 0.5."""
    ramp = torch.arange(192.0).expand(1, 1, 256, 192).clone()
    boxes = torch.tensor([[40.0, 100.0, 72.0, 132.0]])
    crop = crop_faces(ramp, boxes, torch.tensor([True]), 8)
    expected = 40 + (torch.arange(8.0) + 0.5) * 4 - 0.5
    assert crop.shape == (1, 1, 8, 8)
    assert torch.allclose(crop[0, 0], expected.expand(8, 8), atol=1e-4)


# ----------------------------------------------------------------------------------------------- losses
def test_reconstruction_loss():
    a = torch.zeros(1, 3, 4, 4)
    assert reconstruction_loss(a, a) == 0
    assert torch.isclose(reconstruction_loss(a + 0.5, a), torch.tensor(0.5))


@pytest.fixture(scope="module")
def vgg() -> VGG19Features:
    torch.manual_seed(0)
    return VGG19Features()


def test_vgg_features_layers_and_perceptual_loss(vgg, frame):
    image = F.interpolate(frame, size=(64, 48), mode="bilinear", align_corners=False)
    feats = vgg(image)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 64, 48), (128, 32, 24), (256, 16, 12), (512, 8, 6),
                                                  (512, 4, 3)]
    assert all(bool((f >= 0).all()) for f in feats)        # every tap is a ReLU output
    same = perceptual_loss(vgg, image, image)
    assert same["content"] == 0 and same["style"] == 0
    noisy = (image + 0.3 * torch.randn_like(image)).requires_grad_()
    losses = perceptual_loss(vgg, noisy, image)
    assert losses["content"] > 0 and losses["style"] > 0
    (losses["content"] + losses["style"]).backward()
    assert noisy.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())  # VGG stays frozen


def test_gram_matrix():
    f = torch.randn(2, 3, 4, 5)
    flat = f.reshape(2, 3, 20)
    assert torch.allclose(gram_matrix(f), torch.einsum("bci,bdi->bcd", flat, flat) / 60)


def _outputs(*logits: float) -> list[list[torch.Tensor]]:
    """Discriminator-shaped outputs: one scale per value, each [dummy feature, constant logit map]."""
    return [[torch.zeros(1, 2, 3, 3), torch.full((1, 1, 3, 3), v)] for v in logits]


def test_adversarial_losses_per_objective():
    perfect_real, perfect_fake = _outputs(1.0, 1.0), _outputs(0.0, 0.0)
    assert discriminator_loss(perfect_real, perfect_fake, "lsgan") == 0
    assert torch.isclose(generator_adversarial_loss(perfect_fake, "lsgan"), torch.tensor(2.0))  # 2 scales x 1
    assert discriminator_loss(_outputs(1.0), _outputs(-1.0), "hinge") == 0
    assert torch.isclose(discriminator_loss(_outputs(0.0), _outputs(0.0), "hinge"), torch.tensor(2.0))
    assert torch.isclose(generator_adversarial_loss(_outputs(0.5), "hinge"), torch.tensor(-0.5))
    # vanilla = eq. 8/10's log-likelihood on logits: D(x) = sigmoid(logit)
    z = 0.7
    expected_d = -np.log(1 / (1 + np.exp(-z))) - np.log(1 - 1 / (1 + np.exp(z)))
    assert torch.isclose(discriminator_loss(_outputs(z), _outputs(-z), "vanilla"), torch.tensor(expected_d,
                                                                                               dtype=torch.float32))
    assert torch.isclose(generator_adversarial_loss(_outputs(z), "vanilla"),
                         torch.tensor(-np.log(1 / (1 + np.exp(-z))), dtype=torch.float32))
    assert discriminator_loss([], [], "lsgan") == 0 and generator_adversarial_loss([], "hinge") == 0
    with pytest.raises(ValueError, match="unknown GAN objective"):
        generator_adversarial_loss(_outputs(0.0), "wgan")


def test_feature_matching_loss_on_a_real_discriminator():
    disc = MultiscaleDiscriminator(ModelConfig.from_profile("tiny"), image_channels=3, cond_channels=1)
    cond = torch.rand(1, 1, 64, 48)
    real = torch.rand(1, 3, 64, 48) * 2 - 1
    fake = (real + 0.5 * torch.randn_like(real)).requires_grad_()
    real_out = disc(real, cond)
    assert feature_matching_loss(real_out, disc(real, cond)) == 0
    loss = feature_matching_loss(real_out, disc(fake, cond))
    assert loss > 0
    loss.backward()
    assert fake.grad.abs().sum() > 0


def test_flow_and_warp_losses(frame):
    flow = shift_flow(3, -2)
    current = flow_warp(frame, flow)
    assert warp_loss(frame, flow, current) == 0
    assert warp_loss(frame, torch.zeros_like(flow), current) > 0
    assert flow_loss(flow, flow) == 0
    assert torch.isclose(flow_loss(flow, torch.zeros_like(flow)), torch.tensor(2.5))   # mean of |3| and |-2|
    # confidence 0 (occluded) removes a pixel's contribution
    confidence = torch.zeros(1, 1, 256, 192)
    assert warp_loss(frame, torch.zeros_like(flow), current, confidence) == 0
    assert flow_loss(flow, torch.zeros_like(flow), confidence) == 0
