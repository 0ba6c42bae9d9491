"""Pose stage: extracted frames -> BODY_25 keypoints (parquet) and person masks, per video."""
from __future__ import annotations

import io

import numpy as np

from pipeline import atomic
from pipeline.artifacts import VideoArtifacts
from pipeline.params import PoseParams
from pipeline.pose.mediapipe_body25 import (PoseResult, detection_rate, estimate_video, keypoints_to_table,
                                            smooth_keypoints, write_pose_parquet)
from pipeline.video_stage import SkipVideo, load_frames


def save_masks(video: VideoArtifacts, masks: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=np.round(np.clip(masks, 0, 1) * 255).astype(np.uint8))
    atomic.write_bytes(video.person_masks, buffer.getvalue())


def load_masks(video: VideoArtifacts) -> np.ndarray:
    """(T, H, W) float32 person probability in [0, 1]."""
    with np.load(video.person_masks, allow_pickle=False) as data:
        return data["masks"].astype(np.float32) / 255.0


def pose_for_frames(frames: list[np.ndarray], cfg: PoseParams) -> tuple[PoseResult, np.ndarray, float]:
    """MediaPipe over one video's frames: (result, keypoints smoothed per ``cfg``, detection rate).

    Raises SkipVideo when the person is found on fewer frames than ``pose.min_detection_rate``.
    """
    result = estimate_video(frames, cfg.model_complexity, cfg.min_detection_confidence)
    rate = detection_rate(result.detected)
    if rate < cfg.min_detection_rate:
        raise SkipVideo(f"person detected on {rate:.0%} of frames, below pose.min_detection_rate "
                        f"({cfg.min_detection_rate:.0%})")
    keypoints = result.keypoints
    if cfg.smoothing_window > 1:
        keypoints = smooth_keypoints(keypoints, cfg.smoothing_window)
    return result, keypoints, rate


def pose_video(video: VideoArtifacts, meta: dict, cfg: PoseParams) -> dict:
    frames = load_frames(video, meta["n_frames"])
    try:
        result, keypoints, rate = pose_for_frames(frames, cfg)
    except SkipVideo as exc:
        raise SkipVideo(f"{exc}; excluded from later stages") from None
    info = {"backend": result.backend, "detection_rate": round(rate, 4), "frames": len(frames),
            "smoothing_window": cfg.smoothing_window}
    save_masks(video, result.person_masks)
    write_pose_parquet(video.pose_table, keypoints_to_table(video.video, keypoints), info)
    return info


def pose_outputs(video: VideoArtifacts) -> list:
    return [video.pose_table, video.person_masks]
