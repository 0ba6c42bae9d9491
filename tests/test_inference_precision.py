"""``remot transfer --precision bf16``: the networks under bfloat16 autocast stay within a stated tolerance of
float32 on the real REMOT generators (the tiny profile, as initialised for training), and the Layout GAN's
hardened layouts - a discrete choice every later network and frame inherits - are the float32 ones exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.errors import RemotError
from pipeline.inference.generate import generate_video, untrained_networks
from remot_models.config import ModelConfig

torch.set_num_threads(1)

# The stated tolerance, in uint8 levels of the final frames, over 4 frames of the recurrence at 128x96. Measured
# when it was set: mean 5.6 (tiny, initialised from seed 0) and 7.1 (the demo's trained tiny checkpoint), 99th
# percentile 32 and 39.
MEAN_LEVELS, P99_LEVELS = 10.0, 48.0


def _inputs(h: int, w: int, n: int):
    rng = np.random.default_rng(0)
    source = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    layout = np.full((h, w), 5, np.uint8)
    layout[h // 6:h - h // 10, w // 3:2 * w // 3] = rng.integers(0, 5, (h - h // 6 - h // 10, w // 3),
                                                                dtype=np.uint8)
    keypoints = np.zeros((n, 25, 3), np.float32)
    keypoints[:, :, 0] = rng.uniform(w // 3, 2 * w // 3, (n, 25))
    keypoints[:, :, 1] = rng.uniform(h // 6, h - h // 10, (n, 25))
    keypoints[:, :, 2] = 0.9
    return source, layout, keypoints


@pytest.fixture(scope="module")
def both():
    nets = untrained_networks(ModelConfig.from_profile("tiny"), seed=0)
    source, layout, keypoints = _inputs(128, 96, 4)
    return (generate_video(nets, source, layout, keypoints, source, precision="fp32"),
            generate_video(nets, source, layout, keypoints, source, precision="bf16"))


def test_bf16_frames_within_the_stated_tolerance_of_fp32(both):
    fp32, bf16 = both
    diff = np.abs(fp32.frames.astype(np.int16) - bf16.frames.astype(np.int16))
    assert diff.mean() <= MEAN_LEVELS, diff.mean()
    assert np.percentile(diff, 99) <= P99_LEVELS, np.percentile(diff, 99)
    # and bf16 really ran: the frames are not the float32 ones
    assert diff.mean() > 0.05


def test_bf16_keeps_the_float32_layouts(both):
    fp32, bf16 = both
    np.testing.assert_array_equal(fp32.layouts, bf16.layouts)


def test_unknown_precision_is_refused_by_name():
    nets = untrained_networks(ModelConfig.from_profile("tiny"), seed=0)
    source, layout, keypoints = _inputs(64, 48, 1)
    with pytest.raises(RemotError, match="fp16"):
        generate_video(nets, source, layout, keypoints, source, precision="fp16")


def test_transfer_refuses_an_unknown_precision_before_loading_anything(tmp_path):
    from pipeline.core.params import Params
    from pipeline.inference.transfer import run_transfer

    # no checkpoint, source or driving video exists: the precision is what is named
    with pytest.raises(RemotError, match="precision 'fp16'"):
        run_transfer(Params(), tmp_path, tmp_path / "source.png", tmp_path / "driving.mp4", tmp_path / "out.mp4",
                     checkpoint=tmp_path / "models", progress=False, precision="fp16")
    assert not (tmp_path / "out.mp4").exists()


def test_bf16_holds_the_region_gan_and_wcn_blocks_in_bfloat16_and_leaves_the_networks_float32():
    nets = untrained_networks(ModelConfig.from_profile("tiny"), seed=0)
    source, layout, keypoints = _inputs(64, 48, 1)
    generate_video(nets, source, layout, keypoints, source, precision="bf16")
    prepared = nets.prepared["bf16"]
    for net in (prepared.region.encode_mask, prepared.region.decode, prepared.wcn.encode_layout_pose,
                prepared.wcn.decode_flow):
        assert {p.dtype for p in net.parameters()} == {torch.bfloat16}
    # the Layout GAN and the loaded networks themselves stay float32 (fp32 calls and other users see them as loaded)
    for net in (prepared.layout, nets.layout, nets.region, nets.wcn):
        assert {p.dtype for p in net.parameters()} == {torch.float32}


def test_harden_is_the_one_hot_of_argmax_over_channels_ties_included():
    from remot_models.sequence import harden

    torch.manual_seed(0)
    layout = torch.softmax(torch.randn(2, 6, 32, 24), dim=1)
    layout[:, :, :4] = 1 / 6          # all six tied: the first channel wins, as argmax(dim=1)
    layout[:, 2:4, 4:8] = 0.5         # two tied
    expected = torch.nn.functional.one_hot(layout.argmax(dim=1), 6).movedim(-1, 1).float()
    assert torch.equal(harden(layout), expected)
