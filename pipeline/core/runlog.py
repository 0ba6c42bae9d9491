"""Where run-specific facts go: wall times and machine details that must stay out of DVC-tracked outputs.

A tracked output (anything DVC hashes into dvc.lock) must be byte-identical for the same inputs on every machine
and at every path, so timings live in ``logs/`` beside ``reports/`` (untracked, git-ignored).
"""
from __future__ import annotations

from pathlib import Path

from pipeline.core import atomic


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


def relative_paths(obj, root: Path):
    """``obj`` (JSON-like) with every occurrence of ``root``'s absolute path in its strings made relative, and
    the torch hub cache shown as ``$TORCH_HOME/hub``: reports name files the same way in every clone."""
    import torch

    replacements = [(f"{Path(root).resolve()}/", ""), (str(Path(root).resolve()), "."),
                    (str(Path(torch.hub.get_dir())), "$TORCH_HOME/hub")]
    if isinstance(obj, str):
        for old, new in replacements:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, dict):
        return {k: relative_paths(v, root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [relative_paths(v, root) for v in obj]
    return obj
