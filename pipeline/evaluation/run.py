"""The evaluate stage's library: generate every evaluation pair with the trained REMOT and the baselines, score
them with the paper's metrics (4.2), and write the results.

Outputs (paths relative to the project root)::

    metrics/eval.json               per dataset: mean metrics per pair kind (self / cross) and method, which
                                    baseline the model beats on which metric, unavailable metrics with the
                                    reason, and the backends (parser, pose, flow, vgg, lpips, inception)
    metrics/summary.json            REMOT's self-pair scores and its wins per dataset: the one file DVC lists
                                    as metrics, so `dvc metrics show` stays one short line per file (summary.py)
    reports/eval/videos.csv         one row per (dataset, pair, driving video, method) with every metric
    reports/eval/run.json           checkpoints used, start rule, timings, skipped videos
    reports/eval/samples/*.mp4      side-by-side source | driving | REMOT | GAM-only for the first videos

Metrics: SSIM, PSNR, Mask-SSIM, Mask-PSNR (person mask = the driving frame's parsed layout != background),
LPIPS (official weights or unavailable), TCM (real driving video's flow from the flow stage, i.e. the
``flow.backend`` the params select, recorded) on self pairs; FID (set level, official Inception weights or
unavailable) and TCM on both self and cross pairs.

Motion (``pipeline.metrics.motion``): AKD and MKR of the pose model run on every generated clip against the
driving clip's keypoints (self and cross pairs), PSNR / L1 over the moved region (self), and per network: the
Layout GAN's layouts against the ground-truth layouts (mIoU, limbs IoU) and the Region GAN's coarse person over
the moved region (self; REMOT and the untrained control only). Methods: REMOT, the two baselines, and
``untrained``: REMOT's networks at step 0 (the initialisation training starts from), which isolates what
training added.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import atomic
from pipeline.core.compute import choose_device
from pipeline.core.labels import REGIONS
from pipeline.core.params import Params, model_config
from pipeline.core.runlog import relative_paths, write_log
from pipeline.evaluation.baselines import METHODS as BASELINES
from pipeline.evaluation.baselines import copy_source, gam_only
from pipeline.evaluation.data import (Pair, TestVideo, load_test_videos, make_pairs, release_loaded_video,
                                      require_videos)
from pipeline.evaluation.summary import SUMMARY_FILE, summarize
from pipeline.inference.generate import START_RULE, Networks, generate_video, load_networks, untrained_networks
from pipeline.inference.video_io import side_by_side, write_mp4
from pipeline.metrics import Unavailable, load_or_unavailable
from pipeline.metrics.motion import keypoint_scores, layout_scores, moved_region, moved_region_scores
from pipeline.metrics.report import evaluate_pair_videos, set_level_fid
from pipeline.pose.mediapipe_body25 import iter_estimate
from pipeline.metrics.tcm import tcm
from pipeline.pretrained.fid_inception import InceptionFeatures, load_inception
from pipeline.pretrained.lpips_network import load_lpips
from pipeline.pretrained.perceptual import short_name

CONTROLS = (*BASELINES, "untrained")   # what REMOT is compared with ("wins")
METHODS = ("remot", *CONTROLS)
MOTION = ("akd", "mkr")
DIAGNOSTICS = ("layout_miou", "limbs_iou", "region_moved_psnr")   # per network; None for the baselines
METRICS = {"self": ("ssim", "psnr", "mask_ssim", "mask_psnr", "lpips", "fid", "tcm", *MOTION, "moved_psnr",
                    "moved_l1", *DIAGNOSTICS),
           "cross": ("fid", "tcm", *MOTION)}
HIGHER_IS_BETTER = {"ssim": True, "psnr": True, "mask_ssim": True, "mask_psnr": True, "lpips": False,
                    "fid": False, "tcm": True, "akd": False, "mkr": False, "moved_psnr": True, "moved_l1": False,
                    "layout_miou": True, "limbs_iou": True, "region_moved_psnr": True}
PER_VIDEO = ("ssim", "psnr", "mask_ssim", "mask_psnr", "lpips", "tcm", *MOTION, "moved_psnr", "moved_l1",
             *DIAGNOSTICS)
BACKGROUND_LABEL = REGIONS.index("background")
METRICS_FILE = Path("metrics") / "eval.json"
REPORT_DIR = Path("reports") / "eval"


def _finite(value: Any) -> float | None:
    """A JSON-safe number: None for missing, nan or inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _number(value: Any) -> float | None:
    """A per-video table value: None for missing or nan; inf kept (PSNR of identical frames), written "inf"."""
    if value is None or math.isnan(float(value)):
        return None
    return float(value)


