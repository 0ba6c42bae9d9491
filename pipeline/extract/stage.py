"""Extract stage: registered videos -> person-centred frame folders in data/frames/<dataset>/."""
from __future__ import annotations

from pipeline.datasets import read_unreadable, read_video_list
from pipeline.extract.run import run_extraction
from pipeline.stage.entry import Stage, StageContext, summary


def body(ctx: StageContext) -> str:
    registry = ctx.data_root / "registry" / f"{ctx.dataset}.json"
    videos = read_video_list(registry, ctx.root)
    cfg = ctx.params.extract
    report = run_extraction(ctx.dataset, videos, ctx.data_root, cfg, max(cfg.min_frames, ctx.params.shards.window),
                            ctx.report_path("extract"), ctx.params.preprocess, project_root=ctx.root,
                            unreadable=read_unreadable(registry), max_pixels=ctx.params.limits.max_pixels)
    return summary("extract", ctx.dataset, report.run_log()["counts"], ctx.report_path("extract"))


STAGE = Stage("DVC stage `extract@<dataset>`: registered videos -> person-centred frame folders in "
              "data/frames/<dataset>/.", body)
