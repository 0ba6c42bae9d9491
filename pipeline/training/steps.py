"""One optimisation step of each REMOT network (Layout GAN, Region GAN, WCN) (paper 3.1-3.3, eq. 6-10, plus vid2vid's flow and warp losses).

**Trained as used.** A step takes a window of ``sequence_length`` consecutive frames and runs the recurrence
``remot_models.sequence.generate_sequence`` over it - the same function inference runs: frame 0 starts from
the bootstrap (zero state, then its own output as both previous frames), every later frame gets the networks'
OWN previous outputs (detached: no gradient through the recurrence), and the Region GAN and WCN receive the
frozen Layout GAN's hardened predictions, never ground-truth layouts. Hence the schedule (paper 3.3 trains the
networks separately): Layout GAN, then the Region GAN on the frozen Layout GAN, then the WCN on both frozen.
Every frame of the window is scored against its ground truth and the terms are averaged over the frames.

**Warm-up** (``train.warmup_frames`` = W): step ``s`` first runs ``k = warmup_length(s, W)`` frames (0..W, a pure
function of the step, so a resumed run draws the same) of the window without autograd, then scores the next
``sequence_length`` frames. The scored frames thus start from the state the networks' own outputs leave after
0..W frames, as evaluation's later frames do, for the price of k forward passes (``remot_models.sequence``).

Per step: the generator update (discriminators frozen), then the discriminator update on the real targets and
the detached fakes of all frames, in ONE discriminator call on the concatenated batch. Every loss term is checked
for NaN/inf before any parameter changes (:class:`NonFiniteLoss`). With several ranks the gradients are
averaged across ranks (one flat all-reduce per network) before every optimizer step.

Losses (weights in ``ModelConfig``; the adversarial objective is eq. 8/10's vanilla GAN by default):

* Layout GAN - the paper gives no layout loss; we use cross-entropy of D1's logits against the ground-truth
  labels (eq. 2a; the limbs class weighted ``layout_limbs_weight``), ``lambda_rec`` x L1 between the blended
  layout (eq. 2c) and the one-hot ground truth, the multi-scale conditional adversarial loss on (layout, driving
  pose) with feature matching, ``lambda_flow`` x the flow L1 to the reference flow and ``lambda_warp`` x the warp
  loss of the previous ground-truth layout, masked by the flow's validity (frames after the first; frame 0 has no
  real predecessor).
* Region GAN - eq. 9: ``lambda_rec`` x eq. 6 per region, **normalised by the region's area** (an L1 averaged
  over the whole frame would give heads and shoes almost no weight), averaged over the 5 regions (eq. 9's sum / 5:
  a constant folded into the weights); ``lambda_per`` / ``lambda_style`` x eq. 7 on the foreground (the eq. 11 sum
  of regions), once per frame (``perceptual_on: regions`` runs it per region as eq. 9 literally does, at 5x the
  VGG19 cost); eq. 8 on (region image, region mask) pairs with feature matching, real pairs from the ground truth.
  The Region GAN paints the regions the Layout GAN predicted, so eq. 6-7's target is the real frame where each
  region was predicted, I_d * L^_d,i (the paper trains on ground-truth layouts, where the two coincide). With the
  ground-truth region I_d * L_d,i as target, every pixel whose predicted label is wrong asks for 0 in one region
  and for colour in another that is masked there: the objective then darkens the person wherever the layout errs.
* WCN - "the same loss function as Region GAN" on the whole frame: L1 over the frame plus L1 normalised over the
  person (union of predicted and true person), eq. 7 on the frame, eq. 8 with feature matching, the face
  discriminator (``lambda_face``), and the flow/warp losses of its temporal blend.

At zero adversarial weights (``ModelConfig.adversarial`` false, ``lambda_face`` 0) the discriminators are neither
run nor updated: their terms would add nothing to the generator's gradient.

Flow is in pixels, so its L1 is weighted ``lambda_flow = 1`` (vid2vid's 10 made it 2/3 of the WCN's total at
initialisation, more than every image term together); the warp loss is in image units like eq. 6.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from pipeline.core.checkpoint import NETWORKS
from pipeline.core.errors import RemotError
from pipeline.core.hashing import text_int
from pipeline.training.optimisation import build_optimisation
from remot_models import (BACKGROUND, NUM_PERSON_REGIONS, NUM_REGIONS, REGIONS, FaceDiscriminator, LayoutGenerator,
                          MultiscaleDiscriminator, RegionGenerator, WholeCompositionNetwork, face_boxes)
from remot_models.config import ModelConfig
from remot_models.losses import (discriminator_loss, feature_matching_loss, flow_loss, generator_adversarial_loss,
                                 area_normalised_l1, perceptual_loss, reconstruction_loss, warp_loss)
from remot_models.sequence import FrameOutput, Generators, frozen, generate_sequence

TENSOR_FIELDS = ("frames", "poses", "keypoints", "layouts", "flow", "valid", "background", "source",
                 "source_layout")


class NonFiniteLoss(RemotError):
    """A loss term became NaN or infinite; training stops and the last checkpoint stays the latest."""

    def __init__(self, network: str, step: int, term: str, value: float):
        self.network, self.step, self.term, self.value = network, step, term, value
        super().__init__(f"{network}: loss term {term!r} is {value} at step {step}; training stopped, the last "
                         f"good checkpoint stays in models/{network}/latest.json. Lower train.lr, turn off "
                         f"train.amp, or inspect the batch of step {step}")


def check_finite(network: str, step: int, losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """Python floats of ``losses``; raises :class:`NonFiniteLoss` naming the first bad term."""
    values = {name: float(value.detach().float()) for name, value in losses.items()}
    for name, value in values.items():
        if not torch.isfinite(torch.tensor(value)):
            raise NonFiniteLoss(network, step, name, value)
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


def to_device(batch: dict[str, Any], device: torch.device, length: int) -> dict[str, Any]:
    """Move the tensor fields to ``device``, keeping the last ``length`` frames of each window."""
    have = batch["frames"].shape[1]
    if have < length:
        raise RemotError(f"train.sequence_length is {length} but the shards hold windows of {have} frames: set "
                         f"shards.window >= {length} and run `dvc repro shards`, or lower train.sequence_length")
    out = {}
    for name in TENSOR_FIELDS:
        value = batch[name].to(device, non_blocking=True)
        out[name] = value[:, -length:] if name in ("frames", "poses", "keypoints", "layouts", "flow", "valid") else value
    return out


def warmup_length(step: int, warmup_frames: int) -> int:
    """Frames run without autograd before the scored ones at ``step``: uniform in 0..``warmup_frames``, from a
    hash of the step (the same on every run, machine and resume)."""
    if warmup_frames <= 0:
        return 0
    return text_int(f"remot-warmup-v1:{int(step)}", 8) % (warmup_frames + 1)


def frame_mean(terms_per_frame: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Average each loss term over the frames of the sequence (a term missing in a frame counts as zero)."""
    names = list(dict.fromkeys(k for terms in terms_per_frame for k in terms))
    n = len(terms_per_frame)
    return {k: sum(terms[k] for terms in terms_per_frame if k in terms) / n for k in names}


