"""REMOT generators and discriminators (remot_models) at 256x192 with the tiny profile: shapes, ranges, eq. 2c,
eq. 4 (GAM), the three ablation switches, gradient flow and safetensors round trips.

Inputs are made here: a blocky one-hot person layout with a known bounding box, and random images.
Operators (flow warp, TAM, face boxes, losses) are in test_models_ops.py; the VGG19 loader in
test_models_vgg.py.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file, save_file

from pipeline.core.labels import REGIONS as PIPELINE_REGIONS
from remot_models import (REGIONS, FaceDiscriminator, GlobalAlignment, LayoutGenerator, ModelConfig,
                          MultiscaleDiscriminator, RegionGenerator, WholeCompositionNetwork, count_parameters,
                          flow_warp, mask_boxes)
from remot_models.gam import align_boxes, box_centres_heights, map_points, person_mask
from remot_models.region_gan import source_regions

H, W = 256, 192


pytestmark = pytest.mark.usefixtures("one_thread_seeded")


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    """The equations as written; ``refine`` (the default, a documented exception) has its own tests below."""
    return ModelConfig.from_profile("tiny", refine=False)


# ----------------------------------------------------------------------------------------------- inputs
def person_layout(top: int, left: int, height: int, width: int, size: tuple[int, int] = (H, W)) -> torch.Tensor:
    """(6, H, W) one-hot layout of a blocky person with bounding box rows [top, top+height), cols
    [left, left+width): head / top / bottom / shoes stacked 1:3:4:1, limbs a strip either side of the top."""
    layout = torch.zeros(6, *size)
    layout[5] = 1.0
    cuts = [0, 1, 4, 8, 9]
    for region, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        r0, r1 = top + height * a // 9, top + height * b // 9
        layout[:, r0:r1, left:left + width] = 0.0
        layout[region, r0:r1, left:left + width] = 1.0
    strip = max(1, width // 6)
    r0, r1 = top + height // 9, top + height * 4 // 9
    for c0, c1 in ((left, left + strip), (left + width - strip, left + width)):
        layout[:, r0:r1, c0:c1] = 0.0
        layout[4, r0:r1, c0:c1] = 1.0
    return layout


def rand_image(*shape: int) -> torch.Tensor:
    return torch.rand(*shape) * 2 - 1


def soft_layouts(*shape: int) -> torch.Tensor:
    """Random per-pixel distributions over the 6 regions; ``shape`` ends with (6, H, W)."""
    return torch.softmax(torch.randn(*shape) * 2, dim=-3)


def layout_inputs(h: int = H, w: int = W) -> dict[str, torch.Tensor]:
    return {"source_layout": person_layout(h // 8, w // 4, h * 3 // 4, w // 2, (h, w))[None],
            "poses": rand_image(1, 3, 3, h, w), "prev_layouts": soft_layouts(1, 2, 6, h, w)}


def region_inputs(h: int = H, w: int = W) -> dict[str, torch.Tensor]:
    """Driving person smaller and further right/down than the source person."""
    return {"layout": person_layout(h * 15 // 64, w * 35 // 96, h * 5 // 8, w * 5 // 16, (h, w))[None],
            "source_image": rand_image(1, 3, h, w),
            "source_layout": person_layout(h * 5 // 64, w * 5 // 24, h * 55 // 64, w * 25 // 48, (h, w))[None],
            "prev_regions": rand_image(1, 2, 5, 3, h, w) * 0.5}


def wcn_inputs(h: int = H, w: int = W) -> dict[str, torch.Tensor]:
    return {"layouts": soft_layouts(1, 3, 6, h, w), "poses": rand_image(1, 3, 3, h, w),
            "coarse_foreground": rand_image(1, 3, h, w), "prev_foregrounds": rand_image(1, 2, 3, h, w),
            "aligned_source": rand_image(1, 3, h, w), "background": rand_image(1, 3, h, w),
            "prev_frame": rand_image(1, 3, h, w)}


def random_projection_loss(*tensors: torch.Tensor) -> torch.Tensor:
    """A scalar that depends on every element of every tensor, with no symmetry that could cancel gradients."""
    return sum((t * torch.randn_like(t)).mean() for t in tensors if t is not None)


def assert_every_parameter_has_gradient(module: torch.nn.Module) -> None:
    missing = [n for n, p in module.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing, f"parameters without gradient: {missing}"


# ----------------------------------------------------------------------------------------------- config
def test_region_order_matches_pipeline_labels():
    assert REGIONS == PIPELINE_REGIONS


def test_profiles_and_overrides():
    tiny = ModelConfig.from_profile("tiny", gam=False, gan_objective="hinge")
    paper = ModelConfig.from_profile("paper")
    assert (tiny.gam, tiny.gan_objective, tiny.ngf) == (False, "hinge", 8)
    assert (paper.ngf, paper.n_downsample, paper.n_blocks) == (64, 3, 9)
    assert paper == ModelConfig()  # dataclass defaults are the paper profile
    assert (paper.lambda_rec, paper.lambda_per) == (10.0, 10.0)
    assert set(ModelConfig.field_help()) == set(paper.to_dict())
    with pytest.raises(ValueError, match="unknown model profile 'huge'"):
        ModelConfig.from_profile("huge")
    with pytest.raises(ValueError, match=r"unknown ModelConfig field\(s\) \['ngff'\]"):
        ModelConfig.from_profile("tiny", ngff=3)
    with pytest.raises(ValueError, match="gan_objective"):
        ModelConfig.from_profile("tiny", gan_objective="wgan")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.ngf = 3  # type: ignore[misc]


def test_encoder_rejects_indivisible_size(cfg):
    with pytest.raises(ValueError, match="divisible by 2\\*\\*n_downsample"):
        LayoutGenerator(cfg)(person_layout(30, 50, 200, 80)[None, :, :254], rand_image(1, 3, 3, 254, W),
                             soft_layouts(1, 2, 6, 254, W))


# ----------------------------------------------------------------------------------------------- Layout GAN
def test_layout_generator_shapes_ranges_and_gradients(cfg):
    gen = LayoutGenerator(cfg)
    inputs = layout_inputs()
    out = gen(**inputs)
    assert out.layout.shape == out.raw.shape == out.logits.shape == (1, 6, H, W)
    assert out.flow.shape == (1, 2, H, W) and out.weight.shape == (1, 1, H, W)
    assert bool(((out.weight > 0) & (out.weight < 1)).all())
    # raw is a softmax and eq. 2c is a convex blend of two distributions: still a distribution
    assert torch.allclose(out.raw.sum(1), torch.ones(1, H, W), atol=1e-5)
    assert torch.allclose(out.layout.sum(1), torch.ones(1, H, W), atol=1e-5)
    assert bool((out.layout >= 0).all())
    random_projection_loss(out.layout, out.raw).backward()
    assert_every_parameter_has_gradient(gen)


@pytest.mark.parametrize("forced_weight", [0.0, 1.0])
def test_layout_eq2c_blend_is_exact_at_forced_weights(cfg, forced_weight):
    gen = LayoutGenerator(cfg)
    with torch.no_grad():  # make the weight head's sigmoid saturate to exactly 0 or 1
        conv = gen.decode_flow.weight_head[1]
        conv.weight.zero_()
        conv.bias.fill_(1e4 if forced_weight == 1.0 else -1e4)
        out = gen(**(inputs := layout_inputs()))
    assert bool((out.weight == forced_weight).all())
    if forced_weight == 1.0:
        assert torch.equal(out.layout, out.raw)
    else:
        assert torch.equal(out.layout, flow_warp(inputs["prev_layouts"][:, -1], out.flow))
        assert not torch.allclose(out.layout, out.raw, atol=1e-2)


# ----------------------------------------------------------------------------------------------- GAM (eq. 4)
@pytest.mark.parametrize("source_box, target_box", [
    ((20, 40, 220, 100), (60, 70, 160, 60)),     # shrink and move right/down
    ((100, 20, 120, 50), (10, 90, 240, 90)),     # enlarge 2x and move up/right
    ((30, 60, 200, 72), (30, 60, 200, 72)),      # already aligned
])
def test_gam_puts_source_box_centre_and_height_on_target(source_box, target_box):
    source = person_layout(*source_box)[None]
    target = person_layout(*target_box)[None]
    aligned = GlobalAlignment()(person_mask(source), source, target).aligned
    (box,), _ = mask_boxes(aligned)
    (target_px,), _ = mask_boxes(person_mask(target))
    centre, height = box_centres_heights(box[None])
    target_centre, target_height = box_centres_heights(target_px[None])
    assert (centre - target_centre).abs().max() <= 1.0
    assert (height - target_height).abs().max() <= 1.0
    # the box we measured is the one we built
    top, left, h, w = target_box
    assert target_px.tolist() == [left, top, left + w, top + h]


def test_align_boxes_and_point_mapping_follow_eq4():
    src = torch.tensor([[40.0, 20.0, 140.0, 220.0]])      # centre (90, 120), height 200
    dst = torch.tensor([[70.0, 60.0, 130.0, 160.0]])      # centre (100, 110), height 100
    scale, offset = align_boxes(src, dst)
    assert torch.allclose(scale, torch.tensor([0.5])) and torch.allclose(offset, torch.tensor([[10.0, -10.0]]))
    corners = torch.tensor([[[90.0, 20.0], [90.0, 220.0], [90.0, 120.0]]])  # top, bottom, centre of source
    mapped = map_points(corners, src, scale, offset)
    assert torch.allclose(mapped, torch.tensor([[[100.0, 60.0], [100.0, 160.0], [100.0, 110.0]]]))


def test_gam_empty_mask_is_identity_without_nan():
    empty = torch.zeros(2, 6, H, W)
    empty[:, 5] = 1.0
    person = person_layout(30, 50, 200, 80)[None].expand(2, -1, -1, -1)
    image = rand_image(2, 3, H, W)
    for src, dst in ((empty, person), (person, empty), (empty, empty)):
        out = GlobalAlignment()(image, src, dst)
        assert torch.equal(out.aligned, image)
        assert torch.equal(out.theta, torch.eye(2, 3).expand(2, 2, 3))
        assert not bool(torch.isnan(out.scale).any() | torch.isnan(out.offset).any())


def test_gam_is_batched_per_item():
    src = torch.stack([person_layout(20, 40, 220, 100), person_layout(100, 20, 120, 50)])
    dst = torch.stack([person_layout(60, 70, 160, 60), person_layout(10, 90, 240, 90)])
    out = GlobalAlignment()(person_mask(src), src, dst)
    for i in range(2):
        single = GlobalAlignment()(person_mask(src[i:i + 1]), src[i:i + 1], dst[i:i + 1])
        assert torch.allclose(out.aligned[i], single.aligned[0], atol=1e-6)


# ----------------------------------------------------------------------------------------------- Region GAN
def test_region_generator_shapes_ranges_and_gradients(cfg):
    gen = RegionGenerator(cfg)
    inputs = region_inputs()
    out = gen(**inputs)
    assert out.regions.shape == out.aligned_source.shape == (1, 5, 3, H, W)
    assert out.foreground.shape == out.aligned_foreground.shape == (1, 3, H, W)
    assert torch.allclose(out.foreground, out.regions.sum(1))               # eq. 11
    assert bool((out.foreground.abs() <= 1).all())                          # regions are disjoint, each tanh
    outside = inputs["layout"][:, :5].unsqueeze(2).expand_as(out.regions) == 0
    assert bool((out.regions[outside] == 0).all())                          # 0 outside each region's mask
    random_projection_loss(out.regions).backward()
    assert_every_parameter_has_gradient(gen)


def test_region_gam_switch(cfg):
    """GAM on: the source regions are moved onto the driving person; off: they go in exactly as I_s * L_s,i."""
    inputs = region_inputs()
    with torch.no_grad():
        on = RegionGenerator(cfg)
        off = RegionGenerator(dataclasses.replace(cfg, gam=False))
        off.load_state_dict(on.state_dict())
        out_on, out_off = on(**inputs), off(**inputs)
    unaligned = source_regions(inputs["source_image"], inputs["source_layout"])
    assert torch.equal(out_off.aligned_source, unaligned)
    assert torch.equal(out_off.theta, torch.eye(2, 3)[None])
    (box,), _ = mask_boxes(out_on.aligned_source.abs().sum((1, 2)), threshold=0.05)
    (target,), _ = mask_boxes(person_mask(inputs["layout"]))
    (centre, height), (target_centre, target_height) = box_centres_heights(box[None]), box_centres_heights(target[None])
    assert (centre - target_centre).abs().max() <= 1.0 and (height - target_height).abs().max() <= 1.0
    assert not torch.allclose(out_on.regions, out_off.regions)

    # off really feeds the unaligned source to E2 (eq. 3): recompute the generator by hand
    masks = inputs["layout"][0, :5, None]
    prev = inputs["prev_regions"][0]
    appearance = torch.cat([prev[1], prev[0], unaligned[0]], dim=1)
    with torch.no_grad():
        by_hand = torch.tanh(off.decode(off.encode_mask(masks) + off.encode_appearance(appearance))) * masks
    assert torch.allclose(out_off.regions[0], by_hand, atol=1e-6)


# ----------------------------------------------------------------------------------------------- WCN
def test_wcn_shapes_ranges_and_gradients(cfg):
    net = WholeCompositionNetwork(cfg)
    out = net(**wcn_inputs())
    for name in ("output", "raw", "foreground", "warped_previous"):
        assert getattr(out, name).shape == (1, 3, H, W), name
    assert out.mask.shape == out.weight.shape == (1, 1, H, W) and out.flow.shape == (1, 2, H, W)
    assert bool((out.foreground.abs() <= 1).all())
    assert bool(((out.mask >= 0) & (out.mask <= 1)).all())
    assert bool((out.output.abs() <= 2).all())      # eq. 15 is additive: |m BG| <= 1 plus |FG| <= 1
    random_projection_loss(out.output, out.foreground).backward()
    assert_every_parameter_has_gradient(net)


def test_wcn_eq15_and_temporal_blend(cfg):
    net = WholeCompositionNetwork(cfg)
    inputs = wcn_inputs()
    with torch.no_grad():
        out = net(**inputs)
    assert torch.allclose(out.raw, out.mask * inputs["background"] + out.foreground)
    expected = out.raw * out.weight + flow_warp(inputs["prev_frame"], out.flow) * (1 - out.weight)
    assert torch.allclose(out.output, expected)


def test_wcn_off_is_coarse_foreground_plus_background(cfg):
    net = WholeCompositionNetwork(dataclasses.replace(cfg, wcn=False))
    inputs = wcn_inputs()
    out = net(**inputs)
    assert count_parameters(net) == 0
    assert torch.equal(out.output, inputs["coarse_foreground"] + inputs["layouts"][:, -1, 5:6] * inputs["background"])
    assert out.flow is None and out.weight is None


def test_wcn_tam_switch_is_plain_feature_addition(cfg):
    inputs = wcn_inputs()
    with torch.no_grad():
        with_tam = WholeCompositionNetwork(cfg)
        without = WholeCompositionNetwork(dataclasses.replace(cfg, tam=False))
        without.load_state_dict(with_tam.state_dict())       # TAM has no parameters: same weights
        out_with, out_without = with_tam(**inputs), without(**inputs)
        f3 = without.encode_layout_pose(torch.cat([inputs["layouts"].flatten(1, 2), inputs["poses"].flatten(1, 2)], 1))
        f2 = without.encode_foregrounds(torch.cat([inputs["prev_foregrounds"].flatten(1, 2),
                                                   inputs["coarse_foreground"]], 1))
        f1 = without.encode_source(inputs["aligned_source"])
        by_hand = torch.tanh(without.decode_foreground(f3 + f1 + f2))
    assert torch.allclose(out_without.foreground, by_hand, atol=1e-6)
    assert not torch.allclose(out_with.foreground, out_without.foreground, atol=1e-4)
    # the mask and flow branches do not read TAM, so they agree
    assert torch.allclose(out_with.mask, out_without.mask) and torch.allclose(out_with.flow, out_without.flow)


# ----------------------------------------------------------------------------------------------- refine
def test_untrained_refining_networks_output_the_gam_composition():
    """refine: zero-initialised last layers make the untrained Region GAN paste the aligned source person on
    the predicted layout, and the untrained WCN compose that with the background where the layout says so."""
    cfg = ModelConfig.from_profile("tiny")
    assert cfg.refine
    inputs = region_inputs()
    inputs["source_image"] = inputs["source_image"] * 0.9       # inside blocks.REFINE_LIMIT
    with torch.no_grad():
        region = RegionGenerator(cfg)(**inputs)
    person = inputs["layout"][:, :5].sum(1, keepdim=True)
    assert torch.allclose(region.foreground, region.aligned_foreground * person, atol=1e-5)
    assert float(region.foreground.abs().sum()) > 0
    composition = wcn_inputs()
    composition.update(layouts=inputs["layout"][:, None].repeat(1, 3, 1, 1, 1), coarse_foreground=region.foreground)
    with torch.no_grad():
        out = WholeCompositionNetwork(cfg)(**composition)
    background = inputs["layout"][:, 5:6]
    assert torch.allclose(out.foreground, region.foreground, atol=1e-5)
    assert torch.allclose(out.raw, region.foreground + background * composition["background"], atol=0.011)


@pytest.mark.parametrize("network", ["region", "wcn"])
def test_refining_networks_train_every_parameter(network):
    cfg = ModelConfig.from_profile("tiny")
    net, inputs = (RegionGenerator(cfg), region_inputs()) if network == "region" else \
        (WholeCompositionNetwork(cfg), wcn_inputs())
    with torch.no_grad():  # the zeroed heads as after a first optimiser step
        for head in [net.decode] if network == "region" else [net.decode_foreground, net.decode_mask]:
            head.head[-1].weight.normal_(0, 0.01)
    out = net(**inputs)
    random_projection_loss(*((out.regions,) if network == "region" else (out.output, out.foreground))).backward()
    assert_every_parameter_has_gradient(net)


def test_sequence_encodes_the_source_once_with_the_same_frames(cfg, monkeypatch):
    """generate_sequence runs the Layout GAN's E1(L_s) once per sequence (it depends on the source alone), and
    its frames equal the frame-by-frame recurrence that re-encodes the source every time; a Layout GAN in
    training still gets E1's gradient from every frame through the shared node."""
    from remot_models.sequence import Generators, Previous, generate_frame, generate_sequence

    torch.manual_seed(0)
    h, w = 64, 48
    nets = Generators(LayoutGenerator(cfg), RegionGenerator(cfg), WholeCompositionNetwork(cfg))
    source, layout = rand_image(1, 3, h, w), person_layout(8, 12, 48, 24, (h, w))[None]
    poses, background = [rand_image(1, 3, h, w) for _ in range(3)], rand_image(1, 3, h, w)
    calls = []
    encode = nets.layout.encode_source.forward
    monkeypatch.setattr(nets.layout.encode_source, "forward", lambda x: calls.append(1) or encode(x))
    outs = list(generate_sequence(nets, source, layout, poses, background))
    assert len(calls) == 1
    # the same recurrence by hand, E1 recomputed in every generate_frame call (bootstrap included)
    prev, window = Previous.zeros(1, h, w, source), poses[0][:, None].repeat(1, 3, 1, 1, 1)
    with torch.no_grad():
        prev = prev.push(generate_frame(nets, prev, source, layout, window, background), still=True)
    for t, pose in enumerate(poses):
        window = window if t == 0 else torch.cat([window[:, 1:], pose[:, None]], 1)
        out = generate_frame(nets, prev, source, layout, window, background, t)
        prev = prev.push(out)
        assert torch.equal(out.composition.output, outs[t].composition.output)
    assert len(calls) == 1 + 4
    sum(o.layout_out.logits.square().mean() for o in outs).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in nets.layout.encode_source.parameters())