def _name(component: Any) -> str:
    """A backend's short name for metrics/eval.json; an unavailable one is just "unavailable" there (its reason
    is in reports/eval/unavailable.json: `dvc metrics show` prints every value on one table line)."""
    return "unavailable" if isinstance(component, Unavailable) else component.name


# ------------------------------------------------------------------------------------------------ scoring


def score_pair(kind: str, generated: np.ndarray, video: TestVideo, lpips, inception,
               ssim_sigma: float = 1.5) -> dict[str, Any]:
    """Metrics of one generated clip against ``video``'s real clip.

    ``kind`` "self": every per-video metric (``evaluate_pair_videos``) + TCM; "cross": TCM and FID features
    only (a different person: pixel metrics would be meaningless). Returns ``evaluate_pair_videos``'s dict shape
    (metric means, ``fid_features``, ``unavailable``, ``backends``).
    """
    real = list(video.loaded.frames)
    gen = list(generated)
    flows, valid = video.real_flow()
    if kind == "self":
        masks = [layout != BACKGROUND_LABEL for layout in video.loaded.layouts]
        result = evaluate_pair_videos(gen, real, masks, None, lpips, inception, ssim_sigma)
    else:
        result = {"n_frames": len(gen), "unavailable": {}, "backends": {"inception": _name(inception)},
                  "fid_features": None}
        if isinstance(inception, InceptionFeatures):
            result["fid_features"] = {"generated": inception.features(gen), "real": inception.features(real)}
        else:
            result["unavailable"]["fid"] = str(inception)
    detail = tcm(gen, real, flows=flows, valid=valid)
    result["unavailable"].pop("tcm", None)
    result["tcm"], result["tcm_detail"] = detail["tcm"], detail
    result["backends"]["flow"] = f"{video.inputs.backends['flow']} (flow stage, real driving video)"
    return result


def beats(model: dict[str, float | None], baseline: dict[str, float | None]) -> dict[str, bool | None]:
    """Per metric: does the model score better than the baseline (None where either value is missing)?"""
    out: dict[str, bool | None] = {}
    for metric, value in model.items():
        other = baseline.get(metric)
        if value is None or other is None:
            out[metric] = None
        else:
            out[metric] = bool(value > other) if HIGHER_IS_BETTER[metric] else bool(value < other)
    return out


def aggregate(results: dict[tuple[str, str], list[dict]], infinite: list[str] | None = None,
              ) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{(kind, method): [score_pair results]}`` -> ``{kind: {method: {metric: mean over videos | None}}}``;
    FID pooled over the kind's videos (``set_level_fid``). JSON has no infinity: an infinite mean (PSNR of
    frames identical to the ground truth) becomes None and ``"<kind>/<method>/<metric>"`` is appended to
    ``infinite``."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for (kind, method), items in results.items():
        values: dict[str, float | None] = {}
        for metric in METRICS[kind]:
            if metric == "fid":
                values["fid"] = _finite(set_level_fid(items).get("fid"))
                continue
            scores = [r.get(metric) for r in items]
            if any(s is None for s in scores):
                mean = None
            elif metric == "akd":  # a clip where no keypoint was found in both has no distance: MKR counts it
                found = [s for s in scores if not math.isnan(s)]
                mean = float(np.mean(found)) if found else None
            else:
                mean = float(np.mean(scores))
            if mean is not None and math.isinf(mean) and infinite is not None:
                infinite.append(f"{kind}/{method}/{metric}")
            values[metric] = _finite(mean)
        out.setdefault(kind, {})[method] = values
    return out


# ------------------------------------------------------------------------------------------------ the stage


