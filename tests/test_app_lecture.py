"""Issue 17, "Lecture-ready lab", without a browser: the collapsed map's scale, the log axis
of the SVDD loss, presentation styling and slide-size export, the words of a collapse, and one
AUROC string for one run on the Train, Runs and Experiments pages (AppTest)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import charts, explain  # noqa: E402
from app.views.latent import coincide_late, collapsed_map_range  # noqa: E402
from app.views.runs import RunItem, group_status, metrics_heading  # noqa: E402
from test_app import wait_for  # noqa: E402


def _svdd_records(values, R=None):
    return [{"epoch": e, "loss": {"reconstruction": 0.3, "svdd": v}, "R": R or 1.0, "metrics": {}}
            for e, v in enumerate(values, start=1)]


def test_svdd_log_axis_labels_every_decade_and_both_ends_of_a_jump():
    """§3/§4: a jump from 0.22 to 53 is drawn with labelled ticks at 0.1, 1, 10 and 100, all
    in view, and both values written on the curve; a loss near 1 gets more than "1"."""
    fig = charts.loss_chart([RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed",
                                     _svdd_records([0.22, 0.3, 53.04, 53.04]))])
    ax = fig.layout.yaxis2
    assert ax.type == "log" and list(ax.ticktext) == ["0.1", "1", "10", "100"]
    assert tuple(ax.range) == pytest.approx((-1.0, 2.0))
    written = {a.text for a in fig.layout.annotations if a.xref == "x2"}
    assert written == {"0.22", "53"}
    near_one = charts.loss_chart([RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed",
                                          _svdd_records([0.8, 1.2, 1.1]))])
    assert list(near_one.layout.yaxis2.ticktext) == ["0.1", "1", "10"]
    assert not [a for a in near_one.layout.annotations if a.xref == "x2"]  # no decade spanned


def test_collapsed_map_is_drawn_at_the_codes_scale():
    """§1: a collapsed epoch's axes span ± the RMS code length; a healthy one autoscales."""
    assert collapsed_map_range({"collapsed": False}, {"auroc": 0.9, "degenerate": False}) is None
    half = collapsed_map_range({"collapsed": True, "code_norm": 8.0}, None)
    assert half == 8.0
    assert collapsed_map_range({"collapsed": False, "code_norm": 2.0}, {"degenerate": True}) == 2.0
    xy = np.full((100, 2), 1e-9, np.float32)
    fig = charts.projection_chart(xy, np.arange(100) < 10, np.zeros(100, int), [], "anomaly",
                                  "PCA", half_range=half)
    assert tuple(fig.layout.xaxis.range) == (-8.0, 8.0) and fig.layout.xaxis.showticklabels is not False
    caption = explain.collapsed_map_caption(100, half, 1e-9, umap_chosen=True)
    assert "show as one dot" in caption and "UMAP is not drawn" in caption
    assert "one dot" not in explain.collapsed_map_caption(100, half, 1.0, umap_chosen=False)


def test_collapse_box_names_kind_place_and_cause_from_the_core():
    """§2: the box says where the codes went and which term did it, with the core's figures."""
    from iaead_core.evaluation.health import collapse_report
    from iaead_core.evaluation.metrics import latent_diagnostics

    c = np.full(8, 0.1)
    diag = latent_diagnostics(np.ones((50, 8)), c, bound=1.0)
    recs = [{"epoch": 1, "loss": {"svdd": None}, "R": 0.0}]
    recs += [{"epoch": e, "loss": {"svdd": 0.22 if e == 2 else 6.48}, "R": 6.48 ** 0.5}
             for e in range(2, 8)]
    rep = collapse_report(diag, recs)
    dist = np.full(50, np.linalg.norm(1 - c))
    kind, box = explain.panel_story("distance to c", {"auroc": 0.5, "degenerate": True}, diag,
                                    "distance to c", dist, 8 ** 0.5, report=rep)
    assert kind == "error"
    assert f"one point in a saturated corner of the code space, at distance {dist[0]:.4g} from c" in box
    assert "not on c" in box and "= R²" in box and "since epoch 3" in box and "0.22" in box
    assert "100% of the code entries are saturated" in box


