"""Motion scores (pipeline.metrics.motion), the validation split, and the training warm-up rollout."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.datasets.folder import split_by_hash
from pipeline.metrics.motion import keypoint_scores, layout_scores, moved_region, moved_region_scores
from pipeline.training.steps import warmup_length
from remot_models import LayoutGenerator, ModelConfig
from remot_models.sequence import Generators, generate_sequence


def skeleton(dy: float = 0.0, conf: float = 0.9) -> np.ndarray:
    """(25, 3) keypoints of a standing person 100 px tall; ``dy`` moves the two wrists up."""
    k = np.zeros((25, 3), np.float32)
    k[:, 0] = np.linspace(40, 60, 25)
    k[:, 1] = np.linspace(10, 110, 25)
    k[:, 2] = conf
    k[[4, 7], 1] -= dy
    return k


def test_akd_is_the_height_normalised_distance_of_the_keypoints_found_in_both():
    real = np.stack([skeleton(), skeleton()])
    moved = np.stack([skeleton(dy=20.0), skeleton(dy=20.0)])
    scores = keypoint_scores(moved, real)
    assert scores["akd"] == pytest.approx(2 * 20.0 / 100.0 / 25)  # 2 of 25 keypoints off by 0.2 heights
    assert scores["mkr"] == 0.0
    assert keypoint_scores(real, real)["akd"] == 0.0


def test_mkr_counts_real_keypoints_missing_in_the_generated_frame():
    real = np.stack([skeleton()])
    generated = real.copy()
    generated[0, :5, 2] = 0.0  # a smeared limb: its keypoints are not found
    scores = keypoint_scores(generated, real)
    assert scores["mkr"] == pytest.approx(5 / 25)
    assert scores["akd"] == 0.0  # the 20 found ones sit right
    nothing = keypoint_scores(np.zeros_like(real), real)
    assert nothing["mkr"] == 1.0 and math.isnan(nothing["akd"])


def test_moved_region_scores_only_pixels_where_the_person_moved():
    real_person = np.zeros((8, 8), bool)
    real_person[2:6, 4:8] = True
    source_person = np.zeros((8, 8), bool)
    source_person[2:6, 0:4] = True
    region = moved_region(real_person, source_person)
    assert region.sum() == 32
    real = np.zeros((8, 8, 3), np.uint8)
    real[real_person] = 200
    pasted = np.zeros((8, 8, 3), np.uint8)
    pasted[source_person] = 200          # the unmoved source: wrong on every moved pixel
    moved = real.copy()
    moved[0, 0] = 255                     # outside the moved region: does not count
    assert moved_region_scores([moved], [real], [region])["psnr"] == math.inf
    assert moved_region_scores([pasted], [real], [region])["l1"] == 200.0
    assert math.isnan(moved_region_scores([real], [real], [np.zeros((8, 8), bool)])["psnr"])


def test_layout_scores_miou_and_limbs():
    truth = np.full((1, 4, 4), 5, np.uint8)
    truth[0, :2] = 4                      # limbs on the top half
    predicted = truth.copy()
    predicted[0, 1] = 5                   # half the limbs missed
    scores = layout_scores(predicted, truth)
    assert scores["limbs_iou"] == 0.5
    assert scores["layout_miou"] == pytest.approx((0.5 + 8 / 12) / 2)


def test_validation_split_is_disjoint_and_leaves_test_unchanged():
    ids = [f"clip{i:02d}" for i in range(56)]
    without = split_by_hash(ids, 0.2, 0)
    with_val = split_by_hash(ids, 0.2, 0, val_ratio=0.15)
    assert [i for i in ids if with_val[i] == "test"] == [i for i in ids if without[i] == "test"]
    counts = {s: sum(v == s for v in with_val.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 37, "val": 8, "test": 11}


def test_warmup_frames_run_without_autograd_and_the_rest_with_it():
    cfg = ModelConfig.from_profile("tiny")
    net = LayoutGenerator(cfg)
    layout = torch.zeros(1, 6, 16, 16)
    layout[:, 5] = 1
    poses = torch.zeros(6, 1, 3, 16, 16)
    outs = list(generate_sequence(Generators(net), torch.zeros(1, 3, 16, 16), layout, poses.unbind(0),
                                  torch.zeros(1, 3, 16, 16), no_grad_frames=4))
    assert [o.layout_out.layout.requires_grad for o in outs] == [False] * 4 + [True] * 2
    lengths = [warmup_length(step, 13) for step in range(1, 2001)]
    assert set(lengths) == set(range(14)) and lengths == [warmup_length(s, 13) for s in range(1, 2001)]
    assert warmup_length(5, 0) == 0
