"""One optimisation step of each GAN stage (paper 3.1-3.3, eq. 6-10, plus vid2vid's flow and warp losses).

Every stage trains on windows of T >= 3 frames (shard field conventions in ``pipeline.loader``) and generates
the last frame t of the window. The two previous outputs a generator expects (t-2, t-1) are the ground truth of
those frames - vid2vid's start of a training sequence ("real previous frames", its default unless
``no_first_img``) - so one window is one independent sample and the loader order alone fixes the data.

Per step: the generator update (discriminators frozen), then the discriminator update on the real target and
the detached fake, evaluated in ONE discriminator call on the concatenated batch (so each discriminator runs
forward once per backward). Every loss term is checked for NaN/inf before any parameter changes
(:class:`NonFiniteLoss` names the step and the term). With several ranks the gradients are averaged across
ranks (one flat all-reduce per network) before every optimizer step.

Losses (weights in ``ModelConfig``):

* Layout GAN - the paper gives no layout loss; we use cross-entropy of D1's logits against the ground-truth
  labels (eq. 2a), ``lambda_rec`` x L1 between the blended layout (eq. 2c) and the one-hot ground truth, the
  multi-scale conditional adversarial loss on (layout, driving pose) and feature matching, and
  ``lambda_flow`` x (flow L1 to the reference flow + warp loss of the previous ground-truth layout), masked by
  the flow's validity.
* Region GAN - eq. 9: for each of the 5 regions ``lambda_rec`` eq. 6 + ``lambda_per`` eq. 7 content
  (+ ``lambda_style`` Gram term) + eq. 8 adversarial on (region image, region mask), summed over regions; plus
  feature matching. Regions are folded into the batch, so "sum over regions" = 5 x the folded mean.
  The Region GAN is trained on ground-truth layouts (it is trained separately from the Layout GAN, 3.3).
* WCN - "the same loss function as Region GAN" on the whole frame, a face discriminator's adversarial loss
  (``lambda_face``), and the flow/warp losses of its temporal blend. Its inputs are the FROZEN Region GAN's
  outputs (coarse foreground, GAM-aligned source) on ground-truth layouts: the Layout GAN is trained
  concurrently and independently, and ground-truth layouts keep the WCN's inputs the ones the Region GAN was
  trained for; at inference the Layout GAN's layouts replace them.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from pipeline.errors import RemotError
from remot_models import (BACKGROUND, NUM_PERSON_REGIONS, FaceDiscriminator, LayoutGenerator,
                          MultiscaleDiscriminator, RegionGenerator, WholeCompositionNetwork, face_boxes)
from remot_models.config import ModelConfig
from remot_models.losses import (discriminator_loss, feature_matching_loss, flow_loss, generator_adversarial_loss,
                                 perceptual_loss, reconstruction_loss, warp_loss)

STAGES: tuple[str, ...] = ("layout", "region", "wcn")
TENSOR_FIELDS = ("frames", "poses", "keypoints", "layouts", "flow", "valid", "background", "source",
                 "source_layout")


class NonFiniteLoss(RemotError):
    """A loss term became NaN or infinite; the stage stops and its last checkpoint stays the latest."""

    def __init__(self, stage: str, step: int, term: str, value: float):
        self.stage, self.step, self.term, self.value = stage, step, term, value
        super().__init__(f"{stage}: loss term {term!r} is {value} at step {step}; training stopped, the last "
                         f"good checkpoint stays in models/{stage}/latest.json. Lower train.lr, turn off "
                         f"train.amp, or inspect the batch of step {step}")


def check_finite(stage: str, step: int, losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """Python floats of ``losses``; raises :class:`NonFiniteLoss` naming the first bad term."""
    values = {name: float(value.detach().float()) for name, value in losses.items()}
    for name, value in values.items():
        if not torch.isfinite(torch.tensor(value)):
            raise NonFiniteLoss(stage, step, name, value)
    return values


def average_gradients(module: nn.Module) -> None:
    """Average ``module``'s gradients over all ranks (missing grads count as zero); no-op on one rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_parameters(module: nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def split_outputs(outputs: list[list[torch.Tensor]], n: int) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
    """Discriminator outputs of a concatenated (real; fake) batch -> (real outputs, fake outputs)."""
    return [[f[:n] for f in scale] for scale in outputs], [[f[n:] for f in scale] for scale in outputs]


