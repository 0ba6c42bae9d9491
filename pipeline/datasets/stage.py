"""Register stage: scan one dataset of params.yaml into data/registry/<dataset>.json.

The video list (ids, sources, splits) is what extraction consumes; problems found on the way (unreadable
videos, list entries without files, paths escaping the root) go to reports/register/<dataset>.json.
"""
from __future__ import annotations

from pipeline.core import atomic
from pipeline.datasets.base import DatasetError
from pipeline.datasets.registry import describe, probe_readable, scan_dataset, write_video_list
from pipeline.stage.entry import Stage, StageContext


def body(ctx: StageContext) -> str:
    report_path = ctx.report_path("register")
    try:
        scan = scan_dataset(ctx.dataset, ctx.params.datasets[ctx.dataset], ctx.root)
    except DatasetError as exc:
        atomic.write_json(report_path, {"error": str(exc)})
        raise
    probe_readable(scan, ctx.params.limits.max_pixels)
    atomic.write_json(report_path, {"videos": len(scan.videos), "splits": scan.split_counts(),
                                    "problems": scan.problems})
    write_video_list(ctx.data_root / "registry" / f"{ctx.dataset}.json", [scan], ctx.root)
    return describe(scan)


STAGE = Stage("DVC stage `register@<dataset>`: scan one dataset of params.yaml into data/registry/<dataset>.json.",
              body)