def region_per_frame(monkeypatch) -> list:
    """Make every RegionGenerator call derive the source regions and GAM source box itself, as every frame did
    before ``generate_sequence`` prepared them once; returns the list of ``prepare_source`` calls."""
    calls = []
    forward, prepare = RegionGenerator.forward, RegionGenerator.prepare_source
    monkeypatch.setattr(RegionGenerator, "prepare_source",
                        lambda self, *a: calls.append(1) or prepare(self, *a))
    monkeypatch.setattr(RegionGenerator, "forward",
                        lambda self, *a, prepared=None: forward(self, *a[:4]))
    return calls


@pytest.mark.parametrize("gam", [True, False])
def test_sequence_prepares_the_source_once_with_identical_frames_and_gradients(cfg, monkeypatch, gam):
    """generate_sequence derives the Region GAN's source regions and the GAM's source box once per sequence;
    frames, losses and every parameter's gradient are bit-identical to deriving them in every frame."""
    from remot_models.sequence import Generators, generate_sequence

    cfg = dataclasses.replace(cfg, gam=gam)
    h, w = 64, 48
    torch.manual_seed(0)
    source, layout = rand_image(1, 3, h, w), person_layout(8, 12, 48, 24, (h, w))[None]
    poses, background = [rand_image(1, 3, h, w) for _ in range(4)], rand_image(1, 3, h, w)

    def run(per_frame: bool):
        torch.manual_seed(1)
        nets = Generators(LayoutGenerator(cfg), RegionGenerator(cfg), WholeCompositionNetwork(cfg))
        with monkeypatch.context() as m:
            calls = region_per_frame(m) if per_frame else None
            if not per_frame:
                prepare = RegionGenerator.prepare_source
                calls = []
                m.setattr(RegionGenerator, "prepare_source", lambda self, *a: calls.append(1) or prepare(self, *a))
            outs = list(generate_sequence(nets, source, layout, poses, background, no_grad_frames=1))
            loss = sum(o.composition.output.square().mean() + o.region.foreground.abs().mean() for o in outs[1:])
            loss.backward()
        grads = [p.grad.clone() for net in (nets.region, nets.wcn) for p in net.parameters()]
        return outs, loss.detach(), grads, len(calls)

    once, loss_once, grads_once, calls_once = run(per_frame=False)
    every, loss_every, grads_every, calls_every = run(per_frame=True)
    # per frame: generate_sequence's (unused) one, then the bootstrap frame 0 and every frame
    assert calls_once == 1 and calls_every == 1 + 1 + len(poses)
    for a, b in zip(once, every):
        for x, y in ((a.composition.output, b.composition.output), (a.region.regions, b.region.regions),
                     (a.region.aligned_source, b.region.aligned_source), (a.region.theta, b.region.theta)):
            assert torch.equal(x, y)
    assert torch.equal(loss_once, loss_every)
    assert len(grads_once) == len(grads_every) and all(torch.equal(a, b) for a, b in zip(grads_once, grads_every))
    assert any(g.abs().sum() > 0 for g in grads_once)


