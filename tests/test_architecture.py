"""The layering, read from the code's own imports (``ast``, nothing is imported or run).

stages -> pipeline -> remot_models: a DVC stage module is one call through ``pipeline.stage.entry``; the library
never imports a stage, a test or a benchmark; the REMOT networks import nothing of the pipeline, not even
dynamically (``importlib.import_module("pipeline...")``, ``__import__``, or a module name held in a string). No module
imports itself back through others, no two pipeline packages import each other, ``pipeline.core`` (errors,
parameters, labels, atomic writes, checkpoints) imports no other pipeline package, and every DVC stage's code
deps in dvc.yaml cover what its stage module imports.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("stages", "pipeline", "remot_models")  # each may import only those to its right


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    return {_module_name(p): p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (``pipeline.core.errors.RemotError`` -> ``pipeline.core.errors``)."""
    while name:
        if name in modules():
            return name
        name = name.rpartition(".")[0]
    return None


DYNAMIC_IMPORTS = ("import_module", "__import__")  # importlib.import_module(name), __import__(name)


def dynamic_imports(tree: ast.AST) -> list[str]:
    """Module names given as a string literal to ``importlib.import_module`` / ``import_module`` / ``__import__``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        first = node.args[0]
        if name in DYNAMIC_IMPORTS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append(first.value)
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            for body in [node.body] if body and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)}


def module_names_in_strings(tree: ast.AST) -> set[str]:
    """Project modules named by any string constant outside docstrings (``_EXPORTS = {"pipeline.x": ...}`` then
    ``import_module(table[name])`` imports what no literal call shows)."""
    docs = _docstrings(tree)
    return {m for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs for m in [_resolve(node.value.strip())] if m is not None}


@lru_cache(maxsize=None)
def imports(module: str) -> frozenset[str]:
    """Project modules ``module`` imports, at the top or inside a function, statically or through a literal
    ``importlib.import_module(...)`` / ``__import__(...)``."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found = {m for m in map(_resolve, dynamic_imports(tree)) if m is not None and m != module}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(m for m in map(_resolve, names) if m is not None and m != module)
    return frozenset(found)


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for dep in imports(todo.pop()) - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_imports_only_go_down_the_layers():
    upward = [f"{m} -> {d}" for m in modules() for d in imports(m) if _layer(d) < _layer(m)]
    assert not upward, "imports that run back up stages -> pipeline -> remot_models:\n" + "\n".join(upward)


def test_the_networks_name_no_pipeline_module_even_dynamically():
    named = [f"{m} names {d}" for m in modules() if m.startswith("remot_models")
             for d in module_names_in_strings(ast.parse(modules()[m].read_text())) if _layer(d) < _layer(m)]
    assert not named, "remot_models may not reach the pipeline or the stages:\n" + "\n".join(named)


@pytest.mark.parametrize("source", [
    'import importlib\nimportlib.import_module("pipeline.core.errors")',
    'from importlib import import_module\nimport_module("pipeline.pretrained")',
    '__import__("pipeline.core.params")',
    'import importlib\nWHERE = {"x": "pipeline.pretrained.vgg19"}\nimportlib.import_module(WHERE["x"])',
])
def test_dynamic_imports_of_the_pipeline_are_seen(source):
    tree = ast.parse(source)
    seen = {m for m in map(_resolve, dynamic_imports(tree)) if m} | module_names_in_strings(tree)
    assert seen and all(m.startswith("pipeline") for m in seen)
    assert not module_names_in_strings(ast.parse('"""pipeline.core.errors in a docstring is prose."""'))


def test_the_library_imports_no_test_or_benchmark():
    for module, path in modules().items():
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [n for n in names if n.split(".")[0] == "tests"], module


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back():
    assert not _cycles({m: set(imports(m)) for m in modules()})


def _unit(module: str) -> str:
    """A pipeline package (``pipeline.shards``) or a module loose at the top (``pipeline.cli``)."""
    return ".".join(module.split(".")[:2])


def test_no_two_pipeline_packages_import_each_other():
    graph: dict[str, set[str]] = {}
    for m in modules():
        if m.startswith("pipeline."):
            graph.setdefault(_unit(m), set()).update(_unit(d) for d in imports(m)
                                                      if d.startswith("pipeline.") and _unit(d) != _unit(m))
    assert not _cycles(graph)


