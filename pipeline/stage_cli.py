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
    parser.add_argument("--verbose", action="store_true", help="show native log lines and tracebacks")
    args = parser.parse_args(argv)
    if argv is None and not args.verbose:  # a real stage run (dvc repro), not a test calling it in-process
        from pipeline.native_logs import quiet_native_logs

        quiet_native_logs()

    def run() -> int:
        try:
            params = load_params(args.params)
            if args.dataset not in params.datasets:
                raise RemotError(f"no dataset {args.dataset!r} in {args.params}; registered: "
                                 f"{', '.join(params.datasets) or 'none'}")
            root = Path(args.params).resolve().parent
            print(body(StageContext(params, root, root / params.data_root, args.dataset)))
            return 0
        except RemotError:
            raise  # exit 2 below
        except (RuntimeError, OSError) as exc:  # every video failed; or the disk is full / unwritable
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 1

    from pipeline.cli import run_guarded

    return run_guarded(run, verbose=args.verbose)


def summary(stage: str, dataset: str, counts: dict, report: Path) -> str:
    return (f"{stage} {dataset}: {counts['processed']} processed, {counts['reused']} up to date, "
            f"{counts['skipped']} skipped (reasons in {report})")
