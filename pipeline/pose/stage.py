"""Pose stage: extracted frames -> BODY_25 keypoints (parquet) and person masks, per video."""
from __future__ import annotations

import io
from functools import partial

import numpy as np

from pipeline.core import atomic
from pipeline.core.artifacts import VideoArtifacts
from pipeline.core.params import PoseParams, section_fingerprint
from pipeline.pose.mediapipe_body25 import (PoseResult, backend_name, detection_rate, estimate_video, iter_estimate,
                                            keypoints_to_table, smooth_keypoints, write_pose_parquet)
from pipeline.stage.entry import Stage, StageContext, summary
from pipeline.stage.per_video import SkipVideo, iter_frames_on_disk, run_video_stage


def save_masks(video: VideoArtifacts, masks: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=mask_bytes(masks))
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


def mask_bytes(mask: np.ndarray) -> np.ndarray:
    """A float person mask as the uint8 0..255 that :func:`save_masks` stores."""
    return np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8)


def pose_video(video: VideoArtifacts, meta: dict, cfg: PoseParams) -> dict:
    """Frame by frame (:func:`iter_estimate` over the frames read one at a time): memory holds the keypoints and
    the uint8 masks being written, never the decoded video. Same outputs as :func:`pose_for_frames`."""
    n_frames = meta["n_frames"]
    keypoints = np.zeros((n_frames, 25, 3), np.float32)
    detected = np.zeros(n_frames, bool)
    masks: np.ndarray | None = None
    count = 0
    for t, one in enumerate(iter_estimate(iter_frames_on_disk(video, n_frames), cfg.model_complexity,
                                          cfg.min_detection_confidence)):
        if masks is None:
            masks = np.zeros((n_frames, *one.mask.shape), np.uint8)
        keypoints[t], detected[t], masks[t] = one.keypoints, one.detected, mask_bytes(one.mask)
        count = t + 1
    if masks is None:
        raise SkipVideo(f"{video.frames_dir}: no frames; re-run extraction")
    rate = detection_rate(detected[:count])
    if rate < cfg.min_detection_rate:
        raise SkipVideo(f"person detected on {rate:.0%} of frames, below pose.min_detection_rate "
                        f"({cfg.min_detection_rate:.0%}); excluded from later stages")
    if cfg.smoothing_window > 1:
        keypoints = smooth_keypoints(keypoints, cfg.smoothing_window)
    info = {"backend": backend_name(cfg.model_complexity), "detection_rate": round(rate, 4), "frames": count,
            "smoothing_window": cfg.smoothing_window}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=masks)
    atomic.write_bytes(video.person_masks, buffer.getvalue())
    write_pose_parquet(video.pose_table, keypoints_to_table(video.video, keypoints), info)
    return info


def pose_outputs(video: VideoArtifacts) -> list:
    return [video.pose_table, video.person_masks]


def body(ctx: StageContext) -> str:
    cfg = ctx.params.pose
    report = run_video_stage("pose", ctx.dataset, ctx.data_root, "pose-v1:" + section_fingerprint(cfg),
                             lambda video, meta: [], partial(pose_video, cfg=cfg), pose_outputs,
                             ctx.report_path("pose"), ctx.params.preprocess)
    return summary("pose", ctx.dataset, report.run_log()["counts"], ctx.report_path("pose"))


STAGE = Stage("DVC stage `pose@<dataset>`: MediaPipe pose -> BODY_25 keypoints (parquet) + person masks per video.",
              body)
