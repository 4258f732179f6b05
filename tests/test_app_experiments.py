"""The Experiments page through streamlit.testing.v1.AppTest: a built-in spec's cost before it
starts, a tiny spec (MNIST class 0, 300 images, 2 epochs, the quick preset's light network)
started, filled in, resumed and stopped, its cells opened on the Runs page, and bad input in
words. Needs the real MNIST files (skipped without them, like the other real-data tests)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from app.views import experiment_spec as xspec  # noqa: E402
from app.views import experiment_progress as xprog  # noqa: E402
from app.views import experiment_results as xres  # noqa: E402
from app import state  # noqa: E402
from iaead_core.experiments import ExperimentSpec, builtin_spec, expand  # noqa: E402
from iaead_core.experiments.estimate import format_duration, run_seconds  # noqa: E402
from iaead_core.training.engine import select_device  # noqa: E402
from iaead_core.runs import load_run  # noqa: E402

PAGE = ROOT / "app" / "pages" / "experiments.py"
#: The tiny spec of these tests, as the page's fields.
# One seed: a custom study at quick scale starts from 3 (QUICK_SEEDS); these tests are about
# the page, not the spread over seeds.
TINY = {"exp_name": "tiny", "exp_kind": "fig4-lambda", "exp_lam": "0, 5e-5", "exp_epochs": 2,
        "exp_max_samples": 300, "exp_seeds": "1"}


def page() -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=120).run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def progress(at: AppTest) -> str:
    return " | ".join(p.proto.text for p in at.get("progress"))


def wait_for(at: AppTest, pred, timeout: float = 150.0) -> AppTest:
    """Re-run the page (as its polling fragment does) until ``pred(at)`` holds."""
    end = time.time() + timeout
    while True:
        ok(at.run())
        if pred(at):
            return at
        assert time.time() < end, f"the page never got there; progress: {progress(at)}"
        time.sleep(0.5)


def wait_stopped(reg, group: str = "experiment-tiny-quick", timeout: float = 30.0) -> None:
    """Wait until no job of the experiment is queued or running."""
    end = time.time() + timeout
    while reg.group_active(group):
        assert time.time() < end, "the experiment did not stop"
        time.sleep(0.2)


def compose_tiny(at: AppTest, **more) -> AppTest:
    at.selectbox(key="exp_base").set_value("custom").run()
    for key, value in {**TINY, **more}.items():
        widget = (at.number_input(key=key) if key in ("exp_epochs", "exp_max_samples")
                  else at.selectbox(key=key) if key == "exp_kind" else at.text_input(key=key))
        widget.set_value(value)
    return ok(at.run())


def final_auroc(run_dir: Path) -> float:
    """The last epoch's AUROC of the run's own score, read from its folder."""
    run = load_run(run_dir)
    last = run.records[-1]
    return last["metrics"][last["primary_score"]]["auroc"]


def figure(at: AppTest, i: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


def trace_ys(fig: dict) -> list[list[float]]:
    """y values of every trace (plotly sends arrays as base64 typed arrays)."""
    import base64

    out = []
    for t in fig["data"]:
        y = t.get("y")
        if isinstance(y, dict):
            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
        out.append(list(y or []))
    return out


# ------------------------------------------------------------------------- spec ↔ fields

@pytest.mark.parametrize("name", ["table2", "fig2-rho", "fig4-lambda", "ablation"])
@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_fields_give_back_every_built_in_spec(name, preset):
    spec = builtin_spec(name, preset)
    again = xspec.spec_from_fields(xspec.fields_from_spec(spec))
    assert [p.run_id for p in expand(again)] == [p.run_id for p in expand(spec)]
    assert again.folder_name == spec.folder_name and again.rules == spec.rules


def test_field_parsers_read_what_the_help_says():
    assert xspec.parse_classes("all") == "all"
    assert xspec.parse_classes("0, 2 8") == [0, 2, 8]
    assert xspec.parse_classes("mnist: 0, 2; fashion-mnist: all") == {"mnist": [0, 2],
                                                                    "fashion-mnist": "all"}
    assert xspec.parse_seeds("3") == 3 and xspec.parse_seeds("0, 4, 7") == [0, 4, 7]
    assert xspec.parse_floats("0, 5e-5 0.5", "λ") == [0.0, 5e-5, 0.5]
    assert xspec.parse_floats("  ", "λ") is None
    with pytest.raises(ValueError, match="λ: 'abc' is not a number"):
        xspec.parse_floats("0, abc", "λ")
    with pytest.raises(ValueError, match="seeds"):
        xspec.parse_seeds("two")
    more = xspec.toml_text({"axes": {"init": ["released", "pytorch"]},
                         "config": {"warmup_epochs": 1, "lr": 5e-05, "deep-svdd": {"objective": "soft-boundary"}}})
    import tomllib

    assert tomllib.loads(more) == {"axes": {"init": ["released", "pytorch"]},
                                   "config": {"warmup_epochs": 1, "lr": 5e-05,
                                              "deep-svdd": {"objective": "soft-boundary"}}}


def test_figures_of_an_experiment_with_no_finished_run_hold_only_the_papers_values(tmp_path):
    """Fig. 2 before any cell is complete (it raised on an empty data-set panel): no curve of
    ours, only the paper's Table 2 values as crosses."""
    spec = builtin_spec("fig2-rho", "quick").narrowed(methods=["iaead", "cae"])
    plan = xprog.ExperimentWatch().plan(spec, tmp_path, None, "cpu")
    results, agg, ids = xres.cells(plan)
    assert not agg["complete"].any() and len(ids) == len(agg)
    (fig,) = xres.figures(plan, results, agg)
    assert {t.name for t in fig.data} == {"paper: IAEAD", "paper: CAE"}
    # The paper's class-averaged AUROC of IAEAD on MNIST at ρ = 10 % (Table 2), on 0–1.
    from iaead_core.evaluation.paper import paper_auroc

    mnist = [t for t in fig.data if t.name == "paper: IAEAD" and t.xaxis == "x"][0]
    assert list(mnist.y) == pytest.approx([paper_auroc("mnist", "iaead", r) for r in (0.1, 0.2)])


