"""MediaPipe → BODY_25 pose on the shared real footage, plus the pose table I/O and smoothing."""
from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pytest

from pipeline.core.errors import WeightsNotFound
from pipeline.core.labels import BODY25, BODY25_COLORS, BODY25_LIMBS
from pipeline.pose import mediapipe_body25 as mpb
from pipeline.pose.render import render_pose_map


def _load_frames(folder, count=None):
    paths = sorted(folder.glob("*.png"))[:count]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


@pytest.fixture(scope="module")
def clip_poses(footage_clips):
    """Clip name -> (frames, PoseResult) for every frame of every shared clip (tracking mode)."""
    out = {}
    for name, folder in footage_clips.items():
        frames = _load_frames(folder)
        out[name] = (frames, mpb.estimate_video(frames))
    return out


def test_pose_found_on_most_frames(clip_poses):
    for name, (frames, pose) in clip_poses.items():
        assert pose.keypoints.shape == (len(frames), 25, 3) and pose.keypoints.dtype == np.float32
        assert pose.person_masks.shape == (len(frames), 256, 192) and pose.person_masks.dtype == np.float32
        assert pose.backend == "mediapipe-pose-0.10.21-c1"
        rate = mpb.detection_rate(pose.detected)
        assert rate >= 0.9, f"{name}: pose found on only {rate:.0%} of frames"
        # Every detected frame has its core joints confident (one full-body person in view).
        core = [BODY25[n] for n in ("neck", "mid_hip", "l_shoulder", "r_shoulder", "l_hip", "r_hip")]
        assert (pose.keypoints[pose.detected][:, core, 2] > 0.5).all(), name


