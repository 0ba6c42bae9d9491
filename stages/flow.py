"""DVC stage `flow@<dataset>`: optical flow t -> t-1 and its validity mask per video (FlowNet2 with its
weights, otherwise OpenCV DIS, loudly; the backend that ran is recorded in every output)."""
from __future__ import annotations

import sys
from functools import partial

from pipeline.flow.stage import FlowSpec, flow_backend, flow_video
from pipeline.stage_cli import StageContext, stage_main, summary
from pipeline.video_stage import run_video_stage


def body(ctx: StageContext) -> str:
    cfg = ctx.params.flow
    weights = {"auto": cfg.flownet2_weights, "flownet2": cfg.flownet2_weights, "raft": cfg.raft_weights}.get(cfg.backend)
    spec = FlowSpec(cfg.backend, ctx.root / weights if weights else None, cfg.dis_preset)
    backend, notes = flow_backend(spec)
    print("\n".join(notes))
    report = run_video_stage("flow", ctx.dataset, ctx.data_root, f"flow-v1:{backend.name}",
                             lambda video, meta: [], partial(flow_video, spec=spec),
                             lambda video: [video.flow_file], ctx.report_path("flow"), ctx.params.preprocess)
    return summary("flow", ctx.dataset, report.run_log()["counts"], ctx.report_path("flow"))


if __name__ == "__main__":
    sys.exit(stage_main(__doc__, body))
