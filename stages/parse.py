"""DVC stage `parse@<dataset>`: 18-class ATR human parsing per frame (SCHP, or the offline parser without
its weights; the parser that ran is recorded in every output)."""
from __future__ import annotations

import sys
from functools import partial

from pipeline.parsing.stage import make_parser, parse_video
from pipeline.stage_cli import StageContext, stage_main, summary
from pipeline.video_stage import run_video_stage, upstream_stamp


def body(ctx: StageContext) -> str:
    parser = make_parser(ctx.params.parse, ctx.root)
    print(f"parser: {parser.name} ({parser.notes})")
    report = run_video_stage("parsing", ctx.dataset, ctx.data_root, f"parse-v1:{parser.name}",
                             lambda video, meta: [upstream_stamp(ctx.data_root, "pose", video)],
                             partial(parse_video, parser=parser), lambda video: [video.parsing_dir],
                             ctx.report_path("parse"), ctx.params.preprocess)
    return summary("parse", ctx.dataset, report.run_log()["counts"], ctx.report_path("parse"))


if __name__ == "__main__":
    sys.exit(stage_main(__doc__, body))
