"""Progress of a long run: a bar on a terminal, one-line summaries elsewhere. One class for every run that
counts units of work: a per-video stage's videos (and their frames) and a training run's steps.

An hours-long preprocessing run must never be silent: under ``dvc repro`` in a terminal the bar shows videos and
frames done, the rate and the ETA; in CI logs and on Prefect workers (no terminal, where a redrawn bar would be
garbage or nothing at all) a summary line is printed every ``REMOT_PROGRESS_SECONDS`` seconds (default 60) and
once at the end. Frames are counted from each video's frame count when the caller knows it up front (stages
after extraction), else from what the finished videos report (extraction learns the count by decoding).
Training counts steps, shows its losses on the bar and, off a terminal, prints its own line per checkpoint
(:meth:`Progress.note`) instead of timed summaries.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, Sequence, TextIO

DEFAULT_INTERVAL = 60.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def item_frames(item: Any) -> int | None:
    """The frame count a work item carries (its frames meta: a dict with ``n_frames``), if any."""
    for part in item if isinstance(item, tuple) else (item,):
        if isinstance(part, dict) and isinstance(part.get("n_frames"), int):
            return part["n_frames"]
    return None


def info_frames(info: dict | None) -> int:
    """Frames a finished video reports (stages say ``n_frames`` or ``frames``)."""
    for key in ("n_frames", "frames"):
        if info and isinstance(info.get(key), int):
            return info[key]
    return 0


class Progress:
    """Count finished units (``unit``: videos of one stage run, or training steps) from ``initial`` up to
    ``total``; call :meth:`close` at the end. ``interval=math.inf``: no timed summary lines (nor the final one);
    ``silent``: nothing at all (a training rank other than 0)."""

    def __init__(self, name: str, total: int, total_frames: int | None = None, *, unit: str = "video",
                 initial: int = 0, stream: TextIO | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, terminal: bool | None = None, silent: bool = False):
        self.name, self.total, self.total_frames, self.unit = name, total, total_frames, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval if interval is not None else float(os.environ.get("REMOT_PROGRESS_SECONDS",
                                                                                    DEFAULT_INTERVAL))
        self.clock, self.silent = clock, silent
        self.initial = self.done = initial
        self.frames = self.skipped = 0
        self.started = self.last_line = clock()
        self.printed = -1  # units done at the last line
        if terminal is None:
            terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        if terminal and total and not silent:
            from tqdm import tqdm

            # The bar counts frames when their total is known (smooth rate and ETA), else the units.
            self.bar = tqdm(total=total_frames or total, initial=initial, desc=name,
                            unit="frame" if total_frames else unit, file=self.stream, dynamic_ncols=True)

    def __getstate__(self) -> dict[str, Any]:
        # the Dask executors' Prefect flow (pipeline/orchestration/dask_executors.py) closes over the progress, and
        # Prefect ships the flow context to Dask workers, which never report: the copy they get has no stream or bar
        # (neither pickles).
        return {**self.__dict__, "stream": None, "bar": None}

    @classmethod
    def for_items(cls, name: str, items: Sequence[Any], **kwargs) -> "Progress":
        counts = [item_frames(item) for item in items]
        total = sum(counts) if counts and all(c is not None for c in counts) else None
        return cls(name, len(items), total, **kwargs)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def rate(self) -> float:
        """Units per second over this run (a resumed run counts from where it started)."""
        return (self.done - self.initial) / max(self.elapsed(), 1e-9)

    def line(self) -> str:
        elapsed = self.elapsed()
        parts = [f"{self.name}: {self.done}/{self.total} {self.unit}s"]
        if self.total_frames:
            parts.append(f"{self.frames}/{self.total_frames} frames")
        elif self.frames:
            parts.append(f"{self.frames} frames")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if elapsed > 0 and self.frames:
            parts.append(f"{self.frames / elapsed:.1f} frames/s")
        elif elapsed > 0 and self.done:
            parts.append(f"{self.done / elapsed * 60:.1f} {self.unit}s/min")
        done, total = (self.frames, self.total_frames) if self.total_frames else (self.done, self.total)
        if 0 < done < total:
            parts.append(f"ETA {_duration(elapsed * (total - done) / done)}")
        parts.append(f"elapsed {_duration(elapsed)}")
        return ", ".join(parts)

    def update(self, frames: int = 0, skipped: bool = False, postfix: dict[str, str] | None = None) -> None:
        """One more unit done (``frames`` of it); ``postfix``: what the bar shows beside it (training's losses)."""
        self.done += 1
        self.frames += frames
        self.skipped += int(skipped)
        if self.bar is not None:
            self.bar.update(frames if self.total_frames else 1)
            if postfix is not None:
                self.bar.set_postfix(**postfix)
            else:
                self.bar.set_postfix_str(f"{self.done}/{self.total} {self.unit}s", refresh=False)
        elif self.clock() - self.last_line >= self.interval:
            self._print(self.line())

    def note(self, text: str) -> None:
        """Print ``text`` as a progress line where there is no bar (a bar already shows the same)."""
        if self.bar is None:
            self._print(text)

    def _print(self, text: str) -> None:
        self.last_line, self.printed = self.clock(), self.done
        if not self.silent:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.total and self.done != self.printed and math.isfinite(self.interval):  # the end, unless just said
            self._print(self.line())
