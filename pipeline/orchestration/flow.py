"""Prefect flow ``remot`` (deployment ``train``): the paper's training schedule (3.3).

The networks train in order, each on the frozen outputs of the ones before (trained as used,
``pipeline.training.steps``): Layout GAN, Region GAN on its predicted layouts, WCN on both. Each task runs
``pipeline.training.runner.train_network`` - the code the DVC stages run - so a retried or re-run task resumes from
its last checkpoint. Retries: only for I/O errors (e.g. a shard read failing), never for a NaN/inf loss or a
configuration error, which would fail the same way again. Per network the task publishes a table artifact of the
final losses and a markdown artifact with the sample grid (PNG, embedded as base64, and its path).

    python -m pipeline.orchestration.flow run   [--params params.yaml]   # in-process (`make train`)
    python -m pipeline.orchestration.flow serve [--params params.yaml]   # serve deployment remot/train (`make serve`)

The flow takes **one run parameter**, ``profile``: a name from ``pipeline.profiles.PROFILES`` (checked against
that list; anything else fails the run before it starts). With it the flow runs that profile as the DVC experiment
of its name (``python -m pipeline.profiles NAME --replace``: all stages, results in metrics/NAME/), e.g.
``prefect deployment run remot/train --param profile=learn``. Without it the flow trains from the params file fixed
by whoever starts ``run``/``serve`` (``--params``, passed to the flow run through the ``REMOT_PARAMS`` environment
variable, which the served deployment's runs inherit). A deployment parameter naming a file would let anyone who
can reach the Prefect API train from a params file of their choosing, and a params file can name shard URLs and
output folders; a profile name only selects one of the project's committed profiles.
"""
from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import Any, Literal, Optional

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipeline.core.errors import RemotError
from pipeline.core.params import load_params
from pipeline.profiles import PROFILES, check_profile
from pipeline.orchestration.prefect_server import private_temporary_server


def _retry_on_io_error(task_obj, task_run, state) -> bool:
    """Retry a network's training only when it failed on I/O (a later attempt resumes from the last checkpoint)."""
    try:
        state.result()
    except RemotError:
        return False  # NaN/inf loss, missing shards, wrong checkpoint: the same inputs fail the same way
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - anything else is a bug: do not hide it behind retries
        return False
    return False


@task(name="train-network", retries=2, retry_delay_seconds=5, retry_condition_fn=_retry_on_io_error,
      task_run_name="train-{network}")
def train_one_network(network: str, params_path: str) -> dict[str, Any]:
    """Train one network to the end of its schedule; returns its metrics and publishes its artifacts."""
    from pipeline.training.runner import train_network

    params_file = Path(params_path).resolve()
    result = train_network(network, load_params(params_file), params_file.parent)
    if result.metrics_path is None:  # not rank 0 (flows run single-process; kept for completeness)
        return {"network": network, "steps": result.steps}
    create_table_artifact(
        key=f"train-{network}-losses",
        table=[{"term": k, "value": round(v, 6)} for k, v in sorted(result.final_losses.items())],
        description=f"{network}: mean losses over the last epoch ({result.steps} steps, "
                    + (f"{result.steps_per_s:.2f} steps/s)" if result.steps_per_s is not None
                       else "already trained)"))
    png = base64.b64encode(Path(result.grid_path).read_bytes()).decode()
    create_markdown_artifact(
        key=f"train-{network}-samples",
        markdown=f"### {network}: samples after step {result.steps}\n\n`{result.grid_path}`\n\n"
                 f"![{network} samples](data:image/png;base64,{png})\n",
        description="source | driving pose | layout | regions | output | ground truth")
    return result.metrics


PARAMS_ENV = "REMOT_PARAMS"


def served_params_path() -> str:
    """The params file this process was started for (``REMOT_PARAMS``, else ./params.yaml), absolute."""
    return str(Path(os.environ.get(PARAMS_ENV) or "params.yaml").resolve())


def run_profile(profile: str) -> dict[str, Any]:
    """Profile ``profile`` as a DVC experiment (pipeline/profiles), replacing one of that name on this commit."""
    from pipeline.profiles.__main__ import main as profile_main

    code = profile_main([check_profile(profile), "--replace"])
    if code != 0:
        raise RemotError(f"profile {profile} failed (exit {code}); its output above names the stage")
    return {"profile": profile, "experiment": profile}


@flow(name="remot", log_prints=True)
def remot(profile: Optional[Literal[PROFILES]] = None) -> dict[str, Any]:  # type: ignore[valid-type]
    """Paper 3.3: the three networks separately, in order: Layout GAN, Region GAN (on the Layout GAN's predicted
    layouts), WCN (on both). ``profile``: run that profile as a DVC experiment instead (module docstring)."""
    if profile is not None:
        return run_profile(profile)
    params_path = served_params_path()
    load_params(params_path)  # a bad params file fails here, before any task starts
    layout_metrics = train_one_network("layout", params_path)
    region_metrics = train_one_network("region", params_path)
    wcn_metrics = train_one_network("wcn", params_path)
    return {"layout": layout_metrics, "region": region_metrics, "wcn": wcn_metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="REMOT training flow (Prefect flow remot, deployment train)")
    parser.add_argument("command", choices=["run", "serve"])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params_path = Path(args.params).resolve()
    try:
        load_params(params_path)  # fail here, before a server or a run exists, on a missing or invalid file
    except RemotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ[PARAMS_ENV] = str(params_path)
    if args.command == "serve":
        remot.serve(name="train")
        return 0
    try:
        with private_temporary_server():
            remot()
        return 0
    except RemotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