def test_core_is_the_bottom_of_the_pipeline():
    up = [f"{m} -> {d}" for m in modules() if m.startswith("pipeline.core")
          for d in imports(m) if d.startswith("pipeline.") and not d.startswith("pipeline.core")]
    assert not up, "\n".join(up)


ORCHESTRATION_LIBRARIES = ("prefect", "prefect_dask", "distributed", "dask")


def test_prefect_and_dask_are_imported_only_by_the_orchestration_package():
    """Issue 23 item 6: every Prefect and Dask import is in pipeline/orchestration (stages/__init__.py hands its
    executors to the stage machinery, which takes them as values)."""
    outside = []
    for module, path in modules().items():
        if module.startswith("pipeline.orchestration"):
            continue
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level]
        names += dynamic_imports(tree)
        outside += [f"{module}: {n}" for n in names if n.split(".")[0] in ORCHESTRATION_LIBRARIES]
    assert not outside, "\n".join(outside)


def test_the_networks_hold_no_pretrained_third_party_network():
    # FlowNet2, SCHP, VGG, Inception, LPIPS live in pipeline.pretrained / pipeline.metrics; remot_models is section 3
    assert not [m for m in modules() if m.split(".")[-1] in ("flownet2", "schp") and m.startswith("remot_models")]


STAGE_FILES = sorted(p for p in (ROOT / "stages").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: p.stem)
def test_every_stage_is_one_call_through_the_one_entry(path):
    tree = ast.parse(path.read_text())
    project = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and _resolve(n.module)]
    assert sorted(n.module for n in project if n.module == "pipeline.stage.entry") == ["pipeline.stage.entry"]
    assert len(project) == 2, f"{path.name}: imports the entry and its stage's library module, nothing else"
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert [f.name for f in functions] == ["main"] and len(functions[0].body) == 1, \
        f"{path.name}: no logic in stages/: main() only returns run(STAGE, argv)"
    assert not [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.Assign, ast.AnnAssign))], path.name


def _parent_packages(module: str) -> list[str]:
    parts = module.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(1, len(parts))) if m in modules()]


def _dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _stage_module(stage: dict) -> str:
    cmd = (stage.get("do") or stage)["cmd"]
    return cmd.split(" -m ", 1)[1].split()[0]


@pytest.mark.parametrize("name", sorted(_dvc_stages()))
def test_dvc_code_deps_cover_what_the_stage_imports(name):
    """Change a module a stage runs and `dvc repro` re-runs that stage: its deps list covers the stage module's
    transitive imports, and those of the package it is in (``python -m stages.x`` runs ``stages/__init__.py``
    first: it hands the Prefect executors to the stage machinery). A package folder covers every module in it."""
    stage = _dvc_stages()[name]
    deps = [d for d in (stage.get("do") or stage)["deps"] if d.split("/")[0] in LAYERS]
    for dep in deps:
        assert (ROOT / dep).exists(), f"{name}: dep {dep} does not exist"
    module = _stage_module(stage)
    runs = [module, *(p for p in _parent_packages(module) if p.split(".")[0] == "stages")]
    needed = set(runs).union(*map(closure, runs))
    missing = sorted(str(modules()[m].relative_to(ROOT)) for m in needed
                     if not any(str(modules()[m].relative_to(ROOT)) == d or
                                str(modules()[m].relative_to(ROOT)).startswith(d.rstrip("/") + "/") for d in deps))
    assert not missing, f"dvc.yaml stage {name} runs these modules without listing them in deps: {missing}"


def test_the_readme_equation_table_names_symbols_that_exist():
    import re

    text = (ROOT / "README.md").read_text()
    table = text[text.index("### The paper's equations in the code"):]
    table = table[: table.index("\n\n", table.index("|---"))]
    checked = 0
    for cell in re.findall(r"`([\w/]+\.py): ([^|]+)", table):
        path, symbols = ROOT / cell[0], cell[1]
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        for symbol in re.findall(r"([\w.*]+)`", re.split(r"[(;]", symbols)[0]):
            assert symbol.split(".")[-1] in defined, f"README: {cell[0]} has no {symbol}"
            checked += 1
    assert checked >= 20


def test_no_library_function_runs_past_80_lines():
    long = [f"{modules()[m].relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for m in modules() if not m.startswith("stages")
            for n in ast.walk(ast.parse(modules()[m].read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80]
    assert not long, "split these into named steps:\n" + "\n".join(long)
