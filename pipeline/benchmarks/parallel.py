"""Preprocessing on the parallel engine: extraction frames/s in-process vs 1 and 2 local worker processes.

The engine's fixed cost (Prefect's temporary API server, starting a local Dask cluster) is measured on its own
(an empty fan-out) and reported, since it dominates on demo-sized data and vanishes on real datasets.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pipeline.datasets import scan_dataset
from pipeline.demo_data import generate_demo_dataset
from pipeline.extract.run import run_extraction
from pipeline.parallel import run_all
from pipeline.params import DatasetSpec, ExtractParams, PreprocessParams


def _noop() -> dict:
    return {}


def run(quick: bool = True) -> list[dict]:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    n_clips, n_frames = (4, 32) if quick else (8, 96)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_demo_dataset(tmp / "demo", n_clips=n_clips, n_frames=n_frames, seed=0)
        videos = scan_dataset("demo", DatasetSpec(kind="folder", path=str(tmp / "demo" / "videos"))).videos
        started = time.perf_counter()
        run_all(_noop, [()] * 2, "processes", 2)
        overhead = time.perf_counter() - started
        rows.append({"area": "parallel", "name": "engine start-up (Prefect + local Dask, 2 workers)",
                     "value": overhead, "unit": "s", "device": "cpu", "notes": "fixed cost per stage run"})
        for label, engine in (("in-process", None), ("1 worker process", PreprocessParams(executor="processes", workers=1)),
                              ("2 worker processes", PreprocessParams(executor="processes", workers=2))):
            started = time.perf_counter()
            run_extraction("demo", videos, tmp / label.replace(" ", "_"), ExtractParams(), 8, tmp / "r.json", engine)
            seconds = time.perf_counter() - started
            rows.append({"area": "parallel", "name": f"extraction frames/s, {label}",
                         "value": n_clips * n_frames / seconds, "unit": "frames/s", "device": "cpu",
                         "notes": f"{n_clips} demo clips x {n_frames} frames, start-up included"})
            if engine is not None:
                rows.append({"area": "parallel", "name": f"extraction frames/s, {label}, start-up excluded",
                             "value": n_clips * n_frames / max(seconds - overhead, 1e-6), "unit": "frames/s",
                             "device": "cpu", "notes": "minus the measured engine start-up"})
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
