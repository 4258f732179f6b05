"""Every page of the lab through streamlit.testing.v1.AppTest: renders, starts and stops jobs,
shows bad input in words. Trainings use the embedded mnist-5k (about 550 images per set)."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from app import state  # noqa: E402
from app.jobs import JobRegistry  # noqa: E402
from iaead_core.analysis import scaled_config  # noqa: E402

PAGES = ROOT / "app" / "pages"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A fresh runs root (so a fresh registry); its jobs are stopped afterwards."""
    d = tmp_path / "runs"
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(d))
    yield d
    reg = state._registry(str(d.resolve()))
    reg.shutdown()


def page(name: str) -> AppTest:
    """An AppTest of one page, generous timeout (the first run imports torch)."""
    return AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120)


def texts(at: AppTest, kind: str) -> list[str]:
    """Text of every element of a kind (error, info, markdown, ...)."""
    return [e.value for e in getattr(at, kind)]


def progress_texts(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def wait_for(at: AppTest, pred, timeout: float = 90.0) -> AppTest:
    """Re-run the page (as the polling fragment would) until ``pred(at)`` holds."""
    end = time.time() + timeout
    while True:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if pred(at):
            return at
        if time.time() > end:
            raise AssertionError(f"page never reached the state; progress: {progress_texts(at)}")
        time.sleep(0.5)


def registry(runs_dir: Path) -> JobRegistry:
    return state._registry(str(runs_dir.resolve()))


def train_small(runs_dir: Path, methods=("iaead", "cae"), epochs: int = 2) -> str:
    """Run a finished comparison on mnist-5k straight through the registry; its group id."""
    reg = registry(runs_dir)
    cfgs = [scaled_config("quick", m, epochs, dataset="mnist-5k", normal_class=0, device="cpu")
            for m in methods]
    g = reg.submit_group(cfgs, "compare")
    end = time.time() + 120
    while reg.group_active(g):
        assert time.time() < end, "training did not finish"
        time.sleep(0.2)
    return g


@pytest.mark.parametrize("name", ["train", "latent", "sensitivity", "runs"])
def test_page_renders_empty(runs_dir, name):
    at = page(name).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value in {"Train", "Latent space", "λ sensitivity", "Runs"}


def test_main_navigation_renders(runs_dir):
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "Train"  # the default page


def test_train_start_shows_progress_then_stop(runs_dir):
    at = page("train").run()
    at.selectbox(key="train_ds").set_value("mnist-5k")
    at.multiselect(key="train_methods").set_value(["iaead", "cae"])
    at.number_input(key="train_epochs_quick").set_value(300)
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Oracle monitoring" in t for t in texts(at, "info"))
    group = at.session_state["train_group"]
    at = wait_for(at, lambda a: any(re.search(r"epoch ([2-9]|\d\d+)/300", t) for t in progress_texts(a)))
    assert any("waiting in the queue (place 1)" in t for t in progress_texts(at))  # CAE waits
    assert len(at.get("plotly_chart")) == 2  # AUROC and loss charts
    # a rerun or a second tab pressing Start again does not duplicate the comparison
    at.button(key="train_start").click().run()
    assert at.session_state["train_group"] == group
    assert len(registry(runs_dir).jobs()) == 2
    at.button(key="train_stop").click().run()
    reg = registry(runs_dir)
    end = time.time() + 30
    while reg.group_active(group):
        assert time.time() < end
        time.sleep(0.2)
    jobs = reg.jobs(group)
    assert [j.status for j in jobs] == ["stopped", "stopped"]
    assert 2 <= len(jobs[0].records) < 300 and jobs[1].records == []
    at.run()
    assert any("stopped after" in t for t in progress_texts(at))


def test_train_runs_to_the_end_with_final_table(runs_dir):
    at = page("train").run()
    at.selectbox(key="train_ds").set_value("mnist-5k")
    at.multiselect(key="train_methods").set_value(["iaead"])
    at.number_input(key="train_epochs_quick").set_value(2)
    at.button(key="train_start").click().run()
    at = wait_for(at, lambda a: any("completed after 2/2" in t for t in progress_texts(a)))
    table = at.dataframe[0].value
    assert set(table["rule"]) == {"distance to mean latent", "distance to c", "reconstruction error"}
    assert table["auroc"].between(0, 1).all()
    assert "Final metrics" in [s.value for s in at.subheader]


@pytest.mark.parametrize("setup, expected", [
    (lambda at: at.multiselect(key="train_methods").set_value([]), "Choose at least one method"),
    (lambda at: at.selectbox(key="train_device").set_value("cuda"), "not available here"),
])
def test_train_bad_input_is_shown(runs_dir, setup, expected):
    import torch

    if "cuda" in expected and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    at = page("train").run()
    setup(at)
    at.button(key="train_start").click().run()
    assert any(expected in t for t in texts(at, "error")), texts(at, "error")
    assert registry(runs_dir).jobs() == []


def test_missing_data_set_says_what_to_download(runs_dir, tmp_data_root, monkeypatch):
    def offline(dataset, root):  # tests never download: behave as a machine without network
        raise OSError("no network")

    monkeypatch.setattr("iaead_core.data._download", offline)
    at = page("train").run()
    assert at.selectbox(key="train_ds").value == "mnist-5k"  # offline default when MNIST is absent
    at.selectbox(key="train_ds").set_value("mnist").run()
    at.multiselect(key="train_methods").set_value(["iaead"])
    at.button(key="train_start").click().run()
    # The worker tries to download (offline here), then says what to get and where.
    wait_for(at, lambda a: any("MNIST/raw" in t for t in texts(a, "error")), timeout=60)
    err = " ".join(texts(at, "error"))
    assert "download failed" in err and "train-images-idx3-ubyte" in err and str(tmp_data_root) in err
    [offline] = [b for b in at.button if b.label.startswith("Use the offline default")]
    offline.click().run()
    assert at.selectbox(key="train_ds").value == "mnist-5k"
    jobs = registry(runs_dir).jobs()
    assert [(j.status, j.error_kind) for j in jobs] == [("failed", "data")]
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no folder for a run never started


def test_sensitivity_bad_grid_and_a_small_sweep(runs_dir):
    at = page("sensitivity").run()
    at.text_input(key="sens_grid").set_value("0, five").run()
    assert any("'five' in the λ grid is not a number" in t for t in texts(at, "error"))
    at.button(key="sens_start").click().run()
    assert any("Fix the λ grid" in t for t in texts(at, "error"))
    assert registry(runs_dir).jobs() == []
    at.selectbox(key="sens_ds").set_value("mnist-5k")
    at.text_input(key="sens_grid").set_value("0, 50")
    at.number_input(key="sens_epochs_quick").set_value(2)
    at.button(key="sens_start").click().run()
    at = wait_for(at, lambda a: any("2 of 2 runs finished" in t for t in progress_texts(a)))
    table = at.dataframe[0].value
    assert table["lam"].tolist() == ["0", "50"]
    assert table["collapsed"].tolist()[-1]  # λ = 50 collapses the latent space
    assert table["AUROC mean"].iloc[-1] == pytest.approx(0.5)


def test_latent_and_runs_pages_show_saved_runs(runs_dir):
    train_small(runs_dir)
    at = page("latent").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.subheader][:2] == ["IAEAD", "CAE"]
    assert len(at.get("plotly_chart")) == 4  # a projection and a hypersphere view per run
    assert len(at.get("image")) == 6  # most anomalous, most normal, reconstructions × 2 runs
    at.radio(key="latent_view").set_value("pca").run()
    assert not at.exception
    assert not any("UMAP is computing" in t for t in texts(at, "info"))

    at = page("runs").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["method"]) == ["cae", "iaead"]
    assert set(table["status"]) == {"completed"}
    assert len(at.get("plotly_chart")) == 1
    # delete with confirmation
    victim = table["run_id"].iloc[0]
    at.multiselect(key="runs_delete").set_value([victim]).run()
    at.checkbox(key="runs_confirm").check().run()
    at.button(key="runs_do_delete").click().run()
    assert not at.exception
    assert not (runs_dir / victim).exists()
    assert len(list(runs_dir.iterdir())) == 1


def test_settings_survive_a_page_switch(runs_dir):
    """A lecturer sets λ and ρ, looks at the Latent page, comes back: the settings are kept."""
    at = AppTest.from_file(str(PAGES.parent / "main.py"), default_timeout=120).run()
    at.select_slider(key="train_lam").set_value(50.0)
    at.select_slider(key="train_rho").set_value(20)
    at.number_input(key="train_seed").set_value(7).run()
    at.switch_page("pages/latent.py").run()
    assert not at.exception
    at.switch_page("pages/train.py").run()
    assert not at.exception and not at.warning
    assert at.select_slider(key="train_lam").value == 50.0
    assert at.select_slider(key="train_rho").value == 20
    assert at.number_input(key="train_seed").value == 7
