"""Issue 16 item 3 (per-video stages): the parse stage works frame by frame (one decoded frame in memory at a
time) and writes exactly the labels the whole-video version wrote."""
from __future__ import annotations

import json

import cv2
import numpy as np

from pipeline.core.artifacts import frame_name
from pipeline.core.params import ParseParams
from pipeline.parsing.stage import make_parser, parse_video, read_keypoints
from pipeline.pose.stage import load_masks, save_masks
from pipeline.stage.per_video import iter_frames_on_disk, load_frames
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

    from pipeline.core.artifacts import VideoArtifacts
    from pipeline.core.params import PoseParams
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


def _atr_parsing(art, n):
    """Rewrite the fabricated stand-in parsing as ATR labels: background (0) and upper clothes (4)."""
    for t in range(n):
        layout = cv2.imread(str(art.layout_dir / frame_name(t)), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(art.parsing_dir / frame_name(t)), np.where(layout == 5, 0, 4).astype(np.uint8))


def _whole_video_layout(art, n, merge):
    """The layout stage as it was before streaming: every frame in memory, the plate from all of them."""
    from pipeline.layout.background import background_plate
    from pipeline.core.labels import REGIONS
    from pipeline.layout.merge import merge_layout, merge_lookup
    from pipeline.parsing.stage import read_label_pngs

    layouts = [merge_layout(labels, merge_lookup(merge)) for labels in read_label_pngs(art.parsing_dir, n)]
    frames = load_frames(art, n)
    return layouts, background_plate(frames, [la != REGIONS.index("background") for la in layouts])


def test_streamed_layout_stage_writes_what_the_whole_video_version_wrote(tmp_path):
    """Videos of up to PLATE_FRAMES frames: identical layouts and background plate, frame by frame in memory."""
    from pipeline.core.params import MergeParams
    from pipeline.layout.stage import layout_video

    n = 10
    art = fabricate_video(tmp_path / "data", "ds", "v0", "train", n_frames=n, height=64, width=48)
    _atr_parsing(art, n)
    merge = MergeParams().classes
    layouts, plate = _whole_video_layout(art, n, merge)
    layout_video(art, {"n_frames": n}, merge, tmp_path)
    written = [cv2.imread(str(art.layout_dir / frame_name(t)), cv2.IMREAD_UNCHANGED) for t in range(n)]
    assert all(np.array_equal(a, b) for a, b in zip(written, layouts))
    stored = cv2.cvtColor(cv2.imread(str(art.background_file)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(stored, plate)
    assert (tmp_path / "reports" / "qa" / "ds" / "v0.png").is_file()


def test_layout_plate_of_a_long_video_uses_a_bounded_number_of_frames(tmp_path, monkeypatch):
    import pipeline.layout.stage as stage

    seen = []
    real_plate = stage.background_plate
    monkeypatch.setattr(stage, "background_plate", lambda frames, masks: seen.append(len(frames)) or
                        real_plate(frames, masks))
    monkeypatch.setattr(stage, "PLATE_FRAMES", 8)
    from pipeline.core.params import MergeParams

    art = fabricate_video(tmp_path / "data", "ds", "v1", "train", n_frames=30, height=64, width=48)
    _atr_parsing(art, 30)
    stage.layout_video(art, {"n_frames": 30}, MergeParams().classes, tmp_path)
    assert seen == [8]
    assert len(list(art.layout_dir.glob("*.png"))) == 30
