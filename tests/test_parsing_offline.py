"""Offline ATR parser (MediaPipe mask + BODY_25 + colour/geometry) on the shared real footage."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core.labels import ATR, BODY25, DEFAULT_MERGE, REGIONS
from pipeline.layout.merge import merge_layout, merge_lookup
from pipeline.parsing import offline
from pipeline.parsing.offline import OFFLINE_PARSER_NAME, parse_offline
from pipeline.pose.mediapipe_body25 import estimate_video

FRAMES = (0, 10, 20, 31)


@pytest.fixture(scope="module")
def parsed(footage_clips):
    """Clip name -> list of (rgb, keypoints, person mask, ATR labels) for a few frames of the clip."""
    out = {}
    for name, folder in footage_clips.items():
        paths = sorted(folder.glob("*.png"))
        frames = [cv2.cvtColor(cv2.imread(str(paths[i])), cv2.COLOR_BGR2RGB) for i in FRAMES]
        pose = estimate_video(frames, static_image_mode=True)  # frames are not consecutive
        out[name] = [(rgb, kps, mask, parse_offline(rgb, kps, mask))
                     for rgb, kps, mask in zip(frames, pose.keypoints, pose.person_masks)]
    return out


def test_parser_name():
    assert OFFLINE_PARSER_NAME == "offline-mediapipe-geometry-v1"


def test_person_pixels_match_the_segmentation(parsed):
    for name, items in parsed.items():
        for rgb, kps, mask, labels in items:
            assert labels.shape == rgb.shape[:2] and labels.dtype == np.uint8
            assert labels.max() < len(ATR)
            person = mask > 0.5
            assert (labels[~person] == ATR["background"]).all(), name
            parsed_person = labels != ATR["background"]
            iou = (person & parsed_person).sum() / (person | parsed_person).sum()
            assert iou >= 0.9, f"{name}: person IoU {iou:.3f}"


def test_regions_stack_head_top_bottom_shoes(parsed):
    lookup = merge_lookup(DEFAULT_MERGE)
    for name, items in parsed.items():
        for _, _, _, labels in items:
            layout = merge_layout(labels, lookup)
            rows = {r: np.nonzero(layout == i)[0].mean() for i, r in enumerate(REGIONS[:4]) if (layout == i).any()}
            for region in ("head", "top", "shoes"):
                assert region in rows, f"{name}: no {region} pixels"
            order = [r for r in ("head", "top", "bottom", "shoes") if r in rows]
            mean_rows = [rows[r] for r in order]
            assert mean_rows == sorted(mean_rows), f"{name}: mean rows {dict(zip(order, mean_rows))}"


def test_left_and_right_parts_follow_their_keypoints(parsed):
    checked = 0
    for name, items in parsed.items():
        for _, kps, _, labels in items:
            for part, own, other in (("left_arm", "l_wrist", "r_wrist"), ("right_arm", "r_wrist", "l_wrist"),
                                     ("left_shoe", "l_heel", "r_heel"), ("right_shoe", "r_heel", "l_heel")):
                ys, xs = np.nonzero(labels == ATR[part])
                if len(xs) < 20 or min(kps[BODY25[own], 2], kps[BODY25[other], 2]) < 0.5:
                    continue
                if np.linalg.norm(kps[BODY25[own], :2] - kps[BODY25[other], :2]) < 15:
                    continue  # joints too close to tell sides apart
                centre = np.array([xs.mean(), ys.mean()])
                checked += 1
                assert (np.linalg.norm(centre - kps[BODY25[own], :2])
                        < np.linalg.norm(centre - kps[BODY25[other], :2])), f"{name}: {part} on the wrong side"
    assert checked >= 10


def test_face_at_the_nose_and_garments_per_clip(parsed):
    for name, items in parsed.items():
        rgb, kps, _, labels = items[0]  # first frames face the camera
        x, y = np.round(kps[BODY25["nose"], :2]).astype(int)
        assert labels[y, x] == ATR["face"], f"{name}: label {labels[y, x]} at the nose"
    # Real garments in the footage: trousers in the fitness and basketball clips, a dress in the fashion clip.
    for name, garment, never in (("romp_fitness", "pants", "skirt"), ("ipercore_akun1", "pants", "skirt"),
                                 ("ubc_fashion_91BjuE6irxS", "dress", "pants")):
        if name not in parsed:
            continue
        for _, _, _, labels in parsed[name][:3]:  # frames 0, 10, 20 (the fashion model turns later)
            counts = np.bincount(labels.ravel(), minlength=len(ATR))
            assert counts[ATR[garment]] > 500, f"{name}: only {counts[ATR[garment]]} {garment} pixels"
            assert counts[ATR[never]] == 0, f"{name}: {never} found"


def test_bare_arms_are_arms_sleeves_are_clothes(parsed):
    # The fitness woman's arms are bare; the basketball player wears long sleeves.
    def arm_share(items):
        arm = sum(int(np.isin(l, [ATR["left_arm"], ATR["right_arm"]]).sum()) for *_, l in items)
        top = sum(int((l == ATR["upper_clothes"]).sum()) for *_, l in items)
        return arm / max(arm + top, 1)

    if "romp_fitness" in parsed and "ipercore_akun1" in parsed:
        assert arm_share(parsed["romp_fitness"]) > 0.25
        assert arm_share(parsed["ipercore_akun1"]) < 0.1


def test_no_pose_or_no_person_gives_background():
    rgb = np.full((64, 48, 3), 128, np.uint8)
    mask = np.zeros((64, 48), np.float32)
    mask[10:50, 10:40] = 1.0
    assert (parse_offline(rgb, np.zeros((25, 3), np.float32), mask) == 0).all()
    kps = np.zeros((25, 3), np.float32)
    kps[:, :2], kps[:, 2] = (24, 30), 1.0
    assert (parse_offline(rgb, kps, np.zeros((64, 48), np.float32)) == 0).all()


def test_bad_inputs_are_rejected():
    rgb = np.zeros((64, 48, 3), np.uint8)
    with pytest.raises(ValueError, match="25, 3"):
        parse_offline(rgb, np.zeros((18, 3)), np.zeros((64, 48)))
    with pytest.raises(ValueError, match="person_mask shape"):
        parse_offline(rgb, np.zeros((25, 3)), np.zeros((32, 48)))
    with pytest.raises(ValueError, match="uint8"):
        parse_offline(rgb.astype(np.float32), np.zeros((25, 3)), np.zeros((64, 48)))


# --- The vectorised geometry gives the labels of the formulas it replaced -------------------------------------
# Reference versions of what issue 24's vectorisation changed, as the parser computed them before (whole-frame
# norms and skin test, np.argmin over stacked distance transforms). Swapped back in, they must give the same
# labels on real frames, and each piece the same values.

def _reference_skin(self, rgb, lab, where):
    if self.generic:
        ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        cr, cb = ycrcb[..., 1], ycrcb[..., 2]
        return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127) & where
    d = lab[..., 1:] - self.mean
    maha = np.einsum("...i,ij,...j->...", d, self.inv_cov, d)
    lightness = lab[..., 0]
    light = (lightness >= self.l_median - offline.SKIN_L_BELOW) & (lightness <= self.l_median + offline.SKIN_L_ABOVE)
    warm = (lab[..., 1] >= 128 + offline.SKIN_WARM_A) & (lab[..., 2] >= 128 + offline.SKIN_WARM_B)
    return (maha <= offline.SKIN_MAHALANOBIS ** 2) & light & warm & where


def _reference_distances(skeletons):
    return np.stack([cv2.distanceTransform(np.where(s > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, 3)
                     for s in skeletons])


def _reference_nearer(lab, where, colour, other):
    return (np.linalg.norm(lab - colour, axis=-1) < np.linalg.norm(lab - other, axis=-1)) & where


@pytest.fixture(scope="module")
def parser_inputs(media, tmp_path_factory):
    """(rgb, keypoints, mask) of real frames: the media fixture's clips (shared footage where present, else
    generated) and the project's demo generator's clips (what the preprocessing benchmark parses)."""
    from pipeline.demo_data import generate_demo_dataset

    demo = tmp_path_factory.mktemp("parser_demo")
    generate_demo_dataset(demo, n_clips=3, n_frames=8, seed=0)
    clips = [[cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.png"))[:16]]
             for folder in media["frame_folders"]]
    for video in sorted((demo / "videos").glob("*.mp4")):
        capture, frames = cv2.VideoCapture(str(video)), []
        while (read := capture.read())[0]:
            frames.append(cv2.cvtColor(read[1], cv2.COLOR_BGR2RGB))
        clips.append(frames)
    inputs = []
    for frames in clips:
        pose = estimate_video(frames)
        inputs += list(zip(frames, pose.keypoints, pose.person_masks))
    return inputs


def test_vectorised_geometry_gives_the_same_labels(parser_inputs, monkeypatch):
    new = [parse_offline(*x) for x in parser_inputs]
    monkeypatch.setattr(offline._SkinModel, "__call__", _reference_skin)
    monkeypatch.setattr(offline, "_skeleton_distances", _reference_distances)
    monkeypatch.setattr(offline, "_nearest_part", lambda dist: np.argmin(dist, axis=0))
    monkeypatch.setattr(offline, "_nearer", _reference_nearer)
    old = [parse_offline(*x) for x in parser_inputs]
    assert len(new) >= 40 and any((labels > 0).any() for labels in new)
    for frame, (a, b) in enumerate(zip(new, old)):
        assert np.array_equal(a, b), f"frame {frame}: {(a != b).sum()} labels differ"


def test_vectorised_pieces_match_their_references(parser_inputs):
    generic = 0
    for rgb, kps, mask in parser_inputs:
        person = mask > offline.MASK_THRESHOLD
        if not person.any():
            continue
        lab = offline._lab(rgb)
        scale = offline._body_scale(kps, person)
        centre, radius, _ = offline._head_geometry(kps, scale)
        model = offline._SkinModel(rgb, lab, person, kps, radius)
        generic += model.generic
        assert np.array_equal(model(rgb, lab, person), _reference_skin(model, rgb, lab, person))
        skeletons = list(offline._part_skeletons(kps, person.shape, centre, radius).values())
        dist = offline._skeleton_distances(skeletons)
        assert np.array_equal(dist, _reference_distances(skeletons))
        assert np.array_equal(offline._nearest_part(dist), np.argmin(dist, axis=0))
        colour, other = lab[person][0], lab[person][-1]
        assert np.array_equal(offline._nearer(lab, person, colour, other),
                              _reference_nearer(lab, person, colour, other))
    assert generic < len(parser_inputs)  # the face-sampled skin model was exercised
