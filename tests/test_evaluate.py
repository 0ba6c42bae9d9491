"""The evaluate stage's plumbing on fabricated per-video artefacts (48x64, known motion and flow) with a tiny
freshly initialised checkpoint, and the Tables 3-4 ablation table builder on a fabricated `dvc exp show --json`."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.core.artifacts import VideoArtifacts
from pipeline.core.params import validate_params
from pipeline.evaluation.ablation import ablation_rows, format_table
from pipeline.evaluation.baselines import copy_source, gam_only
from pipeline.evaluation.data import TestVideo, load_test_videos, make_pairs, person_id
from pipeline.evaluation.run import HIGHER_IS_BETTER, run_evaluation
from pipeline.evaluation.summary import COLUMNS, SUMMARY_FILE, summarize
from pipeline.inference.generate import CheckpointMissing, generate_video, load_networks
from pipeline.inference.video_io import read_video
from pipeline.metrics.image import mask_psnr, mask_ssim, ssim
from pipeline.metrics.tcm import tcm
from pipeline.pretrained import weights as wf
from pipeline.pretrained.lpips_network import JAX_FILES
from pipeline.shards.writer import collect_video
from remot_models.config import ModelConfig
from tests.test_shards import fabricate_video
from tests.test_transfer import save_initialised_checkpoint

torch.set_num_threads(1)
FRAMES = 4


def make_params(**evaluate):
    return validate_params({"datasets": {"ds": {"kind": "folder", "path": "unused"}},
                            "evaluate": {"frames_per_video": FRAMES, "samples": 1, **evaluate}})


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-project")
    data = root / "data"
    fabricate_video(data, "ds", "a_test", "test", speed=2, offset=0)
    fabricate_video(data, "ds", "b_test", "test", speed=1, offset=20)
    fabricate_video(data, "ds", "c_train", "train", speed=1, offset=5)
    save_initialised_checkpoint(root / "models", ModelConfig.from_profile("tiny"))
    metrics = run_evaluation(make_params(), root, progress=False)
    with open(root / "reports" / "eval" / "videos.csv") as handle:
        rows = list(csv.DictReader(handle))
    return root, metrics, rows


def number(value: str) -> float | None:
    return float(value) if value != "" else None


def test_metrics_file_covers_test_split_methods_and_backends(evaluated):
    root, metrics, _ = evaluated
    assert json.loads((root / "metrics" / "eval.json").read_text()) == metrics
    ds = metrics["datasets"]["ds"]
    assert ds["videos"] == ["a_test", "b_test"]  # the train video is not evaluated
    assert set(ds["self"]) == set(ds["cross"]) == {"remot", "copy_source", "gam_only", "untrained"}
    assert set(ds["self"]["remot"]) == {"ssim", "psnr", "mask_ssim", "mask_psnr", "lpips", "fid", "tcm", "akd",
                                        "mkr", "moved_psnr", "moved_l1", "layout_miou", "limbs_iou",
                                        "region_moved_psnr"}
    assert set(ds["cross"]["remot"]) == {"fid", "tcm", "akd", "mkr"}
    # the motion scores: the pose model finds no person in the fabricated rectangles, so every keypoint is missed
    assert ds["self"]["remot"]["mkr"] == 1.0 and ds["self"]["remot"]["akd"] is None
    assert math.isfinite(ds["self"]["copy_source"]["moved_psnr"]) and ds["self"]["copy_source"]["layout_miou"] is None
    for method in ("remot", "untrained"):
        assert 0.0 <= ds["self"][method]["layout_miou"] <= 1.0
    assert ds["backends"]["parser"] == "test-parser" and ds["backends"]["pose"] == "test-pose"
    assert ds["backends"]["flow"] == "test-flow"
    assert set(ds["backends"]) == {"parser", "pose", "flow", "perceptual", "lpips", "inception"}
    reasons = json.loads((root / "reports" / "eval" / "unavailable.json").read_text())["ds"]
    for metric in ("lpips", "fid"):  # no weights file: "unavailable" here, the reason in the report
        if ds["self"]["remot"][metric] is None:
            assert ds["unavailable"][metric] == "weights absent" and reasons[metric]
            assert ds["backends"]["lpips" if metric == "lpips" else "inception"] == "unavailable"
            assert str(root) not in reasons[metric]  # paths relative to the project
    if wf.package_file(JAX_FILES["alex"]) is not None:  # after `make setup`: LPIPS is a number by default
        assert all(math.isfinite(ds["self"][m]["lpips"]) for m in ("remot", "copy_source", "gam_only"))
        assert ds["backends"]["lpips"].startswith("lpips-v0.1-alex:") and "lpips" not in ds["unavailable"]
    # readable `dvc metrics show`: short values only (the long texts live in reports/eval/)
    flat = json.dumps(metrics)
    assert str(root) not in flat and all(len(str(v)) <= 60 for v in _leaves(metrics))
    for method in ("remot", "copy_source"):
        for metric in ("ssim", "psnr", "mask_ssim", "mask_psnr", "tcm"):
            assert math.isfinite(ds["self"][method][metric])
    # the GAM-only baseline aligns onto REMOT's predicted layouts (an untrained net here): finite scores
    assert all(math.isfinite(ds["self"]["gam_only"][m]) for m in ("ssim", "psnr", "mask_ssim", "mask_psnr"))
    # every "beats" boolean agrees with the means it compares
    assert set(ds["beats_baselines"]) == {"copy_source", "gam_only", "untrained"}
    for baseline in ("copy_source", "gam_only", "untrained"):
        for kind, flags in ds["beats_baselines"][baseline].items():
            for metric, flag in flags.items():
                ours, theirs = ds[kind]["remot"][metric], ds[kind][baseline][metric]
                if ours is None or theirs is None:
                    assert flag is None
                else:
                    assert flag == ((ours > theirs) if HIGHER_IS_BETTER[metric] else (ours < theirs))


def _leaves(obj):
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _leaves(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _leaves(value)
    else:
        yield obj


def test_per_video_table_matches_an_independent_computation(evaluated):
    root, metrics, rows = evaluated
    assert len(rows) == 2 * 2 * 4  # (self + cross) x 2 videos x 4 methods
    for row in rows:
        if row["pair"] == "self":
            assert row["source_video"] == row["driving_video"]
            assert int(row["source_frame"]) < int(row["frames"].split("-")[0])  # a forward frame
        else:
            assert row["source_video"] != row["driving_video"] and row["ssim"] == ""
    # copy-source on video a, recomputed from the artefacts with the metric functions directly
    video = collect_video(VideoArtifacts(root / "data", "ds", "a_test")).load()
    row = next(r for r in rows if r["pair"] == "self" and r["driving_video"] == "a_test"
               and r["method"] == "copy_source")
    src = int(row["source_frame"])
    clip = slice(12 - FRAMES, 12)
    copied = copy_source(video.frames[src], video.layouts[src], video.background, FRAMES)
    real = video.frames[clip]
    assert number(row["ssim"]) == pytest.approx(np.mean([ssim(g, r) for g, r in zip(copied, real)]), abs=1e-9)
    assert number(row["mask_ssim"]) == pytest.approx(
        np.mean([mask_ssim(g, r, lay != 5) for g, r, lay in zip(copied, real, video.layouts[clip])]), abs=1e-9)
    # TCM with the flow stage's flow of the real clip (frames 9..11 -> 8..10)
    flows = [video.flow[t].astype(np.float32).transpose(1, 2, 0) for t in range(13 - FRAMES, 12)]
    valid = [video.valid[t, 0].astype(np.float32) for t in range(13 - FRAMES, 12)]
    expected = tcm(list(copied), list(real), flows=flows, valid=valid)["tcm"]
    assert number(row["tcm"]) == pytest.approx(expected, abs=1e-9) and 0 < expected < 1
    # the dataset means are the means of the per-video rows
    for method in ("remot", "copy_source"):
        selfs = [number(r["mask_psnr"]) for r in rows if r["pair"] == "self" and r["method"] == method]
        assert metrics["datasets"]["ds"]["self"][method]["mask_psnr"] == pytest.approx(np.mean(selfs))


def test_gam_only_baseline_gets_remots_predicted_layouts(evaluated):
    root, _, rows = evaluated
    # Same inputs as REMOT: the GAM aligns the source onto the layouts REMOT's Layout GAN predicted from the
    # driving poses (GeneratedVideo.layouts), not onto the ground-truth parsing. Recomputed independently here.
    nets = load_networks(root / "models", ModelConfig.from_profile("tiny"), "cpu")
    inputs = collect_video(VideoArtifacts(root / "data", "ds", "a_test"))
    video = inputs.load()
    row = next(r for r in rows if r["pair"] == "self" and r["driving_video"] == "a_test" and r["method"] == "gam_only")
    src, clip = int(row["source_frame"]), slice(12 - FRAMES, 12)
    generated = generate_video(nets, video.frames[src], video.layouts[src], inputs.keypoints[clip], video.background,
                               make_params().pose.thickness)
    expected = gam_only(video.frames[src], video.layouts[src], generated.layouts, video.background)
    masks = [lay != 5 for lay in video.layouts[clip]]
    assert number(row["mask_psnr"]) == pytest.approx(
        np.mean([mask_psnr(g, r, m) for g, r, m in zip(expected, video.frames[clip], masks)]), abs=1e-9)
    with_truth = gam_only(video.frames[src], video.layouts[src], video.layouts[clip], video.background)
    assert not np.array_equal(expected, with_truth)  # the ground-truth-layout variant is not what is scored


def test_cross_pairs_pair_different_people():
    def video(name, kind):
        return TestVideo(None, 0, 2, 0, person_id(kind, name))

    iper = [video(v, "iper") for v in ("001__1__1", "001__1__2", "002__1__1", "003__2__1")]
    pairs = [(p.driving.person, p.source.person) for p in make_pairs(iper, True) if p.kind == "cross"]
    assert all(a != b for a, b in pairs) and len(pairs) == 4  # 001_1_1 -> 002, not its own actor's 001_1_2
    same = [video(v, "iper") for v in ("004__1__1", "004__2__1")]
    assert [p.kind for p in make_pairs(same, True)] == ["self", "self"]  # one actor only: no cross pair
    assert person_id("solodance", "dancer_7") == "dancer_7" and person_id("folder", "a__b") == "a__b"


def test_whole_remainder_and_ssim_window_are_params(tmp_path):
    fabricate_video(tmp_path / "data", "ds", "a_test", "test", speed=1, offset=0)
    videos, _ = load_test_videos(tmp_path / "data", "ds", None, 0)
    assert (videos[0].start, videos[0].stop, videos[0].source_frame) == (1, 12, 0)  # every frame after the first
    assert make_params(frames_per_video=None).evaluate.frames_per_video is None
    assert make_params().evaluate.ssim_sigma == 1.5
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    noisy = np.clip(image.astype(int) + 20, 0, 255).astype(np.uint8)
    assert ssim(image, noisy, sigma=1.5) != pytest.approx(ssim(image, noisy, sigma=3.0))


def test_samples_are_side_by_side_videos(evaluated):
    root, _, _ = evaluated
    samples = sorted(p.name for p in (root / "reports" / "eval" / "samples").iterdir())
    assert samples == ["ds__a_test__cross.mp4", "ds__a_test__self.mp4"]  # evaluate.samples: 1 video
    frames, fps = read_video(root / "reports" / "eval" / "samples" / "ds__a_test__self.mp4")
    assert len(frames) == FRAMES and frames[0].shape == (48, 4 * 64, 3) and fps == pytest.approx(25.0)
    run = json.loads((root / "reports" / "eval" / "run.json").read_text())
    assert run["generated_frames"] == 4 * FRAMES and "bootstrap" in run["start_rule"]
    assert "seconds" not in json.dumps(run) and str(root) not in json.dumps(run)  # tracked: no timings, paths
    timings = json.loads((root / "logs" / "eval" / "eval.json").read_text())  # untracked run log
    assert timings["seconds"] > 0 and timings["generated_frames"] == 4 * FRAMES


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    fabricate_video(tmp_path / "data", "ds", "a_test", "test")
    with pytest.raises(CheckpointMissing, match="dvc repro train_layout"):
        run_evaluation(make_params(), tmp_path, progress=False)
    assert not (tmp_path / "metrics" / "eval.json").exists()


def test_summary_is_remots_self_scores_and_its_wins(evaluated):
    root, metrics, _ = evaluated
    summary = json.loads((root / SUMMARY_FILE).read_text())
    ds = metrics["datasets"]["ds"]
    assert list(summary) == ["ds"]
    assert set(COLUMNS) <= set(ds["self"]["remot"]) and {"akd", "mkr", "moved_psnr"} <= set(COLUMNS)
    for metric in COLUMNS:
        value = ds["self"]["remot"][metric]
        assert summary["ds"][metric] == (None if value is None else pytest.approx(value, abs=1e-4))
    verdicts = [v for per_kind in ds["beats_baselines"].values() for kind in per_kind.values()
                for v in kind.values() if v is not None]
    assert summary["ds"]["wins"] == f"{sum(verdicts)}/{len(verdicts)}" and verdicts


def test_dvc_metrics_show_fits_in_200_columns():
    """The committed summaries are the only metrics files, so `dvc metrics show` stays narrow."""
    repo = Path(__file__).resolve().parents[1]
    dvc = Path(sys.executable).with_name("dvc")
    shown = subprocess.run([str(dvc), "metrics", "show"], cwd=repo, capture_output=True, text=True, check=True)
    lines = shown.stdout.splitlines()
    assert len(lines) >= 2 and "demo.mask_psnr" in lines[0]
    assert max(map(len, lines)) <= 200, max(lines, key=len)


# ------------------------------------------------------------------------------------------------ ablation


def exp_state(rev, name, flags, remot, timestamp, experiments=None):
    return {"rev": rev, "name": name, "error": None, "experiments": experiments,
            "data": {"rev": rev, "timestamp": timestamp, "meta": {}, "deps": {}, "outs": {},
                     "params": {"params.yaml": {"data": {"model": {"profile": "tiny", **flags}}}},
                     "metrics": {SUMMARY_FILE: {"data": summarize({"datasets": {"demo": {"self": {"remot": remot}}}})}}}}


def scores(v):
    return {"ssim": 0.5, "psnr": 18.0, "mask_ssim": v, "mask_psnr": 20 + v, "lpips": None, "fid": None, "tcm": v / 10}


def test_ablation_table_from_exp_show_json():
    on = {"gam": True, "wcn": True, "tam": True}
    exps = [exp_state("e1", "old-nogam", {**on, "gam": False}, scores(0.1), "2025-01-01T00:00:00"),
            exp_state("e2", "new-nogam", {**on, "gam": False}, scores(0.2), "2025-01-02T00:00:00"),
            exp_state("e3", "nowcn", {**on, "wcn": False}, scores(0.3), "2025-01-02T00:00:00"),
            exp_state("e4", "two-off", {**on, "wcn": False, "tam": False}, scores(0.9), "2025-01-03T00:00:00"),
            exp_state("e5", "full", on, scores(0.5), "2025-01-02T00:00:00")]
    document = [exp_state("workspace", None, on, scores(0.7), None),
                exp_state("abc123", "main", on, scores(0.4), "2024-12-31T00:00:00",
                          experiments=[{"revs": [e], "executor": None, "name": e["name"]} for e in exps]),
                {"rev": "broken", "name": "x", "error": {"msg": "failed"}, "data": None, "experiments": None}]
    rows = {r["row"]: r for r in ablation_rows(document)}
    assert list(rows) == ["RGN w/o GAM", "REMOT w/o WCN", "REMOT w/o TAM", "REMOT"]
    assert rows["RGN w/o GAM"]["experiment"] == "new-nogam" and rows["RGN w/o GAM"]["SSIM*"] == 0.2
    assert rows["REMOT w/o WCN"]["experiment"] == "nowcn" and rows["REMOT w/o WCN"]["PSNR*"] == 20.3
    assert rows["REMOT w/o TAM"]["experiment"] is None  # "two-off" matches no row
    assert rows["REMOT"]["experiment"] == "full" and rows["REMOT"]["TCM"] == pytest.approx(0.05)
    table = format_table(list(rows.values())).splitlines()
    assert table[0].split() == ["SSIM*", "PSNR*", "LPIPS", "FID", "TCM", "experiment"]
    assert table[1].split() == ["RGN", "w/o", "GAM", "0.200", "20.20", "-", "-", "0.020", "new-nogam"]
    assert table[3].endswith("not run")


def test_evaluation_reads_only_the_scored_clip(tmp_path):
    """Memory flat in video length: a test video of 40 frames evaluated on 4 holds 4 frames in memory."""
    from pipeline.evaluation.data import load_test_videos, release_loaded_video
    from tests.test_shards import fabricate_video

    fabricate_video(tmp_path / "data", "ds", "long_test", "test", n_frames=40)
    (video,), _ = load_test_videos(tmp_path / "data", "ds", 4, seed=0)
    assert (video.start, video.stop) == (36, 40)
    loaded = video.loaded
    assert loaded.frames.shape[0] == loaded.layouts.shape[0] == loaded.flow.shape[0] == 4
    full = video.inputs.load()
    assert (loaded.frames == full.frames[36:]).all() and (loaded.flow == full.flow[36:]).all()
    flows, valid = video.real_flow()
    assert len(flows) == len(valid) == 3
    release_loaded_video()
