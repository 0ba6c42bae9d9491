"""Inference speed of REMOT end to end (``pipeline.inference``): frames per second of the three networks with
temporal state, and of the whole ``remot transfer`` path including preprocessing.

``run(quick=True) -> list[dict]`` rows ``{"area": "inference", "name", "value", "unit", "device", "notes"}``.

Method:

* networks only - ``generate_video`` (Layout GAN -> Region GAN with GAM -> WCN, one frame at a time, the
  bootstrap of frame 0 included) on freshly initialised networks and synthetic inputs at 256x192; speed does not
  depend on the weights. Frames / time spent inside the networks (CUDA-synchronised). ``tiny`` on CPU (one
  thread: the machine is shared); on CUDA also the ``paper`` profile.
  Both precisions of ``remot transfer --precision``.
* end to end - ``run_transfer`` on the project's own generated demo footage (two demo clips made in a temporary
  folder, never third-party footage): person box, MediaPipe pose, parsing (the params' backend: offline without
  the SCHP weights), background plate, networks, mp4 writing; frames / wall time after start-up, the networks'
  own frames/s in the same calls and their ratio; start-up (checkpoint loading, MediaPipe's import) its own row.
  The driving clip is capped at ``extract.max_frames`` frames (16 in quick mode, 32 otherwise), with a tiny
  random-init checkpoint; fp32 and bf16 calls interleaved, medians.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tests.benchmarks._threads import limited_threads

AREA = "inference"


def random_checkpoints(root: Path) -> Path:
    """Untrained tiny-profile generators saved as ``<root>/models/<stage>/final`` (speed and memory only)."""
    from pipeline.core import checkpoint as ckpt
    from remot_models import LayoutGenerator, RegionGenerator, WholeCompositionNetwork
    from remot_models.config import ModelConfig

    cfg = ModelConfig.from_profile("tiny")
    torch.manual_seed(0)
    for stage, net in (("layout", LayoutGenerator(cfg)), ("region", RegionGenerator(cfg)),
                       ("wcn", WholeCompositionNetwork(cfg))):
        folder = root / "models" / stage / "final"
        folder.mkdir(parents=True)
        ckpt.write_checkpoint_files(folder, ckpt.TrainingState(meta={"stage": stage, "profile": "tiny",
                                                                     "model_config": cfg.to_dict()}),
                                    {"generator": net}, {}, {})
    return root / "models"


def _row(name: str, value: float, unit: str, device: str, notes: str) -> dict:
    return {"area": AREA, "name": name, "value": round(float(value), 3), "unit": unit, "device": device,
            "notes": notes}


def _networks(profile: str, device: torch.device):
    from pipeline.inference.generate import Networks
    from remot_models import LayoutGenerator, RegionGenerator, WholeCompositionNetwork
    from remot_models.config import ModelConfig

    cfg = ModelConfig.from_profile(profile)
    torch.manual_seed(0)
    nets = [LayoutGenerator(cfg), RegionGenerator(cfg), WholeCompositionNetwork(cfg)]
    for net in nets:
        net.to(device).eval().requires_grad_(False)
    return Networks(cfg, *nets, device=device, folders={})


def networks_only(profile: str, device: torch.device, n_frames: int, precision: str = "fp32") -> dict:
    from pipeline.inference.generate import generate_video

    nets = _networks(profile, device)
    rng = np.random.default_rng(0)
    h, w = 256, 192
    source = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    layout = np.full((h, w), 5, np.uint8)
    layout[40:230, 60:130] = rng.integers(0, 5, (190, 70), dtype=np.uint8)
    keypoints = np.zeros((n_frames, 25, 3), np.float32)
    keypoints[:, :, 0] = rng.uniform(60, 130, (n_frames, 25))
    keypoints[:, :, 1] = rng.uniform(40, 230, (n_frames, 25))
    keypoints[:, :, 2] = 0.9
    # warm-up (allocator, cuDNN autotune)
    generate_video(nets, source, layout, keypoints[:2], source, precision=precision)
    video = generate_video(nets, source, layout, keypoints, source, precision=precision)
    return _row(f"networks only, {profile} profile, 256x192, {precision}", n_frames / video.network_seconds,
                "frames/s", device.type, f"{n_frames} frames incl. the frame-0 bootstrap; Layout GAN + Region GAN "
                f"(GAM) + WCN, random init, batch 1" + (", 1 CPU thread" if device.type == "cpu" else ""))


def end_to_end(n_frames: int, repeats: int) -> list[dict]:
    """``remot transfer`` in fp32 and bf16, ``repeats`` times each, interleaved in one process (a shared machine's
    load drifts: both precisions see the same drift); medians. The first call's start-up (checkpoint loading,
    MediaPipe's import) is its own row; every row's frames/s is after start-up, with the networks' own rate in
    the same calls and the ratio of the two (how close the whole path runs to its floor)."""
    from pipeline.demo_data import generate_demo_dataset
    from pipeline.inference.transfer import run_transfer
    from pipeline.core.params import validate_params

    runs: dict[str, list] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory(prefix="remot-bench-inference-") as tmp:
        root = Path(tmp)
        generate_demo_dataset(root / "demo", n_clips=2, n_frames=max(n_frames, 8), seed=0)
        videos = sorted((root / "demo" / "videos").glob("*.mp4"))
        import cv2

        capture = cv2.VideoCapture(str(videos[1]))
        ok, frame = capture.read()
        capture.release()
        cv2.imwrite(str(root / "source.png"), frame)
        random_checkpoints(root)
        params = validate_params({"extract": {"max_frames": n_frames, "min_frames": min(8, n_frames)},
                                  "model": {"profile": "tiny"}})

        def transfer(precision: str, out: str):
            return run_transfer(params, root, root / "source.png", videos[0], root / out, device="cpu",
                                progress=False, precision=precision, force=True)

        first = transfer("fp32", "first.mp4")
        for _ in range(repeats):
            for precision in runs:
                runs[precision].append(transfer(precision, f"{precision}.mp4"))
    rows = [_row("remot transfer start-up (first call), tiny profile", first.seconds["startup"], "s", "cpu",
                 "checkpoints loaded and MediaPipe imported, before any frame; later calls in one process: "
                 f"{np.median([r.seconds['startup'] for r in runs['fp32']]):.2f} s")]
    for precision, results in runs.items():
        rate = float(np.median([r.frames_per_s for r in results]))
        networks = float(np.median([r.network_frames_per_s for r in results]))
        ratio = float(np.median([r.frames_per_s / r.network_frames_per_s for r in results]))
        phases = {k: float(np.median([r.seconds[k] for r in results])) for k in ("source", "driving", "frames",
                                                                                   "networks")}
        row = _row(f"remot transfer after start-up, tiny profile, 256x192, {precision}", rate, "frames/s", "cpu",
                   f"median of {len(results)} calls on a {results[0].n_frames}-frame generated demo clip: person "
                   f"box, MediaPipe pose, parser {results[0].backends.get('parser')}, background plate, networks, "
                   f"mp4 writing; networks alone {networks:.2f} frames/s in the same calls, ratio {ratio:.2f}; "
                   "seconds per call: " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
                   + f"; with start-up {np.median([r.total_frames_per_s for r in results]):.2f} frames/s")
        row.update(networks_frames_per_s=round(networks, 3), ratio_to_networks=round(ratio, 3),
                   seconds={k: round(v, 3) for k, v in phases.items()})
        rows.append(row)
    return rows


def run(quick: bool = True) -> list[dict]:
    with limited_threads():
        rows = [networks_only("tiny", torch.device("cpu"), 4 if quick else 16, precision)
                for precision in ("fp32", "bf16")]
        if torch.cuda.is_available():
            cuda = torch.device("cuda")
            rows.append(networks_only("tiny", cuda, 16 if quick else 64))
            rows.append(networks_only("paper", cuda, 8 if quick else 32))
        rows.extend(end_to_end(16 if quick else 32, 2 if quick else 4))
        return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=1))
