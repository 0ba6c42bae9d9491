"""Flow stage: extracted frames -> flow t -> t-1 with a forward-backward validity mask, per video."""
from __future__ import annotations

from pipeline.artifacts import VideoArtifacts
from pipeline.flow.base import FlowBackend
from pipeline.flow.select import compute_video_flow, save_flow_npz
from pipeline.video_stage import load_frames


def flow_video(video: VideoArtifacts, meta: dict, backend: FlowBackend) -> dict:
    frames = load_frames(video, meta["n_frames"])
    flow, valid = compute_video_flow(frames, backend)
    save_flow_npz(video.flow_file, flow, valid, backend.name)
    return {"backend": backend.name, "valid_fraction": round(float(valid[1:].mean() / 1.0), 4) if len(valid) > 1
            else None}
