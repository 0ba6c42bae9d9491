"""Training stages train_layout, train_region, train_wcn: one REMOT network each (``runner.train_network``, the same
code as the Prefect flow); also under ``torchrun --nproc_per_node=N -m stages.train_<network>``."""
from __future__ import annotations

import torch.distributed as dist

from pipeline.core.checkpoint import NETWORKS
from pipeline.stage.entry import Stage, StageContext, StageExit
from pipeline.training.runner import StoppedEarly, train_network
from pipeline.training.steps import NonFiniteLoss


def _body(network: str):
    def body(ctx: StageContext) -> str | None:
        try:
            result = train_network(network, ctx.params, ctx.root, stop_after=ctx.options["stop_after"])
        except StoppedEarly as exc:
            raise StageExit(3, str(exc)) from None
        except NonFiniteLoss as exc:  # not a user error: exit 1, the last checkpoint stays the latest
            raise StageExit(1, f"error: {exc}") from None
        if result.metrics_path is None:
            return None
        speed = (f"{result.steps_per_s:.2f} steps/s" if result.steps_per_s is not None
                 else "already trained, nothing left to run")
        return f"train {network}: {result.steps} steps, {speed}; metrics in {result.metrics_path}"
    return body


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


STAGES_BY_NETWORK = {
    network: Stage(f"Train the REMOT {network} stage (see pipeline.training.runner)", _body(network), dataset=False,
                   quiet_native=False, torch_threads=True, teardown=_teardown,
                   options=(("--stop-after", {"type": int, "default": None,
                                               "help": "stop after this step (testing resume)"}),))
    for network in NETWORKS
}