def test_region_generator_takes_a_prepared_source(cfg):
    gen = RegionGenerator(cfg)
    inputs = region_inputs()
    prepared = gen.prepare_source(inputs["source_image"], inputs["source_layout"])
    plain, given = gen(**inputs), gen(**inputs, prepared=prepared)
    assert torch.equal(plain.foreground, given.foreground) and torch.equal(plain.theta, given.theta)
    with pytest.raises(ValueError, match="prepared source regions"):
        gen(**inputs, prepared=gen.prepare_source(inputs["source_image"][:, :, :8], inputs["source_layout"][:, :, :8]))

# ----------------------------------------------------------------------------------------------- discriminators
def test_multiscale_discriminator_features_and_gradients(cfg):
    disc = MultiscaleDiscriminator(cfg, image_channels=3, cond_channels=1)
    outputs = disc(rand_image(1, 3, H, W), torch.rand(1, 1, H, W))
    assert len(outputs) == cfg.d_scales
    assert all(len(scale) == cfg.d_layers + 2 for scale in outputs)
    assert outputs[0][-1].shape[:2] == (1, 1) and outputs[1][-1].shape[-1] < outputs[0][-1].shape[-1]
    random_projection_loss(*[f for scale in outputs for f in scale]).backward()
    assert_every_parameter_has_gradient(disc)


