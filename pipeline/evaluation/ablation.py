"""The ablation table of the paper's Tables 3-4 (4.4) from ``dvc exp show --json``.

``make ablation`` runs the evaluate stage (and the training it depends on) once per variant through
``dvc exp run -S model.<module>=false``, then prints :func:`format_table` of :func:`ablation_rows`. Rows are
recognised by their params, not by experiment names:

    RGN w/o GAM      model.gam false, wcn true,  tam true
    REMOT w/o WCN    model.wcn false, gam true,  tam true
    REMOT w/o TAM    model.tam false, gam true,  wcn true
    REMOT            all three true

Columns (from ``metrics/summary.json``: self pairs, the REMOT method): SSIM* = Mask-SSIM, PSNR* = Mask-PSNR (as
the paper's tables), LPIPS, FID, TCM. Unlike the paper, the "RGN w/o GAM" row is the whole pipeline with the
GAM off (our evaluation always scores final frames), so it has every column. When several experiments match a
row, the newest (by timestamp) wins; the workspace counts only when no committed or experiment result does.

``dvc exp show --json`` (DVC 3) is a list of states ``{"rev", "name", "data": {"timestamp", "params":
{"params.yaml": {"data": {...}}}, "metrics": {"metrics/summary.json": {"data": {...}}}}, "experiments":
[{"revs": [state, ...]}, ...]}``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Iterator

from pipeline.evaluation.summary import SUMMARY_FILE

VARIANTS: tuple[tuple[str, dict[str, bool]], ...] = (
    ("RGN w/o GAM", {"gam": False, "wcn": True, "tam": True}),
    ("REMOT w/o WCN", {"gam": True, "wcn": False, "tam": True}),
    ("REMOT w/o TAM", {"gam": True, "wcn": True, "tam": False}),
    ("REMOT", {"gam": True, "wcn": True, "tam": True}),
)
COLUMNS: tuple[tuple[str, str], ...] = (("SSIM*", "mask_ssim"), ("PSNR*", "mask_psnr"), ("LPIPS", "lpips"),
                                        ("FID", "fid"), ("TCM", "tcm"))
METRICS_FILE = SUMMARY_FILE
PARAMS_FILE = "params.yaml"


def _states(entries: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every experiment state in the document, depth first (baselines, their experiments, the workspace)."""
    for entry in entries or []:
        yield entry
        for group in entry.get("experiments") or []:
            yield from _states(group.get("revs") or [])


def _file_data(section: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    found = (section or {}).get(name) or {}
    return found.get("data") if isinstance(found, dict) else None


def ablation_rows(document: list[dict[str, Any]], dataset: str | None = None) -> list[dict[str, Any]]:
    """One row per variant (in ``VARIANTS`` order): ``{"row", "experiment", "dataset", <column>: float | None}``.

    ``dataset``: which dataset's numbers to take (default: the first in each metrics file). A variant no
    experiment matched has ``experiment`` None and no numbers.
    """
    best: dict[str, tuple[tuple[int, str], dict[str, Any], dict[str, Any]]] = {}
    for state in _states(document):
        data = state.get("data") or {}
        params = _file_data(data.get("params"), PARAMS_FILE)
        metrics = _file_data(data.get("metrics"), METRICS_FILE)
        if not params or not metrics or state.get("error"):
            continue
        model = params.get("model") or {}
        flags = {k: bool(model.get(k, True)) for k in ("gam", "wcn", "tam")}
        label = next((name for name, wanted in VARIANTS if wanted == flags), None)
        if label is None:
            continue
        # committed results and experiments outrank the workspace; then the newest wins
        rank = (0 if state.get("rev") == "workspace" else 1, str(data.get("timestamp") or ""))
        if label not in best or rank > best[label][0]:
            best[label] = (rank, state, metrics)
    rows = []
    for label, _ in VARIANTS:
        row: dict[str, Any] = {"row": label, "experiment": None, "dataset": dataset}
        if label in best:
            _, state, metrics = best[label]
            name = dataset or next(iter(metrics), None)
            remot = metrics.get(name) or {}
            row.update({"experiment": state.get("name") or state.get("rev"), "dataset": name})
            row.update({column: remot.get(key) for column, key in COLUMNS})
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table shaped like the paper's Tables 3-4 ("-" where a value is missing)."""
    def cell(value: Any, column: str) -> str:
        if value is None:
            return "-"
        return f"{value:.2f}" if column == "PSNR*" else (f"{value:.2f}" if column == "FID" else f"{value:.3f}")

    header = ["", *(c for c, _ in COLUMNS), "experiment"]
    lines = [[r["row"], *(cell(r.get(c), c) for c, _ in COLUMNS), str(r.get("experiment") or "not run")]
             for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), *(fmt(line) for line in lines)])


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.evaluation.ablation [--dataset NAME] [--json FILE]``: print the table from
    ``dvc exp show --json`` (run here) or from a saved document."""
    import argparse

    parser = argparse.ArgumentParser(description="Tables 3-4 style ablation table from dvc experiments")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--json", default=None, help="a saved `dvc exp show --json` document instead of running it")
    args = parser.parse_args(argv)
    if args.json:
        with open(args.json) as handle:
            document = json.load(handle)
    else:
        shown = subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True)
        if shown.returncode != 0:
            print(f"error: `dvc exp show --json` failed: {shown.stderr.strip()}", file=sys.stderr)
            return 2
        document = json.loads(shown.stdout)
    print(format_table(ablation_rows(document, args.dataset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