def run_evaluation(params: Params, root: Path | str, progress: bool = True) -> dict[str, Any]:
    """Evaluate every registered dataset's test split; write the outputs listed in the module docstring.

    Returns the content written to ``metrics/eval.json``. Raises ``RemotError`` when a checkpoint is missing or
    of another model config, or a dataset has no complete test video.
    """
    started = time.perf_counter()
    root = Path(root)
    ep = params.evaluate
    device = choose_device(ep.device, setting="evaluate.device")
    nets = load_networks(root / params.train.out, model_config(params.model), device)
    untrained = untrained_networks(nets.cfg, params.train.seed, device)
    lpips = load_or_unavailable(f"lpips-{ep.lpips_net}", load_lpips, ep.lpips_net, lin_path=root / ep.lpips_weights,
                                backbone_path=root / ep.lpips_weights)
    inception = load_or_unavailable("fid", load_inception, root / ep.inception_weights)
    rows: list[dict[str, Any]] = []
    samples: list[tuple[str, list[np.ndarray], float]] = []
    datasets, run_info = {}, {"skipped": {}, "network_seconds": 0.0, "generated_frames": 0}
    for dataset in params.datasets:
        videos, skipped = load_test_videos(root / params.data_root, dataset, ep.frames_per_video, ep.seed,
                                           params.datasets[dataset].kind, ep.split)
        run_info["skipped"][dataset] = skipped
        require_videos(videos, dataset, skipped, ep.split)
        results: dict[tuple[str, str], list[dict]] = {}
        for pair in make_pairs(videos, ep.cross_identity):
            generated = _generate_pair(nets, untrained, pair, params.pose.thickness, run_info)
            for method, frames in generated.frames.items():
                scored = score_pair(pair.kind, frames, pair.driving, lpips, inception, ep.ssim_sigma)
                scored.update(motion_scores(pair.kind, method, generated, pair, params.pose))
                results.setdefault((pair.kind, method), []).append(scored)
                rows.append(_row(dataset, pair, method, scored))
            sample_rank = [v.name for v in videos].index(pair.driving.name)
            if sample_rank < ep.samples:
                samples.append((f"{dataset}__{pair.driving.name}__{pair.kind}",
                                _sample_frames(pair, generated.frames), pair.driving.inputs.fps))
            if progress:
                print(f"evaluate {dataset}: {pair.kind} {pair.source.name} -> {pair.driving.name} done", flush=True)
        datasets[dataset] = _dataset_summary(videos, results, ep, nets, lpips, inception)
        release_loaded_video()
    reasons = {name: summary.pop("unavailable_reasons") for name, summary in datasets.items()}
    metrics = {"datasets": datasets, "split": ep.split, "profile": params.model.profile,
               "ablation": {"gam": nets.cfg.gam, "wcn": nets.cfg.wcn, "tam": nets.cfg.tam},
               "start_rule": START_RULE.split(":", 1)[0]}  # the rule's id; its text is in reports/eval/run.json
    run_info.update({"checkpoints": nets.info, "device": str(nets.device), "start_rule": START_RULE})
    # Wall times go to the untracked log: reports/eval is a DVC output and must not change from run to run.
    timings = {"seconds": round(time.perf_counter() - started, 3),
               "network_seconds": round(run_info.pop("network_seconds"), 3),
               "generated_frames": run_info["generated_frames"]}
    _write_outputs(root, metrics, rows, samples, relative_paths(run_info, root), relative_paths(reasons, root))
    write_log(root / "reports" / "eval" / "eval.json", timings)
    return metrics


@dataclass
class Generated:
    """Every method's uint8 (T, H, W, 3) clip of one pair, and what the networks made inside (REMOT and the
    untrained control): their layouts (T, H, W) and coarse Region GAN persons (T, H, W, 3)."""

    frames: dict[str, np.ndarray]
    layouts: dict[str, np.ndarray]
    coarse: dict[str, np.ndarray]


def _generate_pair(nets: Networks, untrained: Networks, pair: Pair, thickness: int, run_info: dict) -> Generated:
    """Every method's clip for ``pair``."""
    source, source_layout = pair.source.source()
    drv = pair.driving
    background = drv.loaded.background
    made = {}
    for method, networks in (("remot", nets), ("untrained", untrained)):
        made[method] = generate_video(networks, source, source_layout, drv.inputs.keypoints[drv.clip], background,
                                      thickness)
    run_info["network_seconds"] += made["remot"].network_seconds  # REMOT's speed: the control is not timed
    run_info["generated_frames"] += len(made["remot"].frames)
    t = drv.stop - drv.start
    # The baselines get REMOT's inputs: the GAM-only baseline aligns onto the layouts REMOT's Layout GAN
    # predicted from the driving poses (not the ground-truth parsing, which REMOT never sees at test time).
    frames = {"remot": made["remot"].frames,
              "copy_source": copy_source(source, source_layout, background, t),
              "gam_only": gam_only(source, source_layout, made["remot"].layouts, background),
              "untrained": made["untrained"].frames}
    return Generated(frames, {m: v.layouts for m, v in made.items()}, {m: v.coarse for m, v in made.items()})


