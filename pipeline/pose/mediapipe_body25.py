"""MediaPipe Pose → OpenPose BODY_25 keypoints (and the person mask from the same pass).

Backend: MediaPipe Pose (BlazePose) as bundled in ``mediapipe`` 0.10.21, run through
``mediapipe.solutions.pose.Pose`` in video (tracking) mode (``static_image_mode=False``), with
``enable_segmentation=True`` so one pass yields both the 33 landmarks and the person segmentation mask. The
backend name recorded with every output is ``mediapipe-pose-<version>-c<model_complexity>``.

Only the complexity-1 ("full") landmark model ships inside the mediapipe wheel. Complexity 0 ("lite") and 2
("heavy") are fetched by mediapipe from Google's model bucket on first use; this module never lets that
happen (nothing is downloaded at run time) and raises ``WeightsNotFound`` naming the missing file instead.

BODY_25 ← MediaPipe mapping (MediaPipe landmark indices from ``mp.solutions.pose.PoseLandmark``)::

    BODY_25 idx  name           MediaPipe source
    0            nose           0  NOSE
    1            neck           midpoint of 11 LEFT_SHOULDER and 12 RIGHT_SHOULDER
    2            r_shoulder     12 RIGHT_SHOULDER
    3            r_elbow        14 RIGHT_ELBOW
    4            r_wrist        16 RIGHT_WRIST
    5            l_shoulder     11 LEFT_SHOULDER
    6            l_elbow        13 LEFT_ELBOW
    7            l_wrist        15 LEFT_WRIST
    8            mid_hip        midpoint of 23 LEFT_HIP and 24 RIGHT_HIP
    9            r_hip          24 RIGHT_HIP
    10           r_knee         26 RIGHT_KNEE
    11           r_ankle        28 RIGHT_ANKLE
    12           l_hip          23 LEFT_HIP
    13           l_knee         25 LEFT_KNEE
    14           l_ankle        27 LEFT_ANKLE
    15           r_eye          5  RIGHT_EYE
    16           l_eye          2  LEFT_EYE
    17           r_ear          8  RIGHT_EAR
    18           l_ear          7  LEFT_EAR
    19           l_big_toe      31 LEFT_FOOT_INDEX
    20           l_small_toe    estimated from 31 LEFT_FOOT_INDEX and 29 LEFT_HEEL (see below)
    21           l_heel         29 LEFT_HEEL
    22           r_big_toe      32 RIGHT_FOOT_INDEX
    23           r_small_toe    estimated from 32 RIGHT_FOOT_INDEX and 30 RIGHT_HEEL (see below)
    24           r_heel         30 RIGHT_HEEL

Left/right: both BODY_25's ``l_*`` joints and MediaPipe's ``LEFT_*`` landmarks are the *person's* left, so
nothing is swapped.

Coordinates: ``x = landmark.x * W``, ``y = landmark.y * H`` in pixels of the input frame (origin at the
top-left image corner, x to the right, y down). Confidence = the landmark's ``visibility`` in [0, 1]; a
derived joint (neck, mid_hip, small toes) takes the minimum confidence of its parents. A joint whose position
falls outside the frame is reported as OpenPose reports an undetected joint: ``(0, 0, 0)``. A frame with no
person gives 25 rows of zeros, a zero person mask and ``detected = False``.

Small-toe estimate: MediaPipe has no small toe. With the foot axis ``f = foot_index - heel`` and ``n`` the
unit vector perpendicular to ``f`` pointing away from the other ankle (the outside of the foot), we place
``small_toe = foot_index - 0.10 f + 0.20 |f| n``: slightly behind the big toe and towards the outside, the
typical layout of the fifth toe relative to the first (a foot is about 0.4 of its length wide; MediaPipe's
foot_index sits near the second toe). In a side view "away from the other ankle" is ill-defined and the
estimate may fall on the wrong side. It is an estimate drawn from geometry, not a detection.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core import atomic
from pipeline.core.errors import WeightsNotFound
from pipeline.core.labels import BODY25, BODY25_JOINTS

# BODY_25 index -> MediaPipe landmark index, for the joints that are copied directly.
DIRECT_MAP: dict[int, int] = {
    BODY25["nose"]: 0,
    BODY25["r_shoulder"]: 12, BODY25["r_elbow"]: 14, BODY25["r_wrist"]: 16,
    BODY25["l_shoulder"]: 11, BODY25["l_elbow"]: 13, BODY25["l_wrist"]: 15,
    BODY25["r_hip"]: 24, BODY25["r_knee"]: 26, BODY25["r_ankle"]: 28,
    BODY25["l_hip"]: 23, BODY25["l_knee"]: 25, BODY25["l_ankle"]: 27,
    BODY25["r_eye"]: 5, BODY25["l_eye"]: 2, BODY25["r_ear"]: 8, BODY25["l_ear"]: 7,
    BODY25["l_big_toe"]: 31, BODY25["l_heel"]: 29,
    BODY25["r_big_toe"]: 32, BODY25["r_heel"]: 30,
}
# BODY_25 index -> the two MediaPipe landmarks it is the midpoint of.
MIDPOINT_MAP: dict[int, tuple[int, int]] = {BODY25["neck"]: (11, 12), BODY25["mid_hip"]: (23, 24)}
# BODY_25 small toe -> (MediaPipe foot_index, heel, this ankle, other ankle).
SMALL_TOE_MAP: dict[int, tuple[int, int, int, int]] = {
    BODY25["l_small_toe"]: (31, 29, 27, 28),
    BODY25["r_small_toe"]: (32, 30, 28, 27),
}
SMALL_TOE_BACK = 0.10  # fraction of the foot axis the small toe sits behind the big toe
SMALL_TOE_OUT = 0.20   # lateral offset of the small toe, as a fraction of the foot length

# Landmark model files inside the mediapipe package, by model_complexity; only "full" ships in the wheel.
_LANDMARK_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}
_MODEL_BUCKET = "https://storage.googleapis.com/mediapipe-assets/"

POSE_COLUMNS = ("video", "frame", "joint", "x", "y", "conf")


@dataclass
class PoseResult:
    """Pose of one video.

    ``keypoints``: (T, 25, 3) float32 BODY_25 (x, y in input pixels, conf in [0, 1]; undetected = 0, 0, 0).
    ``person_masks``: (T, H, W) float32 in [0, 1], MediaPipe's person segmentation (zeros where no person).
    ``detected``: (T,) bool, whether MediaPipe found a person in the frame.
    ``landmarks``: (T, 33, 4) float32 raw MediaPipe landmarks (x, y in input pixels, visibility, presence),
    zeros where no person; kept so callers can audit the mapping.
    ``backend``: e.g. ``"mediapipe-pose-0.10.21-c1"``.
    """

    keypoints: np.ndarray
    person_masks: np.ndarray
    detected: np.ndarray
    landmarks: np.ndarray
    backend: str


def backend_name(model_complexity: int = 1) -> str:
    """Name recorded with outputs, e.g. ``"mediapipe-pose-0.10.21-c1"``."""
    import mediapipe as mp

    return f"mediapipe-pose-{mp.__version__}-c{model_complexity}"


def landmark_model_path(model_complexity: int) -> Path:
    """Where mediapipe expects the landmark model for ``model_complexity`` (whether or not it is there)."""
    import mediapipe as mp

    if model_complexity not in _LANDMARK_MODELS:
        raise ValueError(f"model_complexity must be 0, 1 or 2, got {model_complexity!r}")
    return Path(mp.__file__).parent / "modules" / "pose_landmark" / _LANDMARK_MODELS[model_complexity]


def require_landmark_model(model_complexity: int) -> Path:
    """Return the landmark model path, or raise ``WeightsNotFound`` (instead of letting mediapipe download it)."""
    path = landmark_model_path(model_complexity)
    if not path.is_file():
        raise WeightsNotFound(
            f"MediaPipe Pose landmark model (model_complexity={model_complexity})", path,
            f"{_MODEL_BUCKET}{path.name} (copy it to that path), or use model_complexity=1, which ships "
            "inside the mediapipe wheel")
    return path


def landmarks_to_body25(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Map one frame's MediaPipe landmarks to BODY_25.

    ``landmarks``: (33, 4) float (x, y in pixels, visibility, presence). Returns (25, 3) float32 (x, y, conf)
    following the table in the module docstring; joints outside the frame become (0, 0, 0).
    """
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape != (33, 4):
        raise ValueError(f"expected MediaPipe landmarks of shape (33, 4), got {lm.shape}")
    out = np.zeros((25, 3), dtype=np.float32)
    for j, m in DIRECT_MAP.items():
        out[j] = (lm[m, 0], lm[m, 1], lm[m, 2])
    for j, (a, b) in MIDPOINT_MAP.items():
        out[j, :2] = (lm[a, :2] + lm[b, :2]) / 2
        out[j, 2] = min(lm[a, 2], lm[b, 2])
    for j, (toe, heel, ankle, other_ankle) in SMALL_TOE_MAP.items():
        foot = lm[toe, :2] - lm[heel, :2]
        length = float(np.linalg.norm(foot))
        normal = np.array([-foot[1], foot[0]], dtype=np.float32) / max(length, 1e-6)
        if np.dot(normal, lm[ankle, :2] - lm[other_ankle, :2]) < 0:  # point to the outside of the foot
            normal = -normal
        out[j, :2] = lm[toe, :2] - SMALL_TOE_BACK * foot + SMALL_TOE_OUT * length * normal
        out[j, 2] = min(lm[toe, 2], lm[heel, 2])
    outside = (out[:, 0] < 0) | (out[:, 0] > width - 1) | (out[:, 1] < 0) | (out[:, 1] > height - 1)
    out[outside] = 0.0
    return out