class NetworkSteps:
    """One network's training: ``modules`` (checkpointed networks), ``optimizers``, ``train_step(batch, step)`` returning the
    loss terms as floats, and ``sample(batch)`` returning named (B, 3, H, W) images in [-1, 1] for the grid.

    ``upstream``: the trained generators of the earlier networks (``layout`` for the Region GAN, ``layout`` and
    ``region`` for the WCN); they run frozen inside the recurrence."""

    name = ""

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool,
                 sequence_length: int = 3, upstream: dict[str, nn.Module] | None = None, epochs: int = 1,
                 lr_decay_epochs: int = 0, warmup_frames: int = 0):
        self.cfg, self.device = cfg, device
        self.warmup_frames = warmup_frames
        self.lr, self.betas, self.epochs, self.lr_decay_epochs = lr, betas, epochs, lr_decay_epochs
        self.amp = amp and device.type == "cuda"
        self.sequence_length = sequence_length
        self.upstream = {k: frozen(m.to(device)) for k, m in (upstream or {}).items()}
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for m in self.modules.values() for p in m.parameters())

    def _finish_init(self, generator: nn.Module, discriminators: list[nn.Module]) -> None:
        for m in self.modules.values():
            m.to(self.device)
            broadcast_parameters(m)
        self.generator, self.discriminators = generator, discriminators
        if self.trainable:  # "REMOT w/o WCN" has no network: nothing to optimise
            self.optimizers, self.schedulers = build_optimisation(generator, discriminators, self.lr, self.betas,
                                                                  self.epochs, self.lr_decay_epochs)

    def _need_upstream(self, *names: str) -> None:
        missing = [n for n in names if n not in self.upstream]
        if missing:
            raise RemotError(f"the {self.name} network trains on the outputs of the trained {', '.join(missing)} "
                             f"generator(s): train them first (`dvc repro train_{missing[0]}`)")

    def generators(self) -> Generators:
        raise NotImplementedError

    @property
    def window_length(self) -> int:
        """Frames of a shard window a step may use: the longest warm-up plus the scored frames."""
        return self.warmup_frames + self.sequence_length

    def rollout(self, b: dict[str, Any], warmup: int = 0) -> list[FrameOutput]:
        """The recurrence over the window (inference's own function), one :class:`FrameOutput` per frame; the
        first ``warmup`` frames without autograd."""
        return list(generate_sequence(self.generators(), b["source"], b["source_layout"], b["poses"].unbind(1),
                                      b["background"], no_grad_frames=warmup))

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
        warmup = warmup_length(step, self.warmup_frames)
        b = to_device(batch, self.device, warmup + self.sequence_length)
        with _frozen(self.discriminators), self.autocast():
            outs = self.rollout(b, warmup)[warmup:]
            g_terms = frame_mean([self.frame_losses(b, out) for out in outs])
        g_total = sum(g_terms.values())
        values = check_finite(self.name, step, {**g_terms, "g_total": g_total})
        self._update("generator", g_total, [self.generator])
        with self.autocast():
            d_terms = self.discriminator_losses(b, outs)
        d_total = sum(d_terms.values(), torch.zeros((), device=self.device))
        values.update(check_finite(self.name, step, {**d_terms, "d_total": d_total}))
        if d_terms:  # no discriminator term reaches the generator at zero adversarial weights: nothing to train
            self._update("discriminator", d_total, self.discriminators)
        return values

    def frame_losses(self, b: dict[str, Any], out: FrameOutput) -> dict[str, torch.Tensor]:
        """The generator's loss terms of frame ``out.t`` of the window."""
        raise NotImplementedError

    def discriminator_losses(self, b: dict[str, Any], outs: list[FrameOutput]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _gan_terms(self, disc: nn.Module, fake: torch.Tensor, real: torch.Tensor, fake_cond: torch.Tensor,
                   real_cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 8 adversarial (+ feature matching) terms of a conditional multi-scale discriminator; none at zero
        adversarial weights (``ModelConfig.adversarial``), which spares the discriminator's passes."""
        if not self.cfg.adversarial:
            return {}
        fake_out = disc(fake, fake_cond)
        terms = {"g_adv": self.cfg.lambda_adv * generator_adversarial_loss(fake_out, self.cfg.gan_objective)}
        if self.cfg.feature_matching:
            with torch.no_grad():
                real_out = disc(real, real_cond)
            terms["feat"] = self.cfg.lambda_feat * feature_matching_loss(real_out, fake_out)
        return terms

    def _d_terms(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, real_cond: torch.Tensor,
                 fake_cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 10: one discriminator call on the concatenated (real; detached fake) batch; none at zero
        adversarial weights."""
        if not self.cfg.adversarial:
            return {}
        both = disc(torch.cat([real, fake.detach()]), torch.cat([real_cond, fake_cond]))
        real_out, fake_out = split_outputs(both, real.shape[0])
        return {"d_adv": discriminator_loss(real_out, fake_out, self.cfg.gan_objective)}

    def _perceptual(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 7 with the backbone's own layer weights (VGG19: eq. 7's plain sum)."""
        return perceptual_loss(self.vgg, fake, real, getattr(self.vgg, "layer_weights", (1.0,) * 5))

    def _temporal_terms(self, flow: torch.Tensor, b: dict[str, Any], t: int, previous_real: torch.Tensor,
                        current_real: torch.Tensor) -> dict[str, torch.Tensor]:
        """vid2vid's flow and warp losses of frame t (t >= 1: frame 0 has no real predecessor in the window)."""
        if t == 0 or flow is None:  # frame 0 has no real predecessor; no flow without the temporal blend
            return {}
        ref, valid = b["flow"][:, t], b["valid"][:, t]
        return {"flow": self.cfg.lambda_flow * flow_loss(flow, ref, valid),
                "warp": self.cfg.lambda_warp * warp_loss(previous_real, flow, current_real, valid)}


# ------------------------------------------------------------------------------------------------ Layout GAN


class LayoutSteps(NetworkSteps):
    name = "layout"

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool,
                 sequence_length: int = 3, upstream: dict[str, nn.Module] | None = None, **schedule: int):
        super().__init__(cfg, device, lr, betas, amp, sequence_length, upstream, **schedule)
        self.modules = {"generator": LayoutGenerator(cfg),
                        "discriminator": MultiscaleDiscriminator(cfg, image_channels=6, cond_channels=3)}
        self._finish_init(self.modules["generator"], [self.modules["discriminator"]])
        self.class_weights = None  # unweighted: F.cross_entropy's own path, bit-identical to before the knob
        if cfg.layout_limbs_weight != 1.0:
            self.class_weights = torch.ones(NUM_REGIONS, device=device)
            self.class_weights[REGIONS.index("limbs")] = cfg.layout_limbs_weight

    def generators(self) -> Generators:
        return Generators(self.generator)

    def frame_losses(self, b, out):
        t, lo = out.t, out.layout_out
        target, cond = b["layouts"][:, t], b["poses"][:, t]
        terms = {"ce": F.cross_entropy(lo.logits.float(), target.argmax(dim=1), weight=self.class_weights),
                 "rec": self.cfg.lambda_rec * reconstruction_loss(lo.layout, target),
                 **self._gan_terms(self.modules["discriminator"], lo.layout, target, cond, cond)}
        return {**terms, **self._temporal_terms(lo.flow, b, t, b["layouts"][:, t - 1], target)}

    def discriminator_losses(self, b, outs):
        real = torch.cat([b["layouts"][:, o.t] for o in outs])
        fake = torch.cat([o.layout_out.layout for o in outs])
        cond = torch.cat([b["poses"][:, o.t] for o in outs])
        return self._d_terms(self.modules["discriminator"], real, fake, cond, cond)

    @torch.no_grad()
    def sample(self, batch):
        from pipeline.training.grid import colour_layout

        b = to_device(batch, self.device, self.window_length)
        last = self.rollout(b, self.window_length)[-1]
        return {"source": b["source"], "driving pose": b["poses"][:, -1],
                "layout": colour_layout(last.layout_out.layout), "ground truth": colour_layout(b["layouts"][:, -1])}


# ------------------------------------------------------------------------------------------------ Region GAN


def region_targets(b: dict[str, Any], t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth region images I_d,i = I_d * L_d,i of frame t: (B, 5, 3, H, W), and masks (B, 5, H, W)."""
    masks = b["layouts"][:, t, :NUM_PERSON_REGIONS]
    return b["frames"][:, t].unsqueeze(1) * masks.unsqueeze(2), masks


def person_of(layout: torch.Tensor) -> torch.Tensor:
    """(B, 6, H, W) layout -> (B, 1, H, W) person mask (1 - background)."""
    return 1.0 - layout[:, BACKGROUND:BACKGROUND + 1]


class RegionSteps(NetworkSteps):
    name = "region"

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool,
                 sequence_length: int = 3, upstream: dict[str, nn.Module] | None = None,
                 vgg: nn.Module | None = None, **schedule: int):
        super().__init__(cfg, device, lr, betas, amp, sequence_length, upstream, **schedule)
        self._need_upstream("layout")
        self.vgg = vgg.to(device)
        self.modules = {"generator": RegionGenerator(cfg),
                        "discriminator": MultiscaleDiscriminator(cfg, image_channels=3, cond_channels=1)}
        self._finish_init(self.modules["generator"], [self.modules["discriminator"]])

    def generators(self) -> Generators:
        return Generators(self.upstream["layout"], self.generator)

    def frame_losses(self, b, out):
        real, real_masks = region_targets(b, out.t)
        fake, fake_masks = out.region.regions, out.layout[:, :NUM_PERSON_REGIONS]
        # eq. 6-7 against what the camera saw where the Layout GAN put each region (see the module docstring)
        frame = b["frames"][:, out.t]
        asked = frame.unsqueeze(1) * fake_masks.unsqueeze(2)                             # (B, 5, 3, H, W)
        rec = area_normalised_l1(fake.flatten(0, 1), asked.flatten(0, 1), fake_masks.unsqueeze(2).flatten(0, 1))
        if self.cfg.perceptual_on == "regions":
            per = self._perceptual(fake.flatten(0, 1), asked.flatten(0, 1))
        else:
            per = self._perceptual(out.region.foreground, frame * person_of(out.layout))
        gan = self._gan_terms(self.modules["discriminator"], fake.flatten(0, 1), real.flatten(0, 1),
                              fake_masks.flatten(0, 1).unsqueeze(1), real_masks.flatten(0, 1).unsqueeze(1))
        return {"rec": self.cfg.lambda_rec * rec, "per_content": self.cfg.lambda_per * per["content"],
                "per_style": self.cfg.lambda_style * per["style"], **gan}

    def discriminator_losses(self, b, outs):
        reals = [region_targets(b, o.t) for o in outs]
        real = torch.cat([r.flatten(0, 1) for r, _ in reals])
        real_cond = torch.cat([m.flatten(0, 1).unsqueeze(1) for _, m in reals])
        fake = torch.cat([o.region.regions.flatten(0, 1) for o in outs])
        fake_cond = torch.cat([o.layout[:, :NUM_PERSON_REGIONS].flatten(0, 1).unsqueeze(1) for o in outs])
        return self._d_terms(self.modules["discriminator"], real, fake, real_cond, fake_cond)

    @torch.no_grad()
    def sample(self, batch):
        from pipeline.training.grid import colour_layout

        b = to_device(batch, self.device, self.window_length)
        last = self.rollout(b, self.window_length)[-1]
        return {"source": b["source"], "driving pose": b["poses"][:, -1], "layout": colour_layout(last.layout),
                "regions": last.region.foreground,
                "ground truth": b["frames"][:, -1] * person_of(b["layouts"][:, -1])}


# ------------------------------------------------------------------------------------------------ WCN


class WCNSteps(NetworkSteps):
    """Trains the WCN on the frozen Layout GAN's and Region GAN's outputs (``upstream`` holds both)."""

    name = "wcn"

    def __init__(self, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float], amp: bool,
                 sequence_length: int = 3, upstream: dict[str, nn.Module] | None = None,
                 vgg: nn.Module | None = None, **schedule: int):
        super().__init__(cfg, device, lr, betas, amp, sequence_length, upstream, **schedule)
        self._need_upstream("layout", "region")
        self.vgg = vgg.to(device)
        self.modules = {"generator": WholeCompositionNetwork(cfg)}
        discs: list[nn.Module] = []
        if cfg.wcn:  # "REMOT w/o WCN" has no network, hence nothing to train
            self.modules["discriminator"] = MultiscaleDiscriminator(cfg, image_channels=3, cond_channels=9)
            self.modules["face_discriminator"] = FaceDiscriminator(cfg, image_channels=3, cond_channels=9)
            discs = [self.modules["discriminator"], self.modules["face_discriminator"]]
        self._finish_init(self.modules["generator"], discs)

    def generators(self) -> Generators:
        return Generators(self.upstream["layout"], self.upstream["region"], self.generator)

    @staticmethod
    def _conds(b, out):
        """Discriminator conditions of frame t: (real layout, pose) and (generated layout, pose)."""
        pose = b["poses"][:, out.t]
        return torch.cat([b["layouts"][:, out.t], pose], 1), torch.cat([out.layout, pose], 1)

    def frame_losses(self, b, out):
        t, comp = out.t, out.composition
        real = b["frames"][:, t]
        person = torch.maximum(person_of(b["layouts"][:, t]), person_of(out.layout))
        real_cond, fake_cond = self._conds(b, out)
        per = self._perceptual(comp.output, real)
        terms = {"rec": self.cfg.lambda_rec * reconstruction_loss(comp.output, real),
                 "rec_person": self.cfg.lambda_rec * area_normalised_l1(comp.output, real, person),
                 "per_content": self.cfg.lambda_per * per["content"],
                 "per_style": self.cfg.lambda_style * per["style"],
                 **self._gan_terms(self.modules["discriminator"], comp.output, real, fake_cond, real_cond)}
        if self.cfg.lambda_face > 0:  # at zero weight the face discriminator is skipped, as the multi-scale one
            boxes, valid = face_boxes(b["keypoints"][:, t], tuple(real.shape[-2:]))
            face_fake = self.modules["face_discriminator"](comp.output, fake_cond, boxes, valid)
            terms["face_adv"] = (self.cfg.lambda_face * generator_adversarial_loss(face_fake, self.cfg.gan_objective)
                                 .to(real.device))
        return {**terms, **self._temporal_terms(comp.flow, b, t, b["frames"][:, t - 1], real)}

    def discriminator_losses(self, b, outs):
        real = torch.cat([b["frames"][:, o.t] for o in outs])
        fake = torch.cat([o.composition.output for o in outs])
        conds = [self._conds(b, o) for o in outs]
        real_cond, fake_cond = torch.cat([c[0] for c in conds]), torch.cat([c[1] for c in conds])
        terms = self._d_terms(self.modules["discriminator"], real, fake, real_cond, fake_cond)
        if self.cfg.lambda_face > 0:
            h, w = real.shape[-2:]
            boxes, valid = face_boxes(torch.cat([b["keypoints"][:, o.t] for o in outs]), (h, w))
            both = self.modules["face_discriminator"](torch.cat([real, fake.detach()]),
                                                      torch.cat([real_cond, fake_cond]), torch.cat([boxes, boxes]),
                                                      torch.cat([valid, valid]))
            face_loss = real.new_zeros(())
            if both:
                real_out, fake_out = split_outputs(both, int(valid.sum()))
                face_loss = discriminator_loss(real_out, fake_out, self.cfg.gan_objective)
            terms["d_face"] = self.cfg.lambda_face * face_loss
        return terms

    @torch.no_grad()
    def sample(self, batch):
        from pipeline.training.grid import colour_layout

        b = to_device(batch, self.device, self.window_length)
        last = self.rollout(b, self.window_length)[-1]
        return {"source": b["source"], "driving pose": b["poses"][:, -1], "layout": colour_layout(last.layout),
                "regions": last.region.foreground, "output": last.composition.output,
                "ground truth": b["frames"][:, -1]}


def build_steps(network: str, cfg: ModelConfig, device: torch.device, lr: float, betas: tuple[float, float],
                amp: bool, vgg: nn.Module | None = None, upstream: dict[str, nn.Module] | None = None,
                sequence_length: int = 3, epochs: int = 1, lr_decay_epochs: int = 0,
                warmup_frames: int = 0) -> NetworkSteps:
    """The :class:`NetworkSteps` of ``network`` with its optimisers and their schedule over ``epochs``
    (``pipeline.training.optimisation``); ``upstream`` = the trained generators of the earlier networks."""
    kinds = {"layout": LayoutSteps, "region": RegionSteps, "wcn": WCNSteps}
    if network not in kinds:
        raise ValueError(f"unknown network {network!r}; expected one of {NETWORKS}")
    extra = {} if network == "layout" else {"vgg": vgg}
    return kinds[network](cfg, device, lr, betas, amp, sequence_length, upstream, epochs=epochs,
                        lr_decay_epochs=lr_decay_epochs, warmup_frames=warmup_frames, **extra)
