"""DVC stage `register@<dataset>`: scan one dataset of params.yaml into data/registry/<dataset>.json.

The video list (ids, sources, splits) is what extraction consumes; problems found on the way (unreadable
videos, list entries without files, paths escaping the root) go to reports/register/<dataset>.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import atomic
from pipeline.datasets import DatasetError, describe, probe_readable, scan_dataset, write_video_list
from pipeline.params import ParamsError, load_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    root = Path(args.params).resolve().parent
    if args.dataset not in params.datasets:
        raise ParamsError(f"no dataset {args.dataset!r} in {args.params}")
    report_path = root / "reports" / "register" / f"{args.dataset}.json"
    try:
        scan = scan_dataset(args.dataset, params.datasets[args.dataset], root)
    except DatasetError as exc:
        atomic.write_json(report_path, {"error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 1
    probe_readable(scan)
    print(describe(scan))
    atomic.write_json(report_path, {"videos": len(scan.videos), "splits": scan.split_counts(),
                                    "problems": scan.problems})
    write_video_list(root / params.data_root / "registry" / f"{args.dataset}.json", [scan], root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
