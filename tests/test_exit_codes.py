"""Raw tracebacks become documented exit codes with a message that names the field, the file or
the limit (issue 18 §12). A read-only runs or experiments folder (exit status 5) is in
tests/test_storage.py; `score` on a run whose "data" is a string in tests/test_run_folders.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iaead_core.cli.main import main  # noqa: E402

TINY = ('name = "tiny"\ndatasets = ["digits"]\nclasses = [0]\nmethods = ["iaead"]\n'
        '[config]\nepochs = "x"\n')


def test_a_diverged_run_exits_4(tmp_path, capsys):
    """Before: main looked the engine up as `iaead_core.cli.engine`, so the diverged run gave
    a traceback (exit status 1) instead of exit status 4."""
    code = main(["train", "--seeds", "1", "--dataset", "digits", "--epochs", "3", "--warmup-epochs", "1",
                 "--width", "8", "--latent-dim", "16", "--lr", "1e30", "--device", "cpu",
                 "--no-download", "--out", str(tmp_path), "--json"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "training diverged" in err and "try a smaller" in err
    (run_dir,) = list(tmp_path.iterdir())
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("text, needle", [
    (TINY, '[config] epochs: epochs must be a whole number in [1, 10000]; got \'x\' (a str)'),
    (TINY.replace('[config]\nepochs = "x"', '[axes]\nwidth = ["w"]'),
     "[axes] width: width must be a whole number in [1, 512]; got 'w' (a str)"),
    (TINY.replace('[config]\nepochs = "x"', 'rho = ["a lot"]'),
     "axis 'rho': rho must be a finite number in (0, 0.5); got 'a lot' (a str)"),
])
def test_a_spec_value_of_the_wrong_type_exits_2_naming_it(text, needle, tmp_path, capsys):
    """Before: `[config] epochs = "x"` failed in arithmetic with a TypeError traceback."""
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    code = main(["experiment", "run", str(spec), "--dry-run", "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err


def test_a_json_spec_that_is_not_an_object_exits_2(tmp_path, capsys):
    """Before: a JSON spec that is a list gave an AttributeError traceback."""
    spec = tmp_path / "spec.json"
    spec.write_text("[1, 2]")
    assert main(["experiment", "run", str(spec), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{spec} is not a spec: it holds a list, not a table of axes" in err


def test_a_huge_width_is_refused_at_once(tmp_path):
    """Before: `--width 100000` tried to allocate 720 GB and ended in a traceback."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "iaead_core", "train", "--seeds", "1", "--dataset", "digits",
                           "--width", "100000", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "width must be a whole number in [1, 512]; got 100000 (option --width)" in proc.stderr
    assert "Traceback" not in proc.stderr and time.time() - t0 < 60
    assert list(tmp_path.iterdir()) == []


def test_a_spec_value_of_the_wrong_type_in_the_lab_is_said_in_words(tmp_path, monkeypatch):
    """Before: the Experiments page showed the TypeError traceback of `epochs = "x"`."""
    from streamlit.testing.v1 import AppTest

    from app import state

    runs = tmp_path / "runs"
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(runs))
    monkeypatch.setenv("IAEAD_EXPERIMENTS_DIR", str(tmp_path / "experiments"))
    try:
        at = AppTest.from_file(str(ROOT / "app" / "pages" / "experiments.py"),
                               default_timeout=120).run()
        at.selectbox(key="exp_base").set_value("custom").run()
        at.text_area(key="exp_more").set_value('[config]\nepochs = "x"').run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("This spec cannot run" in e.value and "epochs must be a whole number" in e.value
                   for e in at.error), [e.value for e in at.error]
    finally:
        state._registry(str(runs.resolve())).shutdown()
