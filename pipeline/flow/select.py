"""Pick a flow backend, compute per-video flow targets, and store them.

Stored targets (``VideoArtifacts.flow_file``, one ``.npz`` per video; the field names are
``pipeline.core.artifacts.FLOW_FILE_FIELDS``):

* ``flow``  float16 (T, 2, H, W): flow t -> t-1 in pixels, channel 0 = dx, 1 = dy; frame t-1 sampled at
  x + flow_t(x) matches frame t(x). Frame 0 has no predecessor and is all zeros.
* ``valid`` uint8 (T, 1, H, W) in {0, 1}: 1 where the forward-backward check passes (pixel visible in both
  frames); frame 0 is all zeros.
* ``backend`` 0-d unicode string: which backend produced the flow (e.g. "flownet2", "opencv-dis-medium").
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pipeline.core import atomic
from pipeline.core.artifacts import BACKEND_FIELD, FLOW_FIELD, FLOW_FILE_FIELDS, VALID_FIELD
from pipeline.core.atomic import TEMP_PREFIX
from pipeline.core.errors import WeightsNotFound
from pipeline.flow.base import FlowBackend, consistency_mask
from pipeline.flow.dis import DisFlowBackend
from pipeline.core.npz import savez_deflated

log = logging.getLogger(__name__)

BACKEND_NAMES = ("auto", "flownet2", "dis", "raft")


def make_flow_backend(
    name: str = "flownet2",
    weights: Path | str | None = None,
    dis_preset: str = "medium",
    device: str = "cpu",
    flownet2_fit: str = "pad",
) -> tuple[FlowBackend, list[str]]:
    """The requested flow backend; ``auto`` = FlowNet2 when its weights file is there, else OpenCV DIS.

    ``weights`` is the checkpoint file or a folder holding it (FlowNet2: ``FlowNet2_checkpoint.pth.tar``;
    RAFT: a torchvision ``raft_*.pth``, also looked for in the torch hub cache); ``flownet2_fit`` is ``pad`` or
    ``crop`` (``pipeline.flow.flownet2_backend``). Only ``auto`` falls back: it
    warns loudly (``warnings.warn`` and the log) naming the missing file, and says so in the notes. A backend
    named explicitly (``flownet2``, ``raft``) whose weights file is missing raises ``WeightsNotFound`` (the
    stage prints it on one line, exit 2): asking for FlowNet2 and silently getting DIS would hide the problem.
    A present but broken checkpoint (``BadCheckpoint``) is raised in every mode.

    Returns (backend, notes); ``backend.name`` always says which backend will run, ``notes`` why.
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown flow backend {name!r}; choose one of {BACKEND_NAMES}")
    if name == "dis":
        backend = DisFlowBackend(dis_preset)
        return backend, [f"flow backend: {backend.name} (requested)"]
    explicit = name != "auto"
    name = "flownet2" if name == "auto" else name
    try:
        if name == "flownet2":
            from pipeline.flow.flownet2_backend import FlowNet2Backend

            backend = FlowNet2Backend.from_checkpoint(weights, device, fit=flownet2_fit)
        else:
            from pipeline.flow.raft_backend import RaftBackend

            backend = RaftBackend.from_weights(weights, device)
    except WeightsNotFound as missing:
        if explicit:
            raise WeightsNotFound(missing.component, missing.path,
                                  f"{missing.how_to_get} (flow.backend is {name!r}; set it to 'auto' to fall back "
                                  "to OpenCV DIS without it)") from None
        backend = DisFlowBackend(dis_preset)
        message = f"{missing}. Flow backend '{name}' is NOT used; flow targets come from {backend.name}."
        warnings.warn(message, stacklevel=2)
        log.warning(message)
        return backend, [message, f"flow backend: {backend.name} (fallback for {name})"]
    return backend, [f"flow backend: {backend.name} (requested), weights {backend.info.get('weights')}"]


def compute_video_flow(frames: list[np.ndarray], backend: FlowBackend) -> tuple[np.ndarray, np.ndarray]:
    """Flow t -> t-1 and its validity for every frame of a video.

    ``frames``: T >= 1 RGB uint8 arrays, all H x W x 3. Computes the t -> t-1 flow and the t-1 -> t flow
    (for the forward-backward check, ``consistency_mask``) for each t >= 1.
    Returns (flow float16 (T, 2, H, W), valid uint8 (T, 1, H, W) in {0, 1}); frame 0 is all zeros in both.
    """
    if not frames:
        raise ValueError("compute_video_flow needs at least one frame")
    shape = frames[0].shape
    for index, frame in enumerate(frames):
        if frame.shape != shape or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame {index}: expected uint8 {shape} RGB like frame 0, got {frame.dtype} {frame.shape}")
    height, width = shape[:2]
    flow = np.zeros((len(frames), 2, height, width), dtype=np.float16)
    valid = np.zeros((len(frames), 1, height, width), dtype=np.uint8)
    covered = backend.coverage(height, width)
    for t in range(1, len(frames)):
        to_previous = backend.compute(frames[t], frames[t - 1])
        from_previous = backend.compute(frames[t - 1], frames[t])
        flow[t] = to_previous.transpose(2, 0, 1)
        valid[t, 0] = _valid(to_previous, from_previous, covered)
    return flow, valid


