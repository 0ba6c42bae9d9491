"""Speed of the perception stages: MediaPipe pose (per model complexity), the offline parser, the 18→6 merge.

Runs on the shared real footage (``../shared/footage/clips``, first clip) when present, else on a synthetic
256x192 image (a grey frame with a drawn stick figure, so MediaPipe most likely finds no person there and the
pose timing is that of the detector alone); every row's ``notes`` says which.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.labels import DEFAULT_MERGE

_SHARED = Path(os.environ.get("REMOT_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))


def _frames(count: int) -> tuple[list[np.ndarray], str]:
    clips = _SHARED / "footage" / "clips"
    if clips.is_dir():
        folder = sorted(p for p in clips.iterdir() if p.is_dir())[0]
        paths = sorted(folder.glob("*.png"))[:count]
        return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths], f"shared footage {folder.name}"
    frame = np.full((256, 192, 3), 128, np.uint8)
    cv2.circle(frame, (96, 40), 14, (220, 180, 150), -1)
    cv2.rectangle(frame, (70, 60), (122, 140), (40, 40, 160), -1)
    cv2.rectangle(frame, (72, 140), (120, 230), (40, 40, 40), -1)
    return [frame.copy() for _ in range(count)], "synthetic 256x192 image"


def run(quick: bool = True) -> list[dict]:
    """Return benchmark rows (frames/s for pose per complexity, parser and merge), CPU only."""
    import torch

    from pipeline.core.errors import WeightsNotFound
    from pipeline.layout.merge import merge_layout, merge_lookup
    from pipeline.parsing.offline import parse_offline
    from pipeline.pose.mediapipe_body25 import estimate_video

    torch.set_num_threads(1)
    frames, source = _frames(16 if quick else 32)
    rows: list[dict] = []

    def row(name: str, value: float | None, unit: str, notes: str) -> dict:
        value = None if value is None else round(float(value), 3)
        return {"area": "perception", "name": name, "value": value, "unit": unit,
                "device": "cpu", "notes": f"{notes}; {source}"}

    pose = None
    for complexity in (0, 1):
        try:
            estimate_video(frames[:2], model_complexity=complexity)  # graph start-up, not timed
            start = time.perf_counter()
            result = estimate_video(frames, model_complexity=complexity)
            elapsed = time.perf_counter() - start
        except WeightsNotFound as err:
            rows.append(row(f"mediapipe pose c{complexity} frames/s", None, "frames/s",
                            f"not run: {err}"))
            continue
        rows.append(row(f"mediapipe pose c{complexity} frames/s", len(frames) / elapsed, "frames/s",
                        f"{len(frames)} frames, tracking mode, segmentation on, incl. graph start"))
        if complexity == 1:
            pose = result
    if pose is None:
        return rows
    count = len(frames)
    parser_note = "" if pose.detected.any() else "; no person detected, so this times the parser's early exit"
    start = time.perf_counter()
    atr = [parse_offline(f, k, m) for f, k, m in zip(frames, pose.keypoints, pose.person_masks)]
    rows.append(row("offline parser frames/s", count / (time.perf_counter() - start), "frames/s",
                    f"{count} frames, offline-mediapipe-geometry-v1{parser_note}"))
    lookup = merge_lookup(DEFAULT_MERGE)
    repeats = 20 if quick else 100
    start = time.perf_counter()
    for _ in range(repeats):
        for labels in atr:
            merge_layout(labels, lookup)
    rows.append(row("18->6 merge frames/s", repeats * count / (time.perf_counter() - start), "frames/s",
                    f"{repeats * count} merges"))
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
