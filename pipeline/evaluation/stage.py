"""Evaluate stage: the trained REMOT and two baselines on every dataset's test split (paper 4.2).

Writes metrics/eval.json (``dvc metrics show``/``diff``), reports/eval/videos.csv, reports/eval/run.json and
side-by-side samples in reports/eval/samples/ (see ``pipeline.evaluation.run``).
"""
from __future__ import annotations

from pipeline.stage.entry import Stage, StageContext


def body(ctx: StageContext) -> str:
    from pipeline.evaluation.run import run_evaluation  # torch: imported after the thread cap

    metrics = run_evaluation(ctx.params, ctx.root)
    lines = []
    for dataset, summary in metrics["datasets"].items():
        remot = summary["self"]["remot"]
        shown = ", ".join(f"{k} {v:.4g}" if v is not None else f"{k} n/a" for k, v in remot.items())
        lines.append(f"evaluate {dataset}: REMOT (self pairs) {shown}")
        for baseline, kinds in summary["beats_baselines"].items():
            lines.append(f"  beats {baseline}: " + "; ".join(f"{kind} {v}" for kind, v in kinds.items()))
    return "\n".join(lines)


STAGE = Stage("DVC stage `evaluate`: the trained REMOT and two baselines on every dataset's test split "
              "(paper 4.2).", body, dataset=False, torch_threads=True)