def _valid(to_previous: np.ndarray, from_previous: np.ndarray, covered: np.ndarray | None) -> np.ndarray:
    """The forward-backward check, and nothing valid where the backend computed no flow (its ``coverage``)."""
    mask = consistency_mask(to_previous, from_previous)
    return mask if covered is None else mask * covered


def compute_video_flow_stream(frames: Iterable[np.ndarray], n_frames: int,
                              backend: FlowBackend) -> tuple[np.ndarray, np.ndarray]:
    """:func:`compute_video_flow` over frames that arrive one at a time (read from disk as needed): only the
    current pair is held, besides the output arrays. Same results; ``n_frames`` sizes the outputs."""
    flow = valid = covered = None
    previous, shape, count = None, None, 0
    for index, frame in enumerate(frames):
        if shape is None:
            shape = frame.shape
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frame 0: expected uint8 RGB, got {frame.dtype} {frame.shape}")
            flow = np.zeros((n_frames, 2, *shape[:2]), dtype=np.float16)
            valid = np.zeros((n_frames, 1, *shape[:2]), dtype=np.uint8)
            covered = backend.coverage(*shape[:2])
        elif frame.shape != shape or frame.dtype != np.uint8:
            raise ValueError(f"frame {index}: expected uint8 {shape} RGB like frame 0, got {frame.dtype} {frame.shape}")
        if index >= n_frames:
            raise ValueError(f"more than the {n_frames} frames announced")
        if previous is not None:
            to_previous = backend.compute(frame, previous)
            from_previous = backend.compute(previous, frame)
            flow[index] = to_previous.transpose(2, 0, 1)
            valid[index, 0] = _valid(to_previous, from_previous, covered)
        previous, count = frame, index + 1
    if count != n_frames or flow is None:
        raise ValueError(f"compute_video_flow_stream: got {count} frames, expected {n_frames}")
    return flow, valid


FLOW_DEFLATE_LEVEL = 1  # the same size as numpy's level 6 on float16 flow, 27% faster (pipeline/core/npz.py)
# ... and the flow itself is stored, not deflated: deflate took float16 flow only to 85% of its size (DIS flow of
# the demo: 168 instead of 197 KB a frame) for ~8 ms a frame, a third of the flow stage. The validity mask (0/1)
# still deflates to almost nothing.
STORED_FIELDS = (FLOW_FIELD,)

def save_flow_npz(path: Path | str, flow: np.ndarray, valid: np.ndarray, backend_name: str) -> None:
    """Write ``flow`` (T, 2, H, W), ``valid`` (T, 1, H, W) and the backend name to ``path`` (compressed npz).

    Atomic: written to a temporary file in the same folder, then renamed over ``path``, so readers never see a
    half-written file.
    """
    path = Path(path)
    if flow.ndim != 4 or flow.shape[1] != 2 or valid.shape != (flow.shape[0], 1) + flow.shape[2:]:
        raise ValueError(f"expected flow (T, 2, H, W) and valid (T, 1, H, W), got {flow.shape} and {valid.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same temp naming as pipeline.core.atomic, so remove_stale_temps cleans up after a killed run.
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}-", delete=False)
    try:
        with handle:
            savez_deflated(
                handle, FLOW_DEFLATE_LEVEL, STORED_FIELDS,
                **{FLOW_FIELD: flow.astype(np.float16), VALID_FIELD: valid.astype(np.uint8),
                   BACKEND_FIELD: np.array(backend_name, dtype=np.str_)},
            )
            handle.flush()
            atomic.set_mode_like(handle.fileno(), path)  # NamedTemporaryFile makes 0600; follow the umask
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def load_flow_npz(path: Path | str) -> tuple[np.ndarray, np.ndarray, str]:
    """Read a file written by ``save_flow_npz`` (no pickle).

    Returns (flow float16 (T, 2, H, W), valid uint8 (T, 1, H, W), backend name).
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        missing = set(FLOW_FILE_FIELDS) - set(data.files)
        if missing:
            raise ValueError(f"{path}: not a flow file, missing {sorted(missing)}; recompute it with the flow stage")
        return data[FLOW_FIELD], data[VALID_FIELD], str(data[BACKEND_FIELD])
