"""What a change of the code's layout keeps (issue 15): the documented imports, the command
line, and the run and experiment folders that earlier versions wrote.

``tests/fixtures/old-main`` was written by the command line of the version before the layout
change, on the embedded ``digits`` set (so no data files are needed)::

    python -m iaead_core train --dataset digits --normal-class 0 --method iaead --preset quick \\
        --epochs 2 --warmup-epochs 1 --width 4 --latent-dim 8 --batch-size 32 --device cpu \\
        --seed 0 --out runs
    python -m iaead_core experiment run spec.json --out experiments --device cpu --stack off

(``spec.json``: a fig4-lambda sweep of IAEAD at λ ∈ {0, 0.5} on digits 0, same network.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
OLD = ROOT / "tests" / "fixtures" / "old-main"
sys.path.insert(0, str(ROOT))


@pytest.fixture
def old(tmp_path, monkeypatch) -> Path:
    """A writable copy of the old folders, and the lab pointed at them."""
    shutil.copytree(OLD, tmp_path / "old")
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(tmp_path / "old" / "runs"))
    monkeypatch.setenv("IAEAD_EXPERIMENTS_DIR", str(tmp_path / "old" / "experiments"))
    return tmp_path / "old"


def test_the_documented_imports_work():
    from iaead_core import Trainer, load_run, make_contaminated, preset_config, restore_run
    from iaead_core.detector import Detector
    from iaead_core.experiments import builtin_spec, plan_experiment, run_experiment, write_report

    assert callable(Trainer) and callable(load_run) and callable(restore_run)
    assert make_contaminated.__module__ == "iaead_core.data.contaminated"
    assert preset_config("quick").method == "iaead"
    assert Detector.__module__.startswith("iaead_core.detector")
    assert all(callable(f) for f in (builtin_spec, plan_experiment, run_experiment, write_report))


def test_an_old_run_folder_opens_and_its_weights_reproduce_its_scores(old):
    from iaead_core import list_runs, restore_run

    [run] = list_runs(old / "runs")
    assert run.live_status == "completed" and run.problem is None
    assert [r["epoch"] for r in run.records] == [1, 2] and run.snapshot_epochs() == [1, 2]
    method, data = restore_run(run)
    final = run.load_final()
    np.testing.assert_array_equal(final["is_anomaly"], data.is_anomaly)
    ev = method.evaluate(data.images, epoch=1)
    np.testing.assert_allclose(ev.scores["latent_mean"], final["score_latent_mean"],
                               rtol=1e-4, atol=1e-6)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iaead_core", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_command_line_reads_old_runs_and_experiments(old):
    runs = _cli("runs", "--out", str(old / "runs"), cwd=old)
    assert runs.returncode == 0, runs.stderr
    [run_id] = [p.name for p in (old / "runs").iterdir()]
    assert run_id in runs.stdout and "completed" in runs.stdout
    spec = old / "experiments" / "old-main-quick" / "spec.json"
    status = _cli("experiment", "status", str(spec), "--out", str(old / "experiments"), cwd=old)
    assert status.returncode == 0, status.stderr
    assert "2/2 completed" in status.stdout
    report = _cli("experiment", "report", str(spec), "--out", str(old / "experiments"), cwd=old)
    assert report.returncode == 0, report.stderr
    assert (old / "experiments" / "old-main-quick" / "report" / "table2.csv").exists()


def test_the_lab_shows_old_runs_and_experiments(old):
    from streamlit.testing.v1 import AppTest

    pages = ROOT / "app" / "pages"
    at = AppTest.from_file(str(pages / "runs.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert table["status"].tolist() == ["completed"] and table["method"].tolist() == ["IAEAD"]
    at = AppTest.from_file(str(pages / "latent.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    at = AppTest.from_file(str(pages / "experiments.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="exp_base").value == "old-main-quick"  # opened as the newest saved
    shown = " ".join(str(e.value) for kind in ("markdown", "caption", "info", "success")
                     for e in at.get(kind))
    assert "All 2 runs have completed." in shown  # its folder's runs, found by their ids
