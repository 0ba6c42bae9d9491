"""Speed of SCHP's AugmentCE2P (ResNet-101) at its ATR input size, 512 x 512.

The weights are random (the official checkpoint is never downloaded), so these rows measure speed only;
the arithmetic is identical to the real network's. Runs on CUDA when available, otherwise on one CPU thread.
"""
from __future__ import annotations

import time

import torch

from pipeline.pretrained.schp import AugmentCE2P
from tests.benchmarks._threads import limited_threads


def _time_forward(model: torch.nn.Module, x: torch.Tensor, iterations: int, warmup: int) -> float:
    """Mean wall time of one forward pass, in milliseconds."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        start = time.perf_counter()
        for _ in range(iterations):
            model(x)
        sync()
    return (time.perf_counter() - start) * 1000.0 / iterations


def run(quick: bool = True) -> list[dict]:
    """Returns rows ``{"area", "name", "value", "unit", "device", "notes"}``: forward ms per 512 x 512 frame
    for batch 1 and, outside quick mode, for batch 2 (one frame plus its mirror, i.e. SCHP's flip recipe)."""
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    with limited_threads(single=not cuda):  # shared CI box; also makes CPU numbers comparable between runs
        torch.manual_seed(0)
        model = AugmentCE2P(num_classes=18).eval().to(device)
        iterations, warmup = (1, 0) if quick and not cuda else ((5, 2) if quick else (20, 3))
        if not cuda and not quick:
            iterations, warmup = 3, 1
        setting = f"{'CUDA ' + torch.cuda.get_device_name(device) if cuda else 'CPU, 1 thread'}, fp32"
        rows = []
        for batch in ((1,) if quick else (1, 2)):
            x = torch.randn(batch, 3, 512, 512, device=device)
            # Batch 2 still yields one parsed frame, so its whole call time is the per-frame cost.
            ms = _time_forward(model, x, iterations, warmup)
            what = "forward" if batch == 1 else "flip recipe (frame + mirror in one batch of 2)"
            rows.append({
                "area": "parsing",
                "name": "schp-atr forward ms/frame" if batch == 1 else "schp-atr flip-recipe ms/frame",
                "value": round(ms, 2),
                "unit": "ms",
                "device": device.type,
                "notes": (f"AugmentCE2P ResNet-101, 512x512 input, {what}; RANDOM weights (speed only, no "
                          f"real checkpoint); {setting}; {iterations} timed iteration(s) after {warmup} warm-up"),
            })
        return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
