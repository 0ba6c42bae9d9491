"""DVC stage `perception_metrics`: pose PCK@0.1 and parsing mIoU (6 regions) on the demo data's ground truth.

Writes metrics/perception.json (listed by `dvc metrics show`). Only parsers that can run are measured; the
others are listed with the reason (SCHP without its weights file).
"""
from __future__ import annotations

import json
import sys

from pipeline import atomic
from pipeline.perception_eval import evaluate_dataset
from pipeline.stage_cli import StageContext, stage_main


def body(ctx: StageContext) -> str:
    data_root = ctx.data_root
    parse_report = json.loads((ctx.root / "reports" / "parse" / f"{ctx.dataset}.json").read_text())
    parsers = sorted({v.get("parser") for v in parse_report["videos"].values()})
    pose_report = json.loads((ctx.root / "reports" / "pose" / f"{ctx.dataset}.json").read_text())
    pose_backends = sorted({v.get("backend") for v in pose_report["videos"].values()})
    rates = [v["detection_rate"] for v in pose_report["videos"].values() if "detection_rate" in v]
    scores = evaluate_dataset(data_root, ctx.dataset, ctx.root / ctx.params.demo.out / "ground_truth",
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


if __name__ == "__main__":
    sys.exit(stage_main(__doc__, body, sys.argv[1:] or ["--dataset", "demo"]))
