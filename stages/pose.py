"""DVC stage `pose@<dataset>`: MediaPipe pose -> BODY_25 keypoints (parquet) + person masks per video."""
from __future__ import annotations

import sys
from functools import partial

from pipeline.params import section_fingerprint
from pipeline.pose.stage import pose_outputs, pose_video
from pipeline.stage_cli import StageContext, stage_main, summary
from pipeline.video_stage import run_video_stage


def body(ctx: StageContext) -> str:
    cfg = ctx.params.pose
    report = run_video_stage("pose", ctx.dataset, ctx.data_root, "pose-v1:" + section_fingerprint(cfg),
                             lambda video, meta: [], partial(pose_video, cfg=cfg), pose_outputs,
                             ctx.report_path("pose"), ctx.params.preprocess)
    return summary("pose", ctx.dataset, report.run_log()["counts"], ctx.report_path("pose"))


if __name__ == "__main__":
    sys.exit(stage_main(__doc__, body))