def _frozen(modules: list[nn.Module]):
    @contextlib.contextmanager
    def ctx():
        for m in modules:
            m.requires_grad_(False)
        try:
            yield
        finally:
            for m in modules:
                m.requires_grad_(True)
    return ctx()


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensor fields to ``device`` and keep the last 3 frames of the window (t-2, t-1, t)."""
    if batch["frames"].shape[1] < 3:
        raise RemotError(f"training needs windows of at least 3 frames (t-2, t-1, t), the shards have "
                         f"{batch['frames'].shape[1]}: set shards.window: 3 and run `dvc repro shards`")
    out = {}
    for name in TENSOR_FIELDS:
        value = batch[name].to(device, non_blocking=True)
        out[name] = value[:, -3:] if name in ("frames", "poses", "keypoints", "layouts", "flow", "valid") else value
    return out


class StageSteps:
    """A GAN stage: ``modules`` (checkpointed networks), ``optimizers``, ``train_step(batch, step)`` returning the
    loss terms as floats, and ``sample(batch)`` returning named (B, 3, H, W) images in [-1, 1] for the grid."""

    name = ""

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool):
        self.cfg, self.device = cfg, device
        self.lr, self.betas = lr, betas
        self.amp = amp and device.type == "cuda"
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for m in self.modules.values() for p in m.parameters())

    def _finish_init(self, generator: nn.Module, discriminators: list[nn.Module]) -> None:
        for m in self.modules.values():
            m.to(self.device)
            broadcast_parameters(m)
        self.generator, self.discriminators = generator, discriminators
        if self.trainable:
            self.optimizers["generator"] = torch.optim.Adam(generator.parameters(), lr=self.lr, betas=self.betas)
            self.optimizers["discriminator"] = torch.optim.Adam(
                [p for d in discriminators for p in d.parameters()], lr=self.lr, betas=self.betas)

    def autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update(self, name: str, loss: torch.Tensor, modules: list[nn.Module]) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for m in modules:
            average_gradients(m)
        optimizer.step()

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        """Generator update then discriminator update; returns every loss term (floats)."""
        b = to_device(batch, self.device)
        with _frozen(self.discriminators), self.autocast():
            g_terms, d_inputs = self.generator_losses(b)
        g_total = sum(g_terms.values())
        values = check_finite(self.name, step, {**g_terms, "g_total": g_total})
        self._update("generator", g_total, [self.generator])
        with self.autocast():
            d_terms = self.discriminator_losses(d_inputs)
        d_total = sum(d_terms.values())
        values.update(check_finite(self.name, step, {**d_terms, "d_total": d_total}))
        self._update("discriminator", d_total, self.discriminators)
        return values

    def generator_losses(self, b: dict[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
        raise NotImplementedError

    def discriminator_losses(self, d_inputs: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _gan_terms(self, disc: nn.Module, fake: torch.Tensor, real: torch.Tensor, cond: torch.Tensor,
                   weight: float = 1.0) -> dict[str, torch.Tensor]:
        """Eq. 8 adversarial (+ feature matching) terms of a conditional multi-scale discriminator."""
        fake_out = disc(fake, cond)
        terms = {"g_adv": weight * generator_adversarial_loss(fake_out, self.cfg.gan_objective)}
        if self.cfg.feature_matching:
            with torch.no_grad():
                real_out = disc(real, cond)
            terms["feat"] = weight * self.cfg.lambda_feat * feature_matching_loss(real_out, fake_out)
        return terms

    def _d_term(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Eq. 10: one discriminator call on the concatenated (real; detached fake) batch."""
        both = disc(torch.cat([real, fake.detach()]), torch.cat([cond, cond]))
        real_out, fake_out = split_outputs(both, real.shape[0])
        return discriminator_loss(real_out, fake_out, self.cfg.gan_objective)


# ------------------------------------------------------------------------------------------------ Layout GAN


