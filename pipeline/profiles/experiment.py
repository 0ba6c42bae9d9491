"""Run a profile as a DVC experiment and publish its small results.

``dvc exp run --temp -n NAME -S ... -C ... evaluate`` runs the profile in a temporary copy of the repository
(``.dvc/tmp/exps/``): the workspace's params.yaml and outputs are not touched, the run gets a dvc.lock, its outputs
go to DVC's cache, and it shows in ``dvc exp show``; ``dvc metrics diff``, ``dvc exp apply NAME`` work on it.

* **Params**: the profile's values as ``-S`` overrides (``pipeline/profiles/overrides.py``), checked first by
  applying them with DVC's own code to a scratch copy of params.yaml.
* **Weights**: the temporary copy holds only what git tracks, and the weights files in ``models/pretrained/<network>/``
  are git-ignored; each is passed with ``-C`` (DVC copies it in), so the stages find them at the same relative
  paths and the weights folders, DVC dependencies of the stages they change, hash the same files as in the
  workspace. (``-C models/pretrained`` itself fails: DVC copies a folder only to where none exists yet.)
* **Wall time per stage**: from DVC's own output, the time between its ``Running stage 'X':`` line and the next
  line of DVC's that ends the stage (DVC records no durations).
* **Results**: read from the experiment's commit through ``dvc.api.DVCFileSystem`` at its revision: git-tracked
  metrics and plots, and the evaluation's sample videos from DVC's cache (``reports/eval`` is a cached output).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from pipeline.core import atomic
from pipeline.core.errors import RemotError

PRETRAINED_DIR = Path("models") / "pretrained"
# The evaluate stage and everything upstream of it; perception_metrics needs the demo's ground truth, so it is
# not part of a profile (a profile may run on other datasets).
DEFAULT_TARGET = "evaluate"
# Outputs of the stages upstream of evaluate, published to metrics/NAME/ (other metrics/*.json files in the
# experiment's commit may be stale ones of stages the profile did not run, such as perception.json).
PUBLISHED_METRICS = ("shards.json", "train_layout.json", "train_region.json", "train_wcn.json", "eval.json",
                     "summary.json")

_RUNNING = re.compile(r"^Running stage '([^']+)':")
# DVC lines that close a running stage: its lock update, the next stage, the run's end or an error.
_STAGE_END = re.compile(r"^(Updating lock file|Running stage|Stage '[^']+' (didn't change|is cached)|Ran experiment|"
                        r"ERROR)")


def weights_copy_paths(root: Path) -> list[str]:
    """The git-ignored weights under ``models/pretrained/<network>/`` (files or folders; not README.md), relative
    to ``root``, for ``dvc exp run -C``."""
    found = []
    for network in sorted(p for p in (root / PRETRAINED_DIR).glob("*") if p.is_dir()):
        for entry in sorted(network.iterdir()):
            if entry.name != "README.md" and not entry.name.startswith("."):
                found.append(entry.relative_to(root).as_posix())
    return found


def dvc_executable() -> str:
    """The dvc next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else "dvc"


def exp_command(name: str, overrides: Iterable[str], copy_paths: Iterable[str], targets: Iterable[str]) -> list[str]:
    command = [dvc_executable(), "exp", "run", "--temp", "-n", name]
    for override in overrides:
        command += ["-S", override]
    for path in copy_paths:
        command += ["-C", path]
    return command + list(targets)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RemotError(f"`git {' '.join(args)}` failed in {root}: {done.stderr.strip()}")
    return done.stdout.strip()


def experiment_ref(root: Path, name: str, baseline: str | None = None) -> str:
    """DVC's git ref of experiment ``name`` on ``baseline`` (default HEAD)."""
    baseline = baseline or git(root, "rev-parse", "HEAD")
    return f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}"


def experiment_rev(root: Path, name: str, baseline: str | None = None) -> str | None:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet",
                           experiment_ref(root, name, baseline)], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def stage_timings(lines: Iterable[str], clock: Callable[[], float] = time.perf_counter,
                  echo: Callable[[str], None] | None = None) -> dict[str, float]:
    """Wall seconds per stage that ran, from DVC's output lines as they arrive (stages DVC skipped or restored
    from its run cache are not listed)."""
    timings: dict[str, float] = {}
    current: tuple[str, float] | None = None
    for line in lines:
        now = clock()
        if echo is not None:
            echo(line)
        text = line.strip()
        if current is not None and _STAGE_END.match(text):
            timings[current[0]] = timings.get(current[0], 0.0) + now - current[1]
            current = None
        started = _RUNNING.match(text)
        if started:
            current = (started.group(1), now)
    if current is not None:  # the output ended inside a stage (it failed or was killed)
        timings[current[0]] = timings.get(current[0], 0.0) + clock() - current[1]
    return timings


def run_experiment(root: Path, command: list[str]) -> tuple[int, dict[str, float]]:
    """Run ``dvc exp run`` in ``root``, echoing its output; its exit code and the seconds per stage."""
    # Unbuffered: DVC's 'Running stage' lines must arrive when they are printed for the timings to mean anything.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as process:
        assert process.stdout is not None
        timings = stage_timings(process.stdout, echo=lambda line: print(line, end="", flush=True))
        code = process.wait()
    return code, timings


def publish(root: Path, name: str, rev: str, timings: dict[str, float], total_seconds: float) -> list[Path]:
    """Copy the experiment's small results into ``metrics/NAME/`` and ``plots/NAME/`` (committed; dvc.yaml lists
    the summary and the curves); the files written."""
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(root), rev=rev)
    metrics, plots = root / "metrics" / name, root / "plots" / name
    written: list[Path] = []

    def copy(source: str, target: Path) -> None:
        atomic.write_bytes(target, fs.read_bytes(source))
        written.append(target)

    for file in PUBLISHED_METRICS:
        if fs.exists(f"metrics/{file}"):
            copy(f"metrics/{file}", metrics / file)
    if fs.exists("plots/train"):
        for source in sorted(fs.ls("plots/train", detail=False)):
            if fs.isfile(source):
                copy(source, plots / Path(source).name)
    samples = sorted(p for p in fs.find("reports/eval/samples") if p.endswith(".mp4")) \
        if fs.exists("reports/eval/samples") else []
    for source in samples:
        copy(source, plots / "samples" / Path(source).name)
    keep = {Path(s).name for s in samples}
    for stale in sorted((plots / "samples").glob("*.mp4")):  # a video of the previous run's test split
        if stale.name not in keep:
            stale.unlink()
    atomic.write_json(metrics / "wall_time.json", {
        "profile": name, "experiment": name, "experiment_rev": rev,
        "total_minutes": round(total_seconds / 60, 2),
        "stages_seconds": {k: round(v, 1) for k, v in timings.items()},
        "machine": f"{os.cpu_count()} CPU cores"})
    written.append(metrics / "wall_time.json")
    return written
