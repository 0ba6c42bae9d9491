"""The Layout GAN alone over evaluation clips: how well its recurrence keeps up with the driving pose.

Used to compare Layout GAN recipes on the validation split (``pipeline.selection``) without training the Region
GAN and WCN: it runs the recurrence of inference (``remot_models.sequence``) over each clip and scores the
hardened layouts against the parsed ground truth (``pipeline.metrics.motion.layout_scores``), plus the person
IoU at each frame index, which shows a recurrence that drifts away from the driving pose as the clip goes on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.core import checkpoint as ckpt
from pipeline.core.params import Params, model_config
from pipeline.evaluation.data import load_test_videos, require_videos
from pipeline.inference.generate import one_hot, pose_tensor, network_folder
from pipeline.metrics.motion import layout_scores
from remot_models import BACKGROUND
from remot_models.sequence import Generators, generate_sequence




@torch.no_grad()
def layout_rollouts(params: Params, root: Path | str) -> dict[str, Any]:
    """Layout mIoU, limbs IoU (pooled over every clip of ``evaluate.split``) and person IoU per frame index."""
    root = Path(root)
    cfg = model_config(params.model)
    folder = network_folder(root / params.train.out, "layout")
    ckpt.check_model_config(folder, cfg.architecture("layout"), "`dvc repro train_layout`")
    net = ckpt.build_generator("layout", cfg)
    ckpt.load_modules(folder, {"generator": net}, device="cpu")
    net.eval().requires_grad_(False)
    ep = params.evaluate
    predicted, truth, person_iou = [], [], []
    for dataset, spec in params.datasets.items():
        videos, skipped = load_test_videos(root / params.data_root, dataset, ep.frames_per_video, ep.seed, spec.kind,
                                           ep.split)
        require_videos(videos, dataset, skipped, ep.split)
        for video in videos:
            _, source_layout = video.source()
            h, w = source_layout.shape
            poses = pose_tensor(video.inputs.keypoints[video.clip], h, w, params.pose.thickness)
            blank = torch.zeros(1, 3, h, w)
            outs = generate_sequence(Generators(net), blank, one_hot(source_layout)[None], poses[:, None].unbind(0),
                                     blank)
            labels = np.stack([o.layout[0].argmax(0).to(torch.uint8).numpy() for o in outs])
            real = video.loaded.layouts
            predicted.append(labels)
            truth.append(real)
            person_iou.append([_iou(p != BACKGROUND, r != BACKGROUND) for p, r in zip(labels, real)])
    scores = layout_scores(np.concatenate(predicted), np.concatenate(truth))
    return {**scores, "person_iou_by_frame": [round(float(v), 4) for v in np.nanmean(person_iou, axis=0)],
            "clips": len(predicted), "split": ep.split}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else float("nan")