def test_face_discriminator_gradients_and_empty_batch(cfg):
    disc = FaceDiscriminator(cfg, image_channels=3, cond_channels=6)
    boxes = torch.tensor([[80.0, 20.0, 112.0, 52.0], [0.0, 0.0, 0.0, 0.0]])
    valid = torch.tensor([True, False])
    outputs = disc(rand_image(2, 3, H, W), soft_layouts(2, 6, H, W), boxes, valid)
    assert len(outputs) == 1 and outputs[0][0].shape[0] == 1          # only the valid item is judged
    random_projection_loss(*outputs[0]).backward()
    assert_every_parameter_has_gradient(disc)
    assert disc(rand_image(2, 3, H, W), soft_layouts(2, 6, H, W), boxes, torch.zeros(2, dtype=torch.bool)) == []


# ----------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", ["layout", "region", "wcn", "discriminator"])
def test_safetensors_round_trip_gives_identical_outputs(cfg, tmp_path, name):
    h, w = 128, 96  # the round trip does not depend on the resolution; keep it quick
    build, inputs, first = {
        "layout": (lambda: LayoutGenerator(cfg), layout_inputs(h, w), lambda o: o.layout),
        "region": (lambda: RegionGenerator(cfg), region_inputs(h, w), lambda o: o.foreground),
        "wcn": (lambda: WholeCompositionNetwork(cfg), wcn_inputs(h, w), lambda o: o.output),
        "discriminator": (lambda: MultiscaleDiscriminator(cfg, 3, 6),
                          {"image": rand_image(1, 3, h, w), "condition": soft_layouts(1, 6, h, w)},
                          lambda o: o[-1][-1]),
    }[name]
    original = build().eval()
    save_file(original.state_dict(), tmp_path / f"{name}.safetensors")
    torch.manual_seed(123)
    restored = build().eval()
    with torch.no_grad():
        assert not torch.equal(first(original(**inputs)), first(restored(**inputs)))
        restored.load_state_dict(load_file(tmp_path / f"{name}.safetensors"), strict=True)
        assert torch.equal(first(original(**inputs)), first(restored(**inputs)))
