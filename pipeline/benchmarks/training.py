"""Training speed per GAN stage: optimizer steps per second (generator + discriminator update) on a synthetic
batch of the loader's format. Quick mode: tiny profile at 96x64 on CPU (one thread); with CUDA also the paper
profile at 256x192 (bf16 autocast, as train.amp does). Data loading is excluded (see pipeline.benchmarks.shards)."""
from __future__ import annotations

import time

import torch

from pipeline.training.steps import build_steps
from remot_models import RegionGenerator
from remot_models.config import ModelConfig
from remot_models.losses import VGG19Features


def synthetic_batch(batch: int, height: int, width: int) -> dict:
    """A random batch with the fields and value ranges of pipeline.loader's windows (T = 3)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (batch, 3, height, width), generator=g)
    layouts = torch.nn.functional.one_hot(labels, 6).permute(0, 1, 4, 2, 3).float()
    keypoints = torch.rand(batch, 3, 25, 3, generator=g) * torch.tensor([width, height, 1.0])
    return {"frames": torch.rand(batch, 3, 3, height, width, generator=g) * 2 - 1,
            "poses": torch.rand(batch, 3, 3, height, width, generator=g) * 2 - 1,
            "keypoints": keypoints, "layouts": layouts,
            "flow": torch.randn(batch, 3, 2, height, width, generator=g),
            "valid": torch.ones(batch, 3, 1, height, width),
            "background": torch.rand(batch, 3, height, width, generator=g) * 2 - 1,
            "source": torch.rand(batch, 3, height, width, generator=g) * 2 - 1,
            "source_layout": layouts[:, 0], "meta": [{}] * batch}


def _rate(stage: str, cfg: ModelConfig, device: torch.device, batch: dict, steps: int, amp: bool) -> float:
    torch.manual_seed(0)
    vgg = VGG19Features()  # random init: speed only
    trainer = build_steps(stage, cfg, device, 2e-4, (0.5, 0.999), amp, vgg=vgg, region_generator=RegionGenerator(cfg))
    trainer.train_step(batch, 0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        trainer.train_step(batch, i + 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def run(quick: bool = True) -> list[dict]:
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu = torch.device("cpu")
        size = (96, 64) if quick else (256, 192)
        batch = synthetic_batch(1, *size)
        for stage in ("layout", "region", "wcn"):
            rate = _rate(stage, ModelConfig.from_profile("tiny"), cpu, batch, 2 if quick else 10, amp=False)
            rows.append({"area": "training", "name": f"{stage} steps/s (tiny, {size[0]}x{size[1]}, batch 1)",
                         "value": round(rate, 3), "unit": "steps/s", "device": "cpu",
                         "notes": "1 thread; G+D update incl. VGG19 perceptual loss for region/wcn; no data loading"})
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            batch = synthetic_batch(1, 256, 192)
            for stage in ("layout", "region", "wcn"):
                rate = _rate(stage, ModelConfig.from_profile("paper"), gpu, batch, 5 if quick else 20, amp=True)
                rows.append({"area": "training", "name": f"{stage} steps/s (paper, 256x192, batch 1)",
                             "value": round(rate, 3), "unit": "steps/s", "device": torch.cuda.get_device_name(0),
                             "notes": "bf16 autocast; G+D update; no data loading"})
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
