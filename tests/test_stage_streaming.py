"""Issue 16 item 3 (per-video stages): the parse stage works frame by frame (one decoded frame in memory at a
time) and writes exactly the labels the whole-video version wrote."""
from __future__ import annotations

import json

import cv2
import numpy as np

from pipeline.artifacts import frame_name
from pipeline.parsing.stage import make_parser, parse_video, read_keypoints
from pipeline.params import ParseParams
from pipeline.pose.stage import load_masks, save_masks
from pipeline.video_stage import iter_frames_on_disk, load_frames
from tests.test_shards import fabricate_video


def test_streamed_parse_writes_the_same_labels(tmp_path):
    art = fabricate_video(tmp_path / "data", "ds", "v0", "train", n_frames=6, height=64, width=48)
    n = 6
    frames = load_frames(art, n)
    assert all(np.array_equal(a, b) for a, b in zip(frames, iter_frames_on_disk(art, n)))
    masks = np.stack([(f.sum(axis=2) < 400).astype(np.float32) for f in frames])
    save_masks(art, masks)
    parser = make_parser(ParseParams(backend="offline"), tmp_path)
    keypoints, stored = read_keypoints(art), load_masks(art)
    expected = [parser.parse(frames[t], keypoints[t], stored[t]) for t in range(n)]
    parse_video(art, {"n_frames": n}, parser)
    written = [cv2.imread(str(art.parsing_dir / frame_name(t)), cv2.IMREAD_UNCHANGED) for t in range(n)]
    assert all(np.array_equal(a, b) for a, b in zip(written, expected))
    assert json.loads((art.parsing_dir / "meta.json").read_text())["n_frames"] == n


def test_streamed_pose_stage_writes_what_the_whole_video_version_wrote(tmp_path, media):
    import shutil

    from pipeline.artifacts import VideoArtifacts
    from pipeline.params import PoseParams
    from pipeline.pose.stage import pose_for_frames, pose_video, save_masks

    art = VideoArtifacts(tmp_path / "data", "ds", "v0")
    art.frames_dir.mkdir(parents=True)
    for k, frame in enumerate(sorted(media["frame_folders"][0].glob("*.png"))[:8]):
        shutil.copy(frame, art.frames_dir / frame_name(k))
    cfg = PoseParams()
    result, keypoints, rate = pose_for_frames(load_frames(art, 8), cfg)
    pose_video(art, {"n_frames": 8}, cfg)
    streamed_masks = load_masks(art)
    np.testing.assert_array_equal(read_keypoints(art), keypoints)
    save_masks(art, result.person_masks)  # what the whole-video version stored
    np.testing.assert_array_equal(streamed_masks, load_masks(art))
    assert rate > 0.5


def test_streamed_flow_equals_the_whole_video_flow(tmp_path):
    from pipeline.flow.select import compute_video_flow, compute_video_flow_stream, make_flow_backend

    art = fabricate_video(tmp_path / "data", "ds", "v0", "train", n_frames=5, height=48, width=64)
    backend, _ = make_flow_backend("dis", None, "medium")
    frames = load_frames(art, 5)
    flow, valid = compute_video_flow(frames, backend)
    streamed_flow, streamed_valid = compute_video_flow_stream(iter_frames_on_disk(art, 5), 5, backend)
    np.testing.assert_array_equal(flow, streamed_flow)
    np.testing.assert_array_equal(valid, streamed_valid)