# ----------------------------------------------------------------------------- the page

def test_time_left_and_cost_count_the_running_runs(tmp_path):
    """A walk saw "about 0 s left" with three runs at epoch 2/10, and "All 4 runs have
    completed" beside "3 of 4 runs finished": running runs count by the epochs they have left,
    and a plan with nothing to start but runs still running says so."""
    from iaead_core.experiments import ExperimentFolder, Plan
    from iaead_core.experiments.store import RunInfo

    spec = builtin_spec("fig4-lambda", "quick").narrowed(seeds=[0], datasets=["mnist"], classes=[0])
    runs = expand(spec)[:4]
    infos = {p.run_id: RunInfo(p.run_id, "completed") for p in runs[:1]}
    infos.update({p.run_id: RunInfo(p.run_id, "running") for p in runs[1:]})
    plan = Plan(spec, ExperimentFolder(tmp_path / "x"), runs, infos, {p.run_id: 100.0 for p in runs})
    states = {p.run_id: xprog.RunState(infos[p.run_id].state, None, 2 if i else 30, 10 if i else 30)
              for i, p in enumerate(runs)}
    assert xprog.time_left(plan, states) == pytest.approx(3 * 80.0)
    assert xprog.time_left(plan, states, slots=2) == pytest.approx(120.0)
    assert xprog.cost_text(plan) == ("Nothing left to start: 1 of 4 runs have completed and the "
                                  "other 3 are running.")
    done = Plan(spec, plan.folder, runs, {p.run_id: RunInfo(p.run_id, "completed") for p in runs},
                plan.estimates)
    assert xprog.cost_text(done) == "All 4 runs have completed."