class LayoutSteps(StageSteps):
    name = "layout"

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool):
        super().__init__(cfg, device, lr, betas, amp)
        self.modules = {"generator": LayoutGenerator(cfg),
                        "discriminator": MultiscaleDiscriminator(cfg, image_channels=6, cond_channels=3)}
        self._finish_init(self.modules["generator"], [self.modules["discriminator"]])

    def generator_losses(self, b):
        poses, layouts = b["poses"], b["layouts"]
        target, cond = layouts[:, -1], poses[:, -1]
        out = self.generator(b["source_layout"], poses, layouts[:, :2])
        ref_flow, valid = b["flow"][:, -1], b["valid"][:, -1]
        terms = {
            "ce": F.cross_entropy(out.logits.float(), target.argmax(dim=1)),
            "rec": self.cfg.lambda_rec * reconstruction_loss(out.layout, target),
            **self._gan_terms(self.discriminator, out.layout, target, cond),
            "flow": self.cfg.lambda_flow * flow_loss(out.flow, ref_flow, valid),
            "warp": self.cfg.lambda_flow * warp_loss(layouts[:, -2], out.flow, target, valid),
        }
        return terms, (target, out.layout, cond)

    @property
    def discriminator(self) -> nn.Module:
        return self.modules["discriminator"]

    def discriminator_losses(self, d_inputs):
        target, fake, cond = d_inputs
        return {"d_adv": self._d_term(self.discriminator, target, fake, cond)}

    @torch.no_grad()
    def sample(self, batch):
        from pipeline.training.grid import colour_layout

        b = to_device(batch, self.device)
        out = self.generator(b["source_layout"], b["poses"], b["layouts"][:, :2])
        return {"source": b["source"], "driving pose": b["poses"][:, -1], "layout": colour_layout(out.layout),
                "ground truth": colour_layout(b["layouts"][:, -1])}


# ------------------------------------------------------------------------------------------------ Region GAN


