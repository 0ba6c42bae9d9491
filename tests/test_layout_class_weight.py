"""``model.layout_limbs_weight`` weighs the limbs pixels in the Layout GAN's cross-entropy (a weighted mean over
the pixels: each pixel's loss times its class's weight, over the sum of the weights), and 1 is the plain loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.pretrained.vgg19 import VGG19Features
from pipeline.training.steps import build_steps, to_device
from remot_models import REGIONS, ModelConfig
from tests.test_learning import one_batch
from tests.test_train import tiny_shards  # noqa: F401 (fixture)


def first_frame_ce(cfg: ModelConfig, batch) -> tuple[float, float]:
    """The step's ``ce`` term of frame 0 and the same cross-entropy computed here by hand."""
    torch.manual_seed(0)
    steps = build_steps("layout", cfg, torch.device("cpu"), 2e-3, (0.5, 0.999), False, vgg=VGG19Features(),
                        sequence_length=1)
    b = to_device(batch, torch.device("cpu"), 1)
    with torch.no_grad():
        out = steps.rollout(b)[0]
        term = float(steps.frame_losses(b, out)["ce"])
        labels = b["layouts"][:, 0].argmax(dim=1)
        per_pixel = F.cross_entropy(out.layout_out.logits.float(), labels, reduction="none")
        weight = torch.where(labels == REGIONS.index("limbs"), cfg.layout_limbs_weight, 1.0)
    return term, float((per_pixel * weight).sum() / weight.sum())


@pytest.mark.parametrize("limbs_weight", [1.0, 4.0])
def test_the_limbs_weight_weighs_the_limbs_pixels(limbs_weight, tiny_shards):  # noqa: F811
    batch = one_batch(tiny_shards)
    assert (batch["layouts"][:, 0].argmax(dim=1) == REGIONS.index("limbs")).any()  # the case has limbs to weigh
    term, by_hand = first_frame_ce(ModelConfig.from_profile("tiny", layout_limbs_weight=limbs_weight), batch)
    assert term == pytest.approx(by_hand, rel=1e-5)


def test_the_limbs_weight_must_be_positive():
    with pytest.raises(ValueError, match="layout_limbs_weight"):
        ModelConfig.from_profile("tiny", layout_limbs_weight=0.0)
