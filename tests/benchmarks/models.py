"""Speed and memory of the REMOT networks (remot_models): forward+backward time, peak memory, parameter counts,
and the Texture Alignment Module's memory with and without the fused attention kernel.

``run(quick=True) -> list[dict]`` rows ``{"area": "models", "name", "value", "unit", "device", "notes"}``.

Method:

* time - wall clock of one forward + backward (loss = a fixed random projection of the outputs), median over
  the timed iterations after one warm-up; on CUDA with ``torch.cuda.synchronize`` around it. CPU runs use one
  thread (the machine is shared).
* memory on CPU - ``torch.profiler`` with ``profile_memory=True`` records every allocation and free of the
  CPU allocator; we replay them in time order and report the highest running total, i.e. the peak bytes
  allocated *above the level at the start of the call* (activations, gradients, temporaries; the parameters and
  inputs existed before and are excluded). ``tracemalloc`` is not used: it only sees Python's allocator, not
  tensor storage. On CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the call.
* ``tiny`` runs at 256x192; ``paper`` is vid2vid-sized and takes tens of seconds per network per iteration on
  one CPU core at 256x192 (region GAN ~90 s), so on CPU it runs once, without warm-up, timed inside the
  profiled run, at 64x48 in quick mode (the row names say the resolution) and 256x192 with ``quick=False``. Parameter counts do not depend
  on the resolution.
* TAM - naive (materialised hw x hw affinity) vs fused (``scaled_dot_product_attention``) on random (1, 64, h, w)
  features at 64x48 and 128x96 feature maps, forward only (in quick mode one profiled run each).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from remot_models import (FaceDiscriminator, LayoutGenerator, ModelConfig, MultiscaleDiscriminator,
                          RegionGenerator, WholeCompositionNetwork, count_parameters, fused_tam, naive_tam)
from tests.benchmarks._threads import limited_threads

AREA = "models"
TAM_CHANNELS = 64


def _rand(*shape: int, device: str) -> torch.Tensor:
    return torch.rand(*shape, device=device) * 2 - 1


def _layouts(*shape: int, device: str) -> torch.Tensor:
    return torch.softmax(torch.randn(*shape, device=device) * 2, dim=-3)


def _networks(cfg: ModelConfig, h: int, w: int, device: str) -> dict[str, tuple[torch.nn.Module, Callable]]:
    """name -> (module, closure returning the tensors a loss would read) at batch 1."""
    layout = LayoutGenerator(cfg).to(device)
    region = RegionGenerator(cfg).to(device)
    wcn = WholeCompositionNetwork(cfg).to(device)
    disc = MultiscaleDiscriminator(cfg, image_channels=3, cond_channels=9).to(device)
    face = FaceDiscriminator(cfg, image_channels=3, cond_channels=9).to(device)
    face_box = torch.tensor([[w * 0.4, h * 0.05, w * 0.6, h * 0.05 + w * 0.2]], device=device)
    valid = torch.tensor([True], device=device)
    a = {  # inputs, made once so the timing is the network's
        "l_src": _layouts(1, 6, h, w, device=device), "poses": _rand(1, 3, 3, h, w, device=device),
        "l_prev": _layouts(1, 2, 6, h, w, device=device), "l_now": _layouts(1, 6, h, w, device=device),
        "img": _rand(1, 3, h, w, device=device), "r_prev": _rand(1, 2, 5, 3, h, w, device=device),
        "l_seq": _layouts(1, 3, 6, h, w, device=device), "fg_prev": _rand(1, 2, 3, h, w, device=device),
        "cond": _rand(1, 9, h, w, device=device),
    }
    return {
        "layout_gan": (layout, lambda: [layout(a["l_src"], a["poses"], a["l_prev"]).layout]),
        "region_gan": (region, lambda: [region(a["l_now"], a["img"], a["l_src"], a["r_prev"]).regions]),
        "wcn": (wcn, lambda: [wcn(a["l_seq"], a["poses"], a["img"], a["fg_prev"], a["img"], a["img"],
                                  a["img"]).output]),
        "multiscale_d": (disc, lambda: [s[-1] for s in disc(a["img"], a["cond"])]),
        "face_d": (face, lambda: [s[-1] for s in face(a["img"], a["cond"], face_box, valid)]),
    }


def _step(module: torch.nn.Module, outputs: Callable) -> None:
    module.zero_grad(set_to_none=True)
    loss = sum((o * torch.linspace(-1, 1, o.numel(), device=o.device).view_as(o)).mean() for o in outputs())
    loss.backward()


def cpu_peak_bytes(fn: Callable[[], object]) -> int | None:
    """Peak bytes the CPU allocator held above its level at the call's start (see module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
        events = [e for e in events if e.device_type() == torch.autograd.DeviceType.CPU]
    except AttributeError:  # profiler internals moved: report nothing rather than a wrong number
        return None
    running = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def _measure(fn: Callable[[], object], device: str, iterations: int, warmup: bool) -> tuple[float, int | None]:
    """(median ms, peak bytes) of ``fn``. A single CPU iteration without warm-up is timed inside the memory
    profiler run itself, so a heavy network runs once (the profiler's per-op overhead is small next to it)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cpu" and iterations == 1 and not warmup:
        start = time.perf_counter()
        peak = cpu_peak_bytes(fn)
        return (time.perf_counter() - start) * 1e3, peak
    if warmup:
        fn()
    times = []
    for _ in range(iterations):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        sync()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = cpu_peak_bytes(fn)
    return statistics.median(times), peak


def _row(name: str, value: float | None, unit: str, device: str, notes: str) -> dict:
    return {"area": AREA, "name": name, "value": None if value is None else round(float(value), 3),
            "unit": unit, "device": device, "notes": notes}


def _network_rows(profile: str, device: str, size: tuple[int, int], iterations: int, warmup: bool) -> list[dict]:
    cfg = ModelConfig.from_profile(profile)
    h, w = size
    rows = []
    torch.manual_seed(0)
    for name, (module, outputs) in _networks(cfg, h, w, device).items():
        ms, peak = _measure(lambda: _step(module, outputs), device, iterations, warmup)
        how = f"batch 1, {'median of ' + str(iterations) if iterations > 1 else 'single iteration'}" \
              f"{', after 1 warm-up' if warmup else ', no warm-up'}"
        rows.append(_row(f"{name} fwd+bwd ms ({profile}, {h}x{w})", ms, "ms", device, how))
        rows.append(_row(f"{name} fwd+bwd peak MB ({profile}, {h}x{w})",
                         None if peak is None else peak / 2**20, "MB", device,
                         "peak allocation above the pre-call level (activations + grads)"
                         + ("" if peak is not None else "; profiler memory events unavailable")))
        if device == "cpu":
            rows.append(_row(f"{name} parameters ({profile})", count_parameters(module), "count", "any",
                             "trainable + frozen scalars"))
        del module
    return rows


def _tam_rows(device: str, quick: bool) -> list[dict]:
    rows = []
    for h, w in ((64, 48), (128, 96)):
        torch.manual_seed(0)
        f1 = torch.randn(1, TAM_CHANNELS, h, w, device=device)
        f2 = torch.randn(1, TAM_CHANNELS, h, w, device=device)
        for name, fn in (("naive", naive_tam), ("fused", fused_tam)):
            with torch.no_grad():
                ms, peak = _measure(lambda: fn(f1, f2), device, iterations=1 if quick else 3, warmup=not quick)
            notes = f"forward, (1, {TAM_CHANNELS}, {h}, {w}) features, hw = {h * w}"
            rows.append(_row(f"tam {name} peak MB ({h}x{w})", None if peak is None else peak / 2**20, "MB",
                             device, notes + "; naive holds the hw x hw affinity"))
            rows.append(_row(f"tam {name} ms ({h}x{w})", ms, "ms", device, notes))
    return rows


def run(quick: bool = True) -> list[dict]:
    """Benchmark rows (see module docstring). Quick mode: ~30 s on one CPU core."""
    with limited_threads():
        rows = _network_rows("tiny", "cpu", (256, 192), iterations=2 if quick else 10, warmup=True)
        rows += _network_rows("paper", "cpu", (64, 48) if quick else (256, 192), iterations=1, warmup=False)
        rows += _tam_rows("cpu", quick)
        if torch.cuda.is_available():
            for profile in ("tiny", "paper"):
                rows += _network_rows(profile, "cuda", (256, 192), iterations=5 if quick else 20, warmup=True)
            rows += _tam_rows("cuda", quick)
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=1))
