"""The project stands alone: its documentation is its own, the README's test command is the one
CI runs and says what it needs, and a clone without the shared data still runs the tests that
need only some real digits (issue 6 §8)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Files only the developers' machines have: a user of the project must never be sent there.
OUTSIDE = re.compile(r"shared/docs|shared/seed|\bMETHOD\.md|\bBASELINES\.md|\bSTYLE\.md")


def _project_texts() -> dict[str, str]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for folder in ("iaead_core", "app", "benchmarks", "scripts"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return {str(f.relative_to(ROOT)): f.read_text(encoding="utf-8") for f in files}


def test_no_pointer_to_files_outside_the_project():
    hits = [f"{name}: {m.group(0)}" for name, text in _project_texts().items()
            for m in OUTSIDE.finditer(text)]
    assert hits == []
    for command in (["--help"], ["train", "--help"], ["experiment", "run", "--help"]):
        out = subprocess.run([sys.executable, "-m", "iaead_core", *command], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and not OUTSIDE.search(out.stdout), (command, out.stdout)


def test_the_method_is_documented_in_the_project():
    method = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    # the objective and its parts, with the paper's equation numbers, and the sources
    for needle in ("(eq. 4–5)", "(eq. 6–8)", "(eq. 9)", "## 10. Sources", "doi:"):
        assert needle in method, needle
    assert "docs/method.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_gives_the_ci_test_command_with_its_needs_and_duration():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = [line for line in ci.splitlines() if "pytest" in line and not line.startswith("#")]
    assert len(command) == 1 and command[0] in readme  # the two stay in sync
    section = readme[readme.index(command[0]):][:2500]
    for need in ("Python 3.11", "requirements-dev.txt", "../shared/data", "/usr/bin/chromium",
                 "minutes of pytest", "mnist-5k"):
        assert need in section, need


def test_a_clone_without_the_shared_data_falls_back_to_mnist_5k(tmp_path):
    """A test that needs only some real digits runs on the embedded mnist-5k; one that needs
    the full sets is skipped, with its reason, in the summary."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "IAEAD_DATA_ROOT")}
    env["IAEAD_TEST_DATA_ROOT"] = str(tmp_path / "no-data")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_data.py::test_summary_is_json", "tests/test_data.py::test_mnist_pool_and_pixels"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 1 skipped" in out.stdout
    assert "SKIPPED" in out.stdout and "needs the full MNIST / Fashion-MNIST files" in out.stdout


# --- layering (issue 15): the core's imports, top-level and function-level, read with ast ---

#: The core's layers, lowest first (iaead_core/__init__.py's docstring states the same).
#: A module may import from its own layer and the layers below; never from above.
LAYERS: dict[str, int] = {
    "_version": 0, "numbers": 0, "catalog": 0, "storage": 0,
    "data": 1,
    "config": 2,
    "methods": 3,
    "evaluation": 4,
    "runs": 5,
    "training": 6,
    "experiments": 7,
    "detector": 8,
    "cli": 9,
    "__main__": 10, "": 10,  # the package's own __init__ is the public facade, on top
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_edges(root: Path) -> dict[str, set[str]]:
    """Module → the project modules it imports anywhere in its body (function-level too)."""
    package = root.name
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    here = here[:len(here) - node.level + 1]
                    base = ".".join(here + ([node.module] if node.module else []))
                # `from pkg import submodule` imports the submodule
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            for t in targets:
                if t == package or t.startswith(package + "."):
                    while t not in files:  # `import pkg.mod.name` → the module
                        t = t.rsplit(".", 1)[0]
                    if t != mod:
                        edges[mod].add(t)
    return edges


def layer_of(mod: str) -> int:
    parts = mod.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else ""]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
                  for a, bs in edges.items() for b in bs if layer_of(b) > layer_of(a))


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


CORE = ROOT / "iaead_core"


def test_the_core_has_no_import_cycle_and_no_import_from_a_higher_layer():
    edges = import_edges(CORE)
    assert set(LAYERS) >= {m.split(".")[1] for m in edges if "." in m}  # every module has a layer
    assert {"upward": upward_imports(edges), "cycles": import_cycles(edges)} == {
        "upward": [], "cycles": []}


def test_the_layering_check_finds_a_planted_cycle_and_an_upward_import(tmp_path):
    pkg = tmp_path / "iaead_core"
    for name, text in {
        "__init__.py": "",
        "data/__init__.py": "from iaead_core.data.sets import X\n",
        "data/sets.py": "X = 1\n\ndef f():\n    from iaead_core.config import Y  # lazy\n",
        "config.py": "from iaead_core.data import X\nY = 2\n",
        "runs.py": "from iaead_core import config\n",
    }.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    edges = import_edges(pkg)
    assert edges["iaead_core.runs"] == {"iaead_core.config"}  # `from pkg import module`
    assert upward_imports(edges) == [
        "iaead_core.data.sets (layer 1) imports iaead_core.config (layer 2)"]
    assert import_cycles(edges) == [["iaead_core.config", "iaead_core.data", "iaead_core.data.sets"]]


def test_every_function_level_import_of_the_core_says_why():
    """Lazy imports stay only for heavy or optional dependencies, each with its reason."""
    bare = []
    for path in sorted(CORE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if (isinstance(node, ast.ImportFrom) and node.col_offset and node.module
                    and node.module.startswith("iaead_core")
                    and "#" not in lines[node.end_lineno - 1]):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []
