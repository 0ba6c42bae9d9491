"""Evaluate one generated video against its real (driving / ground-truth) video with every REMOT metric.

Per video: SSIM, PSNR, Mask-SSIM, Mask-PSNR (``pipeline.metrics.image``), LPIPS (``pipeline.pretrained.lpips_network``)
and TCM (``pipeline.metrics.tcm``); FID is a set-level metric, so each video contributes its Inception features
and ``set_level_fid`` pools them over all videos. Every result carries a ``backends`` dict saying which network
or algorithm produced each number, and ``unavailable`` with the reason for each metric that could not run.
"""
from __future__ import annotations

import math

import numpy as np

from pipeline.flow.base import FlowBackend
from pipeline.metrics import Unavailable
from pipeline.metrics.fid import fid_from_features
from pipeline.metrics.image import SIGMA, mask_psnr, mask_ssim, psnr, ssim
from pipeline.metrics.tcm import tcm
from pipeline.pretrained.fid_inception import COMPARABLE, InceptionFeatures
from pipeline.pretrained.lpips_network import LPIPS

IMAGE_BACKEND = "pipeline.metrics.image (Wang 2004 SSIM, scikit-image conventions, data range 255)"


def _mean(values: list[float]) -> float:
    """Mean of per-frame scores; inf (identical frames' PSNR) propagates, as averaging it would."""
    return float(np.mean(values)) if values else math.nan


def _backend_name(component, what: str) -> str:
    if isinstance(component, Unavailable):
        return f"unavailable ({component.reason})"
    if component is None:
        return f"not given (no {what})"
    return component.name


def evaluate_pair_videos(gen_frames: list[np.ndarray], real_frames: list[np.ndarray],
                         person_masks: list[np.ndarray] | None, flow_backend: FlowBackend | Unavailable | None,
                         lpips: LPIPS | Unavailable | None, fid_extractor: InceptionFeatures | Unavailable | None,
                         ssim_sigma: float = SIGMA) -> dict:
    """All per-video metrics of ``gen_frames`` against ``real_frames`` (T >= 2 uint8 H x W x 3 RGB each).

    ``person_masks``: T (H, W) masks of the real frames' person (> 0 = person, e.g. parsing labels != 0), for
    Mask-SSIM / Mask-PSNR; ``None`` skips them. ``flow_backend`` computes the REAL video's flow for TCM;
    ``lpips`` from ``load_lpips``; ``fid_extractor`` from ``load_inception``. Any of the last three may be
    ``None`` or ``Unavailable``: that metric is then ``None`` and its reason is in ``unavailable``.

    Returns ``{"n_frames", "ssim", "psnr", "mask_ssim", "mask_psnr", "lpips", "tcm"`` (per-video means; PSNR is
    inf for identical frames), ``"per_frame": {metric: [T floats]}, "tcm_detail": dict | None,
    "fid_features": {"generated": (T, 2048), "real": (T, 2048)} | None, "unavailable": {metric: reason},
    "backends": {"image", "lpips", "inception", "flow"}}``.
    """
    if len(gen_frames) != len(real_frames) or not gen_frames:
        raise ValueError(f"need equally long non-empty videos, got {len(gen_frames)} generated and "
                         f"{len(real_frames)} real frames")
    if person_masks is not None and len(person_masks) != len(real_frames):
        raise ValueError(f"{len(real_frames)} frames but {len(person_masks)} person masks")
    unavailable: dict[str, str] = {}
    per_frame: dict[str, list[float]] = {
        "ssim": [ssim(g, r, sigma=ssim_sigma) for g, r in zip(gen_frames, real_frames)],
        "psnr": [psnr(g, r) for g, r in zip(gen_frames, real_frames)],
    }
    if person_masks is not None:
        per_frame["mask_ssim"] = [mask_ssim(g, r, m, sigma=ssim_sigma)
                                  for g, r, m in zip(gen_frames, real_frames, person_masks)]
        per_frame["mask_psnr"] = [mask_psnr(g, r, m) for g, r, m in zip(gen_frames, real_frames, person_masks)]
    else:
        unavailable["mask_ssim"] = unavailable["mask_psnr"] = "no person masks given"

    if isinstance(lpips, LPIPS):
        per_frame["lpips"] = [lpips.distance(g, r) for g, r in zip(gen_frames, real_frames)]
    else:
        unavailable["lpips"] = str(lpips) if lpips is not None else "no LPIPS network given"

    tcm_detail = None
    if isinstance(flow_backend, FlowBackend):
        if len(gen_frames) >= 2:
            tcm_detail = tcm(gen_frames, real_frames, flow_backend)
        else:
            unavailable["tcm"] = "TCM needs at least 2 frames"
    else:
        unavailable["tcm"] = str(flow_backend) if flow_backend is not None else "no flow backend given"

    fid_features = None
    if isinstance(fid_extractor, InceptionFeatures):
        fid_features = {"generated": fid_extractor.features(gen_frames), "real": fid_extractor.features(real_frames)}
    else:
        unavailable["fid"] = str(fid_extractor) if fid_extractor is not None else "no Inception extractor given"

    result = {"n_frames": len(gen_frames)}
    for metric in ("ssim", "psnr", "mask_ssim", "mask_psnr", "lpips"):
        result[metric] = _mean(per_frame[metric]) if metric in per_frame else None
    result["tcm"] = tcm_detail["tcm"] if tcm_detail is not None else None
    result.update({
        "per_frame": per_frame,
        "tcm_detail": tcm_detail,
        "fid_features": fid_features,
        "unavailable": unavailable,
        "backends": {
            "image": IMAGE_BACKEND,
            "lpips": _backend_name(lpips, "LPIPS network"),
            "inception": _backend_name(fid_extractor, "Inception extractor"),
            "flow": _backend_name(flow_backend, "flow backend"),
        },
    })
    return result


def set_level_fid(results: list[dict]) -> dict:
    """FID over all videos' frames pooled (generated set vs real set), from ``evaluate_pair_videos`` results.

    Returns ``fid_from_features``'s dict (value, N, extractor, comparability, small-N caveat), or
    ``{"fid": None, "reason": ...}`` when some video has no features (no Inception weights).
    """
    missing = [i for i, r in enumerate(results) if r.get("fid_features") is None]
    if not results or missing:
        reasons = sorted({results[i]["unavailable"].get("fid", "") for i in missing}) if results else ["no videos"]
        return {"fid": None, "reason": "; ".join(reasons)}
    extractors = {r["backends"]["inception"] for r in results}
    if len(extractors) != 1:
        raise ValueError(f"videos were embedded by different Inception networks {sorted(extractors)}; "
                         "FID would mix them")
    generated = np.concatenate([r["fid_features"]["generated"] for r in results])
    real = np.concatenate([r["fid_features"]["real"] for r in results])
    extractor = extractors.pop()
    return fid_from_features(generated, real, extractor, comparable_to_papers=extractor in COMPARABLE)
