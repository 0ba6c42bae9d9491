"""The same stage code on the parallel engine (a Prefect flow on a local Dask cluster) gives the same outputs
as the in-process loop, keeps order, and turns a bad video into a report line."""
from __future__ import annotations

import os
import shutil

import pytest

from pipeline.core.errors import SkipVideo
from pipeline.core.params import DatasetSpec, ExtractParams, ParamsError, PreprocessParams, validate_params
from pipeline.datasets import scan_dataset
from pipeline.extract.run import run_extraction
from pipeline.stage.executor import run_all


def square_or_skip(x: int) -> dict:
    if x == 2:
        raise SkipVideo("two is bad")
    if x == 3:
        raise ZeroDivisionError("three breaks")
    return {"x": x * x, "pid": os.getpid()}


def test_inprocess_keeps_order_and_reports_failures():
    outcomes = run_all(square_or_skip, [(i,) for i in range(5)])
    assert [o.info["x"] if o.info else o.skipped for o in outcomes] == [0, 1, "two is bad",
                                                                        "ZeroDivisionError: three breaks", 16]


def test_dask_executor_needs_an_address():
    with pytest.raises(ParamsError, match="dask_address"):
        validate_params({"preprocess": {"executor": "dask"}})


def assert_extraction_matches_inprocess(tmp_path, media, engine: PreprocessParams) -> None:
    """Two clips and a broken file extracted in-process and on ``engine``: the same videos go through, the
    broken one is reported, and every frame is the same bytes."""
    root = tmp_path / "clips"
    root.mkdir()
    for video in media["videos"][:2]:
        shutil.copy(video, root / video.name)
    (root / "broken.mp4").write_bytes(b"not a video")
    videos = scan_dataset("clips", DatasetSpec(kind="folder", path=str(root))).videos
    cfg = ExtractParams(detect_frames=4, max_frames=12)
    serial = run_extraction("clips", videos, tmp_path / "a", cfg, 8, tmp_path / "a.json")
    parallel = run_extraction("clips", videos, tmp_path / "b", cfg, 8, tmp_path / "b.json", engine)
    assert sorted(parallel.processed) == sorted(serial.processed) and len(serial.processed) == 2
    assert "broken" in next(iter(parallel.skipped)) and "cannot open" in next(iter(parallel.skipped.values()))
    for video in ("a", "b"):
        assert len(list((tmp_path / video / "frames" / "clips").rglob("*.png"))) == 24
    for png in sorted((tmp_path / "a" / "frames" / "clips").rglob("*.png")):
        twin = tmp_path / "b" / png.relative_to(tmp_path / "a")
        assert twin.read_bytes() == png.read_bytes()


@pytest.mark.timeout(300)
def test_auto_takes_the_pool_only_with_enough_videos_per_worker():
    """executor auto: 7 videos for 2 workers run here (spawning would cost more than it saves), 8 run on worker
    processes; executor pool always spreads, inprocess never."""
    from pipeline.stage.executor import local_workers

    auto = PreprocessParams(workers=2)
    assert auto.executor == "auto"
    assert [local_workers(auto, n) for n in (1, 7, 8, 100)] == [1, 1, 2, 2]
    assert local_workers(PreprocessParams(executor="auto", workers=1), 100) == 1
    assert local_workers(PreprocessParams(executor="pool", workers=3), 2) == 3
    assert local_workers(PreprocessParams(executor="inprocess"), 100) == 1
    few = run_all(square_or_skip, [(i,) for i in (0, 1, 4, 5, 6, 7, 8)], auto)
    assert {o.info["pid"] for o in few} == {os.getpid()}
    many = run_all(square_or_skip, [(i,) for i in (0, 1, 4, 5, 6, 7, 8, 9)], auto)
    assert [o.info["x"] for o in many] == [0, 1, 16, 25, 36, 49, 64, 81]
    assert os.getpid() not in {o.info["pid"] for o in many}  # (one worker may take all: the items are instant)


@pytest.mark.timeout(600)
def test_extraction_on_a_process_pool_matches_inprocess(tmp_path, media):
    assert_extraction_matches_inprocess(tmp_path, media, PreprocessParams(executor="pool", workers=2))


@pytest.mark.timeout(600)
def test_extraction_on_local_worker_processes_matches_inprocess(tmp_path, media, monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    assert_extraction_matches_inprocess(tmp_path, media, PreprocessParams(executor="processes", workers=2))


@pytest.mark.timeout(300)
def test_dask_cluster_address_runs_the_work_there(tmp_path, monkeypatch):
    """executor 'dask': the flow's tasks run on an existing cluster (here a LocalCluster started by the test)."""
    from distributed import LocalCluster

    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        engine = PreprocessParams(executor="dask", dask_address=cluster.scheduler_address)
        outcomes = run_all(square_or_skip, [(i,) for i in range(4)], engine)
    assert [o.info["x"] if o.info else o.skipped for o in outcomes] == [0, 1, "two is bad",
                                                                        "ZeroDivisionError: three breaks"]
    pids = {o.info["pid"] for o in outcomes if o.info}
    assert os.getpid() not in pids and len(pids) == 1  # all on the cluster's single worker process


def test_pool_executor_runs_items_in_other_processes_in_order():
    outcomes = run_all(square_or_skip, [(i,) for i in range(5)], PreprocessParams(executor="pool", workers=2))
    assert [o.info["x"] if o.info else o.skipped for o in outcomes] == [0, 1, "two is bad",
                                                                        "ZeroDivisionError: three breaks", 16]
    assert os.getpid() not in {o.info["pid"] for o in outcomes if o.info}


def die(x: int) -> dict:
    os._exit(3)  # a worker killed mid-item, as by the OOM killer or a crash in native code


def test_pool_executor_reports_a_dead_worker_instead_of_failing():
    [outcome] = run_all(die, [(1,)], PreprocessParams(executor="pool", workers=1))
    assert outcome.info is None and "worker process failed" in outcome.skipped and "re-run" in outcome.skipped


def test_flow_runs_wait_long_enough_for_prefects_temporary_server(monkeypatch):
    """A loaded machine starts Prefect's temporary server in more than its default 20 s (CI failed on it): our
    flows wait longer, but a value the user set, or a server of their own, is left alone."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as startup_timeout

    from pipeline.stage.prefect_server import STARTUP_TIMEOUT_ENV, patient_temporary_server

    monkeypatch.delenv(STARTUP_TIMEOUT_ENV, raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    default = startup_timeout.value()
    with patient_temporary_server():
        assert startup_timeout.value() == 180 > default
    assert startup_timeout.value() == default
    monkeypatch.setenv(STARTUP_TIMEOUT_ENV, "7")  # Prefect read its settings at start-up: only ours may change
    with patient_temporary_server():
        assert startup_timeout.value() == default
