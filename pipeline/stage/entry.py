"""The one entry of every DVC stage: each module in stages/ is ``sys.exit(run(STAGE))`` over a :class:`Stage`
that its library package defines. Here, once: arguments, parameters, the native-log filter, the thread cap and
which exception becomes which exit code."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipeline.core.errors import RemotError, run_guarded
from pipeline.core.params import Params, load_params


@dataclass(frozen=True)
class StageContext:
    params: Params
    root: Path        # the project folder (where params.yaml is)
    data_root: Path
    dataset: str | None  # None for a stage that covers every dataset
    options: dict[str, Any] = field(default_factory=dict)  # the stage's own command-line options

    def report_path(self, stage: str) -> Path:
        return self.root / "reports" / stage / f"{self.dataset}.json"


class StageExit(Exception):
    """A stage ending with its own exit code and message (training stopped on purpose, a non-finite loss)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Stage:
    """One DVC stage. ``body`` does the work and returns the summary line printed on success (None: nothing to say).

    ``dataset``: True when the stage runs per registered dataset (``--dataset`` required), a name to default
    to, or False for a stage over every dataset. ``quiet_native``: filter MediaPipe/TFLite log lines from the
    terminal. ``torch_threads``: apply ``REMOT_TORCH_THREADS``. ``options``: extra ``(flag, argparse kwargs)``.
    """

    description: str
    body: Callable[[StageContext], str | None]
    dataset: bool | str = True
    quiet_native: bool = True
    torch_threads: bool = False
    options: tuple[tuple[str, dict[str, Any]], ...] = ()
    teardown: Callable[[], None] | None = None


def run(stage: Stage, argv: list[str] | None = None) -> int:
    """Exit 0 after the summary line; 2 for a user error (one line); 1 when the stage failed as a whole
    (RuntimeError: every video failed; OSError: the disk is full or unwritable); a :class:`StageExit`'s code."""
    parser = argparse.ArgumentParser(description=stage.description)
    parser.add_argument("--params", default="params.yaml")
    if stage.dataset is True:
        parser.add_argument("--dataset", required=True)
    elif stage.dataset:
        parser.add_argument("--dataset", default=stage.dataset)
    for flag, kwargs in stage.options:
        parser.add_argument(flag, **kwargs)
    parser.add_argument("--verbose", action="store_true", help="show native log lines and tracebacks")
    args = parser.parse_args(argv)
    if stage.quiet_native and argv is None and not args.verbose:  # a real run (dvc repro), not a test in-process
        from pipeline.core.native_logs import quiet_native_logs

        quiet_native_logs()
    if stage.torch_threads:
        from pipeline.core.compute import cap_torch_threads

        cap_torch_threads()
    options = {k: v for k, v in vars(args).items() if k not in ("params", "dataset", "verbose")}

    def main() -> int:
        try:
            params = load_params(args.params)
            dataset = getattr(args, "dataset", None)
            if dataset is not None and dataset not in params.datasets:
                raise RemotError(f"no dataset {dataset!r} in {args.params}; registered: "
                                 f"{', '.join(params.datasets) or 'none'}")
            root = Path(args.params).resolve().parent
            line = stage.body(StageContext(params, root, root / params.data_root, dataset, options))
            if line:
                print(line)
            return 0
        except StageExit as exc:
            print(str(exc), file=sys.stderr)
            return exc.code
        except RemotError:
            raise  # exit 2 in run_guarded
        except (RuntimeError, OSError) as exc:
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 1
        finally:
            if stage.teardown is not None:
                stage.teardown()

    return run_guarded(main, verbose=args.verbose)


def summary(stage: str, dataset: str, counts: dict, report: Path) -> str:
    return (f"{stage} {dataset}: {counts['processed']} processed, {counts['reused']} up to date, "
            f"{counts['skipped']} skipped (reasons in {report})")
