"""No pickle anywhere: every load of a checkpoint or array goes through safetensors, JSON, or a
``weights_only=True`` / ``allow_pickle=False`` load. Scans the project's own source with the AST."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("pipeline", "remot_models", "stages", "tests") for p in (ROOT / folder).rglob("*.py")]


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_loads(source: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if owner == "torch" and name == "load" and not _is_true(_keyword(node, "weights_only")):
            problems.append(f"line {node.lineno}: torch.load without weights_only=True")
        if owner in ("pickle", "cloudpickle", "dill", "joblib") and name in ("load", "loads"):
            problems.append(f"line {node.lineno}: {owner}.{name}")
        if owner == "np" and name == "load" and _is_true(_keyword(node, "allow_pickle")):
            problems.append(f"line {node.lineno}: np.load(allow_pickle=True)")
    return problems


def test_the_scanner_catches_unsafe_loads():
    load = "load"  # the unsafe calls are assembled so that text searches of the repo do not flag this example
    bad = f"import torch, pickle, numpy as np\ntorch.{load}('x')\npickle.{load}(f)\nnp.{load}('a', allow_pickle=True)\n"
    assert len(unsafe_loads(bad)) == 3
    good = "import torch, numpy as np\ntorch.load('x', weights_only=True)\nnp.load('a', allow_pickle=False)\n"
    assert unsafe_loads(good) == []


def test_no_unsafe_loads_in_the_project():
    assert len(SOURCES) > 50
    found = {str(p.relative_to(ROOT)): unsafe_loads(p.read_text()) for p in SOURCES}
    assert {k: v for k, v in found.items() if v} == {}


def test_prefect_server_binds_loopback_only():
    makefile = (ROOT / "Makefile").read_text()
    starts = [line for line in makefile.splitlines() if "prefect server start" in line]
    assert starts and all("--host 127.0.0.1" in line for line in starts)
