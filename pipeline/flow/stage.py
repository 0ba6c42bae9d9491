"""Flow stage: extracted frames -> flow t -> t-1 with a forward-backward validity mask, per video."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from functools import lru_cache
from pathlib import Path

from pipeline.core.artifacts import VideoArtifacts
from pipeline.flow.base import FlowBackend
from pipeline.flow.select import compute_video_flow_stream, make_flow_backend, save_flow_npz
from pipeline.stage.entry import Stage, StageContext, summary
from pipeline.stage.per_video import iter_frames_on_disk, run_video_stage


@dataclass(frozen=True)
class FlowSpec:
    """What to build a flow backend from; sent to worker processes instead of the (unpicklable) backend."""

    name: str
    weights: Path | None
    dis_preset: str
    flownet2_fit: str = "pad"


@lru_cache(maxsize=4)
def flow_backend(spec: FlowSpec) -> tuple[FlowBackend, tuple[str, ...]]:
    """The backend and its notes, built once per process (a FlowNet2 checkpoint is loaded once)."""
    backend, notes = make_flow_backend(spec.name, spec.weights, spec.dis_preset,
                                       flownet2_fit=spec.flownet2_fit)
    return backend, tuple(notes)


def flow_video(video: VideoArtifacts, meta: dict, spec: FlowSpec) -> dict:
    backend, _ = flow_backend(spec)
    # frames read one pair at a time: memory holds the flow being written, not the decoded video
    flow, valid = compute_video_flow_stream(iter_frames_on_disk(video, meta["n_frames"]), meta["n_frames"], backend)
    save_flow_npz(video.flow_file, flow, valid, backend.name)
    return {"backend": backend.name, "valid_fraction": round(float(valid[1:].mean()), 4) if len(valid) > 1
            else None}


def body(ctx: StageContext) -> str:
    cfg = ctx.params.flow
    weights = {"auto": cfg.flownet2_weights, "flownet2": cfg.flownet2_weights, "raft": cfg.raft_weights}.get(cfg.backend)
    spec = FlowSpec(cfg.backend, ctx.root / weights if weights else None, cfg.dis_preset, cfg.flownet2_fit)
    backend, notes = flow_backend(spec)
    print("\n".join(notes))
    report = run_video_stage("flow", ctx.dataset, ctx.data_root, f"flow-v1:{backend.name}",
                             lambda video, meta: [], partial(flow_video, spec=spec),
                             lambda video: [video.flow_file], ctx.report_path("flow"), ctx.params.preprocess)
    return summary("flow", ctx.dataset, report.run_log()["counts"], ctx.report_path("flow"))


STAGE = Stage("DVC stage `flow@<dataset>`: optical flow t -> t-1 and its validity mask per video (FlowNet2 with "
              "its weights, otherwise OpenCV DIS, loudly; the backend that ran is recorded in every output).", body)