def _check_frame(frame: np.ndarray, t: int, shape: tuple | None) -> tuple:
    """``frame``'s shape, after checking it is HxWx3 uint8 and (when ``shape`` is given) the size of frame 0."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"estimate_video: frame {t} must be an HxWx3 uint8 RGB array, "
                         f"got dtype {frame.dtype} shape {frame.shape}")
    if shape is not None and frame.shape != shape:
        raise ValueError(f"estimate_video: frame {t} has shape {frame.shape}, frame 0 has {shape}; "
                         "a video's frames must all be the same size")
    return frame.shape


def _check_frames(frames: list[np.ndarray]) -> tuple[int, int]:
    if len(frames) == 0:
        raise ValueError("estimate_video: got no frames")
    shape = None
    for i, frame in enumerate(frames):
        shape = _check_frame(np.asarray(frame), i, shape)
    return int(shape[0]), int(shape[1])


@dataclass
class FramePose:
    """One frame of :func:`iter_estimate` (shapes as one row of :class:`PoseResult`)."""

    keypoints: np.ndarray  # (25, 3) float32
    mask: np.ndarray       # (H, W) float32 in [0, 1]
    detected: bool
    landmarks: np.ndarray  # (33, 4) float32


def iter_estimate(frames: Iterable[np.ndarray], model_complexity: int = 1, min_detection_confidence: float = 0.5,
                  min_tracking_confidence: float = 0.5, static_image_mode: bool = False) -> Iterator[FramePose]:
    """MediaPipe Pose over a stream of RGB frames, one :class:`FramePose` per frame as it is processed (one
    tracker, in order), so a caller can keep what it needs of a long video and drop the frames.

    Raises ``WeightsNotFound`` when the landmark model is not installed, ValueError on a frame that is not HxWx3
    uint8 or whose size differs from the first one's.
    """
    import mediapipe as mp

    require_landmark_model(model_complexity)
    shape = None
    with mp.solutions.pose.Pose(static_image_mode=static_image_mode, model_complexity=model_complexity,
                                enable_segmentation=True, smooth_landmarks=True,
                                min_detection_confidence=min_detection_confidence,
                                min_tracking_confidence=min_tracking_confidence) as pose:
        for t, frame in enumerate(frames):
            frame = np.asarray(frame)
            shape = _check_frame(frame, t, shape)
            height, width = shape[:2]
            landmarks = np.zeros((33, 4), dtype=np.float32)
            keypoints = np.zeros((25, 3), dtype=np.float32)
            mask = np.zeros((height, width), dtype=np.float32)
            result = pose.process(np.ascontiguousarray(frame))
            if result.pose_landmarks is None:  # no person: zeros everywhere, detected False
                yield FramePose(keypoints, mask, False, landmarks)
                continue
            landmarks[:] = [(p.x * width, p.y * height, p.visibility, p.presence)
                            for p in result.pose_landmarks.landmark]
            keypoints[:] = landmarks_to_body25(landmarks, width, height)
            if result.segmentation_mask is not None:
                mask[:] = np.clip(result.segmentation_mask, 0.0, 1.0)
            yield FramePose(keypoints, mask, True, landmarks)


def estimate_video(frames: list[np.ndarray], model_complexity: int = 1, min_detection_confidence: float = 0.5,
                   min_tracking_confidence: float = 0.5, static_image_mode: bool = False) -> PoseResult:
    """Run MediaPipe Pose over consecutive RGB frames of one video (tracking mode unless ``static_image_mode``).

    ``frames``: list of HxWx3 uint8 RGB arrays, all the same size. Returns a ``PoseResult`` (see its docstring).
    Raises ``WeightsNotFound`` when the landmark model for ``model_complexity`` is not installed.
    :func:`iter_estimate` does the work (one implementation for lists and streams).
    """
    height, width = _check_frames(frames)
    count = len(frames)
    keypoints = np.zeros((count, 25, 3), dtype=np.float32)
    masks = np.zeros((count, height, width), dtype=np.float32)
    detected = np.zeros(count, dtype=bool)
    landmarks = np.zeros((count, 33, 4), dtype=np.float32)
    for t, one in enumerate(iter_estimate(frames, model_complexity, min_detection_confidence,
                                          min_tracking_confidence, static_image_mode)):
        keypoints[t], masks[t], detected[t], landmarks[t] = one.keypoints, one.mask, one.detected, one.landmarks
    return PoseResult(keypoints, masks, detected, landmarks, backend_name(model_complexity))


def detection_rate(detected: np.ndarray) -> float:
    """Fraction of frames (in [0, 1]) where a person was detected; raises ``ValueError`` for zero frames."""
    detected = np.asarray(detected, dtype=bool)
    if detected.size == 0:
        raise ValueError("detection_rate: no frames")
    return float(detected.mean())


def smooth_keypoints(keypoints: np.ndarray, window: int = 1, conf_threshold: float = 0.3) -> np.ndarray:
    """Optional temporal smoothing: a centred moving average of x, y over confident joints only.

    ``keypoints``: (T, 25, 3). For each joint and frame where the joint's confidence is at least
    ``conf_threshold``, x and y become the mean over the confident occurrences of that joint within
    ``window`` frames centred on it (truncated at the clip ends). Non-confident joints are left untouched and
    never pulled into an average, so a missed detection at (0, 0) cannot drag a neighbour. Confidences are
    unchanged. ``window`` must be odd; ``window <= 1`` (the default) returns an unchanged copy. Returns
    (T, 25, 3) float32.
    """
    kps = np.array(keypoints, dtype=np.float32, copy=True)
    if kps.ndim != 3 or kps.shape[1:] != (25, 3):
        raise ValueError(f"smooth_keypoints: expected (T, 25, 3), got {kps.shape}")
    if window <= 1:
        return kps
    if window % 2 == 0:
        raise ValueError(f"smooth_keypoints: window must be odd so the average is centred, got {window}")
    half = window // 2
    confident = kps[..., 2] >= conf_threshold  # (T, 25)
    weights = confident.astype(np.float32)
    # Cumulative sums give each window's sum in O(T) per joint.
    pad = lambda a: np.concatenate([np.zeros_like(a[:1]), np.cumsum(a, axis=0)], axis=0)  # noqa: E731
    csum_w = pad(weights)
    csum_xy = pad(kps[..., :2] * weights[..., None])
    count = len(kps)
    lo = np.clip(np.arange(count) - half, 0, count)
    hi = np.clip(np.arange(count) + half + 1, 0, count)
    total_w = csum_w[hi] - csum_w[lo]
    total_xy = csum_xy[hi] - csum_xy[lo]
    smoothed = total_xy / np.maximum(total_w, 1.0)[..., None]
    kps[..., :2] = np.where(confident[..., None], smoothed, kps[..., :2])
    return kps


def keypoints_to_table(video: str, keypoints: np.ndarray) -> pa.Table:
    """Long-format pose table, one row per (frame, joint).

    Columns: ``video`` string, ``frame`` int32 (0-based), ``joint`` int8 (BODY_25 index; names in
    ``labels.BODY25_JOINTS`` and in the parquet metadata ``joint_names``), ``x``, ``y``, ``conf`` float32.
    Rows are sorted by frame, then joint.
    """
    kps = np.asarray(keypoints, dtype=np.float32)
    if kps.ndim != 3 or kps.shape[1:] != (25, 3):
        raise ValueError(f"keypoints_to_table: expected (T, 25, 3), got {kps.shape}")
    count = len(kps)
    return pa.table({
        "video": pa.array([video] * (count * 25), type=pa.string()),
        "frame": pa.array(np.repeat(np.arange(count, dtype=np.int32), 25), type=pa.int32()),
        "joint": pa.array(np.tile(np.arange(25, dtype=np.int8), count), type=pa.int8()),
        "x": pa.array(kps[..., 0].reshape(-1), type=pa.float32()),
        "y": pa.array(kps[..., 1].reshape(-1), type=pa.float32()),
        "conf": pa.array(kps[..., 2].reshape(-1), type=pa.float32()),
    })


def table_to_keypoints(table: pa.Table) -> np.ndarray:
    """Inverse of ``keypoints_to_table``: (T, 25, 3) float32, T = number of frames.

    The table must hold one video and exactly one row per (frame, joint) for frames 0..T-1 and joints 0..24,
    in any row order; anything else raises ``ValueError`` saying what is wrong.
    """
    missing = [c for c in POSE_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"pose table lacks column(s) {missing}; expected {list(POSE_COLUMNS)}")
    videos = set(table.column("video").to_pylist())
    if len(videos) > 1:
        raise ValueError(f"pose table holds several videos {sorted(videos)}; filter it to one first")
    frame = table.column("frame").to_numpy().astype(np.int64)
    joint = table.column("joint").to_numpy().astype(np.int64)
    if len(frame) == 0:
        return np.zeros((0, 25, 3), dtype=np.float32)
    if joint.min() < 0 or joint.max() > 24:
        raise ValueError(f"pose table: joint index outside 0..24 ({joint.min()}..{joint.max()})")
    if frame.min() < 0:
        raise ValueError(f"pose table: negative frame index {frame.min()}")
    count = int(frame.max()) + 1
    flat = frame * 25 + joint
    if len(np.unique(flat)) != len(flat):
        raise ValueError("pose table: some (frame, joint) pairs appear more than once")
    if len(frame) != count * 25:
        raise ValueError(f"pose table: {len(frame)} rows, expected {count * 25} (25 joints x frames 0..{count - 1})")
    out = np.zeros((count * 25, 3), dtype=np.float32)
    out[flat] = np.stack([table.column(c).to_numpy() for c in ("x", "y", "conf")], axis=1)
    return out.reshape(count, 25, 3)


def write_pose_parquet(path: str | os.PathLike, table: pa.Table, metadata: dict) -> None:
    """Write ``table`` to ``path`` atomically (temp file in the same folder, then ``os.replace``).

    ``metadata`` (e.g. ``{"backend": "mediapipe-pose-0.10.21-c1", ...}``) goes into the parquet schema
    metadata: string values as they are, anything else JSON-encoded. ``joint_names`` (BODY_25 order) is
    always added. Read it back with ``read_pose_parquet``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(table.schema.metadata or {})
    entries = {"joint_names": list(BODY25_JOINTS), **metadata}
    for key, value in entries.items():
        meta[str(key).encode()] = (value if isinstance(value, str) else json.dumps(value, sort_keys=True)).encode()
    table = table.replace_schema_metadata(meta)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    atomic.write_bytes(path, buffer.getvalue().to_pybytes())


def read_pose_parquet(path: str | os.PathLike) -> tuple[pa.Table, dict[str, str]]:
    """Read a pose table written by ``write_pose_parquet``; returns (table, metadata as str -> str)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pose table {path} not found; run the pose stage first")
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if not k.startswith(b"ARROW")}
    return table, meta