def region_targets(b: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth region images I_d,i = I_d * L_d,i of the window: (B, 3, 5, 3, H, W), and masks (B, 3, 5, H, W)."""
    masks = b["layouts"][:, :, :NUM_PERSON_REGIONS]
    return b["frames"].unsqueeze(2) * masks.unsqueeze(3), masks


class RegionSteps(StageSteps):
    name = "region"

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool,
                 vgg: nn.Module):
        super().__init__(cfg, device, lr, betas, amp)
        self.vgg = vgg.to(device)
        self.modules = {"generator": RegionGenerator(cfg),
                        "discriminator": MultiscaleDiscriminator(cfg, image_channels=3, cond_channels=1)}
        self._finish_init(self.modules["generator"], [self.modules["discriminator"]])

    def generator_losses(self, b):
        regions, masks = region_targets(b)
        out = self.generator(b["layouts"][:, -1], b["source"], b["source_layout"], regions[:, :2])
        n = NUM_PERSON_REGIONS  # eq. 9 sums over the regions; the folded means are per region
        fake, real = out.regions.flatten(0, 1), regions[:, -1].flatten(0, 1)
        cond = masks[:, -1].flatten(0, 1).unsqueeze(1)
        per = perceptual_loss(self.vgg, fake, real)
        gan = self._gan_terms(self.modules["discriminator"], fake, real, cond, weight=n)
        terms = {"rec": n * self.cfg.lambda_rec * reconstruction_loss(fake, real),
                 "per_content": n * self.cfg.lambda_per * per["content"],
                 "per_style": n * self.cfg.lambda_style * per["style"], **gan}
        return terms, (real, fake, cond)

    def discriminator_losses(self, d_inputs):
        real, fake, cond = d_inputs
        return {"d_adv": NUM_PERSON_REGIONS * self._d_term(self.modules["discriminator"], real, fake, cond)}

    @torch.no_grad()
    def sample(self, batch):
        from pipeline.training.grid import colour_layout

        b = to_device(batch, self.device)
        regions, _ = region_targets(b)
        out = self.generator(b["layouts"][:, -1], b["source"], b["source_layout"], regions[:, :2])
        return {"source": b["source"], "driving pose": b["poses"][:, -1], "layout": colour_layout(b["layouts"][:, -1]),
                "regions": out.foreground, "ground truth": regions[:, -1].sum(1)}


# ------------------------------------------------------------------------------------------------ WCN


class WCNSteps(StageSteps):
    """Trains the WCN on the frozen Region GAN's outputs (``region_generator`` must hold trained weights)."""

    name = "wcn"

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool,
                 vgg: nn.Module, region_generator: RegionGenerator):
        super().__init__(cfg, device, lr, betas, amp)
        self.vgg = vgg.to(device)
        self.region = region_generator.to(device).eval().requires_grad_(False)
        self.modules = {"generator": WholeCompositionNetwork(cfg)}
        discs: list[nn.Module] = []
        if cfg.wcn:  # "REMOT w/o WCN" has no network, hence nothing to train
            self.modules["discriminator"] = MultiscaleDiscriminator(cfg, image_channels=3, cond_channels=9)
            self.modules["face_discriminator"] = FaceDiscriminator(cfg, image_channels=3, cond_channels=9)
            discs = [self.modules["discriminator"], self.modules["face_discriminator"]]
        self._finish_init(self.modules["generator"], discs)

    def _forward(self, b):
        regions, _ = region_targets(b)
        with torch.no_grad():
            coarse = self.region(b["layouts"][:, -1], b["source"], b["source_layout"], regions[:, :2])
        person = 1.0 - b["layouts"][:, :, BACKGROUND:BACKGROUND + 1]
        prev_fg = (b["frames"] * person)[:, :2]
        out = self.generator(b["layouts"], b["poses"], coarse.foreground, prev_fg, coarse.aligned_foreground,
                             b["background"], b["frames"][:, -2])
        return out, coarse

    def generator_losses(self, b):
        out, _ = self._forward(b)
        real = b["frames"][:, -1]
        cond = torch.cat([b["layouts"][:, -1], b["poses"][:, -1]], dim=1)
        h, w = real.shape[-2:]
        boxes, valid = face_boxes(b["keypoints"][:, -1], (h, w))
        per = perceptual_loss(self.vgg, out.output, real)
        face_fake = self.modules["face_discriminator"](out.output, cond, boxes, valid)
        ref_flow, flow_valid = b["flow"][:, -1], b["valid"][:, -1]
        terms = {"rec": self.cfg.lambda_rec * reconstruction_loss(out.output, real),
                 "per_content": self.cfg.lambda_per * per["content"],
                 "per_style": self.cfg.lambda_style * per["style"],
                 **self._gan_terms(self.modules["discriminator"], out.output, real, cond),
                 "face_adv": self.cfg.lambda_face * generator_adversarial_loss(face_fake, self.cfg.gan_objective)
                 .to(real.device),
                 "flow": self.cfg.lambda_flow * flow_loss(out.flow, ref_flow, flow_valid),
                 "warp": self.cfg.lambda_flow * warp_loss(b["frames"][:, -2], out.flow, real, flow_valid)}
        return terms, (real, out.output, cond, boxes, valid)

    def discriminator_losses(self, d_inputs):
        real, fake, cond, boxes, valid = d_inputs
        face = self.modules["face_discriminator"]
        both = face(torch.cat([real, fake.detach()]), torch.cat([cond, cond]), torch.cat([boxes, boxes]),
                    torch.cat([valid, valid]))
        face_loss = real.new_zeros(())
        if both:
            real_out, fake_out = split_outputs(both, int(valid.sum()))
            face_loss = discriminator_loss(real_out, fake_out, self.cfg.gan_objective)
        return {"d_adv": self._d_term(self.modules["discriminator"], real, fake, cond),
                "d_face": self.cfg.lambda_face * face_loss}

    @torch.no_grad()
    def sample(self, batch):
        from pipeline.training.grid import colour_layout

        b = to_device(batch, self.device)
        out, coarse = self._forward(b)
        return {"source": b["source"], "driving pose": b["poses"][:, -1], "layout": colour_layout(b["layouts"][:, -1]),
                "regions": coarse.foreground, "output": out.output, "ground truth": b["frames"][:, -1]}


def build_steps(stage: str, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float],
                amp: bool, vgg: nn.Module | None = None, region_generator: RegionGenerator | None = None) -> StageSteps:
    if stage == "layout":
        return LayoutSteps(cfg, device, lr, betas, amp)
    if stage == "region":
        return RegionSteps(cfg, device, lr, betas, amp, vgg)
    if stage == "wcn":
        return WCNSteps(cfg, device, lr, betas, amp, vgg, region_generator)
    raise ValueError(f"unknown training stage {stage!r}; expected one of {STAGES}")