def motion_scores(kind: str, method: str, generated: Generated, pair: Pair, pose_cfg) -> dict[str, float | None]:
    """AKD / MKR of ``method``'s clip (the pose model run on it, as the pose stage runs it) against the driving
    clip's keypoints; for self pairs also the moved-region scores and the per-network diagnostics."""
    frames = generated.frames[method]
    drv = pair.driving
    found = np.stack([p.keypoints for p in iter_estimate(list(frames), pose_cfg.model_complexity,
                                                         pose_cfg.min_detection_confidence)])
    out: dict[str, float | None] = dict(keypoint_scores(found, drv.inputs.keypoints[drv.clip]))
    if kind != "self":
        return out
    _, source_layout = pair.source.source()
    real_layouts = drv.loaded.layouts
    regions = [moved_region(layout != BACKGROUND_LABEL, source_layout != BACKGROUND_LABEL) for layout in real_layouts]
    moved = moved_region_scores(frames, drv.loaded.frames, regions)
    out.update(moved_psnr=moved["psnr"], moved_l1=moved["l1"])
    if method in generated.layouts:
        out.update(layout_scores(generated.layouts[method], real_layouts))
        # the Region GAN's person against the real person: inside the moved region, where the real frame is person
        person = [m & (layout != BACKGROUND_LABEL) for m, layout in zip(regions, real_layouts)]
        out["region_moved_psnr"] = moved_region_scores(generated.coarse[method], drv.loaded.frames, person)["psnr"]
    else:
        out.update({name: None for name in DIAGNOSTICS})
    return out


def _sample_frames(pair: Pair, outputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    source, _ = pair.source.source()
    real = pair.driving.loaded.frames
    return [side_by_side(source, r, g, b) for r, g, b in zip(real, outputs["remot"], outputs["gam_only"])]


def _row(dataset: str, pair: Pair, method: str, scored: dict) -> dict[str, Any]:
    row = {"dataset": dataset, "pair": pair.kind, "driving_video": pair.driving.name,
           "frames": f"{pair.driving.start}-{pair.driving.stop - 1}", "source_video": pair.source.name,
           "source_frame": pair.source.source_frame, "method": method}
    row.update({m: _number(scored.get(m)) for m in PER_VIDEO})
    return row


def _dataset_summary(videos: list[TestVideo], results, ep, nets: Networks, lpips, inception) -> dict[str, Any]:
    infinite: list[str] = []
    means = aggregate(results, infinite)
    wins = {control: {kind: beats(means[kind]["remot"], means[kind][control]) for kind in means}
            for control in CONTROLS}
    reasons: dict[str, str] = {}
    for items in results.values():
        for r in items:
            reasons.update(r["unavailable"])
    if "cross" not in means:
        reasons["cross"] = ("cross-identity pairs need at least 2 test videos" if ep.cross_identity
                            else "evaluate.cross_identity is false")
    # metrics/eval.json keeps a short word per metric; the full reasons go to reports/eval/unavailable.json.
    unavailable = {metric: _short_reason(reason) for metric, reason in reasons.items()}
    perceptual = nets.info.get("wcn", {}).get("perceptual") or nets.info.get("region", {}).get("perceptual") or {}
    backends = {
        "parser": ", ".join(sorted({v.inputs.backends["parser"] for v in videos})),
        "pose": ", ".join(sorted({v.inputs.backends["pose"] for v in videos})),
        "flow": ", ".join(sorted({v.inputs.backends["flow"] for v in videos})),
        "perceptual": short_name(perceptual),
        "lpips": _name(lpips),
        "inception": _name(inception),
    }
    return {"n_videos": len(videos), "videos": [v.name for v in videos], "frames_per_video": ep.frames_per_video,
            **means, "beats_baselines": wins, "unavailable": unavailable, "backends": backends,
            "infinite": infinite, "unavailable_reasons": reasons}


def _short_reason(reason: str) -> str:
    text = reason.lower()
    if "weights" in text or "not installed" in text or "missing" in text:
        return "weights absent"
    return " ".join(reason.split())[:60]


def _write_outputs(root: Path, metrics: dict, rows: list[dict], samples, run_info: dict,
                   reasons: dict | None = None) -> None:
    with atomic.replace_dir(root / REPORT_DIR) as tmp:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
        (tmp / "videos.csv").write_text(buffer.getvalue())
        for name, frames, fps in samples:
            write_mp4(tmp / "samples" / f"{name}.mp4", frames, fps)
        atomic.write_json(tmp / "run.json", run_info)
        atomic.write_json(tmp / "unavailable.json", reasons or {})
    atomic.write_json(root / METRICS_FILE, metrics)
    atomic.write_json(root / SUMMARY_FILE, summarize(metrics))
