"""``python -m pipeline.selection STUDY [--candidates A,B]``: run a recipe study on the validation split and write
its table (see the package docstring); ``--list`` names the studies."""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.core import atomic
from pipeline.core.errors import RemotError
from pipeline.core.params import load_params, model_config, validate_params
from pipeline.profiles import absolute_weights, merge, profile_params
from pipeline.profiles.__main__ import ROOT, run_stages

STUDIES_FILE = Path(__file__).resolve().parent / "studies.yaml"
# scope -> (first stage, last stage) a candidate runs. ``wcn``: the candidates train only the WCN, on the Layout
# and Region GANs the study trained once with the profile's recipe (``upstream_base``), whose data they share: a
# WCN choice costs one WCN training per candidate instead of a whole run.
# ``layout``: the candidates train only the Layout GAN, on the data the study preprocessed once (``shared_data``).
STAGES = {"layout": ("train_layout", "train_layout"), "full": (None, "evaluate"), "wcn": ("train_wcn", "evaluate")}
UPSTREAM = ("layout", "region")
MINUTES = "selection_minutes.json"  # a candidate's wall minutes, kept for the table when a re-run reuses it
DATA_DONE = "data_done.json"  # in <study>/base/: the shared data is preprocessed
SELF_METRICS = ("akd", "mkr", "moved_psnr", "mask_psnr", "mask_ssim", "fid", "tcm", "layout_miou", "limbs_iou")


def load_studies() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(STUDIES_FILE.read_text()) or {}


