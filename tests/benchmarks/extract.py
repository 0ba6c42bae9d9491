"""Speed of frame extraction (decode, person box over sampled frames, crop, resize, PNG write).

Runs on freshly generated demo clips (the project's own data, so it works on every machine).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pipeline.core.params import DatasetSpec, ExtractParams
from pipeline.datasets import scan_dataset
from pipeline.demo_data import generate_demo_dataset
from pipeline.extract.run import run_extraction


def run(quick: bool = True) -> list[dict]:
    n_clips, n_frames = (2, 32) if quick else (6, 96)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_demo_dataset(tmp / "demo", n_clips=n_clips, n_frames=n_frames, seed=0)
        videos = scan_dataset("demo", DatasetSpec(kind="folder", path=str(tmp / "demo" / "videos"))).videos
        started = time.perf_counter()
        run_extraction("demo", videos, tmp / "data", ExtractParams(), 8, tmp / "report.json")
        seconds = time.perf_counter() - started
    frames = n_clips * n_frames
    note = f"{n_clips} demo clips x {n_frames} frames, 192x256 mp4 -> 256x192 PNG, 16 detector frames per clip"
    return [{"area": "extract", "name": "extraction frames/s", "value": frames / seconds, "unit": "frames/s",
             "device": "cpu", "notes": note}]


if __name__ == "__main__":
    for row in run():
        print(row)