def test_presentation_restyles_for_a_projector_and_exports_at_slide_size():
    items = [RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed",
                     [{"epoch": e, "primary_score": "latent_mean", "method": "iaead",
                       "metrics": {"latent_mean": {"auroc": 0.9}, "reconstruction": {"auroc": 0.3}}}
                      for e in (1, 2)])]
    every = charts.auroc_chart(items)
    own = charts.auroc_chart(items, own_only=True)
    assert [t.name for t in own.data] == ["distance to mean latent · own score"]
    assert len(every.data) == 2
    fig = charts.presentation(own)
    assert fig.layout.legend.font.size >= 18 and fig.layout.xaxis.tickfont.size >= 18
    assert fig.layout.yaxis.tickfont.size >= 18 and fig.data[0].line.width >= 4
    cfg = charts.export_config("svg", "train_auroc")
    assert cfg["toImageButtonOptions"] == {"format": "svg", "width": 1920, "height": 1080,
                                           "scale": 1, "filename": "train_auroc"}
    with pytest.raises(ValueError):
        charts.export_config("gif")
    low = explain.below_chance_sentence([("CAE", "reconstruction error", 0.221),
                                         ("IAEAD", "distance to mean latent", 0.95)])
    assert "CAE · reconstruction error 0.221" in low and "0.95" not in low
    assert explain.below_chance_sentence([("IAEAD", "x", 0.9)]) == ""


def test_numbers_and_labels_follow_one_convention():
    """§5: "—" for a run without metrics, the heading follows the status, the coincidence
    sentence judges the later epochs, the radius warns at ν = 1."""
    assert explain.row_metric_text({"auroc": None}) == "—"
    assert explain.row_metric_text({"auroc": 0.5, "degenerate": True, "auroc_raw": 0.699}) == \
        "0.500 — degenerate (raw 0.699)"
    done = RunItem("IAEAD", "iaead", {"epochs": 15}, "completed", [{}] * 15)
    stopped = RunItem("CAE", "cae", {"epochs": 15}, "stopped", [{}] * 3)
    assert metrics_heading([done]) == "Final metrics"
    assert metrics_heading([done, stopped]) == \
        "Metrics at the last epoch reached (CAE stopped after 3/15 epochs)"
    assert group_status([done, stopped]) == "completed, stopped"
    a = [(1, 0.80), (2, 0.90), (3, 0.95), (4, 0.952)]
    b = [(1, 0.84), (2, 0.901), (3, 0.951), (4, 0.954)]
    assert coincide_late(a, b, tol=0.02) == (pytest.approx(0.002), 3)
    assert "from epoch 3 on" in explain.coincidence_sentence({}, 0.002, 3)
    assert "flags 299 of 300" in explain.radius_warning(1.0, 299, 300)
    assert explain.radius_warning(0.1, 30, 300) == ""


# ------------------------------------------------------------- one run, one AUROC string


def _page(name: str):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app" / "pages" / f"{name}.py"), default_timeout=120)


def test_one_run_has_one_auroc_string_on_train_runs_and_experiments(lab):
    """§5 / Done when: the Experiments page wrote AUROC in % (95.58) where every other page
    wrote 0.956. IAEAD on MNIST digit 0, 300 images, 2 epochs, seed 0: trained once on Train
    and once as a one-run experiment (the same setting, so the same number); each run's
    AUROC reads the same on every page that shows it."""
    from iaead_core.runs import load_run

    at = _page("train").run()
    at.selectbox(key="train_ds").set_value("mnist")
    at.multiselect(key="train_methods").set_value(["iaead"])
    at.number_input(key="train_epochs_quick").set_value(2)
    at.number_input(key="train_max_quick").set_value(300)
    at.number_input(key="train_seeds_quick").set_value(1)
    at.button(key="train_start").click().run()
    at = wait_for(at, lambda a: any("completed after 2/2" in p.proto.text
                                    for p in a.get("progress")), timeout=150)
    table = at.dataframe[0].value
    on_train = table[table["score"] == "distance to mean latent (its own)"]["AUROC"].iloc[0]
    (train_run,) = [d for d in (lab / "runs").iterdir() if (d / "final.npz").exists()]
    rec = load_run(train_run).records[-1]
    assert on_train == explain.metric_text(rec["metrics"][rec["primary_score"]], why=False)
    assert re.fullmatch(r"0\.\d{3}|1\.000", on_train)  # 0–1, three decimals

    runs = _page("runs").run()
    assert not runs.exception
    assert list(runs.dataframe[0].value["auroc"]) == [on_train]

    exp = _page("experiments").run()
    exp.selectbox(key="exp_base").set_value("custom").run()
    # one seed (a custom quick study starts from 3): the same run as on Train
    for key, value in {"exp_name": "one", "exp_epochs": 2, "exp_max_samples": 300,
                       "exp_seeds": "1"}.items():
        (exp.number_input(key=key) if key in ("exp_epochs", "exp_max_samples")
         else exp.text_input(key=key)).set_value(value)
    exp.run()
    exp.button(key="exp_start").click().run()
    exp = wait_for(exp, lambda a: "1 of 1 runs completed" in " ".join(
        p.proto.text for p in a.get("progress")), timeout=150)
    on_exp = exp.dataframe[0].value["AUROC"].iloc[0]
    (exp_run,) = list((lab / "experiments" / "one-quick" / "runs").iterdir())
    opened = _page("runs")
    opened.query_params["experiment"] = "one-quick"
    opened.query_params["runs"] = exp_run.name
    opened.run()
    assert not opened.exception
    # the cell adds the paper's value beside it (Train has a column for that), the same one
    value, _, paper = on_exp.partition(" (paper")
    assert list(opened.dataframe[0].value["auroc"]) == [value]
    on_train_paper = table[table["score"] == "distance to mean latent (its own)"]["paper AUROC"].iloc[0]
    assert paper.startswith(", different protocol " + on_train_paper.split(" ")[0])
    # the same setting and seed trained twice on this machine: one number everywhere
    assert value == on_train


