"""Peak memory of ``remot transfer`` against the driving video's length (issue 16: memory flat in video length).

``run(quick=True) -> list[dict]`` rows ``{"area": "transfer_memory", "name", "value", "unit", "device", "notes"}``.

Method: the project's own demo renderer draws a 48-frame clip of a person (no third-party footage), which is
padded to 1920x1080 and looped back and forth into two driving videos of 10 s and 60 s at 25 fps (250 and 1500
frames, mp4v), written frame by frame in a temporary folder. The checkpoints are tiny-profile networks with
**random weights** saved with ``pipeline.core.checkpoint`` (memory does not depend on the weights, so no training
is needed). Each ``remot transfer`` runs in its own child process (`python -m pipeline.cli`, CPU, one torch
thread, default params: native fps, no frame cap) and its peak RSS is the kernel's ``ru_maxrss`` of that child
(``os.wait4``). Goal: the two peaks within 10% of each other and under 2 GB.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

AREA = "transfer_memory"
FPS = 25
SIZE = (1080, 1920)  # height, width


def _write_driving(path: Path, frames: list[np.ndarray], n_frames: int) -> None:
    """``frames`` (RGB) padded to 1080p and ping-ponged to ``n_frames``, encoded one at a time."""
    import cv2

    height, width = SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(FPS), (width, height))
    cycle = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
    scaled = []
    for frame in frames:
        h, w = frame.shape[:2]
        resized = cv2.resize(frame, (round(w * height / h), height), interpolation=cv2.INTER_LINEAR)
        pad = width - resized.shape[1]
        padded = cv2.copyMakeBorder(resized, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REPLICATE)
        scaled.append(cv2.cvtColor(padded, cv2.COLOR_RGB2BGR))
    try:
        for k in range(n_frames):
            writer.write(scaled[cycle[k % len(cycle)]])
    finally:
        writer.release()


def _checkpoints(root: Path) -> Path:
    from tests.benchmarks.inference import random_checkpoints

    return random_checkpoints(root)


def _transfer_peak(root: Path, driving: Path, checkpoints: Path) -> tuple[float, float, str]:
    """(peak RSS in MB, wall seconds, last output line) of one `remot transfer` child process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REMOT_TORCH_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    command = [sys.executable, "-m", "pipeline.cli", "--params", str(root / "params.yaml"), "transfer",
               "--source", str(root / "source.png"), "--driving", str(driving), "--out",
               str(root / f"out-{driving.stem}.mp4"), "--checkpoint", str(checkpoints), "--device", "cpu", "--quiet"]
    started = time.perf_counter()
    with open(root / f"log-{driving.stem}.txt", "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    text = (root / f"log-{driving.stem}.txt").read_text(errors="replace").strip().splitlines()
    if child.returncode != 0:
        raise RuntimeError(f"remot transfer on {driving.name} failed ({child.returncode}): {' / '.join(text[-3:])}")
    summary = [line for line in text if line.startswith(("wrote ", "speed: "))]
    return usage.ru_maxrss / 1024.0, seconds, " ".join(summary)


def run(quick: bool = True) -> list[dict]:
    import cv2

    from pipeline.demo_data.generate import plan_clip, render_clip

    with tempfile.TemporaryDirectory(prefix="remot-bench-transfer-memory-") as tmp:
        root = Path(tmp)
        frames, _, _ = render_clip(plan_clip(0, 0, 48, 256, 192, FPS), 256, 192)
        plan = plan_clip(1, 0, 8, 256, 192, FPS)
        source, _, _ = render_clip(plan, 256, 192)
        cv2.imwrite(str(root / "source.png"), cv2.cvtColor(source[0], cv2.COLOR_RGB2BGR))
        (root / "params.yaml").write_text("model:\n  profile: tiny\n")
        checkpoints = _checkpoints(root)
        rows, peaks = [], {}
        for seconds in (10, 60):
            driving = root / f"driving-{seconds}s.mp4"
            _write_driving(driving, frames, seconds * FPS)
            peak, wall, printed = _transfer_peak(root, driving, checkpoints)
            peaks[seconds] = peak
            rows.append({"area": AREA, "name": f"remot transfer peak RSS, {seconds} s 1080p driving video",
                         "value": round(peak, 1), "unit": "MB", "device": "cpu",
                         "notes": f"{seconds * FPS} frames 1920x1080 @ {FPS} fps (demo renderer, padded), tiny "
                                  f"profile with random weights (memory only), {wall:.0f} s wall; {printed}"})
        ratio = peaks[60] / peaks[10]
        rows.append({"area": AREA, "name": "peak RSS ratio 60 s / 10 s", "value": round(ratio, 3), "unit": "x",
                     "device": "cpu", "notes": "goal: within 10% (<= 1.10) and both under 2048 MB: "
                     + ("met" if ratio <= 1.10 and max(peaks.values()) < 2048 else "NOT met")})
        return rows


if __name__ == "__main__":
    print(json.dumps(run(quick=True), indent=1))
