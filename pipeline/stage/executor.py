"""Fan per-video work out on an existing engine: in-process, local worker processes, or a Dask cluster.

``preprocess.executor`` in params.yaml picks the engine; the stage code is the same for all of them:

* ``auto`` (the default) — ``pool`` when a stage has at least ``AUTO_VIDEOS_PER_WORKER`` videos per worker to
  process, else ``inprocess`` (:func:`local_workers`);
* ``inprocess`` — a plain loop (no Prefect, no extra processes; the fastest for a few videos);
* ``pool`` — ``preprocess.workers`` local processes of the standard library's ``ProcessPoolExecutor`` (spawned,
  spoken to over pipes: no port, no server; each worker imports the stage's libraries first, 1-2 s), to put
  both cores of a small machine on stages whose work is single-threaded;
* ``local-dask`` — a Prefect flow whose per-video tasks run on a local Dask cluster of ``preprocess.workers``
  single-threaded worker processes (prefect-dask's ``DaskTaskRunner``), spoken to over mutual TLS with a
  temporary in-memory CA, so no other local user can submit work to it, and without any HTTP server
  (``pipeline/orchestration/dask_cluster.py``);
* ``dask`` — the same flow on an existing Dask cluster at ``preprocess.dask_address`` (``tls://host:8786``; a
  plain ``tcp://`` address only with ``preprocess.allow_insecure_dask``).

Both flows report to a private Prefect API server (``pipeline/orchestration/prefect_server.py``): its own
database, a random password, loopback only. Their code is Prefect code, so it lives in ``pipeline/orchestration``
(``dask_executors.py``), a package above the stage packages: this module never imports it, and runs them as the
values ``stages/__init__.py`` hands over (:func:`provide_executors`) before any stage runs.

Work functions must be picklable (module-level functions, ``functools.partial`` of them), and every failure is
returned as a value rather than raised, so one bad video never fails the flow.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pipeline.core.errors import RemotError, SkipVideo
from pipeline.stage.progress import Progress, info_frames, item_frames


@dataclass(frozen=True)
class Outcome:
    """What happened to one item: ``info`` when it went through, else ``skipped`` (the reason)."""

    info: dict | None = None
    skipped: str | None = None
    started: float = 0.0  # wall-clock (time.time) span of the work, wherever it ran: for throughput figures
    finished: float = 0.0


def call(fn: Callable[..., dict], *args: Any) -> Outcome:
    started = time.time()
    try:
        info = fn(*args)
        return Outcome(info={**info, "seconds": round(time.time() - started, 3)}, started=started,
                       finished=time.time())
    except SkipVideo as exc:
        return Outcome(skipped=str(exc), started=started, finished=time.time())
    except Exception as exc:  # one bad video never sinks the dataset run
        return Outcome(skipped=f"{type(exc).__name__}: {exc}", started=started, finished=time.time())


# Spawned workers import the stage's libraries (MediaPipe, OpenCV, torch) before their first video: 1-2 s per
# stage run on the 2-core machine. The 6-clip demo ran slower on the pool (5.6 against 6.6 frames/s end to end),
# 12 clips of 64 frames 1.6x faster: below four videos per worker the start-up and the last, unshared video eat
# the gain.
AUTO_VIDEOS_PER_WORKER = 4


def local_workers(engine: Any, n_videos: int) -> int:
    """How many local processes share ``n_videos`` videos of one stage run under ``engine`` (the ``preprocess``
    params section; None = in-process): 1 means this process does the work itself. ``auto`` takes the pool only
    with a second core's worth of workers and enough videos; ``local-dask`` counts as local workers too (its
    Dask workers are processes on this machine)."""
    executor = engine.executor if engine is not None else "inprocess"
    if executor == "auto":
        return engine.workers if engine.workers > 1 and n_videos >= AUTO_VIDEOS_PER_WORKER * engine.workers else 1
    return engine.workers if executor in ("pool", "local-dask") else 1


# An executor provided from above: fan_out(fn, items, engine, name, done) -> one Outcome per item, in item order,
# calling done(index, outcome) in this process as each arrives.
FanOut = Callable[[Callable[..., dict], Sequence[tuple], Any, str, Callable[[int, Outcome], Outcome]], list[Outcome]]
_PROVIDED: dict[str, FanOut] = {}


def provide_executors(executors: Mapping[str, FanOut]) -> None:
    """Make ``executors`` (params name -> fan-out) available to :func:`run_all` in this process."""
    _PROVIDED.update(executors)


def run_all(fn: Callable[..., dict], items: Sequence[tuple], engine: Any = None, name: str = "preprocess",
            on_done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
    """``fn(*item)`` for every item on ``engine`` (the ``preprocess`` params section: executor, workers,
    dask_address; None = in-process); returns one Outcome per item, in item order.

    ``on_done(index, outcome)`` runs in this process as each item's outcome arrives (in item order), so a
    caller can record finished work right away: a run killed later keeps what was done.
    """
    progress = Progress.for_items(name, items)

    def done(index: int, outcome: Outcome) -> Outcome:
        if on_done is not None:
            on_done(index, outcome)
        known = item_frames(items[index])
        progress.update(known if known is not None else info_frames(outcome.info), skipped=outcome.info is None)
        if index == len(items) - 1:
            progress.close()
        return outcome

    executor = engine.executor if engine is not None else "inprocess"
    if executor == "auto":
        executor = "pool" if local_workers(engine, len(items)) > 1 else "inprocess"
    if executor == "inprocess" or not items:
        return [done(i, call(fn, *item)) for i, item in enumerate(items)]
    if executor == "pool":
        return _run_pool(fn, items, engine.workers, done)
    if executor not in _PROVIDED:
        raise RemotError(f"preprocess.executor {executor!r} was not handed to this process: its code is in "
                         "pipeline/orchestration, which stages/__init__.py provides (import stages, or call "
                         "pipeline.stage.executor.provide_executors(pipeline.orchestration.dask_executors."
                         "DASK_EXECUTORS))")
    return _PROVIDED[executor](fn, items, engine, name, done)


def spawned_pool(workers: int, n_items: int):
    """A ``ProcessPoolExecutor`` of at most ``workers`` processes (no more than ``n_items``). Spawned, not
    forked: the parent may hold MediaPipe, OpenCV or torch threads, and a forked child inherits their locks in
    whatever state they were."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=max(1, min(workers, n_items)),
                               mp_context=multiprocessing.get_context("spawn"))


def _run_pool(fn: Callable[..., dict], items: Sequence[tuple], workers: int,
              done: Callable[[int, Outcome], Outcome]) -> list[Outcome]:
    """Executor ``pool``: every item submitted at once, outcomes taken in item order (so ``done`` records
    finished work in order, as the in-process loop does)."""
    with spawned_pool(workers, len(items)) as pool:
        futures = [pool.submit(call, fn, *item) for item in items]
        return [done(i, _result(future)) for i, future in enumerate(futures)]


def _result(future) -> Outcome:
    """A worker killed mid-item (out of memory, a crash in native code) breaks the pool: that item and the ones
    still queued are reported as skipped, with the reason, instead of failing the stage; a re-run retries them."""
    try:
        return future.result()
    except Exception as exc:
        return Outcome(skipped=f"worker process failed ({type(exc).__name__}: {exc}); re-run the stage to retry")
