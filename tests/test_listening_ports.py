"""Issue 22 items 1, 2 and 9: the listening sockets of every executor and training entry point, listed while it
runs (``tests/_sockets.py``: psutil, else /proc/net/tcp{,6}), each probed as a client without credentials would.
Every one must be on loopback and refuse that client: HTTP 401 (the private Prefect API server of a flow run) or
a TLS session that needs the run's own certificates (the local Dask cluster). Nothing else: no Dask dashboard, no
worker web server, no Prefect API without a password or on another server's database. The DDP launcher's c10d
ports have no authentication at all (README "Security notes"): for it, loopback only."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.core.params import PreprocessParams
from pipeline.stage.executor import run_all
import stages  # noqa: F401  (hands the Dask executors to the stage machinery, as in a stage process)
from tests._sockets import is_loopback, listening, ports, probe_token_line, survey, survey_item, unprotected

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def prefect_home(tmp_path, monkeypatch) -> Path:
    """A PREFECT_HOME of the test's own, no server of the user's: the flows start their private one."""
    home = tmp_path / "prefect-home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return home


@pytest.mark.parametrize("executor", ["inprocess", "pool", "auto"])
def test_executors_without_an_engine_open_no_port(executor):
    baseline = ports(os.getpid())
    [outcome] = run_all(survey_item, [(os.getpid(), tuple(baseline))], PreprocessParams(executor=executor))
    assert outcome.info is not None, outcome.skipped
    assert outcome.info["sockets"] == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_local_dask_executor_ports_are_tls_or_password_protected(prefect_home):
    """Executor 'local-dask': the scheduler, the nannies and the workers speak mutual TLS and nothing else
    listens (the old cluster left the dashboard on 8787 and a plain-HTTP web server per worker); the private
    Prefect server answers 401; its database is not $PREFECT_HOME/prefect.db."""
    baseline = ports(os.getpid())
    [outcome] = run_all(survey_item, [(os.getpid(), tuple(baseline))],
                        PreprocessParams(executor="local-dask", workers=2))
    assert outcome.info is not None, outcome.skipped
    found = outcome.info["sockets"]
    assert unprotected(found) == [], found
    answers = Counter(s["answer"] for s in found)
    assert answers["http-401"] == 1 and answers["tls-refused"] == 1 + 2 * 2, found  # scheduler, 2 nannies, 2 workers
    assert not (prefect_home / "prefect.db").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dask_executor_adds_only_its_password_protected_prefect_server(prefect_home):
    """Executor 'dask' on a user's TLS cluster (the cluster's own ports are the user's, taken as the baseline):
    the run adds only its private Prefect API server."""
    from tests.test_parallel import tls_cluster

    with tls_cluster() as address:
        baseline = ports(os.getpid())
        [outcome] = run_all(survey_item, [(os.getpid(), tuple(baseline))],
                            PreprocessParams(executor="dask", dask_address=address))
    assert outcome.info is not None, outcome.skipped
    assert [s["answer"] for s in outcome.info["sockets"]] == ["http-401"], outcome.info["sockets"]
    assert unprotected(outcome.info["sockets"]) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_make_train_serves_no_open_api_and_no_other_servers_data(prefect_home, tmp_path, monkeypatch):
    """`make train` (the flow run in-process): while each stage trains, the only port is its private Prefect API
    server on loopback, which refuses a client without the password (before: no password, on the same
    $PREFECT_HOME/prefect.db a `make serve` server uses, so its artifacts were readable)."""
    from pipeline.orchestration import flow
    from pipeline.training import runner

    recipe = subprocess.run(["make", "-n", "train"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "pipeline.orchestration.flow run" in recipe
    baseline = ports(os.getpid())
    seen: dict[str, list[dict]] = {}

    def train_network(stage, params, root, **_):  # the real work is irrelevant here: the ports while it runs
        seen[stage] = survey(os.getpid(), baseline)
        return SimpleNamespace(metrics_path=None, steps=0)

    monkeypatch.setattr(runner, "train_network", train_network)
    monkeypatch.setenv(flow.PARAMS_ENV, "unset")  # main() sets it; restored after the test
    (tmp_path / "params.yaml").write_text("{}\n")
    assert flow.main(["run", "--params", str(tmp_path / "params.yaml")]) == 0
    assert sorted(seen) == ["layout", "region", "wcn"]
    for stage, found in seen.items():
        assert [s["answer"] for s in found] == ["http-401"], (stage, found)
        assert unprotected(found) == []
    assert not (prefect_home / "prefect.db").exists()


def _sample_while_running(command: list[str], env: dict[str, str], timeout: float = 420) -> tuple[int, set, str]:
    """Run ``command``; every 0.1 s list its process tree's listening sockets; (exit code, all seen, output)."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    seen: set[tuple[int, str, int]] = set()
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        seen |= listening(process.pid)
        time.sleep(0.1)
    if process.poll() is None:
        process.kill()
    output = process.communicate()[0]
    return process.returncode, seen, output


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_dvc_training_stage_opens_no_port(tiny_shards, tmp_path):  # noqa: F811
    from tests.test_train import make_project

    root = make_project(tmp_path / "p", tiny_shards, epochs={"layout": 1, "region": 1, "wcn": 1}, steps_per_epoch=1)
    code, seen, output = _sample_while_running([sys.executable, "-m", "stages.train_layout", "--params",
                                                str(root / "params.yaml")], {**os.environ, "OMP_NUM_THREADS": "1"})
    assert code == 0, output[-2000:]
    assert seen == set()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ddp_launcher_keeps_every_port_on_loopback(tiny_shards, tmp_path):  # noqa: F811
    """The README's one-machine DDP command: two gloo ranks train the Layout GAN, and the rendezvous store and the
    collectives listen on 127.0.0.1 only (torchrun's store listened on every interface)."""
    from tests.test_train import make_project

    readme = (ROOT / "README.md").read_text()
    assert "python -m pipeline.training.ddp --nproc-per-node 2 stages.train_region" in readme
    assert "torchrun --nproc_per_node=2 -m stages" not in readme
    root = make_project(tmp_path / "p", tiny_shards, epochs={"layout": 1, "region": 1, "wcn": 1})
    code, seen, output = _sample_while_running(
        [sys.executable, "-m", "pipeline.training.ddp", "--nproc-per-node", "2", "stages.train_layout", "--params",
         str(root / "params.yaml")], {**os.environ, "OMP_NUM_THREADS": "1"})
    assert code == 0, output[-3000:]
    assert seen and all(is_loopback(ip) for _, ip, _ in seen), seen
    assert json.loads((root / "metrics" / "train_layout.json").read_text())["world_size"] == 2


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_make_serve_deployment_process_opens_only_a_token_checked_control_channel(tmp_path):
    """`make serve`: its server demands the password (tests/test_security.py); the process that serves the
    deployment remot/train opens only Prefect's runner control channel, on loopback, which hangs up on a token it
    did not hand out to a flow run (Prefect's runner web server stays off)."""
    import base64
    import urllib.request

    from tests._prefect_server import local_prefect_server

    secret = "remot:serve-test-secret"
    (tmp_path / "params.yaml").write_text("{}\n")
    with local_prefect_server(tmp_path / "home", {"PREFECT_SERVER_API_AUTH_STRING": secret}, startup_s=240) as (
            base, env):
        serve = subprocess.Popen([sys.executable, "-m", "pipeline.orchestration.flow", "serve", "--params",
                                  str(tmp_path / "params.yaml")], cwd=ROOT,
                                 env={**env, "PREFECT_API_URL": base, "PREFECT_API_AUTH_STRING": secret},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            request = urllib.request.Request(base + "/deployments/filter", data=b"{}", method="POST", headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(secret.encode()).decode()})
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and serve.poll() is None:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if json.loads(response.read()):
                        break
                time.sleep(1)
            assert serve.poll() is None, "flow serve exited"
            found: set = set()
            while time.monotonic() < deadline + 60 and not found:  # the runner starts after registering
                found = listening(serve.pid)
                time.sleep(0.5)
            time.sleep(2)
            found |= listening(serve.pid)
            answers = [probe_token_line(ip, port) for _, ip, port in found]
        finally:
            serve.terminate()
            serve.wait(timeout=60)
    assert len(found) == 1 and all(is_loopback(ip) for _, ip, _ in found), found
    assert answers == ["token-refused"]


from tests.test_train import tiny_shards  # noqa: E402,F401  (fixture)
