"""``python -m pipeline.profiles NAME [--root DIR] [--until STAGE]``: run a profile end to end (see the package
docstring). ``make learn`` is ``python -m pipeline.profiles learn``."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from pipeline.core import atomic
from pipeline.core.errors import RemotError
from pipeline.profiles import PROFILES, profile_params

ROOT = Path(__file__).resolve().parents[2]
# The commands of dvc.yaml's stages, in its order ({ds} = each registered dataset). perception_metrics needs
# the demo's ground truth and is not part of a profile run.
PER_DATASET = ("register", "extract", "pose", "parse", "layout", "flow")
TRAINING = ("train_layout", "train_region", "train_wcn")


def stage_commands(datasets: list[str], params_file: Path) -> list[tuple[str, list[str]]]:
    py, p = sys.executable, ["--params", str(params_file)]
    commands = [("demo_data", [py, "-m", "stages.demo_data", *p])]
    for stage in PER_DATASET:
        commands += [(f"{stage}@{ds}", [py, "-m", f"stages.{stage}", *p, "--dataset", ds]) for ds in datasets]
    commands.append(("shards", [py, "-m", "stages.shards", *p]))
    commands += [(stage, [py, "-m", f"stages.{stage}", *p]) for stage in TRAINING]
    commands.append(("evaluate", [py, "-m", "stages.evaluate", *p]))
    return commands


def publish(name: str, run_root: Path, timings: dict[str, float]) -> None:
    """Copy the run's small results to metrics/NAME and plots/NAME (committed; dvc.yaml lists them)."""
    metrics, plots = ROOT / "metrics" / name, ROOT / "plots" / name
    for src in sorted((run_root / "metrics").glob("*.json")):
        atomic.write_bytes(metrics / src.name, src.read_bytes())
    for src in sorted((run_root / "plots" / "train").glob("*")):
        atomic.write_bytes(plots / src.name, src.read_bytes())
    for src in sorted((run_root / "reports" / "eval" / "samples").glob("*.mp4")):
        atomic.write_bytes(plots / "samples" / src.name, src.read_bytes())
    atomic.write_json(metrics / "wall_time.json", {
        "profile": name, "total_minutes": round(sum(timings.values()) / 60, 2),
        "stages_seconds": {k: round(v, 1) for k, v in timings.items()},
        "machine": f"{os.cpu_count()} CPU cores"})


def run_stages(label: str, params: dict, run_root: Path, until: str | None = None,
               start: str | None = None) -> dict[str, float] | int:
    """Write ``params`` to ``run_root/params.yaml`` and run the stages' commands in order (from ``start``, up to
    ``until``); the wall seconds per stage, or the failing stage's exit code."""
    run_root.mkdir(parents=True, exist_ok=True)
    params_file = run_root / "params.yaml"
    atomic.write_bytes(params_file, yaml.safe_dump(params, sort_keys=False).encode())
    timings: dict[str, float] = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    commands = stage_commands(sorted(params.get("datasets", {})), params_file)
    if start is not None:
        commands = commands[[stage for stage, _ in commands].index(start):]
    for stage, command in commands:
        print(f"== {label}: {stage}", flush=True)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env)
        timings[stage] = time.perf_counter() - started
        if done.returncode != 0:
            print(f"error: stage {stage} failed (exit {done.returncode}); fix it and re-run: finished work is kept "
                  "and training resumes from its last checkpoint", file=sys.stderr)
            return done.returncode
        if stage == until:
            break
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", choices=PROFILES)
    parser.add_argument("--root", default=None, help="run folder (default data/runs/PROFILE)")
    parser.add_argument("--until", default=None, help="stop after this stage (e.g. shards, train_layout)")
    parser.add_argument("--no-publish", action="store_true", help="do not copy results to metrics/ and plots/")
    args = parser.parse_args(argv)
    run_root = Path(args.root or ROOT / "data" / "runs" / args.profile).resolve()
    try:
        params = profile_params(args.profile, ROOT / "params.yaml")
    except RemotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    timings = run_stages(args.profile, params, run_root, args.until)
    if isinstance(timings, int):
        return timings
    atomic.write_json(run_root / "wall_time.json", timings)
    print(f"{args.profile}: {sum(timings.values()) / 60:.1f} minutes; run folder {run_root}")
    if not args.no_publish and args.until is None:
        publish(args.profile, run_root, timings)
        print(f"results in metrics/{args.profile}/ and plots/{args.profile}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