def test_built_in_specs_show_their_size_and_cost_before_starting(lab):
    at = ok(page())
    assert at.title[0].value == "Experiments"
    # With no saved experiment the page starts from Fig. 4 at quick scale:
    # 2 data sets × 10 classes × 11 λ values × 5 seeds (hand count of the spec).
    assert "1100 runs" in markdown(at)
    spec = builtin_spec("fig4-lambda", "quick")
    device = select_device("auto").type  # the estimates are for this machine's device
    total = sum(run_seconds(p.config, device) for p in expand(spec))
    assert "**1100 of 1100 runs to train**" in markdown(at)
    assert f"about **{format_duration(total)}**" in markdown(at)
    assert "0 of 1100 runs completed · 1100 not started" in progress(at)
    # The ablation: (3 MNIST + 2 Fashion-MNIST classes) × 2 inits × (λ = 0, where ν is
    # unused, + λ = 5e-5 × 2 values of ν) × 3 seeds (quick studies average 3) = 90 runs.
    at.selectbox(key="exp_base").set_value("ablation").run()
    assert "**90 of 90 runs to train**" in markdown(ok(at))
    # A custom study at quick scale starts from 3 seeds too.
    at.selectbox(key="exp_base").set_value("custom").run()
    assert at.text_input(key="exp_seeds").value == "3"
    # Table 2 at paper scale: 8 methods × (10 + 10 + 10 + 10 + 20 classes) × 2 ρ × 5 seeds.
    at.selectbox(key="exp_base").set_value("table2").run()
    at.radio(key="exp_preset").set_value("paper").run()
    assert "table2-paper" in markdown(ok(at)) and "4800 runs" in markdown(at)


def test_a_tiny_spec_fills_in_resumes_and_opens_its_cells(lab):
    at = compose_tiny(page())
    assert "**2 of 2 runs to train**" in markdown(at)
    at.button(key="exp_start").click()
    ok(at.run())
    assert any("queued 2 run(s) of tiny-quick" in s.value for s in at.success)
    at = wait_for(at, lambda a: "2 of 2 runs completed" in progress(a))
    runs = lab / "experiments" / "tiny-quick" / "runs"
    spec = ExperimentSpec.from_dict(json.loads((runs.parent / "spec.json").read_text()))
    plans = {p.point["lam"]: p for p in expand(spec)}
    auroc = {lam: final_auroc(runs / p.run_id) for lam, p in plans.items()}

    # Fig. 4 filled in: λ = 0 in its own panel, 5e-5 on the log axis, AUROC on the lab's 0–1
    # scale (issue 17 §5: the page wrote % where every other page wrote 0–1).
    ys = [y for y in trace_ys(figure(at)) if y]
    assert sorted(round(v, 6) for y in ys for v in y) == sorted(round(a, 6) for a in auroc.values())
    # Table 2: each cell is the run's AUROC, the paper's value beside λ = 5e-5 only: for
    # one class (digit 0) that is Table 3's 0.9659, not Table 2's ten-class average.
    table = at.dataframe[0].value
    cells = dict(zip(table["λ"], table["AUROC"]))
    assert cells["0"] == f"{auroc[0.0]:.3f}"
    assert cells["5e-5"].startswith(f"{auroc[5e-5]:.3f} (paper, different protocol 0.966, Δ ")
    # Each cell links to its runs on the Runs page.
    links = dict(zip(table["λ"], table["runs"]))
    assert links["0"] == f"runs?experiment=tiny-quick&runs={plans[0.0].run_id}"
    # The report the downloads give holds the same numbers, and the HTML is also written.
    plan = xprog.ExperimentWatch().plan(spec, lab / "experiments", str(state.data_root()))
    assert f"{100 * auroc[0.0]:.2f}" in xres.report_markdown(plan)
    assert b"<html>" in xres.report_html(plan)[:200]
    assert (runs.parent / "report" / "report.html").is_file()
    assert {b.proto.label for b in at.get("download_button")} == {
        "Report (HTML)", "Tables (Markdown)", "Runs (CSV)"}

    # Resume with one more λ: only the new run trains; finished folders are not touched.
    stamps = {p.run_id: (runs / p.run_id / "status.json").stat().st_mtime_ns for p in plans.values()}
    at.text_input(key="exp_lam").set_value("0, 5e-5, 5e-4").run()
    assert "**1 of 3 runs to train**" in markdown(ok(at))
    at.button(key="exp_start").click()
    ok(at.run())
    assert any("queued 1 run(s)" in s.value for s in at.success)
    at = wait_for(at, lambda a: "3 of 3 runs completed" in progress(a))
    assert {r: (runs / r / "status.json").stat().st_mtime_ns for r in stamps} == stamps
    jobs = state._registry(str((lab / "runs").resolve())).jobs("experiment-tiny-quick")
    assert len(jobs) == 3 and all(j.status == "completed" for j in jobs)

    # The cell's link opens exactly its run on the Runs page, with its AUROC.
    runs_page = AppTest.from_file(str(ROOT / "app" / "pages" / "runs.py"), default_timeout=120)
    runs_page.query_params["experiment"] = "tiny-quick"
    runs_page.query_params["runs"] = plans[0.0].run_id
    ok(runs_page.run())
    shown = runs_page.dataframe[0].value
    assert list(shown["run_id"]) == [plans[0.0].run_id]
    assert shown["auroc"].iloc[0] == f"{auroc[0.0]:.3f}"  # written as on every page (issue 17)


