"""QA contact sheet and the perception accuracy metrics, on hand-computable inputs and real footage."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core.labels import BODY25, REGIONS
from pipeline.layout.qa import REGION_COLORS, contact_sheet, save_png_atomic
from pipeline.metrics.perception import layout_miou, pck


def test_layout_miou_on_known_masks():
    pred = np.full((4, 4), 5, np.uint8)
    gt = np.full((4, 4), 5, np.uint8)
    pred[0:2, 0:2] = 0          # 4 px of class 0
    gt[0:2, 1:3] = 0            # 4 px, overlapping pred in 2 px -> IoU 2 / 6
    gt[3, 3] = 2                # class 2 only in gt -> IoU 0
    result = layout_miou(pred, gt)
    assert set(result["per_class"]) == {0, 2, 5}  # classes absent from both are not scored
    assert result["per_class"][0] == pytest.approx(2 / 6)
    assert result["per_class"][2] == 0.0
    # class 5: pred has 12 px, gt has 16 - 4 - 1 = 11 px, overlap = 16 - |pred0 u gt0| - 1 = 16 - 6 - 1 = 9
    assert result["per_class"][5] == pytest.approx(9 / 14)
    assert result["miou"] == pytest.approx((2 / 6 + 0 + 9 / 14) / 3)
    assert layout_miou(gt, gt)["miou"] == 1.0
    with pytest.raises(ValueError):
        layout_miou(pred, gt[:3])


def test_pck_on_hand_made_keypoints():
    gt = np.zeros((25, 3), np.float32)
    gt[0] = (0, 0, 1)
    gt[1] = (100, 50, 1)        # box 100 x 50 -> size (larger side) 100 -> threshold 10 px
    gt[2] = (50, 25, 1)
    gt[3] = (20, 20, 1)
    gt[4] = (70, 70, 0)         # not GT-visible: ignored (would not even fit the box)
    pred = gt.copy()
    pred[0, :2] += (6, 8)       # 10 px away: hit (<= 10)
    pred[1, :2] += (0, 10.5)    # 10.5 px: miss
    pred[2, 2] = 0              # not predicted: miss
    pred[4, :2] += 500          # ignored
    assert pck(pred, gt) == pytest.approx(2 / 4)
    assert pck(pred, gt, threshold=0.2) == pytest.approx(3 / 4)
    assert pck(np.stack([pred, gt]), np.stack([gt, gt])) == pytest.approx(6 / 8)
    assert np.isnan(pck(pred, np.zeros((25, 3))))


def test_contact_sheet_on_real_frames(footage_clips, tmp_path):
    folder = next(iter(footage_clips.values()))
    paths = sorted(folder.glob("*.png"))[:9]
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    kps = np.zeros((9, 25, 3), np.float32)
    kps[:, BODY25["neck"]] = (96, 60, 1)
    kps[:, BODY25["mid_hip"]] = (96, 140, 1)
    layouts = np.full((9, 256, 192), REGIONS.index("background"), np.uint8)
    layouts[:, 100:120, 40:60] = REGIONS.index("top")
    sheet = contact_sheet(frames, kps, layouts, n=3)
    assert sheet.dtype == np.uint8 and sheet.shape[1] == 3 * 2 * 192
    legend_h = sheet.shape[0] - 256
    assert 0 < legend_h <= 48
    body = sheet[legend_h:]
    # Frames 0, 4, 8 are shown; the skeleton tile has the neck-mid_hip limb in OpenPose's mid_hip colour.
    for i, t in enumerate((0, 4, 8)):
        pose_tile, layout_tile = body[:, 384 * i: 384 * i + 192], body[:, 384 * i + 192: 384 * (i + 1)]
        assert np.abs(pose_tile[100, 96].astype(int) - (255, 0, 0)).max() <= 40
        np.testing.assert_array_equal(pose_tile[200:250, 5:30], frames[t][200:250, 5:30])  # untouched frame
        blended = layout_tile[110, 50].astype(float)
        expected = 0.4 * frames[t][110, 50] + 0.6 * np.array(REGION_COLORS[REGIONS.index("top")])
        assert np.abs(blended - expected).max() <= 1
    for colour in REGION_COLORS[:5]:  # every region's swatch is in the legend
        assert (sheet[:legend_h] == colour).all(axis=2).any()
    path = tmp_path / "qa" / "sheet.png"
    save_png_atomic(path, sheet)
    assert [p.name for p in path.parent.iterdir()] == ["sheet.png"]
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), sheet)


def test_contact_sheet_rejects_mismatched_inputs():
    frames = np.zeros((3, 16, 12, 3), np.uint8)
    with pytest.raises(ValueError, match="3 frames but 2"):
        contact_sheet(frames, np.zeros((2, 25, 3)), np.zeros((3, 16, 12), np.uint8))
