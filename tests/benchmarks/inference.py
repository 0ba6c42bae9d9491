"""Inference speed of REMOT end to end (``pipeline.inference``): frames per second of the three networks with
temporal state, and of the whole ``remot transfer`` path including preprocessing.

``run(quick=True) -> list[dict]`` rows ``{"area": "inference", "name", "value", "unit", "device", "notes"}``.

Method:

* networks only - ``generate_video`` (Layout GAN -> Region GAN with GAM -> WCN, one frame at a time, the
  bootstrap of frame 0 included) on freshly initialised networks and synthetic inputs at 256x192; speed does not
  depend on the weights. Frames / time spent inside the networks (CUDA-synchronised). ``tiny`` on CPU (one
  thread: the machine is shared); on CUDA also the ``paper`` profile.
* end to end - ``run_transfer`` on the project's own generated demo footage (two demo clips made in a temporary
  folder, never third-party footage): person box, MediaPipe pose, parsing (the params' backend: offline without
  the SCHP weights), background plate, networks, mp4 writing; frames / wall time. The driving clip is capped at
  ``extract.max_frames`` frames (8 in quick mode, 32 otherwise), with a tiny random-init checkpoint.
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


def networks_only(profile: str, device: torch.device, n_frames: int) -> dict:
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
    generate_video(nets, source, layout, keypoints[:2], source)  # warm-up (allocator, cuDNN autotune)
    video = generate_video(nets, source, layout, keypoints, source)
    return _row(f"networks only, {profile} profile, 256x192", n_frames / video.network_seconds, "frames/s",
                device.type, f"{n_frames} frames incl. the frame-0 bootstrap; Layout GAN + Region GAN (GAM) + WCN, "
                f"random init, batch 1" + (", 1 CPU thread" if device.type == "cpu" else ""))


def end_to_end(n_frames: int) -> dict:
    from pipeline.demo_data import generate_demo_dataset
    from pipeline.inference.transfer import run_transfer
    from pipeline.core.params import validate_params

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
        started = time.perf_counter()
        result = run_transfer(params, root, root / "source.png", videos[0], root / "out.mp4", device="cpu",
                              progress=False)
        elapsed = time.perf_counter() - started
    return _row("end to end incl. preprocessing, tiny profile, 256x192", result.n_frames / elapsed, "frames/s", "cpu",
                f"remot transfer on a {result.n_frames}-frame generated demo clip: person box, MediaPipe pose, "
                f"parser {result.backends.get('parser')}, background plate, networks "
                f"({result.network_frames_per_s:.2f} frames/s of it), mp4 writing; includes model loading")


def run(quick: bool = True) -> list[dict]:
    with limited_threads():
        rows = [networks_only("tiny", torch.device("cpu"), 4 if quick else 16)]
        if torch.cuda.is_available():
            cuda = torch.device("cuda")
            rows.append(networks_only("tiny", cuda, 16 if quick else 64))
            rows.append(networks_only("paper", cuda, 8 if quick else 32))
        rows.append(end_to_end(8 if quick else 32))
        return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=1))
