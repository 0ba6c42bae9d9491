"""Evaluation-metric speed at the paper's 256 x 192: ms per frame pair for SSIM / PSNR / Mask-SSIM, TCM per
frame (with and without the real video's flow), LPIPS-alex and the Inception-v3 feature forward, and one
2048-d Frechet distance.

LPIPS and Inception run with random weights (no checkpoint is needed to measure speed); their rows say
"speed only, random weights". Numbers are CPU unless a row says cuda.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from tests.benchmarks._threads import limited_threads

HEIGHT, WIDTH = 256, 192


def _pair() -> tuple[np.ndarray, np.ndarray]:
    """A textured frame and a shifted, noisy copy: realistic work for every metric."""
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.random((HEIGHT, WIDTH, 3)).astype(np.float32), (0, 0), 2.0)
    frame = ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)
    moved = cv2.warpAffine(frame, np.float32([[1, 0, 3], [0, 1, -2]]), (WIDTH, HEIGHT), borderMode=cv2.BORDER_REFLECT)
    noisy = np.clip(moved + rng.normal(0, 5, moved.shape), 0, 255).astype(np.uint8)
    return noisy, frame


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def _row(name: str, value: float, unit: str, device: str, notes: str) -> dict:
    return {"area": "metrics", "name": name, "value": round(value, 3), "unit": unit, "device": device, "notes": notes}


def run(quick: bool = True) -> list[dict]:
    """Benchmark rows (see module doc). Quick mode: 1 CPU thread, few repeats, a 512-d Frechet distance."""
    from pipeline.flow.dis import DisFlowBackend
    from pipeline.metrics.fid import frechet_distance
    from pipeline.metrics.image import mask_ssim, psnr, ssim
    from pipeline.pretrained.fid_inception import InceptionFeatures, build_fid_inception
    from pipeline.pretrained.lpips_network import LPIPS, LinLayers, NETS, build_backbone
    from pipeline.metrics.tcm import real_video_flow, tcm

    repeats = 3 if quick else 20
    generated, real = _pair()
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[30:230, 40:150] = True
    rows = []
    with limited_threads(quick):
        cpu = f"cpu ({torch.get_num_threads()} threads)"
        rows.append(_row("ssim ms/pair", _median_ms(lambda: ssim(generated, real), repeats), "ms", cpu,
                         f"{HEIGHT}x{WIDTH} RGB uint8, float64 separable Gaussian"))
        rows.append(_row("psnr ms/pair", _median_ms(lambda: psnr(generated, real), repeats), "ms", cpu,
                         f"{HEIGHT}x{WIDTH} RGB uint8"))
        rows.append(_row("mask-ssim ms/pair", _median_ms(lambda: mask_ssim(generated, real, mask), repeats), "ms",
                         cpu, "mask both images, then SSIM"))

        video_real = [real, generated, real, generated]
        video_gen = [generated, real, generated, real]
        flow = DisFlowBackend("medium")
        flows, valid = real_video_flow(video_real, flow)
        per_frame = len(video_real) - 1
        rows.append(_row("tcm ms/frame (flow given)",
                         _median_ms(lambda: tcm(video_gen, video_real, flows=flows, valid=valid), repeats)
                         / per_frame,
                         "ms", cpu, "warping errors of both videos; the real video's flow precomputed"))
        rows.append(_row("tcm ms/frame (incl. DIS flow)",
                         _median_ms(lambda: tcm(video_gen, video_real, flow), repeats) / per_frame, "ms",
                         f"cpu ({cv2.getNumThreads()} cv2 threads)", "two DIS-medium flow fields + f-b check per frame"))

        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        for device in devices:
            where = cpu if device.type == "cpu" else str(device)
            sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
            torch.manual_seed(0)
            lpips = LPIPS("alex", build_backbone("alex", None), LinLayers(NETS["alex"][3]), {}).to(device)
            x = torch.rand(1, 3, HEIGHT, WIDTH, device=device) * 2 - 1
            y = torch.rand(1, 3, HEIGHT, WIDTH, device=device) * 2 - 1

            def lpips_call():
                with torch.inference_mode():
                    lpips(x, y)
                sync()

            rows.append(_row("lpips-alex ms/pair", _median_ms(lpips_call, repeats), "ms", where,
                             "speed only, random weights; both images through AlexNet"))
            inception = InceptionFeatures(build_fid_inception(), "random", False, {}).to(device)
            batch = torch.rand(1, 3, HEIGHT, WIDTH, device=device)

            def inception_call():
                with torch.inference_mode():
                    inception(batch)
                sync()

            rows.append(_row("inception pool3 ms/frame", _median_ms(inception_call, repeats), "ms", where,
                             "speed only, random weights; FID Inception, resized to 299x299, batch 1"))

        dim = 512 if quick else 2048
        rng = np.random.default_rng(0)
        a, b = rng.normal(size=(dim + 10, dim)), rng.normal(size=(dim + 10, dim))
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        start = time.perf_counter()
        frechet_distance(a.mean(0), s1, b.mean(0), s2)
        rows.append(_row(f"frechet distance ms (d={dim})", (time.perf_counter() - start) * 1000.0, "ms", "cpu",
                         "scipy.linalg.sqrtm, once per FID; cost grows as d^3 (FID uses d=2048)"))
    return rows


if __name__ == "__main__":
    for result in run(quick=True):
        print(result)
