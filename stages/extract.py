"""DVC stage `extract@<dataset>`: registered videos -> person-centred frame folders in data/frames/<dataset>/."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.datasets import read_video_list
from pipeline.extract.run import run_extraction
from pipeline.params import load_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    root = Path(args.params).resolve().parent
    data_root = root / params.data_root
    report_path = root / "reports" / "extract" / f"{args.dataset}.json"
    videos = read_video_list(data_root / "registry" / f"{args.dataset}.json", root)
    try:
        report = run_extraction(args.dataset, videos, data_root, params.extract,
                                max(params.extract.min_frames, params.shards.window), report_path)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = report.as_dict()["counts"]
    print(f"extract {args.dataset}: {counts['processed']} processed, {counts['reused']} up to date, "
          f"{counts['skipped']} skipped (reasons in {report_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
