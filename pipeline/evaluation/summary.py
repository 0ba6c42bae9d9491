"""The headline numbers of an evaluation: the only file DVC lists as metrics (``metrics/summary.json``).

``dvc metrics show`` prints one table whose columns are the union of every metrics file's keys, so listing
``metrics/eval.json`` (baselines, cross pairs, backends, per-metric verdicts) and the training files made lines
thousands of characters wide. This file keeps one short row per dataset: REMOT's self-pair scores (the paper's
Table 1 columns) and ``wins``, how many of the (metric, baseline) comparisons it wins out of those that could be
made. The full results stay in ``metrics/eval.json``; ``dvc metrics show metrics/eval.json`` (or any other
file path) prints one of them.
"""
from __future__ import annotations

from typing import Any

SUMMARY_FILE = "metrics/summary.json"
COLUMNS = ("ssim", "psnr", "mask_ssim", "mask_psnr", "lpips", "fid", "tcm", "akd", "mkr", "moved_psnr")


def summarize(evaluation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``metrics/eval.json`` content -> ``{dataset: {metric: REMOT self score, "wins": "k/n"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name, dataset in (evaluation.get("datasets") or {}).items():
        remot = (dataset.get("self") or {}).get("remot") or {}
        row: dict[str, Any] = {metric: _rounded(remot.get(metric)) for metric in COLUMNS}
        verdicts = [won for baseline in (dataset.get("beats_baselines") or {}).values()
                    for kind in baseline.values() for won in kind.values() if won is not None]
        row["wins"] = f"{sum(verdicts)}/{len(verdicts)}"
        out[name] = row
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
