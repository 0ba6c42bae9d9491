"""The argument handling every per-dataset DVC stage shares, so each module in stages/ stays a few lines."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.errors import RemotError
from pipeline.params import Params, load_params


@dataclass(frozen=True)
class StageContext:
    params: Params
    root: Path        # the project folder (where params.yaml is)
    data_root: Path
    dataset: str

    def report_path(self, stage: str) -> Path:
        return self.root / "reports" / stage / f"{self.dataset}.json"


def stage_main(description: str, body: Callable[[StageContext], str], argv: list[str] | None = None) -> int:
    """Parse ``--params``/``--dataset``, validate params once, run ``body``; print its summary line.

    Exit 1 when the stage failed as a whole (RuntimeError: every video failed), 2 for a user error.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if args.dataset not in params.datasets:
            raise RemotError(f"no dataset {args.dataset!r} in {args.params}")
        root = Path(args.params).resolve().parent
        print(body(StageContext(params, root, root / params.data_root, args.dataset)))
        return 0
    except RemotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:  # every video failed; or the disk is full / unwritable
        print(f"error: {exc}", file=sys.stderr)
        return 1


def summary(stage: str, dataset: str, counts: dict, report: Path) -> str:
    return (f"{stage} {dataset}: {counts['processed']} processed, {counts['reused']} up to date, "
            f"{counts['skipped']} skipped (reasons in {report})")
