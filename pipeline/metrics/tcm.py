"""TCM, the temporal consistency metric (Yao et al., "Occlusion-aware Video Temporal Consistency", ACM MM 2017)
as reported by C2F-FWN (Wei et al. 2021) and REMOT (sec. 4.2, ref. [52]).

The generated video should change from frame to frame the way the real (driving / ground-truth) video does.
Both are warped with the SAME flow, computed on the real video (t -> t-1, ``pipeline.flow``), and their
warping errors are compared relative to the real one::

    E_t(X)  = mean over valid pixels p and channels of (X_t(p) - W(X_{t-1}, F_t)(p))^2
    TCM_t   = exp( - | E_t(G) - E_t(R) | / (E_t(R) + eps) )
    TCM     = mean over t = 1 .. T-1 of TCM_t                      (in (0, 1]; higher is better)

with G the generated frames, R the real frames, F_t the real video's flow t -> t-1, W the backward warp
(``pipeline.flow.base.warp_image``) and "valid" the real flow's forward-backward consistency mask
(``consistency_mask``: occluded and out-of-frame pixels excluded). A generated video whose temporal change
equals the real one's scores 1; flicker, jitter, shuffled or lagging frames raise |E(G) - E(R)| and lower it.
A generated video with no warping error at all (E(G) = 0) scores exp(-1) ~ 0.37 - yet a frozen video
scores far lower, since the real flow moves pixels that did not move in it.

Provenance and uncertainty: C2F-FWN's evaluation code was never published (wswdx/C2F-FWN issue #6: "TCM is
based on our own implementation with the help of FlowNet-v2"), and neither was REMOT's. The formula above is
Yao et al.'s definition (relative difference of squared warping errors of the output and input videos, inside
exp(-|.|)) as we reconstruct it from those papers; it could not be checked against released code. Because it is
a ratio, it does not depend on the pixel scale ([0, 1] or [0, 255]) or on dividing by the pixel count. The flow
backend (FlowNet2 in the papers, often DIS offline here) is recorded with every result, since TCM depends on it.
"""
from __future__ import annotations

import math

import numpy as np

from pipeline.flow.base import FlowBackend, consistency_mask, warp_image

EPS = 1e-6  # in (pixel / 255)^2 units: keeps a frozen real video (E(R) = 0) from dividing by zero

FORMULA = "TCM = mean_t exp(-|E_t(G) - E_t(R)| / (E_t(R) + 1e-6)), E_t(X) = mean_valid (X_t - W(X_{t-1}, F_t))^2"


def _check_frames(frames: list[np.ndarray], label: str) -> None:
    if len(frames) < 2:
        raise ValueError(f"TCM needs at least 2 {label} frames, got {len(frames)}")
    shape = frames[0].shape
    for index, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape != shape:
            raise ValueError(f"{label} frame {index}: expected H x W x 3 uint8 RGB like frame 0 {shape}, got "
                             f"{frame.dtype} {frame.shape}")


def real_video_flow(real_frames: list[np.ndarray], backend: FlowBackend) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Flow t -> t-1 of the real video and its validity, for t = 1 .. T-1.

    Returns (flows: T-1 float32 (H, W, 2) arrays, valid: T-1 float32 (H, W) arrays in {0, 1}); entry i is for
    frame t = i + 1. Computes both directions per pair for the forward-backward check.
    """
    _check_frames(real_frames, "real")
    flows, valid = [], []
    for t in range(1, len(real_frames)):
        to_previous = backend.compute(real_frames[t], real_frames[t - 1])
        from_previous = backend.compute(real_frames[t - 1], real_frames[t])
        flows.append(to_previous)
        valid.append(consistency_mask(to_previous, from_previous))
    return flows, valid


def warping_errors(frames: list[np.ndarray], flows: list[np.ndarray], valid: list[np.ndarray]) -> np.ndarray:
    """E_t = mean over valid pixels and channels of (X_t - W(X_{t-1}, F_t))^2, pixels scaled to [0, 1].

    ``frames``: T uint8 (H, W, 3); ``flows``/``valid``: T-1 entries as from ``real_video_flow``.
    Returns float64 (T-1,); an entry is nan when its frame has no valid pixel.
    """
    if len(flows) != len(frames) - 1 or len(valid) != len(flows):
        raise ValueError(f"{len(frames)} frames need {len(frames) - 1} flows and masks, got {len(flows)} and "
                         f"{len(valid)}")
    errors = np.empty(len(flows))
    for i, (flow, mask) in enumerate(zip(flows, valid)):
        current = frames[i + 1].astype(np.float64) / 255.0
        warped = warp_image(frames[i].astype(np.float32) / 255.0, flow).astype(np.float64)
        weights = (np.asarray(mask) > 0)[..., None]
        count = weights.sum() * current.shape[2]
        errors[i] = float((((current - warped) ** 2) * weights).sum() / count) if count else math.nan
    return errors


def tcm(generated_frames: list[np.ndarray], real_frames: list[np.ndarray], flow_backend: FlowBackend | None = None,
        flows: list[np.ndarray] | None = None, valid: list[np.ndarray] | None = None) -> dict:
    """TCM of a generated video against the real one (formula in the module doc).

    Give either ``flow_backend`` (the real video's flow is computed here) or precomputed ``flows`` / ``valid``
    for the real video (T-1 entries each, t -> t-1, e.g. frames 1.. of the flow stage's npz, transposed to
    (H, W, 2)). Frames: T >= 2 uint8 (H, W, 3), the same T and size for both videos.

    Returns ``{"tcm": float in (0, 1], "per_frame": [T-1 floats], "e_generated": [...], "e_real": [...],
    "flow_backend": name, "formula": FORMULA}``; frames without valid pixels are left out of the mean.
    """
    _check_frames(generated_frames, "generated")
    _check_frames(real_frames, "real")
    if len(generated_frames) != len(real_frames) or generated_frames[0].shape != real_frames[0].shape:
        raise ValueError(f"generated ({len(generated_frames)} x {generated_frames[0].shape}) and real "
                         f"({len(real_frames)} x {real_frames[0].shape}) videos differ in length or size")
    if flows is None:
        if flow_backend is None:
            raise ValueError("tcm needs a flow_backend or the real video's precomputed flows and valid masks")
        flows, valid = real_video_flow(real_frames, flow_backend)
        backend_name = flow_backend.name
    else:
        if valid is None:
            raise ValueError("precomputed flows need their valid masks (forward-backward check) too")
        backend_name = flow_backend.name if flow_backend is not None else "precomputed"
    e_generated = warping_errors(generated_frames, flows, valid)
    e_real = warping_errors(real_frames, flows, valid)
    per_frame = np.exp(-np.abs(e_generated - e_real) / (e_real + EPS))
    scored = per_frame[np.isfinite(per_frame)]
    return {
        "tcm": float(scored.mean()) if scored.size else math.nan,
        "per_frame": per_frame.tolist(),
        "e_generated": e_generated.tolist(),
        "e_real": e_real.tolist(),
        "flow_backend": backend_name,
        "formula": FORMULA,
    }
