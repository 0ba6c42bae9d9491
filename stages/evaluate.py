"""DVC stage `evaluate`: the trained REMOT and two baselines on every dataset's test split (paper 4.2).

Writes metrics/eval.json (``dvc metrics show``/``diff``), reports/eval/videos.csv, reports/eval/run.json and
side-by-side samples in reports/eval/samples/ (see pipeline.evaluation.run).

Usage: python -m stages.evaluate [--params params.yaml]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), int(os.environ.get("REMOT_TORCH_THREADS", "64")))))
    from pipeline.evaluation.run import run_evaluation
    from pipeline.params import load_params

    # A RemotError (bad params, missing checkpoint) becomes one line and exit 2 (run_guarded, below).
    params = load_params(args.params)
    metrics = run_evaluation(params, Path(args.params).resolve().parent)
    for dataset, summary in metrics["datasets"].items():
        remot = summary["self"]["remot"]
        shown = ", ".join(f"{k} {v:.4g}" if v is not None else f"{k} n/a" for k, v in remot.items())
        print(f"evaluate {dataset}: REMOT (self pairs) {shown}")
        for baseline, kinds in summary["beats_baselines"].items():
            print(f"  beats {baseline}: " + "; ".join(f"{kind} {v}" for kind, v in kinds.items()))
    return 0


if __name__ == "__main__":
    from pipeline.cli import run_guarded  # bad input: one line, exit 2; no traceback

    sys.exit(run_guarded(main))
