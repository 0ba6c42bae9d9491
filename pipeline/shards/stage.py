"""Shards stage: every registered dataset's per-video outputs -> WebDataset tar shards of temporal windows under
data/shards/<split>/, a per-sample manifest (parquet) and a summary in metrics/shards.json."""
from __future__ import annotations

from pipeline.core import atomic
from pipeline.core.runlog import write_log
from pipeline.shards.writer import collect_video, find_videos, write_manifest, write_shards
from pipeline.stage.entry import Stage, StageContext
from pipeline.stage.executor import local_workers


def body(ctx: StageContext) -> str:
    data_root, cfg = ctx.data_root, ctx.params.shards
    videos = [collect_video(v) for v in find_videos(data_root) if v.dataset in ctx.params.datasets]
    # This machine's worker processes as the per-video stages take them, judged by the number of videos (which of
    # them need encoding is known inside write_shards; it starts no pool for fewer than two). With executor dask
    # the tars are still written here, one video at a time: a cluster's workers may not see data/shards.
    workers = local_workers(ctx.params.preprocess, len(videos))
    report = write_shards(videos, data_root / "shards", cfg.window, cfg.stride, cfg.max_samples_per_shard,
                          cfg.seed, workers=workers)
    summary = write_manifest(report, data_root / "shards" / "manifest.parquet",
                             ctx.root / "metrics" / "shards.json")
    skipped = {f"{s.dataset}/{s.video}": s.reason for s in report.skipped}
    tars = sorted(str(p.relative_to(data_root)) for p in report.written + report.kept)
    # Tracked report: the result only. Which tars this run wrote or kept depends on what was on disk before:
    # that goes to the untracked run log (logs/shards/shards.json).
    atomic.write_json(ctx.root / "reports" / "shards.json", {"skipped": skipped, "tars": tars, "summary": summary})
    write_log(ctx.root / "reports" / "shards" / "shards.json", {
        "written": [str(p.relative_to(data_root)) for p in report.written], "kept": len(report.kept),
        "removed": [str(p.relative_to(data_root)) if p.is_relative_to(data_root) else str(p) for p in report.removed]})
    for key, reason in skipped.items():
        print(f"shards: skipped {key}: {reason}")
    line = (f"shards: {len(report.rows)} samples ({len(report.written)} tars written, {len(report.kept)} kept); "
            + ", ".join(f"{split}: {s['samples']} samples from {s['videos']} videos" for split, s in summary.items()))
    if not report.rows:
        print(line)
        raise RuntimeError("no samples written; see reports/shards.json")
    return line


STAGE = Stage("DVC stage `shards`: every registered dataset's per-video outputs -> WebDataset tar shards of "
              "temporal windows, a per-sample manifest and metrics/shards.json.", body, dataset=False,
              quiet_native=False)
