"""DVC stage `shards`: every registered dataset's per-video outputs -> WebDataset tar shards of temporal
windows under data/shards/<split>/, a per-sample manifest (parquet) and a summary in metrics/shards.json."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import atomic
from pipeline.params import load_params
from pipeline.runlog import write_log
from pipeline.shards import collect_video, find_videos, write_manifest, write_shards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)  # a RemotError becomes one line and exit 2 (run_guarded, below)
    root = Path(args.params).resolve().parent
    data_root = root / params.data_root
    cfg = params.shards
    videos = [collect_video(v) for v in find_videos(data_root) if v.dataset in params.datasets]
    report = write_shards(videos, data_root / "shards", cfg.window, cfg.stride, cfg.max_samples_per_shard,
                          cfg.seed)
    summary = write_manifest(report, data_root / "shards" / "manifest.parquet", root / "metrics" / "shards.json")
    skipped = {f"{s.dataset}/{s.video}": s.reason for s in report.skipped}
    tars = sorted(str(p.relative_to(data_root)) for p in report.written + report.kept)
    # Tracked report: the result only. Which tars this run wrote or kept depends on what was on disk before:
    # that goes to the untracked run log (logs/shards/shards.json).
    atomic.write_json(root / "reports" / "shards.json", {"skipped": skipped, "tars": tars, "summary": summary})
    write_log(root / "reports" / "shards" / "shards.json", {
        "written": [str(p.relative_to(data_root)) for p in report.written], "kept": len(report.kept),
        "removed": [str(p.relative_to(data_root)) if p.is_relative_to(data_root) else str(p) for p in report.removed]})
    for key, reason in skipped.items():
        print(f"shards: skipped {key}: {reason}")
    print(f"shards: {len(report.rows)} samples ({len(report.written)} tars written, {len(report.kept)} kept); "
          + ", ".join(f"{split}: {s['samples']} samples from {s['videos']} videos" for split, s in summary.items()))
    if not report.rows:
        print("error: no samples written; see reports/shards.json", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from pipeline.cli import run_guarded  # bad input: one line, exit 2; no traceback

    sys.exit(run_guarded(main))
