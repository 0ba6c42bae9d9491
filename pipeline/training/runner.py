"""The training loop of one REMOT network (layout, region or wcn), shared by the Prefect flow (``pipeline.orchestration.flow``) and the DVC stages
(``stages/train_*.py``): device choice, optional multi-rank data parallelism, bf16 autocast on CUDA, progress
bar, per-step loss log, NaN/inf guard, checkpoints every N steps and at the end, exact resume.

Outputs of network ``S`` (paths from ``params.train``, relative to the project root)::

    models/S/step-NNNNNN/, models/S/latest.json    versioned checkpoints (pipeline.core.checkpoint)
    models/S/losses.jsonl                          the run's per-step loss log (truncated to the checkpoint on resume)
    models/S/final/                                the last checkpoint again: the DVC output
    plots/train/S.csv                              per-step losses for `dvc plots` (rewritten at checkpoints)
    plots/train/S-samples.png                      sample grid (pipeline.training.grid)
    metrics/train_S.json                           final losses, steps/s, backends, hashes

Resume: when ``latest.json`` names a checkpoint made with the same run fingerprint (train params that change the
trajectory, model params, data manifest hash), the run continues from it: networks, optimizers,
scheduler, every RNG and the loader position (epoch, batches consumed; see pipeline.training.data). A checkpoint
of another fingerprint is not resumed: the run says which params differ, moves it and its loss log to
``models/S/superseded-<fingerprint>/`` (never deletes them) and starts afresh. Worker count, device, amp and the
number of ranks are not part of the fingerprint (pipeline.training.resume).

Several ranks (``torchrun --nproc_per_node=N``): process group from the environment (NCCL on CUDA, gloo on
CPU); every rank draws its own resampled stream (rank-seeded); gradients are averaged across ranks before
every optimizer step (pipeline.training.steps); rank 0 alone writes checkpoints, logs, plots and metrics.
"""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

from pipeline.core import atomic
from pipeline.core import checkpoint as ckpt
from pipeline.core.checkpoint import NETWORKS, build_generator
from pipeline.core.compute import choose_device
from pipeline.core.errors import RemotError
from pipeline.core.hashing import file_digest
from pipeline.core.params import Params, model_config, section_fingerprint
from pipeline.core.runlog import relative_paths, write_log
from pipeline.core.seeds import derive_seed, init_seed
from pipeline.shards.reader import check_shard_urls
from pipeline.stage.progress import Progress
from pipeline.training.data import ResumableWindows, epoch_batches, is_shard_url, training_urls
from pipeline.training.grid import save_grid
from pipeline.training.resume import describe_difference, move_aside, run_fingerprint
from pipeline.training.steps import NetworkSteps, NonFiniteLoss, build_steps

_INIT_LOCK = threading.Lock()  # the flow may build two networks at once in threads; seeding is global


class StoppedEarly(Exception):
    """Raised by the ``stop_after`` hook (tests, deliberate interruption) after the checkpoint of that step."""


@dataclass
class TrainResult:
    network: str
    steps: int
    final_dir: Path | None
    metrics_path: Path | None
    plot_path: Path | None
    grid_path: Path | None
    final_losses: dict[str, float] = field(default_factory=dict)
    steps_per_s: float | None = None  # over the steps this run executed
    resumed_from: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainPaths:
    network_dir: Path
    final: Path
    losses: Path
    plot: Path
    grid: Path
    metrics: Path

    @classmethod
    def of(cls, params: Params, root: Path, network: str) -> "TrainPaths":
        network_dir = root / params.train.out / network
        return cls(network_dir=network_dir, final=network_dir / "final", losses=network_dir / "losses.jsonl",
                   plot=root / "plots" / "train" / f"{network}.csv",
                   grid=root / "plots" / "train" / f"{network}-samples.png",
                   metrics=root / "metrics" / f"train_{network}.json")


# ------------------------------------------------------------------------------------------------ environment


