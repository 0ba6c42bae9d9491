"""``python -m pipeline.selection STUDY [--candidates A,B]``: run a recipe study on the validation split and write
its table (see the package docstring); ``--list`` names the studies."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.core import atomic
from pipeline.core.errors import RemotError
from pipeline.core.params import load_params
from pipeline.profiles import merge, profile_params
from pipeline.profiles.__main__ import ROOT, run_stages

STUDIES_FILE = Path(__file__).resolve().parent / "studies.yaml"
LAST_STAGE = {"layout": "train_layout", "full": "evaluate"}
SELF_METRICS = ("akd", "mkr", "moved_psnr", "mask_psnr", "mask_ssim", "fid", "layout_miou", "limbs_iou")


def load_studies() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(STUDIES_FILE.read_text()) or {}


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
    spec = studies[args.study]
    names = list(spec["candidates"]) if args.candidates is None else args.candidates.split(",")
    unknown = [n for n in names if n not in spec["candidates"]]
    if unknown:
        print(f"error: study {args.study} has no candidate {', '.join(unknown)}", file=sys.stderr)
        return 2
    study_root = ROOT / "data" / "runs" / "selection" / args.study
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            params = merge(profile_params(spec["profile"], ROOT / "params.yaml"),
                           merge(spec["candidates"][name], {"evaluate": {"split": "val"}}))
        except RemotError as exc:
            print(f"error: candidate {name}: {exc}", file=sys.stderr)
            return 2
        run_root = study_root / name
        done = run_stages(f"{args.study}/{name}", shared_paths(params), run_root, LAST_STAGE[spec["scope"]])
        if isinstance(done, int):
            return done
        rows[name] = {**score(spec["scope"], run_root), "minutes": round(sum(done.values()) / 60, 2)}
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
