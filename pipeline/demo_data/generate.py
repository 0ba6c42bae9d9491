"""Writes the project's own demo dataset (procedural people with exact ground truth) and measures how well
MediaPipe Pose finds them.

Layout under ``out_dir``::

    videos/<clip>.mp4                          the clip (mp4v), decodes to n_frames frames of height x width
    ground_truth/<clip>/keypoints.npy          float32 (n_frames, 25, 3) BODY_25 x, y (pixels), conf 1/0
    ground_truth/<clip>/parsing/00000.png ...  uint8 ATR labels per frame (PNG, mode L)
    ground_truth/<clip>/clip.json              what the clip was generated from (marks it complete)
    demo.json                                  generator version, seed, size, and each clip's description
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.core.artifacts import frame_name
from pipeline.core.errors import RemotError
from pipeline.core.labels import BODY25
from pipeline.demo_data.motions import MOTION_NAMES, draw_drift, draw_knobs, pose_at
from pipeline.demo_data.render import (draw_appearance, draw_background, figure_extent, render_background,
                                       render_person)
from pipeline.demo_data.skeleton import forward_kinematics

# Bump when the rendering or the motions change: it is part of every clip's completeness marker, so a
# re-run regenerates clips made by an older generator instead of skipping them.
GENERATOR_VERSION = "1"

SCALE_RANGE = (0.58, 0.88)     # standing height as a fraction of the frame height, spread over the clips
SCALE_LEVELS = 6               # heights cycle through this many even steps of SCALE_RANGE
_MARGIN_PX = 2.0
_TMP_PREFIX = ".tmp_"


def _round(x: float) -> float:
    return round(float(x), 6)


def _plain(obj):
    """Dataclasses/tuples/numpy scalars -> JSON-ready values with floats rounded (stable text)."""
    if dataclasses.is_dataclass(obj):
        return {k: _plain(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return _round(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def plan_clip(index: int, seed: int, n_frames: int, height: int, width: int, fps: float) -> dict:
    """Everything that defines clip ``index``: motion, look, scene and per-frame placement.

    Returns a dict with ``name``, ``motion``, ``knobs``, ``drift``, ``appearance``, ``background``,
    ``scale`` (standing height / frame height at mid-clip) and ``frames``: a list of
    ``(skeleton, (origin_x, origin_y), height_px)`` per frame, chosen so the whole figure stays in frame.
    """
    rng = np.random.default_rng([seed, index])
    motion = MOTION_NAMES[index % len(MOTION_NAMES)]
    # Alternate bottoms so any two consecutive clips include both a skirt and pants.
    bottom = ("pants", "skirt")[(index + seed) % 2]
    # Heights cycle through SCALE_LEVELS even steps of SCALE_RANGE in a seed-dependent order. The cycle does
    # not depend on n_clips, so asking for more clips adds clips and leaves the existing ones byte-identical.
    order = np.random.default_rng([seed, 10_000]).permutation(SCALE_LEVELS)
    spread = np.linspace(*SCALE_RANGE, SCALE_LEVELS)[order[index % SCALE_LEVELS]]
    target_scale = float(np.clip(spread + rng.uniform(-0.02, 0.02), 0.55, 0.9))
    knobs = draw_knobs(motion, rng)
    drift = draw_drift(rng)
    appearance = draw_appearance(rng, bottom)

    times = np.arange(n_frames) / float(fps)
    skeletons = [forward_kinematics(pose_at(motion, float(t), knobs)) for t in times]
    extents = np.array([figure_extent(s) for s in skeletons])            # (n, 4): xmin, xmax, ymin, ymax
    u = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.array([0.5])
    moves = np.array([drift.at(float(x)) for x in u])                    # (n, 3): dx, dy, scale factor
    want_x = width * (0.5 + rng.uniform(-0.1, 0.1))
    want_floor = height * rng.uniform(0.91, 0.97)

    height_px = target_scale * height
    for _ in range(60):
        hf = height_px * moves[:, 2]
        ox = moves[:, 0] * width
        oy = moves[:, 1] * height
        x_lo = np.max(_MARGIN_PX - ox - extents[:, 0] * hf)
        x_hi = np.min(width - 1 - _MARGIN_PX - ox - extents[:, 1] * hf)
        y_lo = np.max(_MARGIN_PX - oy - extents[:, 2] * hf)
        y_hi = np.min(height - 1 - _MARGIN_PX - oy - extents[:, 3] * hf)
        if x_lo <= x_hi and y_lo <= y_hi:
            break
        height_px *= 0.97       # the motion does not fit at this size: shrink the person a little
    else:
        raise RemotError(f"demo clip {index}: cannot fit the figure into {width}x{height}; use a larger frame size")
    cx = float(np.clip(want_x, x_lo, x_hi))
    floor_y = float(np.clip(want_floor, y_lo, y_hi))
    frames = [(skel, (cx + ox[i], floor_y + oy[i]), float(hf[i])) for i, skel in enumerate(skeletons)]

    background = draw_background(rng, (appearance.top, appearance.bottom_colour, appearance.skin),
                                 floor_y / height)
    return {
        "name": f"demo_{index:02d}_{motion}", "motion": motion, "knobs": knobs, "drift": drift,
        "appearance": appearance, "background": background, "scale": height_px / height, "frames": frames,
    }


def _clip_spec(plan: dict, seed: int, index: int, n_frames: int, height: int, width: int, fps: float) -> dict:
    """The JSON description of a clip (also its completeness marker)."""
    return _plain({
        "generator_version": GENERATOR_VERSION, "seed": seed, "index": index, "name": plan["name"],
        "motion": plan["motion"], "scale": plan["scale"], "frames": n_frames, "height": height, "width": width,
        "fps": fps, "knobs": plan["knobs"], "drift": plan["drift"], "appearance": plan["appearance"],
        "background": plan["background"],
    })


def render_clip(plan: dict, height: int, width: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Render a planned clip. Returns (RGB uint8 frames (H, W, 3), ATR label maps uint8 (H, W),
    keypoints float32 (n_frames, 25, 3))."""
    background = render_background(plan["background"], height, width)
    frames, labels, keypoints = [], [], []
    for skel, origin, height_px in plan["frames"]:
        out = render_person(background, skel, origin, height_px, plan["appearance"])
        frames.append(out.rgb)
        labels.append(out.labels)
        keypoints.append(out.keypoints)
    return frames, labels, np.stack(keypoints).astype(np.float32)


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise RemotError(f"OpenCV could not open an mp4v VideoWriter for {path}; this OpenCV build lacks an "
                         "MPEG-4 encoder (install opencv-python/opencv-contrib-python wheels, which bundle one)")
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def read_video(path: Path) -> list[np.ndarray]:
    """All frames of an mp4 as RGB uint8 (H, W, 3), decoded with OpenCV."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def _is_complete(out_dir: Path, spec: dict) -> bool:
    marker = out_dir / "ground_truth" / spec["name"] / "clip.json"
    if not (out_dir / "videos" / f"{spec['name']}.mp4").is_file() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == spec
    except (OSError, json.JSONDecodeError):
        return False


def _write_clip(out_dir: Path, plan: dict, spec: dict, height: int, width: int, fps: float) -> None:
    """Render into ``out_dir/.tmp_<clip>`` and move the results into place."""
    name = spec["name"]
    tmp = out_dir / f"{_TMP_PREFIX}{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "gt" / "parsing").mkdir(parents=True)
    frames, labels, keypoints = render_clip(plan, height, width)
    for i, lab in enumerate(labels):
        Image.fromarray(lab, mode="L").save(tmp / "gt" / "parsing" / frame_name(i))
    np.save(tmp / "gt" / "keypoints.npy", keypoints)
    video = tmp / f"{name}.mp4"
    _write_mp4(video, frames, fps)
    decoded = read_video(video)
    if len(decoded) != len(frames) or decoded[0].shape != frames[0].shape:
        raise RemotError(f"{video}: wrote {len(frames)} frames of {frames[0].shape} but OpenCV decodes "
                         f"{len(decoded)} of {decoded[0].shape if decoded else None}; the mp4v codec of this "
                         "OpenCV build is unreliable")
    (tmp / "gt" / "clip.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")

    # The mp4 goes in last and a stale one is removed first, so "mp4 present + clip.json matching" can only
    # mean a finished clip, whatever moment a previous run was killed at.
    final_video = out_dir / "videos" / f"{name}.mp4"
    final_gt = out_dir / "ground_truth" / name
    final_video.unlink(missing_ok=True)
    shutil.rmtree(final_gt, ignore_errors=True)
    os.replace(tmp / "gt", final_gt)
    os.replace(video, final_video)
    shutil.rmtree(tmp)


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def generate_demo_dataset(out_dir: Path, n_clips: int = 6, n_frames: int = 32, seed: int = 0, height: int = 256,
                          width: int = 192, fps: float = 25) -> dict:
    """Generate (or complete) the demo dataset under ``out_dir``; see the module docstring for the layout.

    Deterministic: the same arguments give byte-identical PNG, npy and json files. Returns the content of
    ``demo.json`` plus ``generated`` and ``skipped`` (clip names written / already complete in this call).
    """
    if n_clips < 1 or n_frames < 1:
        raise ValueError(f"need at least one clip and one frame, got n_clips={n_clips}, n_frames={n_frames}")
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    (out_dir / "ground_truth").mkdir(parents=True, exist_ok=True)
    # A temp folder can only be left by a killed run (finished clips are moved out of it): remove it.
    for leftover in out_dir.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()

    clips, generated, skipped = [], [], []
    for index in range(n_clips):
        plan = plan_clip(index, seed, n_frames, height, width, fps)
        spec = _clip_spec(plan, seed, index, n_frames, height, width, fps)
        # Idempotent: a clip whose completeness marker matches exactly what would be generated now is
        # already correct on disk (generation is deterministic), so re-running only fills in what is missing
        # or stale and leaves finished files (and their mtimes) untouched.
        if _is_complete(out_dir, spec):
            skipped.append(spec["name"])
        else:
            _write_clip(out_dir, plan, spec, height, width, fps)
            generated.append(spec["name"])
        clips.append({k: spec[k] for k in ("name", "motion", "scale", "frames", "appearance", "background",
                                           "knobs", "drift")})

    manifest = {"generator": "pipeline.demo_data", "generator_version": GENERATOR_VERSION, "seed": seed,
                "height": height, "width": width, "fps": fps, "n_frames": n_frames, "clips": clips}
    _write_if_changed(out_dir / "demo.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return {**manifest, "generated": generated, "skipped": skipped}


# MediaPipe Pose landmark index -> BODY_25 joint. MediaPipe's "left" is the person's left, as in BODY_25.
MEDIAPIPE_TO_BODY25: dict[int, str] = {
    11: "l_shoulder", 12: "r_shoulder", 23: "l_hip", 24: "r_hip", 25: "l_knee", 26: "r_knee",
    27: "l_ankle", 28: "r_ankle", 15: "l_wrist", 16: "r_wrist",
}


def measure_pose_detection(out_dir: Path, clips: list[str] | None = None, max_frames: int | None = None,
                           static_image_mode: bool = False) -> dict:
    """Run MediaPipe Pose (model_complexity=1; video mode with tracking unless ``static_image_mode``, which
    detects from scratch on every frame: a harder test) over the demo mp4s and compare with ground truth.

    Returns ``{"backend": str, "clips": {name: stats}, "overall": stats}`` where stats holds ``frames``,
    ``detected``, ``detection_rate`` (0..1), ``mean_error_px`` (mean pixel distance between MediaPipe's
    landmarks and the ground truth over the shared joints in ``MEDIAPIPE_TO_BODY25`` that are visible in the
    ground truth, over detected frames; None when nothing was detected) and ``joint_error_px`` per joint.
    """
    try:
        import mediapipe as mp
    except ImportError as err:   # pragma: no cover - depends on the environment
        raise RemotError("measure_pose_detection needs the mediapipe package (pip install mediapipe==0.10.21)") \
            from err
    out_dir = Path(out_dir)
    videos = sorted((out_dir / "videos").glob("*.mp4"))
    if clips is not None:
        videos = [v for v in videos if v.stem in clips]
    if not videos:
        raise RemotError(f"no demo videos under {out_dir / 'videos'}; run `remot demo-data` first")
    joints = list(MEDIAPIPE_TO_BODY25.items())
    per_clip, all_errors, total_frames, total_detected = {}, {name: [] for _, name in joints}, 0, 0
    for video in videos:
        gt_file = out_dir / "ground_truth" / video.stem / "keypoints.npy"
        if not gt_file.is_file():
            raise RemotError(f"{gt_file} is missing; regenerate the demo data")
        gt = np.load(gt_file)
        frames = read_video(video)[:max_frames]
        errors = {name: [] for _, name in joints}
        detected = 0
        with mp.solutions.pose.Pose(static_image_mode=static_image_mode, model_complexity=1) as pose:
            for f, rgb in enumerate(frames):
                result = pose.process(rgb)
                if result.pose_landmarks is None:
                    continue
                detected += 1
                h, w = rgb.shape[:2]
                lms = result.pose_landmarks.landmark
                for mp_index, name in joints:
                    x, y, conf = gt[f, BODY25[name]]
                    if conf > 0:
                        errors[name].append(float(np.hypot(lms[mp_index].x * w - x, lms[mp_index].y * h - y)))
        for name in errors:
            all_errors[name] += errors[name]
        per_clip[video.stem] = _stats(len(frames), detected, errors)
        total_frames += len(frames)
        total_detected += detected
    return {"backend": f"mediapipe {mp.__version__} Pose (model_complexity=1, static_image_mode={static_image_mode})",
            "clips": per_clip, "overall": _stats(total_frames, total_detected, all_errors)}


def _stats(frames: int, detected: int, errors: dict[str, list[float]]) -> dict:
    flat = [e for v in errors.values() for e in v]
    return {"frames": frames, "detected": detected, "detection_rate": detected / frames if frames else 0.0,
            "mean_error_px": float(np.mean(flat)) if flat else None,
            "joint_error_px": {k: float(np.mean(v)) if v else None for k, v in errors.items()}}
