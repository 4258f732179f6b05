"""The project stands alone: its documentation is its own, the README's test command is the one
CI runs and says what it needs, and a clone without the shared data still runs the tests that
need only some real digits (issue 6 §8)."""

from __future__ import annotations

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
