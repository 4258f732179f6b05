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

import json  # noqa: E402
import shutil  # noqa: E402
import uuid  # noqa: E402

import numpy as np  # noqa: E402

from app.views import lambda_sweep as xlam  # noqa: E402
from app.views import experiment_progress as xprog  # noqa: E402
from app import state  # noqa: E402
from app.jobs import JobRegistry  # noqa: E402
from iaead_core.config import scaled_config  # noqa: E402
from iaead_core.data import make_contaminated  # noqa: E402
from iaead_core.evaluation.metrics import latent_diagnostics  # noqa: E402
from iaead_core.runs import RunWriter  # noqa: E402

PAGES = ROOT / "app" / "pages"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A fresh runs root (so a fresh registry); its jobs are stopped afterwards."""
    d = tmp_path / "runs"
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(d))
    monkeypatch.setenv("IAEAD_EXPERIMENTS_DIR", str(tmp_path / "experiments"))
    # The λ page's runs are an experiment's, which the registry stacks where the device
    # measures a speed-up; pinned to "no" (tests/test_app_jobs.py covers both).
    monkeypatch.setattr("iaead_core.training.stacked.stacking_pays", lambda *a, **k: False)
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
    wait_inactive(reg, g, 120)
    return g


def wait_inactive(reg, group: str, timeout: float = 30.0) -> None:
    """Wait until no job of ``group`` is queued or running (a stopped run ends after its batch)."""
    end = time.time() + timeout
    while reg.group_active(group):
        assert time.time() < end, f"{group} is still active after {timeout:g} s"
        time.sleep(0.2)


def degenerate(raw: float, share: float = 0.9) -> dict:
    """A metrics[rule] dict of scores that differ only by float noise (the core's contract)."""
    return {"auroc": 0.5, "aupr_in": share, "aupr_out": 1 - share, "degenerate": True,
            "raw": {"auroc": raw, "aupr_in": share + 0.01, "aupr_out": 1 - share + 0.01},
            "n_nonfinite": 0}


def healthy(auroc: float) -> dict:
    return {"auroc": auroc, "aupr_in": 0.95, "aupr_out": 0.5, "degenerate": False, "raw": None,
            "n_nonfinite": 0}


GROUP = "compare-20250101-120000-fake0001"


def fake_run(runs_dir: Path, method: str = "iaead", lam: float = 50.0, group: str = GROUP,
             kind: str = "compare", seed: int = 0, dataset: str = "digits",
             curves: dict | None = None, collapsed: bool = True, cfg=None,
             run_id: str | None = None) -> Path:
    """A finished run folder written by hand with known values, no training: three epochs
    (one warm-up) on the embedded digits; with ``collapsed`` every code is one point, the
    latent scores are float noise and their metrics degenerate (raw 0.699 / 0.193), with a
    "collapsed" alert. ``curves``: rule → three AUROC values (healthy metrics) instead.
    ``cfg`` / ``run_id``: an experiment's planned run (its config and folder name)."""
    cfg = cfg or scaled_config("quick", method, 3, dataset=dataset, normal_class=0, seed=seed,
                               device="cpu", extra={"group": group, "kind": kind},
                               **({"lam": lam} if method == "iaead" else {}))
    data = make_contaminated(dataset, 0, cfg.rho, seed=seed)
    n, rng = len(data.is_anomaly), np.random.default_rng(seed)
    c = np.full(cfg.latent_dim, 0.1, np.float32) if method == "iaead" else None
    z = (np.tile(c + np.float32(0.9), (n, 1)) if collapsed
         else rng.normal(size=(n, cfg.latent_dim)).astype(np.float32))
    scores = {"latent_mean": 1e-8 * rng.random(n) if collapsed else rng.random(n),
              "reconstruction": rng.random(n)}
    if c is not None:
        scores["latent_c"] = 7.2 + 1e-7 * rng.random(n) if collapsed else rng.random(n)
    primary = "latent_mean" if method == "iaead" else "reconstruction"
    meta = {"run_id": "", "config": cfg.to_dict(), "data": data.summary(), "seed": seed,
            "nu": cfg.resolved_nu, "lam": cfg.effective_lam, "created": 1735732800.0 + seed,
            "primary_score": primary}
    run_id = run_id or f"20250101-120000-{method}-{dataset}-0-s{seed}-{uuid.uuid4().hex[:4]}"
    w = RunWriter(runs_dir, run_id, {**meta, "run_id": run_id}, heartbeat_period=0)
    for e in (1, 2, 3):
        svdd_on = method == "iaead" and e > 1
        if curves:
            metrics = {rule: healthy(v[e - 1]) for rule, v in curves.items()}
        elif svdd_on and collapsed:
            metrics = {"latent_mean": degenerate(0.699), "latent_c": degenerate(0.193),
                       "reconstruction": healthy(0.81)}
        else:
            metrics = {rule: healthy(0.9) for rule in scores}
        w.append_record({
            "epoch": e, "epochs": 3, "phase": "svdd" if svdd_on else "warm-up", "lr": 0.1,
            "seconds": 0.1, "elapsed": 0.1 * e, "R": 7.2 if svdd_on else 0.0,
            "loss": {"total": 1.0, "reconstruction": 0.5, "svdd": 0.5 if svdd_on else None},
            "metrics": metrics, "diagnostics": latent_diagnostics(z, c if svdd_on else None),
            "primary_score": primary, "method": method,
            "alerts": ([{"kind": "collapsed", "message": "The codes' spread is 1e-07."}]
                       if svdd_on and collapsed else [])})
        w.save_snapshot(e, z, scores, c if svdd_on else None, 7.2 if svdd_on else 0.0)
    w.set_status("completed", epochs_done=3)
    w.close()
    return runs_dir / run_id


def figure(at: AppTest, i: int) -> dict:
    """The i-th plotly figure of the page, as its JSON."""
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def all_text(at: AppTest) -> str:
    """Every markdown, caption, alert and title text on the page, joined."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader")
    return "\n".join(e.value for k in kinds for e in getattr(at, k))


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
    at.number_input(key="train_seeds_quick").set_value(1)
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
    wait_inactive(reg, group)
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
    at.number_input(key="train_seeds_quick").set_value(1)
    at.button(key="train_start").click().run()
    at = wait_for(at, lambda a: any("completed after 2/2" in t for t in progress_texts(a)))
    assert len(at.dataframe) == 1  # one seed: no mean table
    table = at.dataframe[0].value
    assert set(table["score"]) == {"distance to mean latent (its own)", "distance to c",
                                   "reconstruction error"}
    assert table["AUROC"].str.slice(0, 5).astype(float).between(0, 1).all()
    assert set(table["λ"]) == {"5e-5"} and set(table["preset"]) == {"quick"}
    # the paper has no mnist-5k numbers, and the cell says so
    assert set(table["paper AUROC"]) <= {"— (Table 3 has none for this data set, class and method)", ""}
    assert "Final metrics" in [s.value for s in at.subheader]


def test_quick_comparison_trains_three_seeds_and_shows_their_mean(runs_dir):
    """Issue 19: at the quick preset each method trains with 3 seeds by default, and the table
    leads with the mean ± std over them (the runs' own values, averaged)."""
    at = page("train").run()
    assert at.number_input(key="train_seeds_quick").value == 3
    at.selectbox(key="train_ds").set_value("mnist-5k")
    at.multiselect(key="train_methods").set_value(["iaead"])
    at.number_input(key="train_epochs_quick").set_value(2)
    at.number_input(key="train_seed").set_value(4)
    at.button(key="train_start").click().run()
    done = lambda a: sum("completed after 2/2" in t for t in progress_texts(a)) == 3
    at = wait_for(at, done)
    jobs = registry(runs_dir).jobs(at.session_state["train_group"])
    assert [j.cfg.seed for j in jobs] == [4, 5, 6]
    own = [j.records[-1]["metrics"]["latent_mean"]["auroc"] for j in jobs]
    means, each = at.dataframe[0].value, at.dataframe[1].value
    row = means[means["score"] == "distance to mean latent (its own)"].iloc[0]
    assert row["AUROC"] == f"{np.mean(own):.3f} ± {np.std(own, ddof=1):.3f} (3 seeds)"
    assert row["method"] == "IAEAD" and row["seeds"] == "4, 5, 6"
    assert sorted(set(each["run"])) == ["IAEAD · seed 4", "IAEAD · seed 5", "IAEAD · seed 6"]
    assert any("seeds 4, 5, 6" in t for t in texts(at, "markdown"))
    latent = page("latent").run()  # each seed's run is offered by its own name
    assert not latent.exception, [e.value for e in latent.exception]
    picker = next(w for w in latent.multiselect if w.label == "Runs side by side")
    assert {"IAEAD · seed 4", "IAEAD · seed 5", "IAEAD · seed 6"} <= set(picker.options)


def test_eight_methods_compare_live_on_one_draw(runs_dir):
    """Issue 7: every registered method can join one comparison; each gets its live curve and
    its row in the final table, under its own title."""
    from iaead_core.evaluation.analysis import METHOD_TITLES
    from iaead_core.config import METHOD_NAMES

    at = page("train").run()
    assert at.multiselect(key="train_methods").options == [METHOD_TITLES[m] for m in METHOD_NAMES]
    at.selectbox(key="train_ds").set_value("mnist-5k")
    at.multiselect(key="train_methods").set_value(list(METHOD_NAMES))
    at.number_input(key="train_epochs_quick").set_value(2)
    at.number_input(key="train_max_quick").set_value(400)
    at.number_input(key="train_seeds_quick").set_value(1)
    at.button(key="train_start").click().run()
    done = lambda a: sum("completed after 2/2" in t for t in progress_texts(a)) == len(METHOD_NAMES)
    at = wait_for(at, done, timeout=300)
    curves = at.get("plotly_chart")[0].proto.spec
    for m in METHOD_NAMES:  # a live AUROC curve per method, named by its title
        assert METHOD_TITLES[m] in curves, m
    table = at.dataframe[0].value
    assert table["AUROC"].str.slice(0, 5).astype(float).between(0, 1).all()
    assert len(table) >= len(METHOD_NAMES)

    latent = page("latent").run()  # one latent map per method, whatever its code
    assert not latent.exception, [e.value for e in latent.exception]
    picker = next(w for w in latent.multiselect if w.label == "Runs side by side")
    picker.set_value(list(picker.options)).run()  # the page shows three at first; ask for all
    assert not latent.exception, [e.value for e in latent.exception]
    assert [s.value for s in latent.subheader][:len(METHOD_NAMES)] == [METHOD_TITLES[m] for m in METHOD_NAMES]
    runs = page("runs").run()
    assert not runs.exception, [e.value for e in runs.exception]
    assert sorted(runs.dataframe[0].value["method"]) == sorted(METHOD_TITLES[m] for m in METHOD_NAMES)


def test_queue_shows_lambda_in_the_one_format(runs_dir):
    """§4: the job queue writes λ as 5e-5 (it wrote 5e-05)."""
    reg = registry(runs_dir)
    g = reg.submit_group([scaled_config("quick", "iaead", 300, dataset="digits", device="cpu")], "compare")
    try:
        at = page("train").run()
        text = " ".join(e.value for e in at.markdown)
        assert "λ=5e-5" in text and "5e-05" not in text
    finally:
        reg.stop_group(g)


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


@pytest.mark.parametrize("dataset, folder, file", [
    ("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
    ("cifar10", "cifar-10-batches-py", "data_batch_1"),
    ("svhn", "SVHN", "train_32x32.mat"),
])
def test_missing_data_set_says_what_to_download(runs_dir, tmp_data_root, monkeypatch, dataset,
                                                 folder, file):
    def offline(dataset, root):  # tests never download: behave as a machine without network
        raise OSError("no network")

    monkeypatch.setattr("iaead_core.data.benchmarks._download", offline)
    at = page("train").run()
    assert at.selectbox(key="train_ds").value == "mnist-5k"  # offline default when MNIST is absent
    at.selectbox(key="train_ds").set_value(dataset).run()
    at.multiselect(key="train_methods").set_value(["iaead"])
    at.number_input(key="train_seeds_quick").set_value(1)
    at.button(key="train_start").click().run()
    # The worker tries to download (offline here), then says what to get and where.
    wait_for(at, lambda a: any(folder in t for t in texts(a, "error")), timeout=60)
    err = " ".join(texts(at, "error"))
    assert "download failed" in err and file in err and str(tmp_data_root) in err
    [offline] = [b for b in at.button if b.label.startswith("Use the offline default")]
    offline.click().run()
    assert at.selectbox(key="train_ds").value == "mnist-5k"
    jobs = registry(runs_dir).jobs()
    assert [(j.status, j.error_kind) for j in jobs] == [("failed", "data")]
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no folder for a run never started


def test_sensitivity_bad_grid_and_a_small_sweep(runs_dir, tmp_path):
    at = page("sensitivity").run()
    at.text_input(key="sens_grid").set_value("0, five").run()
    assert any("'five' in the λ grid is not a number" in t for t in texts(at, "error"))
    at.button(key="sens_start").click().run()
    assert any("fix the settings first" in t for t in texts(at, "error"))
    assert registry(runs_dir).jobs() == []
    at.selectbox(key="sens_ds").set_value("mnist-5k")
    at.text_input(key="sens_grid").set_value("0, 50")
    at.number_input(key="sens_epochs_quick").set_value(2)
    at.number_input(key="sens_seeds").set_value(1)  # quick sweeps default to 3 seeds
    at.button(key="sens_start").click().run()
    at = wait_for(at, lambda a: any("2 of 2 runs finished" in t for t in progress_texts(a)))
    table = at.dataframe[0].value
    assert table["λ"].tolist() == ["0", "50"]
    assert table["collapsed"].tolist()[-1]  # λ = 50 collapses the latent space
    # Whether its codes coincide to the last bit (scores of pure float noise: degenerate,
    # hence exactly chance) or shrink onto a tiny line (a measured AUROC) depends on the CPU's
    # float rounding; either way the table, its raw column and the summary say the same.
    degenerate = table["degenerate"].tolist()
    assert degenerate[0] is False and table["raw"].iloc[0] == ""
    text = all_text(at)
    assert "Measured in this sweep." in text
    if degenerate[-1]:
        assert table["AUROC mean"].iloc[-1] == 0.5 and table["raw"].iloc[-1] != ""
        assert "at λ = 50 (degenerate, collapsed)" in text
    else:
        assert table["raw"].iloc[-1] == "" and "at λ = 50 (collapsed)" in text
    # The sweep is an experiment of kind fig4-lambda: its runs are in its folder under their
    # content-hash ids, and starting again queues nothing.
    folder = tmp_path / "experiments" / "fig4-lambda-quick"
    spec = json.loads((folder / "spec.json").read_text())
    assert spec["kind"] == "fig4-lambda" and spec["lam"] == [0.0, 50.0]
    assert sorted(d.name.split("-")[0] for d in (folder / "runs").iterdir()) == ["iaead", "iaead"]
    at.button(key="sens_start").click().run()
    assert any("nothing to queue" in t for t in texts(at, "success"))


def test_lambda_page_two_tabs_each_say_who_stopped_the_sweep(runs_dir):
    """Walk 5: tab 2, whose grid is shorter, stops the run tab 1 added; tab 2 says it stopped
    the sweep, tab 1 says another tab did (neither is left with only "queued 1 run(s)")."""
    a = page("sensitivity").run()
    a.selectbox(key="sens_ds").set_value("mnist-5k")
    a.text_input(key="sens_grid").set_value("0, 50")
    a.number_input(key="sens_epochs_quick").set_value(300)
    a.button(key="sens_start").click().run()
    reg = registry(runs_dir)
    group = "experiment-fig4-lambda-quick"
    assert reg.group_active(group)
    b = page("sensitivity").run()
    b.selectbox(key="sens_ds").set_value("mnist-5k")
    b.text_input(key="sens_grid").set_value("0")
    b.number_input(key="sens_epochs_quick").set_value(300)
    b.run()
    assert any("outside the settings on the left" in t for t in texts(b, "info"))
    b.button(key="sens_stop").click().run()
    b.button(key="sens_stop_yes").click().run()
    wait_inactive(reg, group)
    b.run()
    assert any(": the sweep was stopped." in t for t in texts(b, "info")), texts(b, "info")
    a.run()
    assert any(re.search(r"The sweep was stopped by another browser tab at \d\d:\d\d:\d\d, "
                         r"not by this tab", t) for t in texts(a, "info")), texts(a, "info")


def test_latent_and_runs_pages_show_saved_runs(runs_dir):
    train_small(runs_dir)
    at = page("latent").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.subheader][:2] == ["IAEAD", "CAE"]
    assert len(at.get("plotly_chart")) == 4  # a projection and a hypersphere view per run
    # per run: most anomalous and most normal, originals and reconstructions, each row labelled
    assert len(at.get("image")) == 8
    labels = [m.value for m in at.markdown if "originals" in m.value or "reconstructions" in m.value]
    assert labels[:4] == ["**IAEAD · most anomalous — originals**",
                          "**IAEAD · most anomalous — reconstructions**",
                          "**IAEAD · most normal — originals**",
                          "**IAEAD · most normal — reconstructions**"]
    # the diagnostics are written out in full (no metric labels cut off in narrow columns)
    assert not at.get("metric")
    assert any("effective rank" in m.value and "dead dimensions" in m.value for m in at.markdown)
    at.radio(key="latent_view").set_value("pca").run()
    assert not at.exception
    assert not any("UMAP is computing" in t for t in texts(at, "info"))

    at = page("runs").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["method"]) == ["CAE", "IAEAD"]  # as every other page writes them
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


# ------------------------------------------------------------------ issue 6: the lab's truth
# Hand-made run folders (fake_run) carry known values, so these tests are fast and exact.

def test_degenerate_run_is_shown_as_such_on_every_page(runs_dir):
    """§1/§3/§4: a collapsed λ = 50 run with degenerate latent scores (raw 0.699)."""
    fake_run(runs_dir)
    at = page("train").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    own = table[table["score"] == "distance to mean latent (its own)"].iloc[0]
    assert own["AUROC"] == "0.500 — degenerate (raw 0.699)"
    assert own["λ"] == "50" and own["ν"] == "1" and own["preset"] == "quick" and own["init"] == "released"
    # no paper value, with the reason (λ = 50 on MNIST: test_app_jobs::test_paper_value_only…)
    assert own["paper AUROC"] == "— (Table 3 has none for this data set, class and method)"
    assert table[table["score"] == "reconstruction error"].iloc[0]["AUROC"] == "0.810"
    text = all_text(at)
    assert "IAEAD **λ = 50**, **ν = 1** · preset **quick** · init released" in text
    assert "The codes' spread is 1e-07." in text  # the alert, under the charts
    [picker] = [b for b in at.selectbox if b.label == "Comparison shown"]
    assert "λ = 50 · ν = 1 · quick · " in picker.options[0] and " · init released" in picker.options[0]
    names = [t.get("name") for t in figure(at, 0)["data"]]
    assert any(n and n.startswith("degenerate") for n in names)

    at = page("latent").run()
    assert not at.exception, [e.value for e in at.exception]
    text = all_text(at)
    assert ("Score: **distance to mean latent** · AUROC **0.500 — degenerate (scores differ only "
            "by float noise; raw 0.699)**") in text
    [box] = [e.value for e in at.error]
    assert box.startswith("**Feature collapse.**")
    assert "every image is at distance to the mean latent code" in box  # the histogram's quantity
    assert "reported as 0.500 (chance)" in box and "0.699" in box
    assert any("The codes' spread is 1e-07." in w.value for w in at.warning)
    sphere = figure(at, 1)
    assert [t["type"] for t in sphere["data"]] == ["bar", "bar"]  # one bar, not a blank histogram
    assert sphere["layout"]["xaxis"]["title"]["text"] == "distance to the mean latent code"
    assert sum(t["y"][0] for t in sphere["data"]) == len(make_contaminated("digits", 0, 0.1).is_anomaly)
    at.radio(key="latent_hist").set_value("c").run()
    # The box keeps explaining the headline's AUROC from the headline's own score (a walk
    # found it explaining one score with the range of another); the histogram switches to the
    # hypersphere view, one bar at distance 7.2 from c, with R named (a category axis has no
    # place for R's line).
    assert at.error[0].value == box
    sphere = figure(at, 1)
    assert sphere["layout"]["xaxis"]["title"]["text"] == "distance to c (R = 7.2)"
    assert sphere["data"][0]["x"][0].startswith("7.2")

    at = page("runs").run()
    assert not at.exception
    table = at.dataframe[0].value
    row = table.iloc[0]
    assert (row["lam"], row["nu"], row["preset"], row["init"], row["degenerate"]) == ("50", "1", "quick", "released", True)
    cols = list(table.columns)
    assert cols.index("auroc") < 8 and cols.index("run_id") > cols.index("auroc")  # on screen
    [r] = state.run_index().rows()
    assert r["auroc"] == 0.5 and r["degenerate"] is True and r["auroc_raw"] == 0.699  # the CSV's
    # A CAE beside it: ν is "—" (it ignores ν), never "nan" (walk 4: pandas had turned the
    # missing ν into NaN once a run with a ν was in the same column).
    fake_run(runs_dir, method="cae", collapsed=False)
    cae = page("runs").run().dataframe[0].value
    assert list(cae.sort_values("method")["nu"]) == ["—", "1"]


def test_lambda_sweep_marks_degenerate_points_with_readable_axis(runs_dir, tmp_path):
    """§1/§4/§5: the sweep table and chart mark the degenerate point; the log axis says so
    and writes λ like everywhere else (no "10µ"). The runs are those of the fig4-lambda
    experiment the page's settings describe, wherever they were trained (here: by hand)."""
    spec = xlam.lambda_spec("digits", [0], 0.1, 1, [0.0, 5e-6, 50.0], "quick", epochs=3)
    plan = xprog.ExperimentWatch().plan(spec, tmp_path / "experiments")
    curves = {0.0: [0.9, 0.92, 0.95], 5e-6: [0.9, 0.92, 0.94]}
    for p in plan.runs:
        lam = p.config.lam
        fake_run(plan.folder.runs_dir, lam=lam, cfg=p.config, run_id=p.run_id,
                 collapsed=lam not in curves, curves={"latent_mean": curves[lam],
                                                      "reconstruction": [0.6] * 3} if lam in curves else None)
    at = page("sensitivity")
    at.session_state["sens_ds"] = "digits"
    at.session_state["sens_grid"] = "0, 5e-6, 50"
    at.session_state["sens_epochs_quick"] = 3
    at.session_state["sens_seeds"] = 1  # the plan above: one seed (quick sweeps default to 3)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert table["λ"].tolist() == ["0", "5e-6", "50"]
    assert table["degenerate"].tolist() == [False, False, True]
    assert table["raw"].tolist() == ["", "", "0.699"]
    text = all_text(at)
    assert ("highest AUROC 0.950 at λ = 0, lowest 0.500 at λ = 50 (degenerate, collapsed)") in text
    assert "3 of 3 runs finished" in progress_texts(at)[-1]
    fig = figure(at, 0)
    assert fig["layout"]["xaxis2"]["title"]["text"] == "λ (log scale)"
    assert fig["layout"]["xaxis2"]["ticktext"] == ["1e-6", "1e-4", "0.01", "1", "100"]
    assert "µ" not in json.dumps(fig, ensure_ascii=False)
    assert at.select_slider(key="sens_rho").value == 10


def test_lambda_page_and_readme_type_no_measured_numbers(runs_dir):
    """§3: the λ curve as measured is drawn from runs, never typed into the page or README."""
    # the typed claims of issue 6: "exactly 0.5 at λ = 50", "about 0.6", "(…, AUROC 0.5)"
    claim = re.compile(r"(exactly|about|near|≈|falls to|drops to|stays)\s+(near\s+)?\d\.\d|"
                       r"\d\.\d+\s+at λ|AUROC\s+\d\.\d+\)")
    at = page("sensitivity").run()
    assert not claim.search(all_text(at)), all_text(at)
    readme = (ROOT / "README.md").read_text()
    lab = readme[readme.index("## The lab"):readme.index("## Command line")]
    assert not claim.search(lab), claim.findall(lab)


def test_sidebar_follows_the_comparison_after_a_reload(runs_dir):
    """§4: a new session (a reload) starts with the settings of the comparison on screen, and
    says when the sidebar has been changed away from them."""
    fake_run(runs_dir, seed=3)
    at = page("train").run()  # a fresh session: what a reload gives
    assert at.select_slider(key="train_lam").value == 50.0
    assert at.number_input(key="train_seed").value == 3
    assert at.selectbox(key="train_ds").value == "digits"
    assert not at.info or not any("differs" in i.value for i in at.info)
    at.select_slider(key="train_lam").set_value(5e-5).run()
    [note] = [i.value for i in at.info if "differs" in i.value]
    assert "λ: sidebar 5e-5, shown 50" in note
    at.button(key="train_adopt").click().run()
    assert at.select_slider(key="train_lam").value == 50.0
    assert not any("differs" in i.value for i in at.info)


def test_coinciding_curves_stay_visible_and_are_explained(runs_dir):
    """§5: IAEAD's and CAE's latent curves coincide: both drawn visibly, one sentence says
    what it means, with the numbers of these runs."""
    fake_run(runs_dir, collapsed=False, lam=5e-5,
             curves={"latent_mean": [0.90, 0.93, 0.950], "reconstruction": [0.6, 0.6, 0.6]})
    fake_run(runs_dir, method="cae", collapsed=False,
             curves={"latent_mean": [0.90, 0.931, 0.948], "reconstruction": [0.6, 0.61, 0.62]})
    at = page("train").run()
    assert not at.exception, [e.value for e in at.exception]
    text = all_text(at)
    assert "curves coincide (they differ by at most 0.002)" in text
    assert "most of the gain over reconstruction (CAE's reconstruction error 0.620 → IAEAD 0.950)" in text
    lines = [t for t in figure(at, 0)["data"]
             if (t.get("name") or "").startswith("distance to mean latent")]
    assert len(lines) == 2 and lines[0]["line"]["width"] > lines[1]["line"]["width"]
    # the legend marks each method's own score (issue 17 §4): IAEAD's is this rule
    own = [t["legendgroup"] for t in lines if t["name"] == "distance to mean latent · own score"]
    assert own == ["IAEAD"]
    assert lines[0]["marker"]["symbol"] != lines[1]["marker"]["symbol"]
    r_panel = [t for t in figure(at, 1)["data"] if t.get("xaxis") == "x3"]
    assert [t["name"] for t in r_panel] == ["IAEAD"]  # CAE has no R


def test_deleted_runs_leave_no_traceback_and_no_stale_comparison(runs_dir):
    """§6: a run folder deleted behind a page's back (another tab, by hand): the Latent page
    says so instead of a RunError traceback; once the whole comparison is gone, the Train
    page no longer offers it."""
    g = train_small(runs_dir)
    latent = page("latent").run()
    assert [s.value for s in latent.subheader][:2] == ["IAEAD", "CAE"]
    jobs = registry(runs_dir).jobs(g)
    shutil.rmtree(jobs[0].run_dir)
    latent.run()
    assert not latent.exception, [e.value for e in latent.exception]
    assert any("IAEAD" in i.value and "deleted" in i.value for i in latent.info), all_text(latent)
    assert [s.value for s in latent.subheader][0] == "CAE"
    shutil.rmtree(jobs[1].run_dir)
    latent.run()
    assert not latent.exception
    train = page("train").run()
    assert not train.exception
    assert not [s for s in train.selectbox if s.label == "Comparison shown"]
    assert any("press **Start**" in m.value for m in train.markdown)


def test_corrupt_folders_break_no_page(runs_dir):
    """§6: corrupt run folders are listed as corrupt with the reason; every page renders."""
    good = fake_run(runs_dir)
    for name, text in (("20250101-000001-bad-json", "{not json"), ("20250101-000002-a-list", "[1]")):
        (runs_dir / name).mkdir()
        (runs_dir / name / "config.json").write_text(text)
    odd = runs_dir / "20250101-000003-odd-records"
    shutil.copytree(good, odd)
    (odd / "status.json").write_text("garbage")
    with open(odd / "metrics.jsonl", "a") as f:
        f.write('5\n{"epoch": "x"}\n[]\n')
    for name in ("train", "latent", "sensitivity", "runs"):
        at = page(name).run()
        assert not at.exception, (name, [e.value for e in at.exception])
    table = at.dataframe[0].value.set_index("run_id")
    assert table.loc["20250101-000001-bad-json", "status"] == "corrupt"
    assert "config.json" in table.loc["20250101-000001-bad-json", "error"]
    assert table.loc["20250101-000002-a-list", "status"] == "corrupt"
    assert table.loc[odd.name, "status"] == "corrupt" and "status.json" in table.loc[odd.name, "error"]
    assert table.loc[good.name, "status"] == "completed"
    assert any("cannot be read" in w.value for w in at.warning)


def test_stop_in_a_tab_that_started_nothing_asks_first(runs_dir):
    """§6: Stop in a second tab does not stop the first tab's run without a confirmation
    that says who started it and when."""
    a = page("train").run()
    a.selectbox(key="train_ds").set_value("digits")
    a.multiselect(key="train_methods").set_value(["iaead"])
    a.number_input(key="train_epochs_quick").set_value(300)
    a.number_input(key="train_seeds_quick").set_value(1)
    a.button(key="train_start").click().run()
    group = a.session_state["train_group"]
    reg = registry(runs_dir)
    b = page("train").run()  # another tab: same server, its own session
    b.button(key="train_stop").click().run()
    assert reg.group_active(group)
    [ask] = [w.value for w in b.warning if "Stop it anyway?" in w.value]
    assert re.search(r"started by another browser tab at \d\d:\d\d:\d\d, not by this tab", ask)
    b.button(key="train_stop_no").click().run()
    assert reg.group_active(group) and not any("Stop it anyway?" in w.value for w in b.warning)
    b.button(key="train_stop").click().run()
    b.button(key="train_stop_yes").click().run()
    wait_inactive(reg, group)
    assert [j.status for j in reg.jobs(group)] == ["stopped"]
    # The tab that started it is told who stopped it and when (walk 3: its last word stayed
    # "queued 1 run(s)"); the tab that stopped it says it stopped it.
    a.run()
    assert any(re.search(r"The comparison was stopped by another browser tab at \d\d:\d\d:\d\d, "
                         r"not by this tab", i.value) for i in a.info), [i.value for i in a.info]
    b.run()
    assert any("the comparison was stopped" in i.value for i in b.info)
    assert not any("not by this tab" in i.value for i in b.info)


# ------------------------------------------------ walk faults 5–8: deletes, Runs page truths

def test_a_run_deleted_from_a_comparison_is_named_on_train_and_latent(runs_dir):
    """Walk #5: one run (IAEAD λ = 50) of a three-run comparison deleted on the Runs page, then
    the others by hand: Train and Latent space say which run went, with its settings, and keep
    λ and ν in the header and the pickers (never "no IAEAD run" or "λ = —")."""
    iaead = fake_run(runs_dir)
    cae, svdd = (fake_run(runs_dir, method=m, collapsed=False) for m in ("cae", "deep-svdd"))
    at = AppTest.from_file(str(PAGES.parent / "main.py"), default_timeout=120)
    at.session_state["latent_view"] = "pca"  # no UMAP in the background
    at.run()
    at.switch_page("pages/runs.py").run()
    at.multiselect(key="runs_delete").set_value([iaead.name]).run()
    at.checkbox(key="runs_confirm").check().run()
    at.button(key="runs_do_delete").click().run()
    assert not at.exception and not iaead.exists()
    note = ("**IAEAD (λ = 50, ν = 1)** of this comparison is no longer shown: its run folder "
            f"`{iaead.name}` was deleted")
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    text = all_text(at)
    assert note in text, text
    assert "IAEAD **λ = 50**, **ν = 1** (its run folder was deleted)" in text
    assert "no IAEAD run" not in text and not any("differs" in i.value for i in at.info)
    [picker] = [b for b in at.selectbox if b.label == "Comparison shown"]
    assert "λ = 50 · ν = 1" in picker.options[0] and picker.options[0].endswith("IAEAD deleted")
    at.switch_page("pages/latent.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert note in all_text(at)
    assert [s.value for s in at.subheader][:2] == ["CAE", "Deep SVDD"]
    [picker] = [b for b in at.selectbox if b.label == "Runs from"]
    assert "λ = 50 · ν = 1" in picker.options[0]
    shutil.rmtree(cae)  # by hand: the page's own memory names it too
    at.run()
    assert not at.exception
    assert ("**IAEAD (λ = 50, ν = 1)** and **CAE** of this comparison are no longer shown: their "
            f"run folders (`{iaead.name}`, `{cae.name}`) were deleted") in all_text(at)
    shutil.rmtree(svdd)  # the whole comparison is gone: no longer offered, and said so
    for name in ("latent", "train"):
        at.switch_page(f"pages/{name}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        text = all_text(at)
        assert "is no longer offered.**" in text and "**Deep SVDD**" in text, text


def test_a_run_deleted_in_another_tab_is_named_from_the_job_registry(runs_dir):
    """Walk #5: a comparison trained by the lab and one of its folders deleted elsewhere: a
    fresh tab (that never saw the run) names it with its settings, from the job registry."""
    from app import explain

    g = train_small(runs_dir)
    job = next(j for j in registry(runs_dir).jobs(g) if j.cfg.method == "iaead")
    shutil.rmtree(job.run_dir)
    s = explain.settings(job.cfg.to_dict())
    note = f"**IAEAD (λ = {s['λ']}, ν = {s['ν']})** of this comparison is no longer shown"
    for name in ("train", "latent"):
        at = page(name)
        at.session_state["latent_view"] = "pca"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert note in all_text(at), all_text(at)
    train = page("train").run()
    assert f"IAEAD **λ = {s['λ']}**, **ν = {s['ν']}** (its run folder was deleted)" in all_text(train)


def test_runs_page_clears_the_selection_and_says_what_it_deleted(runs_dir):
    """Walk #6: after Delete, the deleted id is no longer chosen and a message names what was
    deleted; it stays through the page's reruns until runs are chosen again."""
    victim = fake_run(runs_dir)
    keep = fake_run(runs_dir, method="cae", collapsed=False)
    at = page("runs").run()
    at.multiselect(key="runs_delete").set_value([victim.name]).run()
    at.checkbox(key="runs_confirm").check().run()
    at.button(key="runs_do_delete").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not victim.exists() and keep.exists()
    box = at.multiselect(key="runs_delete")
    assert box.value == [] and victim.name not in box.options
    for _ in range(2):
        [done] = [s.value for s in at.success]
        assert done.startswith(f"Deleted 1 run folder(s): IAEAD λ = 50 · digits 0 · seed 0 "
                               f"(`{victim.name}`)"), done
        at.run()
        assert not at.exception
    at.multiselect(key="runs_delete").set_value([keep.name]).run()
    assert not at.success


def test_runs_page_says_which_runs_it_lists_and_where_the_others_are(runs_dir, tmp_path):
    """Walk #7: the menu's Runs page lists the lab's runs folder, not an experiment's; the
    filtered view (a link from the Experiments or λ page) does not claim the menu's page
    shows every run. README's "### Runs" says the same."""
    spec = xlam.lambda_spec("digits", [0], 0.1, 1, [0.0, 50.0], "quick", epochs=3)
    plan = xprog.ExperimentWatch().plan(spec, tmp_path / "experiments")
    for p in plan.runs:
        fake_run(plan.folder.runs_dir, lam=p.config.lam, cfg=p.config, run_id=p.run_id)
    mine = fake_run(runs_dir)
    at = page("runs").run()
    assert not at.exception
    text = all_text(at)
    assert "The runs trained on the **Train** and **Your images** pages" in text
    assert "the **Experiments** page lists every one with its state" in text
    assert list(at.dataframe[0].value["run_id"]) == [mine.name]  # not the experiment's
    at = page("runs")
    at.query_params["experiment"] = plan.folder.dir.name
    at.query_params["runs"] = ",".join(p.run_id for p in plan.runs)
    at.run()
    assert not at.exception
    text = all_text(at)
    assert f"The runs of experiment **{plan.folder.dir.name}** that the link asks for" in text
    assert "every run of the lab" not in text and "Every run saved" not in text
    assert sorted(at.dataframe[0].value["run_id"]) == sorted(p.run_id for p in plan.runs)
    readme = (ROOT / "README.md").read_text()
    runs = readme[readme.index("### Runs"):readme.index("###", readme.index("### Runs") + 3)]
    assert "Every saved run" not in runs
    assert "`IAEAD_RUNS_DIR`" in runs and "**Experiments**" in runs and "**λ sensitivity**" in runs


def test_runs_chart_title_and_legend_follow_the_pool_toggle(runs_dir):
    """Walk #8: the compare chart says "mean ± std over seeds" only while pooling, and its
    legend names each run by its settings (method, λ, seed), not by its id."""
    curves = {"latent_mean": [0.9, 0.92, 0.95], "reconstruction": [0.6, 0.6, 0.6]}
    runs = [fake_run(runs_dir, lam=5e-5, seed=s, collapsed=False, curves=curves) for s in (0, 1)]
    runs.append(fake_run(runs_dir, method="cae", collapsed=False, curves=curves))
    at = page("runs").run()
    assert not at.exception
    fig = figure(at, 0)
    assert "mean ± std" not in fig["layout"]["title"]["text"]
    names = sorted(t["name"] for t in fig["data"] if t.get("name"))
    assert names == ["CAE · seed 0", "IAEAD · λ = 5e-5 · seed 0", "IAEAD · λ = 5e-5 · seed 1"]
    assert not any(r.name in json.dumps(fig) for r in runs)
    at.toggle(key="runs_pool").set_value(True).run()
    fig = figure(at, 0)
    assert fig["layout"]["title"]["text"].endswith("(mean ± std over seeds)")
    names = sorted(t["name"] for t in fig["data"] if t.get("name"))
    assert names == ["CAE · seed 0", "IAEAD · λ = 5e-5 · seeds 0, 1"]


def test_train_and_latent_show_the_spread_across_seeds_beside_the_auroc(runs_dir):
    """Issue 19: the own AUROC of a run comes with how much it moves with the seed, measured
    on the spot from the saved runs of the same setting (here seeds 0 and 1: 0.90 and 0.80)."""
    fake_run(runs_dir, seed=0, collapsed=False, lam=5e-5,
             curves={"latent_mean": [0.7, 0.8, 0.9], "reconstruction": [0.6, 0.6, 0.6]})
    fake_run(runs_dir, seed=1, collapsed=False, lam=5e-5, group="compare-20250101-120001-fake0002",
             curves={"latent_mean": [0.7, 0.75, 0.8], "reconstruction": [0.6, 0.6, 0.6]})
    at = page("train").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    own = table[table["score"].str.endswith("(its own)")]
    assert own["± over seeds"].tolist() == ["± 0.071"]  # std of 0.9 and 0.8
    assert table[~table["score"].str.endswith("(its own)")]["± over seeds"].tolist() == [""]
    assert any("How much the own AUROC moves with the seed" in c and
               "± 0.071 over seeds (range 0.100; 2 seeds of this setting at hand)" in c
               for c in texts(at, "caption"))
    at = page("latent").run()
    assert not at.exception, [e.value for e in at.exception]
    line = next(m for m in texts(at, "markdown") if m.startswith("Score: "))
    assert line.endswith("AUROC **0.900** ± 0.071 over seeds") or line.endswith(
        "AUROC **0.800** ± 0.071 over seeds")
    assert "± over seeds: ± 0.071 over seeds (range 0.100; 2 seeds of this setting at hand)." \
        in texts(at, "caption")


def test_pages_that_average_seeds_default_to_three_for_quick(runs_dir):
    at = page("sensitivity").run()
    assert at.number_input(key="sens_seeds").value == 3
