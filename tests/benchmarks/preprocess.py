"""End-to-end preprocessing throughput: raw demo videos -> shards, compared with MediaPipe pose alone.

The stages run as the subprocesses ``dvc repro`` would start (``python -m stages.X``), in a temporary project
root with the offline backends (offline parser, DIS flow) and one worker per CPU, once with the default executor
(``auto``, which takes the process pool for this many clips) and once in-process, so each stage's start-up
(imports, params validation, model loading) is counted. The pose-alone figure runs the same MediaPipe model over
the same extracted frames, decoded beforehand, in this process: the ratio says how far the whole path is from the
one model it cannot avoid.
"""
from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.core.params import validate_params
from pipeline.profiles.__main__ import stage_commands
from pipeline.stage.executor import local_workers

ROOT = Path(__file__).resolve().parents[2]
# Stage -> the data_root folders it writes (disk per frame per stage).
OUTPUTS = {"extract": ("frames",), "pose": ("pose",), "parse": ("parsing",), "layout": ("layout", "background"),
           "flow": ("flow",), "shards": ("shards",)}


def _bench_params(n_clips: int, n_frames: int, executor: str | None) -> dict:
    """params.yaml for the benchmark's data; ``executor`` None keeps the default executor."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data_root"] = "data"
    params["demo"] = {**params["demo"], "out": "raw/demo", "n_clips": n_clips, "n_frames": n_frames, "seed": 0}
    params["datasets"] = {"demo": {**params["datasets"]["demo"], "path": "raw/demo/videos"}}
    params["preprocess"] = {**params["preprocess"], "executor": executor or params["preprocess"]["executor"],
                            "workers": os.cpu_count() or 1}
    params["parse"] = {**params["parse"], "backend": "offline"}
    params["flow"] = {**params["flow"], "backend": "dis"}
    return params


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def pose_alone(frames_root: Path, model_complexity: int, confidence: float) -> tuple[float, int]:
    """Wall and CPU seconds MediaPipe pose takes over every extracted frame (decoded beforehand), one video per
    model instance as the pose stage runs it; and the number of frames."""
    import cv2

    from pipeline.core.artifacts import frame_name
    from pipeline.pose.mediapipe_body25 import iter_estimate

    seconds, cpu, count = 0.0, 0.0, 0
    for video in sorted(p for p in frames_root.iterdir() if (p / "meta.json").is_file()):
        frames = []
        for k in range(len(list(video.glob("*.png")))):
            image = cv2.imread(str(video / frame_name(k)), cv2.IMREAD_COLOR)
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        started, cpu_started = time.perf_counter(), time.process_time()
        count += sum(1 for _ in iter_estimate(frames, model_complexity, confidence))
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    return seconds, cpu, count


def run(quick: bool = True) -> list[dict]:
    """``end_to_end`` with the default executor (``auto``: the pool for these 12 clips), ``end_to_end_inprocess``
    with the in-process loop."""
    n_clips, n_frames = (12, 64) if quick else (24, 128)
    return [end_to_end(n_clips, n_frames, None, "end_to_end"),
            end_to_end(n_clips, n_frames, "inprocess", "end_to_end_inprocess")]


def end_to_end(n_clips: int, n_frames: int, executor: str | None, name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="remot-bench-preprocess-") as tmp:
        root = Path(tmp)
        params = _bench_params(n_clips, n_frames, executor)
        params_file = root / "params.yaml"
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        # the profiles' stage commands (those dvc repro runs), from raw videos to shards; demo data is not timed
        commands = stage_commands(["demo"], params_file)
        (_, make_data), preprocessing = commands[0], commands[1:[n for n, _ in commands].index("shards") + 1]
        subprocess.run(make_data, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        seconds: dict[str, float] = {}
        cpu: dict[str, float] = {}  # user + system CPU of the stage and every process it started (pool workers)
        for stage_name, command in preprocessing:
            stage = stage_name.split("@")[0]
            started, cpu_started = time.perf_counter(), _children_cpu()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds[stage] = time.perf_counter() - started
            cpu[stage] = _children_cpu() - cpu_started
            if done.returncode != 0:
                raise RuntimeError(f"stage {stage} failed (exit {done.returncode}): {done.stderr[-2000:]}")
        data = root / "data"
        frames = sum(1 for _ in (data / "frames" / "demo").glob("*/*.png"))
        disk = {stage: sum(_folder_bytes(data / d) for d in folders) for stage, folders in OUTPUTS.items()}
        pose_seconds, pose_cpu, pose_frames = pose_alone(data / "frames" / "demo", params["pose"]["model_complexity"],
                                               params["pose"]["min_detection_confidence"])
    total = sum(seconds.values())
    engine = validate_params(params).preprocess
    chosen = "pool" if local_workers(engine, n_clips) > 1 else "inprocess"
    workers = f" ({engine.workers} workers)" if chosen == "pool" else ""
    executor = engine.executor if engine.executor == chosen else f"{engine.executor} -> {chosen}"
    return {
        "area": "preprocess", "name": name, "value": frames / total, "unit": "frames/s", "device": "cpu",
        "frames": frames, "frames_per_s": round(frames / total, 3),
        "pose_frames_per_s": round(pose_frames / pose_seconds, 3),
        "ratio": round((frames / total) / (pose_frames / pose_seconds), 3),
        # CPU time barely moves when other jobs share the machine, where wall time (and so "ratio") does: the
        # work the whole path costs per frame against the pose model's, comparable across loaded runs.
        "cpu_ms_per_frame": round(1000 * sum(cpu.values()) / frames, 2),
        "pose_cpu_ms_per_frame": round(1000 * pose_cpu / pose_frames, 2),
        "cpu_ratio": round((pose_cpu / pose_frames) / (sum(cpu.values()) / frames), 3),
        "cpu_ms_per_frame_by_stage": {stage: round(1000 * c / frames, 2) for stage, c in cpu.items()},
        "mb_per_frame": round(sum(disk.values()) / 1e6 / frames, 4),
        "ms_per_frame": {stage: round(1000 * s / frames, 2) for stage, s in seconds.items()},
        "mb_per_frame_by_stage": {stage: round(b / 1e6 / frames, 4) for stage, b in disk.items()},
        "seconds": {stage: round(s, 2) for stage, s in seconds.items()},
        "notes": f"{n_clips} demo clips x {n_frames} frames, raw mp4 -> shards, stage subprocesses (start-up "
                 f"included), offline parser, DIS flow, executor {executor}{workers}; pose alone = MediaPipe "
                 f"complexity {params['pose']['model_complexity']} over the same frames, {os.cpu_count()} CPUs"}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