def test_stop_keeps_what_finished_and_start_resumes(lab):
    at = compose_tiny(page(), exp_epochs=300)
    at.button(key="exp_start").click()
    reg = state._registry(str((lab / "runs").resolve()))
    at = wait_for(at, lambda a: any(j.status == "running" and j.records
                                    for j in reg.jobs("experiment-tiny-quick")))
    at.button(key="exp_stop").click()
    ok(at.run())
    wait_stopped(reg)
    at = wait_for(at, lambda a: "1 stopped" in progress(a))
    assert "0 of 2 runs completed · 1 stopped · 1 not started" in progress(at)
    folder = lab / "experiments" / "tiny-quick"
    stopped = [d for d in (folder / "runs").iterdir()]
    assert len(stopped) == 1 and load_run(stopped[0]).status["status"] == "stopped"
    # Resume: the stopped run's folder is cleared (and logged) and both runs are queued again.
    at.button(key="exp_start").click()
    ok(at.run())
    assert any("queued 2 run(s)" in s.value for s in at.success)
    events = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    assert [e["previous"] for e in events if e["event"] == "cleared"] == ["stopped"]
    assert sum(j.active for j in reg.jobs("experiment-tiny-quick")) == 2
    reg.stop_group("experiment-tiny-quick")


def test_runs_outside_a_tabs_settings_are_named_and_its_stop_asks_first(lab):
    """Walk 3, two tabs: tab 1 runs the experiment with a longer λ grid; tab 2, whose fields
    hold the shorter grid, counts only its own runs, so it names the run outside them (it
    said "all runs have completed" beside a running one), and its Stop asks before stopping
    tab 1's runs, as on the Train and λ pages (it stopped them without a word)."""
    a = compose_tiny(page(), exp_lam="0, 5e-5, 0.5", exp_epochs=300)
    a.button(key="exp_start").click()
    ok(a.run())
    reg = state._registry(str((lab / "runs").resolve()))
    assert sum(j.active for j in reg.jobs("experiment-tiny-quick")) == 3
    b = compose_tiny(page(), exp_epochs=300)
    info = [i.value for i in b.info if "outside the settings on the left" in i.value]
    assert info == ["1 more run of this experiment, outside the settings on the left, is queued "
                    "or running (IAEAD, λ = 0.5, class 0, seed 0): started with other settings, "
                    "perhaps in another tab. The counts here leave it out; Stop stops it too."]
    assert "runs to train" not in markdown(b)  # no cost line while it runs: the time left says it
    b.button(key="exp_stop").click()
    ok(b.run())
    assert any("started by another browser tab" in w.value and "Stop it anyway?" in w.value
               for w in b.warning)
    assert sum(j.active for j in reg.jobs("experiment-tiny-quick")) == 3
    b.button(key="exp_stop_yes").click()
    ok(b.run())
    wait_stopped(reg)
    # A finished run folder outside the tab's settings is named too, with its state (walk 4:
    # a run another tab had added and stopped left no trace here).
    ok(b.run())
    assert not any("outside the settings" in i.value for i in b.info)
    from iaead_core.config import scaled_config
    from iaead_core.training.engine import Trainer

    cfg = scaled_config("quick", "iaead", 2, lam=0.5, max_samples=300,
                        data_root=os.environ["IAEAD_DATA_ROOT"], download=False)
    Trainer(cfg, runs_root=lab / "experiments" / "tiny-quick" / "runs", run_id="0123456789abcdef").run()
    ok(b.run())
    assert any(i.value.startswith("The folder of this experiment holds 1 more run (1 completed) "
                                  "outside the settings on the left") for i in b.info), \
        [i.value for i in b.info]


