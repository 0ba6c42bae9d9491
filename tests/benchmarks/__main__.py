"""`make bench`: run every area's benchmark and write bench/results.json plus a markdown table.

Each module in this package exposes ``run(quick: bool) -> list[dict]``; rows carry area, name, value, unit,
device and notes. A failing area is recorded as a row with its error instead of stopping the others.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import time
import traceback
from pathlib import Path

import torch

from pipeline.core import atomic
import tests.benchmarks as package


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def markdown(results: dict) -> str:
    lines = [f"# remot benchmarks ({results['when']})", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()), "",
             "| area | name | value | unit | device | notes |", "|---|---|---|---|---|---|"]
    for row in results["rows"]:
        value = row.get("value")
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        lines.append(f"| {row.get('area')} | {row.get('name')} | {shown} | {row.get('unit', '')} | "
                     f"{row.get('device', '')} | {str(row.get('notes', '')).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="longer runs (paper profile at full size)")
    parser.add_argument("--only", nargs="*", help="areas (module names) to run")
    parser.add_argument("--out", default="bench")
    args = parser.parse_args(argv)
    rows = []
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        if module.startswith("_") or (args.only and module not in args.only):
            continue
        started = time.perf_counter()
        print(f"bench {module} ...", flush=True)
        try:
            rows.extend(importlib.import_module(f"tests.benchmarks.{module}").run(quick=not args.full))
        except Exception as exc:  # one broken area must not hide the others' numbers
            rows.append({"area": module, "name": "error", "value": None, "unit": "",
                         "notes": f"{type(exc).__name__}: {exc}"})
            traceback.print_exc()
        print(f"bench {module}: {time.perf_counter() - started:.1f}s", flush=True)
    out = Path(args.out)
    if args.only and (out / "results.json").is_file():  # a partial run updates its areas, keeps the others
        previous = json.loads((out / "results.json").read_text())["rows"]
        ran = {row["area"] for row in rows} | set(args.only)
        rows = [row for row in previous if row.get("area") not in ran] + rows
    results = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "quick": not args.full,
               "rows": rows}
    atomic.write_json(out / "results.json", results)
    atomic.write_bytes(out / "results.md", markdown(results).encode())
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
