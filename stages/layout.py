"""DVC stage `layout@<dataset>`: merge 18 ATR classes into REMOT's 6 regions, background plates, QA sheets."""
from __future__ import annotations

import sys
from functools import partial

from pipeline.parsing.stage import layout_video, qa_sheet_path
from pipeline.params import section_fingerprint
from pipeline.stage_cli import StageContext, stage_main, summary
from pipeline.video_stage import run_video_stage, upstream_stamp


def body(ctx: StageContext) -> str:
    merge = ctx.params.merge
    report = run_video_stage(
        "layout", ctx.dataset, ctx.data_root, "layout-v1:" + section_fingerprint(merge),
        lambda video, meta: [upstream_stamp(ctx.data_root, "parsing", video),
                             upstream_stamp(ctx.data_root, "pose", video)],
        partial(layout_video, merge=merge.classes, qa_root=ctx.root),
        lambda video: [video.layout_dir, video.background_file, qa_sheet_path(ctx.root, video)],
        ctx.report_path("layout"), ctx.params.preprocess)
    return summary("layout", ctx.dataset, report.run_log()["counts"], ctx.report_path("layout"))


if __name__ == "__main__":
    sys.exit(stage_main(__doc__, body))
