"""Errors a user can act on: each names the file or setting at fault and what to do about it."""
from __future__ import annotations

import sys
from pathlib import Path


class RemotError(Exception):
    """Base class; the CLI prints these without a traceback."""


class WeightsNotFound(RemotError):
    """A pretrained network's official checkpoint is not on disk (nothing is ever downloaded at run time)."""

    def __init__(self, component: str, path: Path | str, how_to_get: str, fallback: str | None = None):
        self.component, self.path, self.how_to_get, self.fallback = component, Path(path), how_to_get, fallback
        message = f"{component}: weights file {self.path} not found. Obtain it from {how_to_get}"
        if fallback:
            message += f"; meanwhile using {fallback}"
        super().__init__(message)


class BadCheckpoint(RemotError):
    """A checkpoint file exists but does not match the network (wrong keys, class count or profile)."""


class SkipVideo(Exception):
    """One video cannot go through a stage; the message is the reason written to the stage's report.

    Not a RemotError: it never reaches the user as a failure, only as a report line.
    """


def one_line(exc: BaseException) -> str | None:
    """The message a user sees for ``exc`` on one line, or None when ``exc`` is not a user error (a bug).

    User errors: :class:`RemotError` (bad parameters, inputs or weights; multi-line messages such as a params
    file's list of problems are joined with "; "), a pydantic validation error (a value out of range, named by
    its key), and an OS error about a named file (missing, unreadable, a folder where a file was expected).
    """
    from pydantic import ValidationError

    if isinstance(exc, RemotError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return lines[0] + (" " + "; ".join(lines[1:]) if len(lines) > 1 else "") if lines else type(exc).__name__
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']} (got {e.get('input')!r})"
                         for e in exc.errors())
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return None


def run_guarded(func, *args, verbose: bool = False) -> int:
    """The one place that turns exceptions into what a user sees: a user error (bad value, file, parameter;
    ``pipeline.core.errors.one_line``) is one line and exit 2; anything else is a bug: one line saying so and exit 1,
    with the traceback only under ``--verbose``. The ``remot`` command and every stage (pipeline/stage/entry.py) use it."""
    try:
        return func(*args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = one_line(exc)
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
            return 2
        if verbose:
            raise
        detail = " ".join(str(exc).split())
        print(f"error: unexpected {type(exc).__name__}: {detail[:300]} (a bug: rerun with --verbose for the "
              "traceback and report it)", file=sys.stderr)
        return 1
