"""Executors ``local-dask`` and ``dask``: a stage's per-video work as a Prefect flow whose tasks run on Dask
(prefect-dask's ``DaskTaskRunner``), reporting to the run's private Prefect API server (``prefect_server``).

The stage machinery (``pipeline.stage.executor``) may not import this package: its training flow sits above the
stage packages, so the import would close a cycle. It gets these executors as values instead, by their params
names (:data:`DASK_EXECUTORS`), from ``stages/__init__.py``, which every stage process runs first.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from pipeline.stage.executor import Outcome, call


def on_local_cluster(fn: Callable[..., dict], items: Sequence[tuple], engine: Any, name: str,
                     done: Callable[[int, Outcome], Outcome]) -> list[Outcome]:
    """Executor ``local-dask``: a local cluster of ``engine.workers`` single-threaded worker processes, mutual TLS
    on every message port and no HTTP server (``dask_cluster``)."""
    from prefect_dask import DaskTaskRunner

    from pipeline.orchestration.dask_cluster import local_cluster_security, local_tls_cluster

    # threads_per_worker=1: the work (MediaPipe, OpenCV, torch) is CPU-bound native code
    security = local_cluster_security()
    runner = DaskTaskRunner(cluster_class=local_tls_cluster,
                            cluster_kwargs={"n_workers": engine.workers, "threads_per_worker": 1,
                                            "security": security},
                            client_kwargs={"security": security})
    return _flow_on(runner, fn, items, name, done)


def on_existing_cluster(fn: Callable[..., dict], items: Sequence[tuple], engine: Any, name: str,
                        done: Callable[[int, Outcome], Outcome]) -> list[Outcome]:
    """Executor ``dask``: the cluster at ``engine.dask_address`` (the params schema guarantees an address,
    ``tls://`` unless ``allow_insecure_dask``)."""
    from prefect_dask import DaskTaskRunner

    return _flow_on(DaskTaskRunner(address=engine.dask_address), fn, items, name, done)


def _flow_on(runner: Any, fn: Callable[..., dict], items: Sequence[tuple], name: str,
             done: Callable[[int, Outcome], Outcome]) -> list[Outcome]:
    """A flow ``name`` with one task per item on ``runner``; ``done`` takes each outcome here, in item order."""
    from prefect import flow, task

    from pipeline.orchestration.prefect_server import private_temporary_server

    @task(name=f"{name}-video")
    def one(item: tuple) -> Outcome:
        return call(fn, *item)

    @flow(name=name, task_runner=runner, log_prints=False)
    def fan_out() -> list[Outcome]:
        futures = [one.submit(item) for item in items]
        return [done(i, future.result()) for i, future in enumerate(futures)]

    with private_temporary_server():
        return fan_out()


DASK_EXECUTORS = {"local-dask": on_local_cluster, "dask": on_existing_cluster}
