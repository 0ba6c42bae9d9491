"""The Prefect flow remot (deployment train) end to end against a REAL local Prefect server on loopback: the
three stages run (Layout GAN, Region GAN, then the WCN, in order), the flow run completes, and every stage
publishes its loss table and sample-grid artifacts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._prefect_server import local_prefect_server
from tests.test_train import make_project, tiny_shards  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def prefect_server(tmp_path):
    with local_prefect_server(tmp_path / "prefect-home") as (base, env):
        yield {**env, "PREFECT_API_URL": base}


def test_flow_trains_three_stages_and_publishes_artifacts(prefect_server, tiny_shards, tmp_path):  # noqa: F811
    root = make_project(tmp_path / "p", tiny_shards, epochs={"layout": 1, "region": 1, "wcn": 1},
                        steps_per_epoch=1, checkpoint_every=1)
    run = subprocess.run([sys.executable, "-m", "pipeline.orchestration.flow", "run", "--params",
                          str(root / "params.yaml")], cwd=ROOT, env={**prefect_server, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for stage in ("layout", "region", "wcn"):
        assert (root / "models" / stage / "final" / "modules.safetensors").is_file()

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs()
            assert len(runs) == 1 and runs[0].state.is_completed()
            flow = client.read_flow(runs[0].flow_id)
            assert flow.name == "remot"
            tasks = client.read_task_runs()
            assert sorted(t.name for t in tasks if t.state.is_completed()) == ["train-layout", "train-region",
                                                                               "train-wcn"]
            artifacts = {a.key: a for a in client.read_artifacts()}
    for stage in ("layout", "region", "wcn"):
        table = artifacts[f"train-{stage}-losses"]
        assert table.type == "table" and "g_total" in str(table.data) and "d_total" in str(table.data)
        grid = artifacts[f"train-{stage}-samples"]
        assert grid.type == "markdown" and "data:image/png;base64," in grid.data