def test_a_huge_seed_count_is_refused_at_once(lab):
    with pytest.raises(ValueError, match="seeds = 2000: give a count from 1 to 1,000"):
        xspec.parse_seeds("2000")
    at = page()
    at.text_input(key="exp_seeds").set_value("2000")
    t0 = time.time()
    at.run()
    # Before: Seeds = 2000 froze the page for minutes while the runs were built.
    assert any("This spec cannot run: seeds = 2000: give a count from 1 to 1,000" in e.value
               for e in ok(at).error)
    assert time.time() - t0 < 30
    at.text_input(key="exp_seeds").set_value("1000")
    at.text_input(key="exp_classes").set_value("all")
    at.multiselect(key="exp_methods").set_value(["iaead", "cae", "deep-svdd", "drae", "rdae",
                                                  "dagmm", "memae", "rsrae"])
    at.text_input(key="exp_rho").set_value("0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45")
    at.run()
    assert any("more than the cap of 100,000 runs" in e.value for e in ok(at).error)


def test_bad_input_and_a_busy_experiment_are_said_in_words(lab):
    at = compose_tiny(page())
    at.text_input(key="exp_lam").set_value("0, abc").run()
    assert any("λ: 'abc' is not a number" in e.value for e in ok(at).error)
    at.text_input(key="exp_lam").set_value("0, 5e-5")
    at.text_input(key="exp_classes").set_value("12").run()
    assert any("This spec cannot run" in e.value and "12" in e.value for e in ok(at).error)
    at.text_input(key="exp_classes").set_value("0")
    at.text_area(key="exp_more").set_value("[axes]\nwidht = [8, 16]").run()
    assert any("'widht' is neither a TrainConfig field" in e.value for e in ok(at).error)
    at.text_area(key="exp_more").set_value("").run()
    # The command line holds the experiment (its lock, as `experiment run` takes it): no start.
    from iaead_core.experiments import ExperimentFolder

    held = ExperimentFolder(lab / "experiments" / "tiny-quick").acquire_driver("the command line")
    try:
        at.button(key="exp_start").click()
        ok(at.run())
        assert any("Not started" in e.value and f"being run by process {os.getpid()}" in e.value
                   and "(the command line" in e.value for e in at.error)
        assert state._registry(str((lab / "runs").resolve())).jobs("experiment-tiny-quick") == []
    finally:
        held.release()


def test_the_lab_lists_both_pages_and_starts_umaps_warm_up(lab):
    from iaead_core.evaluation.projection import warm_up_state

    at = ok(AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run())
    assert at.title[0].value == "Train"
    # main.py started UMAP's warm-up before anything imported umap (it sets numba's cache).
    assert warm_up_state()["state"] in ("warming", "warm") and os.environ.get("NUMBA_CACHE_DIR")
    at.switch_page("pages/experiments.py")
    assert ok(at.run()).title[0].value == "Experiments"
    at.switch_page("pages/images.py")
    assert ok(at.run()).title[0].value == "Your images"