def test_waits_come_from_the_measured_pace_and_the_load():
    """§6: estimates from epochs measured in this process, normalised to an idle machine and
    scaled by the load seen now; a running run's time left from its own pace; per-run epoch
    progress in one line each."""
    from iaead_core.config import scaled_config
    from iaead_core.experiments import ExperimentFolder, Plan, builtin_spec, expand
    from iaead_core.experiments.estimate import PaceMeter, epoch_seconds, load_factor, set_size
    from iaead_core.experiments.store import RunInfo
    from app.views import experiment_progress as xprog

    assert load_factor(1.0, 2) == 1.0 and load_factor(8.0, 2) == 4.0
    cfg = scaled_config("quick", "iaead", 10, dataset="mnist", normal_class=0, max_samples=1000)
    meter = PaceMeter()
    assert meter.observe(cfg, "r1", 1, 10.0, load=8.0, device="cpu")  # 10 s under load 4×
    assert not meter.observe(cfg, "r1", 1, 10.0, load=8.0)  # each epoch once
    idle = 10.0 / (set_size(cfg) / 1000) / load_factor(8.0)
    [(key, rate)] = meter.rates(load=0.0).items()  # an idle machine: the idle rate
    assert key[0] == "iaead" and rate == pytest.approx(idle)
    # at the load it was measured under, an epoch costs what it cost (whatever the cores)
    assert epoch_seconds(cfg, learned=meter.rates(load=8.0)) == pytest.approx(10.0)

    spec = builtin_spec("fig4-lambda", "quick").narrowed(seeds=[0], datasets=["mnist"], classes=[0])
    runs = expand(spec)[:2]
    infos = {p.run_id: RunInfo(p.run_id, "running") for p in runs}
    plan = Plan(spec, ExperimentFolder(Path("/nonexistent/x")), runs, infos, {p.run_id: 100.0 for p in runs})
    states = {runs[0].run_id: xprog.RunState("running", None, 3, 10, pace=12.0, since=1000.0),
              runs[1].run_id: xprog.RunState("running", None, 0, 10)}
    # the first by its own pace (7 epochs × 12 s), the second by its estimate
    assert xprog.time_left(plan, states) == pytest.approx(7 * 12.0 + 100.0)
    lines = xprog.running_lines(plan, states, now=1004.0)
    assert lines[0][0] == pytest.approx(0.3) and lines[0][1].endswith("epoch 3/10 · about 1 min 20 s left")
    assert lines[1][1].endswith("epoch 0/10 · first epoch under way")


def test_train_time_left_uses_the_pace_measured_here_at_the_load_now():
    """§6: a comparison's time left prices its runs at the pace this process measured,
    scaled to the load now (given here, so the figure does not depend on the machine)."""
    from iaead_core.config import scaled_config
    from iaead_core.experiments.estimate import PaceMeter, rate_key, set_size
    from app.views.eta import group_eta, observe_items

    cfg = scaled_config("quick", "iaead", 10, dataset="mnist", normal_class=0, max_samples=1000)
    recs = [{"epoch": e, "seconds": 4.0, "elapsed": 4.0 * e} for e in (1, 2, 3)]
    run = RunItem("IAEAD", "iaead", cfg.to_dict(), "running", recs, run_id="r", job_key="k",
                  since=100.0)
    meter = PaceMeter()
    observe_items(meter, [run])
    assert len(meter) == 3  # each epoch once, only runs of this process (with a job)
    observe_items(meter, [RunItem("old", "iaead", cfg.to_dict(), "completed", recs, run_id="o")])
    assert len(meter) == 3
    for load in (0.0, 64.0):  # an idle machine, then one many times over its cores
        rates = meter.rates(load=load)
        per_epoch = rates[rate_key(cfg)] * set_size(cfg) / 1000
        assert group_eta([run], now=100.0, rates=rates) == pytest.approx(7 * per_epoch)
    assert group_eta([run], now=100.0, rates=meter.rates(load=64.0)) > \
        group_eta([run], now=100.0, rates=meter.rates(load=0.0)) or \
        meter.rates(load=64.0) == meter.rates(load=0.0)  # 64 cores or more: no slowdown
    assert "scaled to this machine's load now: 6.2 on 2 cores" in explain.pace_words(6.2, 2)
