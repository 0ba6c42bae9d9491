"""At zero adversarial weights (``model.lambda_adv``, ``lambda_feat``, ``lambda_face``) training skips the
discriminators: no discriminator pass, no discriminator update, and the generators' updates are the same as when
the zero-weighted terms are computed (they add nothing to the gradient)."""
from __future__ import annotations

import pytest
import torch

from pipeline.pretrained.vgg19 import VGG19Features
from pipeline.training.steps import build_steps
from remot_models import LayoutGenerator, ModelConfig, RegionGenerator
from tests.test_learning import one_batch
from tests.test_train import tiny_shards  # noqa: F401 (fixture)

ADVERSARIAL_TERMS = {"g_adv", "feat", "face_adv", "d_adv", "d_face"}


def one_step(stage: str, cfg: ModelConfig, batch, upstream: dict):
    torch.manual_seed(0)
    steps = build_steps(stage, cfg, torch.device("cpu"), 2e-3, (0.5, 0.999), False, vgg=VGG19Features(),
                        upstream=upstream, sequence_length=2)
    discriminators = [{k: v.clone() for k, v in d.state_dict().items()} for d in steps.discriminators]
    losses = steps.train_step(batch, 1)
    return losses, steps, discriminators


@pytest.mark.parametrize("stage", ["layout", "region", "wcn"])
def test_zero_adversarial_weights_skip_the_discriminators_and_update_the_generator_alike(
        stage, tiny_shards, monkeypatch):  # noqa: F811
    torch.set_num_threads(1)
    batch = one_batch(tiny_shards)
    torch.manual_seed(0)
    cfg = ModelConfig.from_profile("tiny", lambda_adv=0.0, lambda_feat=0.0, lambda_face=0.0)
    upstream = {"layout": LayoutGenerator(cfg), "region": RegionGenerator(cfg)}
    assert not cfg.adversarial and ModelConfig.from_profile("tiny").adversarial

    losses, skipped, before = one_step(stage, cfg, batch, upstream)
    assert not ADVERSARIAL_TERMS & set(losses) and losses["d_total"] == 0.0, losses
    for d, state in zip(skipped.discriminators, before):
        assert all(torch.equal(v, state[k]) for k, v in d.state_dict().items()), "a discriminator was updated"

    # the old path: the multi-scale discriminator's terms computed at weight 0 and the discriminator trained
    monkeypatch.setattr(ModelConfig, "adversarial", property(lambda self: True))
    computed_losses, computed, _ = one_step(stage, cfg, batch, upstream)
    assert {"g_adv", "d_adv"} <= set(computed_losses) and computed_losses["g_adv"] == 0.0
    assert {k: v for k, v in computed_losses.items() if k not in ADVERSARIAL_TERMS | {"d_total"}} == \
        {k: v for k, v in losses.items() if k != "d_total"}
    for name, p in skipped.generator.state_dict().items():
        torch.testing.assert_close(p, computed.generator.state_dict()[name], rtol=0, atol=1e-6, msg=name)
