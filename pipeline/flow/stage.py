"""Flow stage: extracted frames -> flow t -> t-1 with a forward-backward validity mask, per video."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.artifacts import VideoArtifacts
from pipeline.flow.base import FlowBackend
from pipeline.flow.select import compute_video_flow_stream, make_flow_backend, save_flow_npz
from pipeline.video_stage import iter_frames_on_disk


@dataclass(frozen=True)
class FlowSpec:
    """What to build a flow backend from; sent to worker processes instead of the (unpicklable) backend."""

    name: str
    weights: Path | None
    dis_preset: str


@lru_cache(maxsize=4)
def flow_backend(spec: FlowSpec) -> tuple[FlowBackend, tuple[str, ...]]:
    """The backend and its notes, built once per process (a FlowNet2 checkpoint is loaded once)."""
    backend, notes = make_flow_backend(spec.name, spec.weights, spec.dis_preset)
    return backend, tuple(notes)


def flow_video(video: VideoArtifacts, meta: dict, spec: FlowSpec) -> dict:
    backend, _ = flow_backend(spec)
    # frames read one pair at a time: memory holds the flow being written, not the decoded video
    flow, valid = compute_video_flow_stream(iter_frames_on_disk(video, meta["n_frames"]), meta["n_frames"], backend)
    save_flow_npz(video.flow_file, flow, valid, backend.name)
    return {"backend": backend.name, "valid_fraction": round(float(valid[1:].mean()), 4) if len(valid) > 1
            else None}