def init_distributed(device_kind: str) -> tuple[int, int, int]:
    """(rank, world size, local rank); joins the process group torchrun describes in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        if rev.returncode == 0:
            return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def split_size(shard_dir: Path, split: str) -> int:
    """Samples of ``split`` per the shard manifest (for ``steps_per_epoch: null``)."""
    manifest = shard_dir / "manifest.parquet"
    if not manifest.is_file():
        raise RemotError(f"{manifest} is missing, so train.steps_per_epoch: null cannot count the {split} samples: "
                         "run `dvc repro shards` or set train.steps_per_epoch")
    import pyarrow.parquet as pq

    column = pq.read_table(manifest, columns=["split"]).column("split").to_pylist()
    return sum(1 for s in column if s == split)


# ------------------------------------------------------------------------------------------------ loss log


def read_log(path: Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """The per-step loss rows. The log is appended step by step, so a crash or a full disk can leave its
    last line half-written: that line is dropped (its step is redone on resume); a bad line elsewhere is an error."""
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise RemotError(f"{path}: line {number} is not JSON; the loss log is damaged") from None
    return [r for r in rows if up_to_step is None or r["step"] <= up_to_step]


def write_plot_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    terms = sorted({k for r in rows for k in r} - {"step", "epoch"})
    lines = [",".join(["step", "epoch", *terms])]
    lines += [",".join([str(r["step"]), str(r["epoch"]), *(repr(float(r[t])) if t in r else "" for t in terms)])
              for r in rows]
    atomic.write_bytes(path, ("\n".join(lines) + "\n").encode())


# ------------------------------------------------------------------------------------------------ training one network


def train_network(network: str, params: Params, root: Path | str = ".", *, stop_after: int | None = None,
              before_step: Callable[[int, NetworkSteps], None] | None = None) -> TrainResult:
    """Train ``network`` (layout | region | wcn) to the end of its schedule, resuming when possible.

    ``stop_after``: raise :class:`StoppedEarly` right after step ``stop_after`` (and its checkpoint, if one is
    due), as a kill would. ``before_step(step, steps)``: a hook called before every step (tests use it to
    inject faults). Raises :class:`NonFiniteLoss` on a NaN/inf loss, RemotError for missing inputs.
    """
    run = set_up(network, params, Path(root).resolve())
    log = LossLog.open(run.paths, run.state.step, run.rank)
    start_step, progress = run.state.step, _progress(run)
    try:
        train_loop(run, log, progress, stop_after, before_step)
    except NonFiniteLoss:
        log.write_plot()
        raise
    finally:
        progress.close()
    # None when this run had nothing left to do (resumed at the final step): there is no speed to report
    elapsed = progress.elapsed()
    steps_per_s = (run.state.step - start_step) / elapsed if run.state.step > start_step and elapsed > 0 else None
    run.record_backends()
    result = TrainResult(network=network, steps=run.state.step, final_dir=None, metrics_path=None, plot_path=None,
                         grid_path=None, steps_per_s=steps_per_s, resumed_from=run.resumed_from)
    if run.rank == 0:
        _finish(run.paths, network, run.state, run.steps, run.steps.schedulers, log.rows, run.dataset, run.tp,
                run.steps_per_epoch, result)
    if dist.is_initialized():
        dist.barrier()
    return result


# ------------------------------------------------------------------------------------------------ set-up


@dataclass
class Run:
    """One training run of one network: what :func:`set_up` built, and the state the loop advances."""

    network: str
    tp: Any                      # params.train
    rank: int
    world: int
    device: torch.device
    paths: TrainPaths
    steps_per_epoch: int
    total: int                   # steps in the schedule (0 when there is no network to train)
    steps: NetworkSteps
    state: ckpt.TrainingState
    resumed_from: int | None
    dataset: ResumableWindows
    backends: set[str]           # the preprocessing backends of the samples seen (JSON, for the checkpoint meta)

    def record_backends(self) -> None:
        self.state.meta["backends"]["shards"] = [json.loads(b) for b in sorted(self.backends)]


def set_up(network: str, params: Params, root: Path) -> Run:
    """Devices and ranks, the shard stream, the networks with their optimisers and schedule, and the state
    (resumed from the latest checkpoint of the same run fingerprint, else freshly seeded). The order is the
    order of the random draws: initialisation, then seeding."""
    if network not in NETWORKS:
        raise RemotError(f"unknown network {network!r}; expected one of {', '.join(NETWORKS)}")
    tp = params.train
    rank, world, local_rank = init_distributed("cuda" if tp.device != "cpu" and torch.cuda.is_available() else "cpu")
    device = choose_device(tp.device, local_rank, setting="train.device")
    paths = TrainPaths.of(params, root, network)
    urls, manifest_sha, steps_per_epoch = _shard_source(tp, root, world)
    epochs = getattr(tp.epochs, network)
    fingerprint = run_fingerprint(params, manifest_sha, world)
    steps, perceptual_info = _build_steps(network, params, root, device, epochs)
    # No git revision, host or time here: the final checkpoint and the metrics are DVC outputs that must have the
    # same bytes for the same code and data in every clone (dvc.lock pins the code); the revision goes to the log.
    meta = {"network": network, "fingerprint": fingerprint,
            "params_hash": section_fingerprint(params.train, params.model), "data_manifest_sha256": manifest_sha,
            "profile": params.model.profile, "model_config": model_config(params.model).to_dict(),
            "backends": {"perceptual": perceptual_info, "shards": []}, "world_size": world, "device": str(device),
            "amp": steps.amp, "torch": torch.__version__, "steps_per_epoch": steps_per_epoch, "epochs": epochs}
    state = ckpt.TrainingState(meta=meta)
    resumed_from = _resume_or_reset(network, paths, steps, steps.schedulers, fingerprint, params, state, device, rank)
    if resumed_from is None:
        # A fresh run seeds every global RNG from train.seed (a resumed run restored them from the checkpoint).
        seed = derive_seed("train", tp.seed, network, rank) % (2 ** 32)
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
    backends = set(json.dumps(b, sort_keys=True) for b in state.meta["backends"].get("shards", []))
    dataset = ResumableWindows(urls, batch_size=tp.batch_size, num_workers=tp.num_workers,
                               shuffle_buffer=tp.shuffle_buffer, seed=derive_seed("data", tp.seed, network),
                               pose_thickness=params.pose.thickness, allow_shell_urls=tp.allow_shell_urls)
    total = epochs * steps_per_epoch if steps.trainable else 0  # "REMOT w/o WCN": no network, nothing to optimise
    return Run(network, tp, rank, world, device, paths, steps_per_epoch, total, steps, state, resumed_from, dataset,
               backends)


def _shard_source(tp, root: Path, world: int) -> tuple[list[str], str | None, int]:
    """(shard URLs of the training split, the manifest's sha256 or None, steps per epoch)."""
    if is_shard_url(tp.shards):  # object storage etc.: the URLs name the split's shards directly
        urls = check_shard_urls(training_urls(tp.shards, tp.split), tp.allow_shell_urls)
        if tp.steps_per_epoch is None:
            raise RemotError(f"train.shards is a URL ({tp.shards!r}): set train.steps_per_epoch, since the "
                             "manifest that counts the samples of a split is only read from a local shard folder")
        return urls, None, tp.steps_per_epoch
    shard_dir = root / tp.shards
    urls = training_urls(shard_dir, tp.split)
    manifest = shard_dir / "manifest.parquet"
    manifest_sha = file_digest(manifest) if manifest.is_file() else None
    steps_per_epoch = tp.steps_per_epoch or max(1, split_size(shard_dir, tp.split) // (tp.batch_size * world))
    return urls, manifest_sha, steps_per_epoch


def _build_steps(network: str, params: Params, root: Path, device: torch.device, epochs: int
                 ) -> tuple[NetworkSteps, dict | None]:
    """The network(s) of ``network`` seeded from train.seed, its frozen upstream generators, the perceptual
    backbone (Region GAN, WCN), the optimisers and their schedule; and what the perceptual backbone is."""
    tp, cfg = params.train, model_config(params.model)
    vgg, vgg_info = None, None
    if network in ("region", "wcn"):
        from pipeline.pretrained.perceptual import load_perceptual

        vgg, vgg_info = load_perceptual(tp.perceptual, root / tp.vgg19_weights, seed=tp.seed)
        vgg.layer_weights = tuple(tp.perceptual_layer_weighting)  # read by the steps' eq. 7 (steps.py _perceptual)
        if vgg.layer_weights != (1.0,) * 5:  # recorded only off eq. 7's plain sum: older checkpoints stay equal
            vgg_info = {**vgg_info, "layer_weights": list(vgg.layer_weights)}
        vgg_info = relative_paths(vgg_info, root)  # checkpoints are DVC outputs: the same bytes in every clone
    upstream = load_generators(params, root, cfg, NETWORKS[:NETWORKS.index(network)])
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed(tp.seed, network))
        steps = build_steps(network, cfg, device, tp.lr, (tp.beta1, tp.beta2), tp.amp, vgg=vgg, upstream=upstream,
                            sequence_length=tp.sequence_length, epochs=epochs, lr_decay_epochs=tp.lr_decay_epochs,
                            warmup_frames=tp.warmup_frames)
    return steps, vgg_info


# ------------------------------------------------------------------------------------------------ the loop


def train_loop(run: Run, log: "LossLog", progress: "Progress", stop_after: int | None,
               before_step: Callable[[int, NetworkSteps], None] | None) -> None:
    """Step until the schedule's end: each epoch is ``steps_per_epoch`` batches; after each step the loss log,
    the schedule (at an epoch's end), the progress bar and, when due, a checkpoint."""
    state, tp = run.state, run.tp
    while state.step < run.total:
        batches = epoch_batches(run.dataset, state.epoch, state.batches_in_epoch, run.steps_per_epoch,
                                tp.num_workers, seed=tp.seed, pin_memory=run.device.type == "cuda")
        for batch in batches:
            step = state.step + 1
            if before_step is not None:
                before_step(step, run.steps)
            losses = run.steps.train_step(batch, step)
            run.backends.update(json.dumps(m.get("backends", {}), sort_keys=True) for m in batch["meta"])
            state.step, state.batches_in_epoch = step, state.batches_in_epoch + 1
            log.append({"step": step, "epoch": state.epoch, **losses})
            if state.batches_in_epoch == run.steps_per_epoch:
                with warnings.catch_warnings():
                    # at zero adversarial weights the discriminators' optimiser never steps; its schedule still
                    # advances with the epochs, so torch's "scheduler before optimizer" warning is expected
                    warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before", UserWarning)
                    for scheduler in run.steps.schedulers.values():
                        scheduler.step()
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
            progress.update(postfix=_bar_losses(progress, step, losses))
            if step % tp.checkpoint_every == 0 or step == run.total:
                run.record_backends()
                _checkpoint(run.paths, state, run.steps, run.steps.schedulers, tp.keep_checkpoints, log.rows,
                            run.rank)
                progress.note(_checkpoint_line(run, progress, step, losses))
            if stop_after is not None and step >= stop_after:
                raise StoppedEarly(f"{run.network}: stopped after step {step} on request")


# ------------------------------------------------------------------------------------------------ hooks


class LossLog:
    """The per-step loss rows: in memory for the plot and metrics, appended to ``losses.jsonl`` (rank 0)."""

    def __init__(self, paths: TrainPaths, rows: list[dict[str, Any]], rank: int):
        self.paths, self.rows, self.rank = paths, rows, rank

    @classmethod
    def open(cls, paths: TrainPaths, step: int, rank: int) -> "LossLog":
        """The log on disk cut to exactly the steps the restored state has taken."""
        rows = read_log(paths.losses, step) if rank == 0 else []
        if rank == 0:
            paths.network_dir.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(paths.losses, "".join(json.dumps(r) + "\n" for r in rows).encode())
        return cls(paths, rows, rank)

    def append(self, row: dict[str, Any]) -> None:
        if self.rank == 0:
            self.rows.append(row)
            with open(self.paths.losses, "a") as handle:
                handle.write(json.dumps(row) + "\n")

    def write_plot(self) -> None:
        if self.rank == 0:
            write_plot_csv(self.paths.plot, list(self.rows))


def _progress(run: Run) -> Progress:
    """Steps on a bar on a terminal; without one, :func:`_checkpoint_line` per checkpoint and no timed summaries
    (rank 0 only: the other ranks take the same steps)."""
    return Progress(f"train {run.network}", run.total, unit="step", initial=run.state.step, interval=math.inf,
                    terminal=sys.stderr.isatty(), silent=run.rank != 0)


def _steps_per_s(progress: Progress, step: int) -> float:
    return (step - progress.initial) / max(progress.elapsed(), 1e-9)


def _bar_losses(progress: Progress, step: int, losses: dict[str, float]) -> dict[str, str]:
    return {"g": f"{losses['g_total']:.3f}", "d": f"{losses['d_total']:.3f}",
            "sps": f"{_steps_per_s(progress, step):.2f}"}


def _checkpoint_line(run: Run, progress: Progress, step: int, losses: dict[str, float]) -> str:
    return (f"train {run.network}: step {step}/{run.total}, {_steps_per_s(progress, step):.2f} steps/s, g_total "
            f"{losses['g_total']:.4f}, d_total {losses['d_total']:.4f}")


def _resume_or_reset(network, paths, steps, schedulers, fingerprint, params, state, device, rank) -> int | None:
    """Load the latest checkpoint when its fingerprint matches (returns its step); else move the network's
    checkpoints and loss log aside to ``superseded-<fingerprint>/`` (pipeline.training.resume) and return None."""
    latest = ckpt.latest_checkpoint(paths.network_dir) if paths.network_dir.is_dir() else None
    old_fingerprint = None
    if latest is not None:
        saved = ckpt.read_state(latest)
        old_fingerprint = saved["meta"].get("fingerprint")
        if old_fingerprint == fingerprint:
            restored = ckpt.load_checkpoint(latest, steps.modules, steps.optimizers, schedulers, device)
            state.step, state.epoch, state.batches_in_epoch = restored.step, restored.epoch, restored.batches_in_epoch
            per_epoch = state.meta.get("steps_per_epoch")
            if per_epoch and state.batches_in_epoch >= per_epoch:
                # another rank count changed steps_per_epoch (null = one pass): the saved epoch is complete here
                state.epoch, state.batches_in_epoch = state.epoch + 1, 0
            state.meta["backends"]["shards"] = restored.meta.get("backends", {}).get("shards", [])
            if rank == 0:
                print(f"train {network}: resuming from {latest} (step {state.step})", flush=True)
            return state.step
        if rank == 0:
            print(f"train {network}: not resuming {latest}: made under other settings "
                  f"({describe_difference(saved['meta'], state.meta)}); starting afresh", flush=True)
    if rank == 0:
        moved = move_aside(paths.network_dir, old_fingerprint)
        if moved is not None:
            print(f"train {network}: the previous run's checkpoints and loss log were moved to {moved} "
                  "(move them back to resume it under its settings, or delete the folder)", flush=True)
    if dist.is_initialized():
        dist.barrier()
    return None


def _checkpoint(paths: TrainPaths, state, steps: NetworkSteps, schedulers, keep: int, log_rows, rank: int) -> None:
    if rank == 0:
        ckpt.save_checkpoint(paths.network_dir, state, steps.modules, steps.optimizers, schedulers, keep=keep)
        write_plot_csv(paths.plot, log_rows)
    if dist.is_initialized():
        dist.barrier()


def _finish(paths: TrainPaths, network: str, state, steps: NetworkSteps, schedulers, log_rows, dataset, tp,
            steps_per_epoch: int, result: TrainResult) -> None:
    """Final checkpoint copy (DVC out), plot CSV, sample grid and metrics JSON (rank 0)."""
    if not (paths.network_dir / ckpt.LATEST).is_file() or not steps.trainable:
        ckpt.save_checkpoint(paths.network_dir, state, steps.modules, steps.optimizers, schedulers,
                             keep=tp.keep_checkpoints)
    with atomic.replace_dir(paths.final) as tmp:
        ckpt.write_checkpoint_files(tmp, state, steps.modules, steps.optimizers, schedulers)
    write_plot_csv(paths.plot, log_rows)
    sample = next(epoch_batches(dataset, 0, 0, 1, 0, seed=tp.seed))
    grid = save_grid(paths.grid, steps.sample(sample))
    last = log_rows[-steps_per_epoch:]
    final_losses = {k: float(np.mean([r[k] for r in last])) for k in (last[0] if last else {})
                    if k not in ("step", "epoch")}
    metrics = {"network": network, "trained": steps.trainable, "steps": state.step, "epochs": state.epoch,
               "final_losses": final_losses,
               "backends": short_backends(state.meta["backends"]),
               "params_hash": state.meta["params_hash"], "data_manifest_sha256": state.meta["data_manifest_sha256"],
               "device": state.meta["device"], "world_size": state.meta["world_size"],
               "profile": state.meta["profile"], "resumed_from_step": result.resumed_from}
    if not steps.trainable:
        metrics["note"] = "model.wcn is false (REMOT w/o WCN): the WCN has no network, nothing was trained"
    atomic.write_json(paths.metrics, metrics)
    # The speed differs from run to run and machine to machine: it goes to the untracked log, not the DVC metrics.
    write_log(paths.metrics.parent.parent / "reports" / "train" / paths.metrics.name,
              {"network": network, "steps_per_s": result.steps_per_s, "device": state.meta["device"],
               "git_revision": git_revision(paths.metrics.parent.parent)})
    result.final_dir, result.metrics_path, result.plot_path, result.grid_path = (paths.final, paths.metrics,
                                                                                 paths.plot, grid)
    result.final_losses, result.metrics = final_losses, metrics


def short_backends(backends: dict[str, Any]) -> dict[str, str]:
    """One line per backend for metrics/train_<network>.json (``dvc metrics show`` prints every value): the
    perceptual network, and each preprocessing backend the training samples came from."""
    from pipeline.pretrained.perceptual import short_name

    seen: dict[str, set[str]] = {}
    for record in backends.get("shards", []):
        for key, value in record.items():
            seen.setdefault(key, set()).add(str(value))
    out = {key: ", ".join(sorted(values)) for key, values in seen.items()}
    if backends.get("perceptual"):
        out["perceptual"] = short_name(backends["perceptual"])
    return out


def load_generators(params: Params, root: Path, cfg, networks: tuple[str, ...]) -> dict[str, torch.nn.Module]:
    """The trained generators of ``networks`` from ``models/<network>/final`` (a later network trains on their
    outputs)."""
    generators = {}
    for network in networks:
        folder = root / params.train.out / network / "final"
        if not (folder / "state.json").is_file():
            raise RemotError(f"the later networks train on the {network} generator's outputs, but {folder} holds no "
                             f"checkpoint: run `dvc repro train_{network}` (or `make train`) first")
        ckpt.check_model_config(folder, cfg.architecture(network), f"`dvc repro train_{network}`")
        generators[network] = build_generator(network, cfg)
        ckpt.load_modules(folder, {"generator": generators[network]})
    return generators