def test_confident_keypoints_inside_person_mask(clip_poses):
    for name, (_, pose) in clip_poses.items():
        inside = []
        for kps, mask in zip(pose.keypoints, pose.person_masks):
            dilated = cv2.dilate((mask > 0.5).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            for x, y, conf in kps:
                if conf >= 0.5:
                    xi, yi = int(round(x)), int(round(y))
                    inside.append(0 <= yi < mask.shape[0] and 0 <= xi < mask.shape[1] and dilated[yi, xi])
        assert len(inside) > 20 * len(pose.keypoints)
        assert np.mean(inside) >= 0.97, f"{name}: only {np.mean(inside):.1%} of confident joints in the mask"


# BODY_25 joint -> MediaPipe PoseLandmark name, written out independently of the module's table.
_EXPECTED_SOURCE = {
    "nose": "NOSE", "l_eye": "LEFT_EYE", "r_eye": "RIGHT_EYE", "l_ear": "LEFT_EAR", "r_ear": "RIGHT_EAR",
    "l_shoulder": "LEFT_SHOULDER", "r_shoulder": "RIGHT_SHOULDER", "l_elbow": "LEFT_ELBOW",
    "r_elbow": "RIGHT_ELBOW", "l_wrist": "LEFT_WRIST", "r_wrist": "RIGHT_WRIST", "l_hip": "LEFT_HIP",
    "r_hip": "RIGHT_HIP", "l_knee": "LEFT_KNEE", "r_knee": "RIGHT_KNEE", "l_ankle": "LEFT_ANKLE",
    "r_ankle": "RIGHT_ANKLE", "l_heel": "LEFT_HEEL", "r_heel": "RIGHT_HEEL", "l_big_toe": "LEFT_FOOT_INDEX",
    "r_big_toe": "RIGHT_FOOT_INDEX",
}


def test_left_right_match_mediapipe_landmarks(clip_poses):
    import mediapipe as mp

    landmark = mp.solutions.pose.PoseLandmark
    for name, (_, pose) in clip_poses.items():
        for t in np.flatnonzero(pose.detected):
            kps, lms = pose.keypoints[t], pose.landmarks[t]
            for joint, source in _EXPECTED_SOURCE.items():
                if kps[BODY25[joint], 2] > 0:
                    np.testing.assert_allclose(kps[BODY25[joint]], lms[landmark[source], :3], atol=1e-4,
                                               err_msg=f"{name} frame {t} {joint}")
            for joint, (a, b) in {"neck": ("LEFT_SHOULDER", "RIGHT_SHOULDER"),
                                  "mid_hip": ("LEFT_HIP", "RIGHT_HIP")}.items():
                mid = (lms[landmark[a], :2] + lms[landmark[b], :2]) / 2
                np.testing.assert_allclose(kps[BODY25[joint], :2], mid, atol=1e-3)
                assert kps[BODY25[joint], 2] == pytest.approx(min(lms[landmark[a], 2], lms[landmark[b], 2]))


def test_left_is_the_persons_left_on_frontal_frames(clip_poses):
    # The first frames of the fashion and fitness clips face the camera: the person's left is image right.
    for name in ("ubc_fashion_91BjuE6irxS", "romp_fitness"):
        if name not in clip_poses:
            continue
        kps = clip_poses[name][1].keypoints[0]
        for side_joint in ("shoulder", "hip", "eye"):
            assert kps[BODY25[f"l_{side_joint}"], 0] > kps[BODY25[f"r_{side_joint}"], 0], (name, side_joint)


def test_small_toe_estimate_beside_big_toe(clip_poses):
    for name, (_, pose) in clip_poses.items():
        for kps in pose.keypoints[pose.detected]:
            for side in ("l", "r"):
                big, small, heel = (kps[BODY25[f"{side}_{j}"]] for j in ("big_toe", "small_toe", "heel"))
                if min(big[2], small[2], heel[2]) == 0:
                    continue
                foot = np.linalg.norm(big[:2] - heel[:2])
                assert small[2] == pytest.approx(min(big[2], heel[2]))
                assert np.linalg.norm(small[:2] - big[:2]) <= 0.5 * foot + 1e-3


def test_rendered_map_has_limb_colours_at_midpoints(clip_poses):
    checked = matched = 0
    for name, (_, pose) in clip_poses.items():
        for t in (0, len(pose.keypoints) // 2):
            kps = pose.keypoints[t]
            pose_map = render_pose_map(kps, 256, 192)
            for a, b in BODY25_LIMBS:
                if min(kps[a, 2], kps[b, 2]) < 0.5 or np.linalg.norm(kps[a, :2] - kps[b, :2]) < 8:
                    continue
                x, y = np.round((kps[a, :2] + kps[b, :2]) / 2).astype(int)
                checked += 1
                matched += bool(np.abs(pose_map[y, x].astype(int) - BODY25_COLORS[b]).max() <= 40)
    assert checked >= 60
    # Limbs drawn later may cross an earlier limb's midpoint, so allow a few misses.
    assert matched / checked >= 0.85, f"only {matched}/{checked} limb midpoints have their limb's colour"


def test_no_person_gives_zero_confidence():
    grey = [np.full((256, 192, 3), 128, np.uint8) for _ in range(3)]
    pose = mpb.estimate_video(grey)
    assert not pose.detected.any()
    assert (pose.keypoints == 0).all() and (pose.person_masks == 0).all()
    assert mpb.detection_rate(pose.detected) == 0.0


def test_bad_frames_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        mpb.estimate_video([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="same size"):
        mpb.estimate_video([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match="no frames"):
        mpb.estimate_video([])
    with pytest.raises(ValueError):
        mpb.detection_rate(np.zeros(0, bool))


def test_missing_landmark_model_is_a_clear_error():
    for complexity in (0, 2):
        if mpb.landmark_model_path(complexity).is_file():
            continue  # installed by hand: nothing to check
        with pytest.raises(WeightsNotFound, match=mpb.landmark_model_path(complexity).name):
            mpb.estimate_video([np.zeros((64, 48, 3), np.uint8)], model_complexity=complexity)


def test_table_and_parquet_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    kps = rng.uniform(0, 200, (5, 25, 3)).astype(np.float32)
    table = mpb.keypoints_to_table("clip_a", kps)
    assert table.num_rows == 125
    assert table.schema.field("joint").type == pa.int8() and table.schema.field("frame").type == pa.int32()
    path = tmp_path / "pose" / "clip_a.parquet"
    mpb.write_pose_parquet(path, table, {"backend": "mediapipe-pose-0.10.21-c1", "fps": 30.0})
    assert [p.name for p in path.parent.iterdir()] == ["clip_a.parquet"]  # no temp file left behind
    back, meta = mpb.read_pose_parquet(path)
    assert meta["backend"] == "mediapipe-pose-0.10.21-c1" and meta["fps"] == "30.0"
    assert meta["joint_names"].startswith('["nose", "neck"')
    np.testing.assert_array_equal(mpb.table_to_keypoints(back), kps)
    # Row order does not matter.
    shuffled = back.take(pa.array(rng.permutation(back.num_rows)))
    np.testing.assert_array_equal(mpb.table_to_keypoints(shuffled), kps)


def test_table_to_keypoints_rejects_bad_tables():
    table = mpb.keypoints_to_table("v", np.zeros((2, 25, 3), np.float32))
    with pytest.raises(ValueError, match="rows"):
        mpb.table_to_keypoints(table.slice(0, 49))
    with pytest.raises(ValueError, match="more than once"):
        mpb.table_to_keypoints(pa.concat_tables([table.slice(0, 25), table.slice(0, 25)]))
    with pytest.raises(ValueError, match="several videos"):
        mpb.table_to_keypoints(pa.concat_tables([table, mpb.keypoints_to_table("w", np.zeros((2, 25, 3)))]))


def test_smoothing_averages_confident_joints_only():
    kps = np.zeros((5, 25, 3), np.float32)
    kps[:, 0] = [[10, 0, 1], [12, 0, 1], [20, 0, 1], [12, 0, 1], [10, 0, 1]]
    kps[2, 1] = (50, 50, 0.9)  # joint 1 confident only in frame 2: neighbours at (0, 0, 0) must not pull it
    assert np.array_equal(mpb.smooth_keypoints(kps), kps)  # off by default
    out = mpb.smooth_keypoints(kps, window=3)
    np.testing.assert_allclose(out[:, 0, 0], [11, 14, 44 / 3, 14, 11], rtol=1e-6)
    np.testing.assert_allclose(out[2, 1], (50, 50, 0.9))
    assert (out[[0, 1, 3, 4], 1] == 0).all()  # non-confident joints untouched
    with pytest.raises(ValueError, match="odd"):
        mpb.smooth_keypoints(kps, window=4)
