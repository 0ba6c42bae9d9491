"""Preprocessing on the parallel engine: extraction frames/s in-process vs 1 and 2 local worker processes.

Throughput is frames over the span from the first video's start to the last video's end, wherever they ran, so
the engine's fixed start-up (Prefect's temporary API server, the local Dask cluster) is left out; that start-up
is reported on its own row, since it dominates on demo-sized data and vanishes on real datasets.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pipeline.core.artifacts import VideoArtifacts
from pipeline.core.params import DatasetSpec, ExtractParams, PreprocessParams
from pipeline.datasets import scan_dataset
from pipeline.demo_data import generate_demo_dataset
from pipeline.extract.run import extract_video
from pipeline.stage.executor import run_all
import stages  # noqa: F401  (hands the Dask executors to the stage machinery, as in a stage process)


def run(quick: bool = True) -> list[dict]:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    n_clips, n_frames = (6, 32) if quick else (12, 96)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_demo_dataset(tmp / "demo", n_clips=n_clips, n_frames=n_frames, seed=0)
        videos = scan_dataset("demo", DatasetSpec(kind="folder", path=str(tmp / "demo" / "videos"))).videos
        for label, executor, workers in (("in-process", "inprocess", 1), ("1 worker process", "local-dask", 1),
                                         ("2 worker processes", "local-dask", 2)):
            out = tmp / label.replace(" ", "_")
            items = [(v, VideoArtifacts(out, v.dataset, v.video), ExtractParams(), "bench", 8) for v in videos]
            started = time.time()
            engine = PreprocessParams(executor=executor, workers=workers)
            outcomes = run_all(extract_video, items, engine, name="bench-extract")
            wall = time.time() - started
            span = max(o.finished for o in outcomes) - min(o.started for o in outcomes)
            note = f"{n_clips} demo clips x {n_frames} frames; first video start to last video end"
            rows.append({"area": "parallel", "name": f"extraction frames/s, {label}",
                         "value": n_clips * n_frames / span, "unit": "frames/s", "device": "cpu", "notes": note})
            if executor != "inprocess":
                rows.append({"area": "parallel", "name": f"engine start-up and teardown, {label}",
                             "value": wall - span, "unit": "s", "device": "cpu",
                             "notes": "Prefect temporary server + local Dask cluster, fixed per stage run"})
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
