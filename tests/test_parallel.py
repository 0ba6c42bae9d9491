"""The same stage code on the parallel engine (a Prefect flow on a local Dask cluster) gives the same outputs
as the in-process loop, keeps order, and turns a bad video into a report line."""
from __future__ import annotations

import contextlib
import os
import shutil

import pytest

from pipeline.core.errors import SkipVideo
from pipeline.core.params import DatasetSpec, ExtractParams, ParamsError, PreprocessParams, validate_params
from pipeline.datasets import scan_dataset
from pipeline.extract.run import run_extraction
from pipeline.stage.executor import run_all
import stages  # noqa: F401  (hands the Dask executors to the stage machinery, as in a stage process)


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


def test_the_old_executor_name_processes_names_its_new_one():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'processes' is now called 'local-dask'"):
        PreprocessParams(executor="processes")
    assert PreprocessParams(executor="local-dask").executor == "local-dask"


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
    assert_extraction_matches_inprocess(tmp_path, media, PreprocessParams(executor="local-dask", workers=2))


@contextlib.contextmanager
def tls_cluster(n_workers: int = 1):
    """A user's cluster secured with TLS, with this process's Dask config holding the client certificates, as
    `distributed.comm.tls.*` in a user's dask config would; yields its tls:// address. It keeps its dashboard (on
    loopback): prefect-dask reads the dashboard link of a scheduler it is given by address, and fails on one
    without (distributed's Client.dashboard_link raises KeyError 'dashboard')."""
    import dask
    from distributed import LocalCluster
    from distributed.security import Security

    security = Security.temporary()
    client_config = {"distributed.comm.tls.ca-file": security.tls_ca_file,
                     "distributed.comm.tls.client.cert": security.tls_client_cert,
                     "distributed.comm.tls.client.key": security.tls_client_key,
                     "distributed.comm.require-encryption": True}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      protocol="tls://", security=security, dashboard_address="127.0.0.1:0") as cluster, \
            dask.config.set(client_config):
        yield cluster.scheduler_address


@pytest.mark.timeout(300)
def test_dask_cluster_address_runs_the_work_there(tmp_path, monkeypatch):
    """executor 'dask': the flow's tasks run on an existing TLS cluster (here one started by the test)."""
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    with tls_cluster() as address:
        assert address.startswith("tls://127.0.0.1:")
        engine = PreprocessParams(executor="dask", dask_address=address)
        outcomes = run_all(square_or_skip, [(i,) for i in range(4)], engine)
    assert [o.info["x"] if o.info else o.skipped for o in outcomes] == [0, 1, "two is bad",
                                                                        "ZeroDivisionError: three breaks"]
    pids = {o.info["pid"] for o in outcomes if o.info}
    assert os.getpid() not in pids and len(pids) == 1  # all on the cluster's single worker process


def test_a_plain_tcp_dask_address_needs_the_opt_in():
    """Issue 22 item 2: executor 'dask' refuses a non-tls:// scheduler unless preprocess.allow_insecure_dask."""
    with pytest.raises(ParamsError, match="allow_insecure_dask"):
        validate_params({"preprocess": {"executor": "dask", "dask_address": "tcp://127.0.0.1:8786"}})
    with pytest.raises(ParamsError, match="allow_insecure_dask"):
        validate_params({"preprocess": {"executor": "dask", "dask_address": "127.0.0.1:8786"}})
    allowed = validate_params({"preprocess": {"executor": "dask", "dask_address": "tcp://10.0.0.5:8786",
                                              "allow_insecure_dask": True}})
    assert allowed.preprocess.dask_address == "tcp://10.0.0.5:8786"
    assert validate_params({"preprocess": {"executor": "dask", "dask_address": "tls://h:8786"}}).preprocess


def test_an_executor_not_handed_over_names_where_it_comes_from(monkeypatch):
    """The stage machinery imports no Prefect code: a process that never imported ``stages`` (which hands over
    ``local-dask`` and ``dask``) gets a user error naming the fix, not an ImportError or a silent fallback."""
    from pipeline.core.errors import RemotError
    from pipeline.orchestration.dask_executors import DASK_EXECUTORS
    from pipeline.stage import executor

    assert executor._PROVIDED.keys() >= DASK_EXECUTORS.keys()  # this module imported stages
    monkeypatch.setattr(executor, "_PROVIDED", {})
    with pytest.raises(RemotError, match="'local-dask' was not handed to this process.*stages"):
        run_all(square_or_skip, [(1,)], PreprocessParams(executor="local-dask"))


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


def test_flow_runs_wait_long_enough_for_their_prefect_server(monkeypatch):
    """A loaded machine starts a Prefect API server in more than Prefect's default 20 s (CI failed on it): our
    flows wait 180 s for their private server, unless the user set a value."""
    from pipeline.orchestration.prefect_server import STARTUP_TIMEOUT_ENV, startup_timeout

    monkeypatch.delenv(STARTUP_TIMEOUT_ENV, raising=False)
    assert startup_timeout() == 180
    monkeypatch.setenv(STARTUP_TIMEOUT_ENV, "7")
    assert startup_timeout() == 7
