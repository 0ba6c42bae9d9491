"""``python -m pipeline.profiles NAME [--until STAGE] [--replace] [--no-publish]``: run a profile as the DVC
experiment NAME (see the package docstring and ``pipeline/profiles/experiment.py``). ``make learn`` is
``python -m pipeline.profiles learn``.

``run_stages`` below is the stage loop this command used before profiles became DVC experiments; only
``pipeline.selection`` (and the preprocessing benchmark, through ``stage_commands``) still use it, until selection
runs its candidates as experiments too.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from pipeline.core import atomic
from pipeline.core.errors import RemotError
from pipeline.profiles import PROFILES, absolute_weights, profile_params
from pipeline.profiles import experiment
from pipeline.profiles.overrides import check_overrides, to_overrides

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


def run_stages(label: str, params: dict, run_root: Path, until: str | None = None,
               start: str | None = None) -> dict[str, float] | int:
    """Used only by ``pipeline.selection``. Write ``params`` to ``run_root/params.yaml`` and run the stages'
    commands in order (from ``start``, up to ``until``); the wall seconds per stage, or the failing stage's exit
    code.

    Relative weights paths are made absolute against the project root first: the stages resolve relative paths
    against the params file's folder, where no weights are."""
    run_root.mkdir(parents=True, exist_ok=True)
    params_file = run_root / "params.yaml"
    params = absolute_weights(params, ROOT)
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


def plan(name: str, root: Path = ROOT) -> tuple[list[str], list[str]]:
    """The ``-S`` overrides and ``-C`` weights paths of profile ``name``, checked against DVC's own handling."""
    params_file = root / "params.yaml"
    target = profile_params(name, params_file)
    overrides = to_overrides(yaml.safe_load(params_file.read_text()) or {}, target)
    check_overrides(params_file, overrides, target, f"{params_file} + profile {name}")
    return overrides, experiment.weights_copy_paths(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", choices=PROFILES)
    parser.add_argument("--until", default=None, metavar="STAGE",
                        help="run only up to this stage (a dvc.yaml target, e.g. shards, flow@demo, train_layout); "
                             "nothing is published")
    parser.add_argument("--replace", action="store_true",
                        help="remove an experiment of this name on the same commit first")
    parser.add_argument("--no-publish", action="store_true", help="do not copy results to metrics/ and plots/")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc command and stop")
    args = parser.parse_args(argv)
    name = args.profile
    try:
        overrides, copy_paths = plan(name)
        baseline = experiment.git(ROOT, "rev-parse", "HEAD")
        existing = experiment.experiment_rev(ROOT, name, baseline)
        if existing and not args.replace and not args.dry_run:
            raise RemotError(f"experiment {name!r} already exists on this commit ({existing[:7]}): "
                             f"`dvc exp remove {name}` or add --replace to run it again")
    except RemotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = experiment.exp_command(name, overrides, copy_paths, [args.until or experiment.DEFAULT_TARGET])
    print(shlex.join(command), flush=True)
    if args.dry_run:
        return 0
    if existing:
        subprocess.run([experiment.dvc_executable(), "exp", "remove", name], cwd=ROOT, check=True)
    started = time.perf_counter()
    code, timings = experiment.run_experiment(ROOT, command)
    total = time.perf_counter() - started
    if code != 0:
        print(f"error: `dvc exp run` for profile {name} failed (exit {code}); fix the stage it names and run again",
              file=sys.stderr)
        return code
    rev = experiment.experiment_rev(ROOT, name, baseline)
    print(f"{name}: {total / 60:.1f} minutes; experiment {name} ({rev[:7] if rev else '?'}): `dvc exp show`, "
          f"`dvc metrics diff {name}`, `dvc exp apply {name}`")
    if rev is None:
        print(f"error: DVC reported success but no experiment ref {experiment.experiment_ref(ROOT, name, baseline)}",
              file=sys.stderr)
        return 1
    if not args.no_publish and args.until is None:
        experiment.publish(ROOT, name, rev, timings, total)
        print(f"results in metrics/{name}/ and plots/{name}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
