"""The architecture, checked from the source: imports flow down the layers, with no circle,
and scratch/ stays NumPy."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmarks", "scratch", "keras_models")
# Top to bottom; a module may import its own layer's modules and any layer below it.
LAYERS = [
    ("benchmarks.cli", "benchmarks.commands"),
    ("benchmarks.reporting", "benchmarks.bench_ops", "benchmarks.bench_seeds",
     "benchmarks.bench_peers", "benchmarks.drift",
     "benchmarks.conftest"),
    ("benchmarks.experiments",),
    ("benchmarks.harness",),
    ("benchmarks.implementations",),
    ("benchmarks.data",),
    ("scratch", "keras_models"),
    ("benchmarks.errors", "benchmarks.files"),
]
FRAMEWORKS = {"tensorflow", "keras", "jax", "torch", "benchmarks", "keras_models"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(name: str) -> set[str]:
    """Every module of the project that ``name`` imports, at the top or inside a function."""
    path = MODULES[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1],
                                 *([base] if base else [])])
            submodules = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            found |= submodules | ({base} if len(submodules) < len(node.names) else set())
    return {m for m in found if m in MODULES and m != name}


def layer(name: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{name} is in no layer of tests/test_layout.py")


GRAPH = {name: imports(name) for name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_flow_down_the_layers(name):
    upward = [m for m in GRAPH[name] if layer(m) < layer(name)]
    assert not upward, f"{name} (layer {layer(name)}) imports from above: {upward}"


def test_no_import_circle():
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for other in sorted(GRAPH[name]):
            if state.get(other) == "open":
                cycle = path[path.index(other):] + [other] if other in path else [name, other]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*path, other])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_scratch_imports_no_framework():
    for name in (m for m in MODULES if m.startswith("scratch")):
        tree = ast.parse(MODULES[name].read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert not roots & FRAMEWORKS, f"{name} imports {sorted(roots & FRAMEWORKS)}"


COMPILED = "scratch.compiled"  # the compiled engine, beside the NumPy reference


def test_scratch_imports_numpy_and_blas_gemm_only():
    """Beyond the standard library: NumPy, and scipy.linalg.blas for its GEMM with beta
    (C = beta C + alpha A B), which NumPy lacks; the backprop stays hand-written. The
    compiled engine alone imports Numba, llvmlite (Numba's, to bind NumPy's own GEMM by
    name) and threadpoolctl (to find that library), and no NumPy module imports it."""
    for name in (m for m in MODULES if m.startswith("scratch")):
        tree = ast.parse(MODULES[name].read_text())
        found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        found |= {f"{n.module}.{a.name}" if n.module == "scipy.linalg" else n.module
                  for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level
                  for a in n.names}
        outside = {m for m in found if m.split(".")[0] not in sys.stdlib_module_names}
        engine = (["numba", "numba.extending", "llvmlite.binding", "threadpoolctl"]
                  if name == COMPILED else [])
        allowed = {"numpy", "scratch", "scipy.linalg.blas", *engine}
        assert outside <= allowed | {m for m in outside if m.startswith("scratch.")
                                     and m != COMPILED}, f"{name} imports {sorted(outside)}"


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """An upward import and a circle, planted in a copy of the graph, are both caught."""
    monkeypatch.setitem(GRAPH, "benchmarks.data.tasks",
                        GRAPH["benchmarks.data.tasks"] | {"benchmarks.harness.specs"})
    with pytest.raises(AssertionError, match="imports from above"):
        test_imports_flow_down_the_layers("benchmarks.data.tasks")
    monkeypatch.setitem(GRAPH, "benchmarks.data.metrics", {"benchmarks.data.tasks"})
    with pytest.raises(AssertionError, match="import circle"):
        test_no_import_circle()


def test_a_run_worker_imports_no_pandas():
    """pandas is for the reports; a worker process starts about 0.5 s faster without it."""
    import subprocess
    import sys

    code = ("import sys, benchmarks.experiments, benchmarks.harness.worker; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'matplotlib')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr


# The code that treats every implementation alike: it asks an implementation what it needs
# to know (benchmarks/implementations/base.py) and names none.
IMPLEMENTATION_BLIND = ("benchmarks.harness", "benchmarks.reporting", "benchmarks.bench_ops")


def named_implementations(name: str) -> list[tuple[int, str]]:
    """(line, text) of every string in module ``name`` that names a registered
    implementation as a word of its own (docstrings aside)."""
    from benchmarks.implementations import IMPLEMENTATIONS

    tree = ast.parse(MODULES[name].read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings):
            words = set(re.findall(r"[\w-]+", node.value))
            found += [(node.lineno, word) for word in sorted(words & IMPLEMENTATIONS.keys())]
    return found


@pytest.mark.parametrize("name", sorted(m for m in MODULES if any(
    m == p or m.startswith(p + ".") for p in IMPLEMENTATION_BLIND)))
def test_the_harness_and_the_reports_name_no_implementation(name):
    assert not named_implementations(name), (
        f"{name} names implementations (line, name): {named_implementations(name)}; ask the "
        "implementation instead (benchmarks/implementations/base.py)")


def test_the_name_check_can_fail():
    named = {word for _, word in named_implementations("benchmarks.implementations")}
    assert {"scratch-shortcut", "keras"} <= named
