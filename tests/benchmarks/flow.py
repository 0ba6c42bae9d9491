"""Flow speed at the paper's 256 x 192: ms per flow field for each backend, on CPU and (when present) CUDA.

FlowNet2 and RAFT run with random weights here (no checkpoint is needed to measure speed); their rows say
"speed only, random weights". A video frame needs two flow fields (t -> t-1 and t-1 -> t for the validity
check), so ``compute_video_flow`` costs about twice these numbers per frame.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from pipeline.flow.base import FlowBackend
from pipeline.flow.dis import DIS_PRESETS, DisFlowBackend
from tests.benchmarks._threads import limited_threads

HEIGHT, WIDTH = 256, 192


def _frame_pair() -> tuple[np.ndarray, np.ndarray]:
    """A textured frame and the same frame shifted by (3, -2) px: realistic work for every backend."""
    noise = np.random.default_rng(0).random((HEIGHT, WIDTH, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    frame = ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)
    moved = cv2.warpAffine(frame, np.float32([[1, 0, 3], [0, 1, -2]]), (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
    return moved, frame


def _ms_per_call(backend: FlowBackend, pair, repeats: int, device: torch.device | None = None) -> float:
    """Median wall time of ``backend.compute`` in ms, after one warm-up call."""
    backend.compute(*pair)
    times = []
    for _ in range(repeats):
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        backend.compute(*pair)  # returns a numpy array, so GPU work has finished when it returns
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def _row(name: str, value: float, unit: str, device: str, notes: str) -> dict:
    return {"area": "flow", "name": name, "value": round(value, 3), "unit": unit, "device": device, "notes": notes}


def _network_rows(device: torch.device, repeats: int, include_raft_large: bool) -> list[dict]:
    from torchvision.models.optical_flow import raft_large, raft_small

    from pipeline.flow.flownet2_backend import FlowNet2Backend
    from pipeline.flow.raft_backend import RaftBackend
    from pipeline.pretrained.flownet2 import FlowNet2

    pair = _frame_pair()
    where = str(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    random_note = "speed only, random weights"
    rows = []

    torch.manual_seed(0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    flownet2 = FlowNet2Backend(FlowNet2(), device)
    rows.append(_row("flownet2 ms/frame", _ms_per_call(flownet2, pair, repeats, device), "ms", where,
                     f"{random_note}; one flow field {HEIGHT}x{WIDTH}; fp32; pure-PyTorch correlation/resample"))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        rows.append(_row("flownet2 peak GPU memory", peak, "MiB", where, f"{random_note}; weights + one forward"))
    del flownet2

    variants = [("small", raft_small)] + ([("large", raft_large)] if include_raft_large else [])
    for variant, build in variants:
        raft = RaftBackend(build(weights=None, progress=False), variant, device)
        rows.append(_row(f"raft-{variant} ms/frame", _ms_per_call(raft, pair, repeats, device), "ms", where,
                         f"{random_note}; torchvision raft_{variant}, 12 flow updates, {HEIGHT}x{WIDTH}"))
    return rows


def run(quick: bool = True) -> list[dict]:
    """Benchmark rows (see module doc). Quick mode: 1 CPU thread, few repeats, RAFT-large on CUDA only."""
    rows = []
    pair = _frame_pair()
    with limited_threads(quick):
        for preset in DIS_PRESETS:
            backend = DisFlowBackend(preset)
            ms = _ms_per_call(backend, pair, repeats=5 if quick else 50)
            rows.append(_row(f"{backend.name} ms/frame", ms, "ms", f"cpu ({cv2.getNumThreads()} cv2 threads)",
                             f"one flow field {HEIGHT}x{WIDTH}, grayscale DIS"))
        with torch.inference_mode():
            rows += _network_rows(torch.device("cpu"), repeats=1 if quick else 5, include_raft_large=not quick)
            if torch.cuda.is_available():
                rows += _network_rows(torch.device("cuda"), repeats=5 if quick else 20, include_raft_large=True)
    return rows


if __name__ == "__main__":
    for result in run(quick=True):
        print(result)
