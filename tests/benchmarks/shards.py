"""Shard writing and loader throughput, on fabricated videos (synthetic frames, layouts, pose and flow).

The videos are made here (no footage or model is needed): 256x192 frames of a noisy gradient with a moving
5-band "person", exact-motion flow, 25 keypoints per frame. Noise keeps PNG sizes in the range of real frames, but
throughput on real footage will differ somewhat (PNG cost depends on content).
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.core.artifacts import VideoArtifacts, frame_name
from pipeline.pose.mediapipe_body25 import keypoints_to_table, write_pose_parquet
from pipeline.shards.reader import make_loader
from pipeline.shards.writer import collect_video, write_shards

HEIGHT, WIDTH = 256, 192


def _fabricate(root: Path, video: str, n_frames: int, seed: int) -> VideoArtifacts:
    art = VideoArtifacts(root, "bench", video)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.stack([xx * 255 // WIDTH, yy * 255 // HEIGHT, np.full_like(xx, 120)], -1).astype(np.uint8)
    for folder in (art.frames_dir, art.layout_dir):
        folder.mkdir(parents=True, exist_ok=True)
    flow = np.zeros((n_frames, 2, HEIGHT, WIDTH), np.float16)
    valid = np.ones((n_frames, 1, HEIGHT, WIDTH), np.uint8)
    valid[0] = 0
    keypoints = np.zeros((n_frames, 25, 3), np.float32)
    for t in range(n_frames):
        x0, y0 = 40 + 2 * t % 80, 30
        labels = np.full((HEIGHT, WIDTH), 5, np.uint8)
        for band in range(5):
            labels[y0 + 40 * band:y0 + 40 * (band + 1), x0:x0 + 60] = band
        noise = rng.integers(-12, 13, size=(HEIGHT, WIDTH, 3))
        frame = np.clip(background.astype(np.int16) + noise + (labels < 5)[..., None] * 60, 0, 255).astype(np.uint8)
        cv2.imwrite(str(art.frames_dir / frame_name(t)), frame)
        cv2.imwrite(str(art.layout_dir / frame_name(t)), labels)
        if t:
            flow[t, 0][labels < 5] = -2
        keypoints[t] = [(x0 + j, y0 + 7 * j, 0.9) for j in range(25)]
    art.frames_meta.write_text(json.dumps({"dataset": "bench", "video": video, "split": "train", "fps": 30.0,
                                           "n_frames": n_frames}))
    (art.layout_dir / "meta.json").write_text(json.dumps({"parser": "fabricated"}))
    write_pose_parquet(art.pose_table, keypoints_to_table(video, keypoints), {"backend": "fabricated"})
    art.flow_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(art.flow_file, flow=flow, valid=valid, backend=np.array("fabricated"))
    art.background_file.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(art.background_file), background)
    return art


def run(quick: bool = True) -> list[dict]:
    """Shard write MB/s and loader samples/s with 0, 1 and 2 DataLoader workers (CPU, fabricated data)."""
    torch.set_num_threads(1)
    n_videos, n_frames, length, stride = (2, 24, 8, 4) if quick else (4, 96, 8, 4)
    samples_per_pass = 24 if quick else 200
    rows: list[dict] = []
    note = (f"fabricated {n_videos} videos x {n_frames} frames {HEIGHT}x{WIDTH}, window {length} stride {stride}")
    with tempfile.TemporaryDirectory(prefix="remot-bench-shards-") as tmp:
        root, out = Path(tmp) / "data", Path(tmp) / "shards"
        videos = [collect_video(_fabricate(root, f"v{i}", n_frames, i)) for i in range(n_videos)]
        start = time.perf_counter()
        report = write_shards(videos, out, length, stride, shard_max_samples=4, seed=0)
        seconds = time.perf_counter() - start
        n_samples = len(report.rows)
        rows.append({"area": "shards", "name": "write MB/s", "value": report.bytes_written / 1e6 / seconds,
                     "unit": "MB/s", "device": "cpu",
                     "notes": f"{note}; {n_samples} samples, includes reading inputs and PNG/gzip encoding"})
        rows.append({"area": "shards", "name": "shard MB/sample", "value": report.bytes_written / 1e6 / n_samples,
                     "unit": "MB", "device": "cpu", "notes": note})
        for workers in (0, 1, 2):
            loader = make_loader(out, "train", batch_size=1, num_workers=workers, shuffle_buffer=8, seed=0,
                                 resampled=True, epoch_length=samples_per_pass)
            start = time.perf_counter()
            count = sum(len(batch["meta"]) for batch in loader)
            seconds = time.perf_counter() - start
            rows.append({"area": "shards", "name": f"loader samples/s ({workers} workers)", "value": count / seconds,
                         "unit": "samples/s", "device": "cpu",
                         "notes": f"{note}; {count} samples incl. worker start-up, decode + pose rendering, "
                                  f"torch threads=1, shared 2-core machine"})
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