def recipe(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` params as the stages read them: validated, defaults filled in, the model section as the networks'
    full config, so an unset value and the same value written out compare equal."""
    params = validate_params(raw)
    return {**params.model_dump(), "model": model_config(params.model).to_dict()}


def check_runs_in(studies: dict[str, dict[str, Any]]) -> None:
    """A study that runs in another's folder shares its data, base and run folders: same profile and scope, and
    no candidate name the host study also uses (it would take over that candidate's folder)."""
    for name, spec in studies.items():
        host = spec.get("runs_in")
        if host is None:
            continue
        if host not in studies or "runs_in" in studies[host]:
            raise RemotError(f"{STUDIES_FILE}: study {name} runs in {host!r}, which is not a study of its own folder")
        if any(studies[host].get(k) != spec.get(k) for k in ("profile", "scope", "over")):
            raise RemotError(f"{STUDIES_FILE}: study {name} runs in {host}'s folder but differs in profile, scope "
                             "or over")
        clash = set(spec["candidates"]) & {c for n, s in studies.items() if n != name and
                                           s.get("runs_in", n) == host for c in s["candidates"]}
        if clash:
            raise RemotError(f"{STUDIES_FILE}: study {name} reuses candidate names of {host}'s folder: "
                             f"{', '.join(sorted(clash))}; rename them")


def shared_paths(params: dict[str, Any]) -> dict[str, Any]:
    """Point a candidate's data at the study's shared folder (one level up), keeping its own checkpoints."""
    out = merge(params, {"data_root": "../" + params.get("data_root", "data")})
    shards = out.get("train", {}).get("shards", "data/shards")
    if "://" not in shards and ":" not in shards and not Path(shards).is_absolute():
        out["train"]["shards"] = "../" + shards
    if "demo" in out:
        out["demo"]["out"] = "../" + out["demo"]["out"]
    for spec in out.get("datasets", {}).values():
        if not Path(spec["path"]).is_absolute():
            spec["path"] = "../" + spec["path"]
    return out


def check_base_recipe(base: Path, profile: dict[str, Any], made: str, remedy: str) -> None:
    """A study's ``base`` folder, once written, holds the profile's recipe (as run_stages wrote it: weights paths
    absolute); else a RemotError that says how to start it again."""
    written = base / "params.yaml"
    if written.is_file() and recipe(yaml.safe_load(written.read_text())) != recipe(
            absolute_weights(shared_paths(profile), ROOT)):
        raise RemotError(f"{base}: {made} with another recipe than the profile's now; move it away to {remedy}")


def upstream_base(study: str, study_root: Path, profile: dict[str, Any]) -> Path | int:
    """For scope ``wcn``: the study's Layout and Region GANs, trained once on the study's shared data with the
    profile's own recipe in ``<study>/base/`` (the first run of a study trains them; later runs reuse them); the
    folder, or the failing stage's exit code."""
    base = study_root / "base"
    check_base_recipe(base, profile, "trained", "train the base again")
    if all((base / "models" / n / "final").is_dir() for n in UPSTREAM):
        return base
    done = run_stages(f"{study}/base", shared_paths(profile), base, until="train_region")
    return done if isinstance(done, int) else base


def shared_data(study: str, study_root: Path, profile: dict[str, Any]) -> int | None:
    """For scope ``layout``: preprocess the study's shared data once, with the profile's recipe, in
    ``<study>/base/`` (a marker there says it finished), so candidates run apart with ``--candidates`` only train;
    None, or the failing stage's exit code."""
    base = study_root / "base"
    check_base_recipe(base, profile, "made", "prepare the data again")
    if (base / DATA_DONE).is_file():
        return None
    done = run_stages(f"{study}/data", shared_paths(profile), base, until="shards")
    if isinstance(done, int):
        return done
    atomic.write_json(base / DATA_DONE, {"minutes": round(sum(done.values()) / 60, 2)})
    return None


def copy_upstream(base: Path, run_root: Path) -> None:
    """The candidate starts from the base's trained Layout and Region GANs (copies: its run never writes into
    the base)."""
    for name in UPSTREAM:
        target = run_root / "models" / name / "final"
        if not target.exists():
            shutil.copytree(base / "models" / name / "final", target)


def finished_twin(params: dict[str, Any], run_root: Path, scope: str) -> Path | None:
    """A finished run with exactly these params on the same shared data (so the same upstream networks, for
    scope ``wcn``): ``run_root`` itself (a study re-run, or candidates run apart with ``--candidates``), a
    candidate of another study, or None. Only evaluations on the validation split count; for scope ``layout`` a
    finished Layout GAN training (scored again on the validation split)."""
    data = (run_root.parent / "data").resolve()
    wanted = recipe(params)
    # its own run first; each run once
    for other in sorted(run_root.parent.parent.glob("*/*/params.yaml"), key=lambda f: (f.parent != run_root, f)):
        run = other.parent
        if (run.parent / "data").resolve() != data:
            continue
        if finished(run, scope) and recipe(yaml.safe_load(other.read_text())) == wanted:
            return run
    return None


def finished(run: Path, scope: str) -> bool:
    if scope == "layout":
        return (run / MINUTES).is_file() and (run / "models" / "layout" / "final").is_dir()
    evaluation = run / "metrics" / "eval.json"
    return evaluation.is_file() and json.loads(evaluation.read_text()).get("split") == "val"


def score(scope: str, run_root: Path) -> dict[str, Any]:
    """What a finished candidate scored on the validation split."""
    if scope == "layout":
        from pipeline.evaluation.layouts import layout_rollouts

        return layout_rollouts(load_params(run_root / "params.yaml"), run_root)
    evaluation = json.loads((run_root / "metrics" / "eval.json").read_text())
    if evaluation.get("split") != "val":
        raise RemotError(f"{run_root / 'metrics' / 'eval.json'} is not a validation-split evaluation")
    out: dict[str, Any] = {}
    for dataset in evaluation["datasets"].values():
        remot = dataset["self"]["remot"]
        out.update({m: remot.get(m) for m in SELF_METRICS})
    return out


def winner(rows: dict[str, dict[str, Any]], metric: str, better: str) -> str:
    def key(name: str) -> float:
        value = rows[name].get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return -math.inf
        return value if better == "higher" else -value
    return max(rows, key=key)


def table(study: str, spec: dict[str, Any], rows: dict[str, dict[str, Any]], chosen: str) -> str:
    columns = [c for c in dict.fromkeys(k for r in rows.values() for k in r) if not isinstance(
        next(iter(rows.values())).get(c), (list, dict, str))]
    lines = [f"# Selection study `{study}` (profile {spec['profile']}, validation split)", "",
             " ".join(str(spec.get("why", "")).split()), "",
             f"Chosen by {spec['choose']['score']} ({spec['choose']['better']} is better): **{chosen}**. "
             f"Re-run: `python -m pipeline.selection {study}`.", "",
             "| candidate | values | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for name, row in rows.items():
        values = json.dumps(spec["candidates"][name], sort_keys=True)
        cells = [f"{row[c]:.4f}" if isinstance(row.get(c), float) else str(row.get(c)) for c in columns]
        lines.append(f"| {'**' + name + '**' if name == chosen else name} | `{values}` | " + " | ".join(cells) + " |")
    by_frame = {n: r["person_iou_by_frame"] for n, r in rows.items() if "person_iou_by_frame" in r}
    if by_frame:
        lines += ["", "Person IoU of the Layout GAN's layouts by frame index of the clip:", ""]
        lines += [f"- {n}: " + " ".join(f"{v:.2f}" for v in values) for n, values in by_frame.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("study", nargs="?")
    parser.add_argument("--list", action="store_true", help="list the studies")
    parser.add_argument("--candidates", default=None, help="comma-separated subset of the study's candidates")
    args = parser.parse_args(argv)
    studies = load_studies()
    if args.list or not args.study:
        for name, spec in studies.items():
            print(f"{name}: profile {spec['profile']}, scope {spec['scope']}, candidates "
                  f"{', '.join(spec['candidates'])}")
        return 0
    if args.study not in studies:
        print(f"error: unknown study {args.study!r}; choose one of {', '.join(studies)} ({STUDIES_FILE})",
              file=sys.stderr)
        return 2
    try:
        check_runs_in(studies)
    except RemotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spec = studies[args.study]
    names = list(spec["candidates"]) if args.candidates is None else args.candidates.split(",")
    unknown = [n for n in names if n not in spec["candidates"]]
    if unknown:
        print(f"error: study {args.study} has no candidate {', '.join(unknown)}", file=sys.stderr)
        return 2
    # ``runs_in``: a study asking another question of the same networks runs in that study's folder, sharing its
    # data and trained base (and reusing its candidates where the params are equal)
    study_root = ROOT / "data" / "runs" / "selection" / spec.get("runs_in", args.study)
    rows: dict[str, dict[str, Any]] = {}
    start, until = STAGES[spec["scope"]]
    for name in names:
        run_root = study_root / name
        try:
            # ``over``: values the whole study (base and candidates) lays over the profile, pinning the recipe it
            # was run on where the profile has since moved on (a re-run then reuses the same runs)
            profile = merge(profile_params(spec["profile"], ROOT / "params.yaml"), spec.get("over") or {})
            params = merge(profile, merge(spec["candidates"][name], {"evaluate": {"split": "val"}}))
            base = upstream_base(args.study, study_root, profile) if spec["scope"] == "wcn" else None
            prepared = shared_data(args.study, study_root, profile) if spec["scope"] == "layout" else None
        except RemotError as exc:
            print(f"error: candidate {name}: {exc}", file=sys.stderr)
            return 2
        failed = base if isinstance(base, int) else prepared  # a stage's exit code
        if failed is not None:
            return failed
        # compared as run_stages writes them: weights paths absolute
        twin = finished_twin(absolute_weights(shared_paths(params), ROOT), run_root, spec["scope"])
        if twin is not None:  # the same candidate already ran (here or in another study): score it, train nothing
            print(f"== {args.study}/{name}: the finished run {twin.relative_to(study_root.parent)}, reused", flush=True)
            minutes = json.loads((twin / MINUTES).read_text())["minutes"] if (twin / MINUTES).is_file() else None
            rows[name] = {**score(spec["scope"], twin), "minutes": minutes}
            if twin != run_root:
                rows[name]["reused"] = str(twin.relative_to(ROOT))
            continue
        if base is not None:  # scope wcn: the candidate starts from the study's trained Layout/Region GANs
            copy_upstream(base, run_root)
        done = run_stages(f"{args.study}/{name}", shared_paths(params), run_root, until, start)
        if isinstance(done, int):
            return done
        minutes = round(sum(done.values()) / 60, 2)
        atomic.write_json(run_root / MINUTES, {"minutes": minutes})
        rows[name] = {**score(spec["scope"], run_root), "minutes": minutes}
        print(f"{args.study}/{name}: {json.dumps(rows[name])}", flush=True)
    chosen = winner(rows, spec["choose"]["score"], spec["choose"]["better"])
    out = ROOT / "metrics" / spec["profile"] / "selection"
    atomic.write_json(out / f"{args.study}.json", {"study": args.study, "split": "val", "chosen": chosen,
                                                   "choose": spec["choose"], "candidates": spec["candidates"],
                                                   "scores": rows})
    atomic.write_bytes(out / f"{args.study}.md", table(args.study, spec, rows, chosen).encode())
    print(f"{args.study}: chose {chosen}; table in {out / (args.study + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
