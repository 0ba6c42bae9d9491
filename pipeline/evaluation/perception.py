"""Accuracy of the pose and parsing stages against the demo data's ground truth.

The demo generator knows every pixel's ATR label and every joint, in the video's own pixels. Extraction
cropped and resized the frames, so the ground truth goes through the same crop box (``meta.json``) before
comparing: parsing with nearest-neighbour resizing, keypoints by the box's affine map.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pipeline.core import atomic
from pipeline.core.artifacts import VideoArtifacts
from pipeline.core.labels import REGIONS
from pipeline.extract.crop import CropBox, apply_crop, map_points
from pipeline.layout.merge import merge_layout, merge_lookup
from pipeline.metrics.perception import layout_miou, pck
from pipeline.parsing.stage import read_keypoints, read_label_pngs
from pipeline.stage.entry import Stage, StageContext


def evaluate_video(video: VideoArtifacts, ground_truth: Path, merge: dict[str, list[str]]) -> dict:
    """mIoU over the 6 merged classes (per frame, averaged) and PCK@0.1 of BODY_25 joints for one video."""
    meta = json.loads(video.frames_meta.read_text())
    box, (out_h, out_w) = CropBox(**meta["crop_box"]), meta["size"]
    lookup = merge_lookup(merge)
    gt_kps = np.load(ground_truth / "keypoints.npy", allow_pickle=False)[meta["source_frames"]]
    gt_kps = map_points(gt_kps, box, out_h, out_w)
    layouts = read_label_pngs(video.layout_dir, meta["n_frames"])
    ious, per_class = [], {name: [] for name in REGIONS}
    for k, source_index in enumerate(meta["source_frames"]):
        gt_atr = cv2.imread(str(ground_truth / "parsing" / f"{source_index:05d}.png"), cv2.IMREAD_UNCHANGED)
        gt = merge_layout(apply_crop(gt_atr, box, out_h, out_w, labels=True), lookup)
        scores = layout_miou(layouts[k], gt, len(REGIONS))
        ious.append(scores["miou"])
        for c, value in scores["per_class"].items():
            per_class[REGIONS[c]].append(value)
    pred_kps = read_keypoints(video)
    return {"miou": float(np.mean(ious)), "pck@0.1": pck(pred_kps, gt_kps, 0.1),
            "per_class_iou": {k: float(np.mean(v)) for k, v in per_class.items() if v}}


def evaluate_dataset(data_root: Path, dataset: str, ground_truth_root: Path, merge: dict[str, list[str]]) -> dict:
    """Per video and mean scores over the videos that went through the layout stage."""
    videos = {}
    for stamp in sorted((Path(data_root) / "layout" / dataset).glob("*.stamp.json")):
        name = stamp.name[: -len(".stamp.json")]
        gt = ground_truth_root / name
        if gt.is_dir():
            videos[name] = evaluate_video(VideoArtifacts(Path(data_root), dataset, name), gt, merge)
    if not videos:
        raise RuntimeError(f"no video of {dataset!r} has both layouts and ground truth under {ground_truth_root}")
    mean = {key: float(np.mean([v[key] for v in videos.values()])) for key in ("miou", "pck@0.1")}
    return {"mean": mean, "videos": videos}


def body(ctx: StageContext) -> str:
    """Writes metrics/perception.json (listed by `dvc metrics show`). Only parsers that can run are measured;
    the others are listed with the reason (SCHP without its weights file)."""
    parse_report = json.loads((ctx.root / "reports" / "parse" / f"{ctx.dataset}.json").read_text())
    parsers = sorted({v.get("parser") for v in parse_report["videos"].values()})
    pose_report = json.loads((ctx.root / "reports" / "pose" / f"{ctx.dataset}.json").read_text())
    pose_backends = sorted({v.get("backend") for v in pose_report["videos"].values()})
    rates = [v["detection_rate"] for v in pose_report["videos"].values() if "detection_rate" in v]
    scores = evaluate_dataset(ctx.data_root, ctx.dataset, ctx.root / ctx.params.demo.out / "ground_truth",
                              ctx.params.merge.classes)
    schp_ran = any(p.startswith("schp") for p in parsers)
    metrics = {
        "dataset": ctx.dataset, "parser": parsers, "pose_backend": pose_backends,
        "layout_miou": round(scores["mean"]["miou"], 4), "pose_pck@0.1": round(scores["mean"]["pck@0.1"], 4),
        "videos": len(scores["videos"]),
        # how often MediaPipe finds the person per frame (videos excluded by the pose stage are not counted)
        "pose_detection_rate": round(sum(rates) / len(rates), 4) if rates else None,
        "pose_excluded_videos": len(pose_report.get("skipped", {})),
        # short: the reason is in the parse report (dvc metrics show prints every field on one line)
        "schp": "measured" if schp_ran else f"not measured (see reports/parse/{ctx.dataset}.json)",
    }
    atomic.write_json(ctx.root / "metrics" / "perception.json", metrics)
    atomic.write_json(ctx.root / "reports" / "perception" / f"{ctx.dataset}.json", scores)
    return (f"perception on {ctx.dataset}: layout mIoU {metrics['layout_miou']:.3f} ({', '.join(parsers)}), "
            f"pose PCK@0.1 {metrics['pose_pck@0.1']:.3f}")


STAGE = Stage("DVC stage `perception_metrics`: pose PCK@0.1 and parsing mIoU (6 regions) on the demo data's "
              "ground truth.", body, dataset="demo")
