"""Where run-specific facts go: wall times and machine details that must stay out of DVC-tracked outputs.

A tracked output (anything DVC hashes into dvc.lock) must be byte-identical for the same inputs on every machine
and at every path, so timings live in ``logs/`` beside ``reports/`` (untracked, git-ignored).
"""
from __future__ import annotations

from pathlib import Path

from pipeline import atomic


def log_path(report_path: Path) -> Path:
    """``<root>/reports/<stage>/<name>.json`` -> ``<root>/logs/<stage>/<name>.json``; any other report path
    (tests, ad-hoc runs) -> a ``<name>.log.json`` sibling."""
    report_path = Path(report_path)
    if report_path.parent.parent.name == "reports":
        return report_path.parent.parent.parent / "logs" / report_path.parent.name / report_path.name
    return report_path.with_name(f"{report_path.stem}.log.json")


def write_log(report_path: Path, record: dict) -> Path:
    path = log_path(report_path)
    atomic.write_json(path, record)
    return path
