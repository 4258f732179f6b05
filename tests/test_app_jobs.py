"""The lab's job registry, background tasks, views and the pure helpers of iaead_core.evaluation.analysis.

Trainings here use scikit-learn's embedded 8×8 digits (about 200 images per set), so each
epoch takes a fraction of a second and no data download is needed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.jobs import JobRegistry, config_key  # noqa: E402
from app.tasks import BackgroundTasks  # noqa: E402
from app.views.eta import fmt_seconds  # noqa: E402
from app.views.runs import RunIndex, group_items, known_groups  # noqa: E402
from iaead_core.evaluation.analysis import (centre_distances, extremes, format_lambda,
                                            parse_lambda_grid, pca_2d, snapshot_for_epoch,
                                            sweep_summary, time_left, umap_2d)
from iaead_core.config import scaled_config
from iaead_core.config import preset_config  # noqa: E402


def cfg(epochs: int = 2, **kw):
    """A tiny IAEAD config on the embedded digits (CPU)."""
    kw.setdefault("warmup_epochs", 1)
    return preset_config("quick", kw.pop("method", "iaead"), dataset="digits", normal_class=0,
                         epochs=epochs, device="cpu", **kw)


def wait_until(pred, timeout: float = 60.0, every: float = 0.05) -> None:
    """Poll ``pred`` until it is true; fail the test after ``timeout`` seconds."""
    end = time.time() + timeout
    while not pred():
        if time.time() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


@pytest.fixture
def registry(tmp_path):
    reg = JobRegistry(tmp_path / "runs", slots=1)
    yield reg
    reg.shutdown()


def test_same_group_twice_is_one_group(registry):
    cfgs = [cfg(epochs=40), cfg(epochs=40, method="cae")]
    g1 = registry.submit_group(cfgs, "compare")
    g2 = registry.submit_group([c.replace() for c in cfgs], "compare")  # a rerun / second tab
    assert g1 == g2
    assert len(registry.jobs()) == 2
    assert [j.cfg.method for j in registry.jobs(g1)] == ["iaead", "cae"]
    assert all(j.cfg.extra == {"group": g1, "kind": "compare"} for j in registry.jobs(g1))
    registry.stop_group(g1)
    wait_until(lambda: not registry.busy())


def test_same_job_twice_is_one_job(registry):
    a = registry.submit(cfg(epochs=40))
    b = registry.submit(cfg(epochs=40))
    assert a.key == b.key == config_key(cfg(epochs=40))
    assert len(registry.jobs()) == 1
    registry.stop(a.key)
    wait_until(lambda: not registry.busy())


def test_queue_order_and_stop(registry):
    g = registry.submit_group([cfg(epochs=200, seed=s) for s in range(3)], "sweep")
    keys = [j.key for j in registry.jobs(g)]
    wait_until(lambda: registry.job(keys[0]).status == "running" and registry.job(keys[0]).records)
    assert [j.key for j in registry.queue()] == keys[1:]  # FIFO, one slot on a CPU
    registry.stop(keys[1])  # a queued job leaves the queue without running
    assert registry.job(keys[1]).status == "stopped"
    assert [j.key for j in registry.queue()] == keys[2:]
    registry.stop(keys[0])  # a running one stops after its batch, keeping its epochs
    wait_until(lambda: registry.job(keys[0]).status == "stopped")
    first = registry.job(keys[0])
    assert 1 <= len(first.records) < 200
    assert (first.run_dir / "metrics.jsonl").read_text().count("\n") == len(first.records)
    wait_until(lambda: registry.job(keys[2]).status == "running")
    registry.stop_group(g)
    wait_until(lambda: not registry.group_active(g))
    assert registry.job(keys[1]).run_dir is None  # it never started


def test_diverging_job_fails_with_epoch_and_keeps_records(registry):
    g = registry.submit_group([cfg(epochs=4, lam=1e30)], "compare")
    wait_until(lambda: not registry.group_active(g))
    job = registry.jobs(g)[0]
    assert job.status == "failed" and job.error_kind == "diverged"
    assert "epoch 2" in job.error
    assert len(job.records) == 1 and job.records[0]["epoch"] == 1
    # and after a restart the folder still tells the story
    items = group_items(JobRegistry(registry.runs_root, slots=1), RunIndex(registry.runs_root), g)
    assert items[0].status == "failed" and "epoch 2" in items[0].error
    assert len(items[0].records) == 1


@pytest.mark.parametrize("pays", [True, False])
def test_an_experiments_runs_stack_only_where_stacking_pays(tmp_path, monkeypatch, pays):
    """An experiment's queued λ runs of one data draw train as one stacked network when the
    device measures a speed-up (here: the measurement is replaced by ``pays``), one after
    another otherwise; either way each job keeps its own records, folder and status."""
    import iaead_core.training.stacked as stacked

    asked = []
    monkeypatch.setattr(stacked, "stacking_pays",
                        lambda device, K, preset: asked.append(K) or pays)
    reg = JobRegistry(tmp_path / "runs", slots=1, stack=True)  # opt-in
    try:
        # another seed (another draw) first: it occupies the worker while the λ runs queue
        reg.submit(cfg(seed=1), "exp", "experiment", run_id="other-seed")
        for lam in (0.0, 0.5, 50.0):
            reg.submit(cfg(lam=lam), "exp", "experiment", run_id=f"lam-{lam:g}")
        wait_until(lambda: not reg.group_active("exp"))
        jobs = {j.run_id: j for j in reg.jobs("exp")}
    finally:
        reg.shutdown()
    # asked for the three runs of seed 0; when no, again for the two left after the first
    assert asked == ([3] if pays else [3, 2])
    assert all(j.status == "completed" and len(j.records) == 2 for j in jobs.values())
    stacks = {rid: json.loads((j.run_dir / "config.json").read_text())["config"]["extra"].get("stacked")
              for rid, j in jobs.items()}
    assert stacks == {"other-seed": None, **{f"lam-{v:g}": 3 if pays else None
                                             for v in (0.0, 0.5, 50.0)}}
    assert jobs["lam-50"].run_dir.name == "lam-50"
    assert [j.stack for j in jobs.values()] == [1] + [3 if pays else 1] * 3


def test_by_default_nothing_stacks_so_a_sweep_run_equals_a_single_run(tmp_path, monkeypatch):
    """Issue 16: the λ page's runs (an experiment's jobs) train one by one unless stacking is
    asked for, so a λ run of the sweep gives the very numbers of the same setting trained
    alone (the Train page): stacked float32 runs differ by amplified rounding."""
    import iaead_core.training.stacked as stacked

    monkeypatch.setattr(stacked, "stacking_pays", lambda *a, **k: True)  # would pay
    reg = JobRegistry(tmp_path / "runs", slots=1)
    try:
        for lam in (0.0, 0.5, 50.0):
            reg.submit(cfg(epochs=3, lam=lam), "exp", "experiment", run_id=f"lam-{lam:g}")
        wait_until(lambda: not reg.group_active("exp"))
        sweep = {j.run_id: j for j in reg.jobs("exp")}
        alone = reg.submit_group([cfg(epochs=3, lam=0.5)], "compare")
        wait_until(lambda: not reg.group_active(alone))
        [single] = reg.jobs(alone)
    finally:
        reg.shutdown()
    assert all(j.stack == 1 and j.status == "completed" for j in sweep.values())
    auroc = lambda j: [r["metrics"]["latent_mean"]["auroc"] for r in j.records]  # noqa: E731
    assert auroc(sweep["lam-0.5"]) == auroc(single)
    assert [r["loss"] for r in sweep["lam-0.5"].records] == [r["loss"] for r in single.records]


def test_missing_data_set_fails_in_words(registry, tmp_data_root):
    bad = preset_config("quick", "iaead", dataset="cifar10", normal_class=0, epochs=2,
                        warmup_epochs=1, device="cpu", download=False)
    g = registry.submit_group([bad], "compare")
    wait_until(lambda: not registry.group_active(g))
    job = registry.jobs(g)[0]
    assert job.status == "failed" and job.error_kind == "data"
    assert "cifar-10-batches-py" in job.error and "mnist-5k" in job.error


def test_group_survives_restart(registry):
    g = registry.submit_group([cfg(epochs=2), cfg(epochs=2, method="cae")], "compare")
    wait_until(lambda: not registry.group_active(g))
    fresh, index = JobRegistry(registry.runs_root, slots=1), RunIndex(registry.runs_root)
    try:
        assert known_groups(fresh, index, "compare") == [g]
        items = group_items(fresh, index, g)
        assert sorted(i.label for i in items) == ["CAE", "IAEAD"]
        assert all(i.status == "completed" and len(i.records) == 2 for i in items)
    finally:
        fresh.shutdown()


def test_empty_group_is_refused(registry):
    with pytest.raises(ValueError, match="at least one"):
        registry.submit_group([], "compare")


def test_background_tasks_cache_and_errors():
    tasks = BackgroundTasks()
    calls = []
    assert tasks.get("a", lambda: calls.append(1) or 42)[0] == "working"
    assert tasks.wait("a", 10) == ("ready", 42)
    assert tasks.get("a", lambda: calls.append(1) or 0) == ("ready", 42)
    assert calls == [1]  # computed once
    tasks.get("b", lambda: 1 / 0)
    status, msg = tasks.wait("b", 10)
    assert status == "error" and "ZeroDivisionError" in msg


# ------------------------------------------------------------------- iaead_core.evaluation.analysis

def test_parse_lambda_grid():
    assert parse_lambda_grid("50, 0 5e-6;5e-5, 0") == [0.0, 5e-6, 5e-5, 50.0]
    with pytest.raises(ValueError, match="not a number"):
        parse_lambda_grid("0, abc")
    with pytest.raises(ValueError, match="≥ 0"):
        parse_lambda_grid("-1")
    with pytest.raises(ValueError, match="empty"):
        parse_lambda_grid(" , ")


def test_format_lambda_and_seconds():
    assert [format_lambda(v) for v in (0, 5e-6, 5e-5, 0.5, 50)] == ["0", "5e-6", "5e-5", "0.5", "50"]
    assert fmt_seconds(75) == "1 min 15 s" and fmt_seconds(None) == "?"


def test_scaled_config_keeps_phases():
    c = scaled_config("quick", "deep-svdd", 4)
    assert (c.epochs, c.warmup_epochs) == (4, 2)
    c = scaled_config("quick", "iaead", 4, lam=0.5)
    assert (c.epochs, c.warmup_epochs, c.lam) == (4, 1, 0.5)
    assert scaled_config("quick", "iaead").epochs == 30
    with pytest.raises(ValueError, match="at least 2"):
        scaled_config("quick", "deep-svdd", 1)


def test_time_left_skips_first_epoch():
    recs = [{"epoch": 1, "seconds": 10.0}, {"epoch": 2, "seconds": 2.0}, {"epoch": 3, "seconds": 4.0}]
    assert time_left(recs, 10) == pytest.approx(7 * 3.0)
    assert time_left([], 10) is None


def test_a_comparisons_time_left_counts_down_and_prices_queued_runs_by_method():
    """The Train page's "about … left": a running run's estimate falls while its epoch runs
    (it stood still until the epoch ended), and a queued run is priced at the pace of its own
    method when one of its kind has run, else at the group's pace."""
    from app.views.eta import group_eta, run_eta
    from app.views.runs import RunItem

    def recs(pace, n):  # n epochs at `pace` s each (the first one too)
        return [{"epoch": e, "seconds": pace, "elapsed": pace * e} for e in range(1, n + 1)]

    t = 1000.0
    iaead = RunItem("IAEAD", "iaead", {"epochs": 10}, "running", recs(2.0, 4), since=t)
    # 6 epochs × 2 s left at the end of epoch 4; 1.5 s into epoch 5 → 10.5 s
    assert run_eta(iaead, None, t) == 12.0 and run_eta(iaead, None, t + 1.5) == 10.5
    assert run_eta(iaead, None, t + 60) == 0.0  # never negative
    cae = RunItem("CAE", "cae", {"epochs": 10}, "queued")
    svdd = RunItem("Deep SVDD", "deep-svdd", {"epochs": 10}, "queued")
    # Both queued runs at IAEAD's 2 s/epoch: 12 + 20 + 20
    assert group_eta([iaead, cae, svdd], now=t) == 52.0
    assert group_eta([iaead, cae, svdd], now=t + 2.0) == 50.0
    # Once a CAE has run at 1 s/epoch, the queued CAE is priced at its own pace.
    done_cae = RunItem("CAE", "cae", {"epochs": 10}, "completed", recs(1.0, 10))
    assert group_eta([done_cae, iaead, cae], now=t) == 0 + 12 + 10
    # A run that has not finished its first epoch: the group's pace less the time it has run.
    starting = RunItem("CAE", "cae", {"epochs": 10}, "running", since=t - 3.0)
    assert group_eta([done_cae, starting], now=t) == 7.0
    assert group_eta([cae, svdd], now=t) is None  # nothing has a pace yet
    # Two training slots (a GPU): the two runs left share them.
    assert group_eta([iaead, cae], now=t, slots=2) == (12 + 20) / 2
    # A method none of the group's runs has used yet is priced at its measured cost
    # relative to the methods that have run: Deep SVDD's pre-training makes it dearer than the
    # CAE (the walk saw "9 s left" become "24 s left" when it priced it at the CAE's pace).
    from iaead_core.config import scaled_config
    from iaead_core.experiments.estimate import epoch_seconds

    def cfg(method):  # as the Train page builds it
        return scaled_config("quick", method, 10, max_samples=3000).to_dict()

    ran = RunItem("CAE", "cae", cfg("cae"), "completed", recs(1.0, 10))
    waiting = RunItem("Deep SVDD", "deep-svdd", cfg("deep-svdd"), "queued")
    ratio = epoch_seconds(scaled_config("quick", "deep-svdd", 10, max_samples=3000)) \
        / epoch_seconds(scaled_config("quick", "cae", 10, max_samples=3000))
    assert ratio > 1.05
    assert group_eta([ran, waiting], now=t) == pytest.approx(10 * 1.0 * ratio)


def test_latent_helpers():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 8)).astype(np.float32)
    assert pca_2d(z).shape == (50, 2)
    same = np.ones((50, 8), np.float32)
    assert not pca_2d(same).any() and not umap_2d(same).any()  # total collapse: one point
    top, bottom = extremes(np.arange(10.0), 3)
    assert list(top) == [9, 8, 7] and list(bottom) == [0, 1, 2]
    assert centre_distances(np.array([[3.0, 4.0], [0.0, 0.0]]), np.zeros(2)).tolist() == [5.0, 0.0]
    assert snapshot_for_epoch([1, 5, 10], 7) == 5 and snapshot_for_epoch([5], 1) == 5
    assert snapshot_for_epoch([], 3) is None


def test_sweep_summary_mean_std_and_collapse():
    df = pd.DataFrame({"lam": [0, 0, 50, 50], "normal_class": ["0"] * 4, "seed": [0, 1, 0, 1],
                       "auroc": [0.9, 0.8, 0.5, 0.5], "collapsed": [False, False, True, False]})
    s = sweep_summary(df)
    assert s["lam"].tolist() == [0, 50]
    assert s["mean"].tolist() == pytest.approx([0.85, 0.5])
    assert s["std"].tolist() == pytest.approx([np.std([0.9, 0.8], ddof=1), 0.0])
    assert s["collapsed"].tolist() == [False, True]


# ------------------------------------------------------------------- lab views, words, charts
# Hand-made records and snapshots with known values: each test below failed before the fix
# of the fault it names (issue 6).

import json  # noqa: E402
import math  # noqa: E402

from app import charts, explain  # noqa: E402
from app.jobs import Starter  # noqa: E402
from app.views.latent import coincide, panel_distance, radius_series  # noqa: E402


def _degenerate(raw: float) -> dict:
    return {"auroc": 0.5, "aupr_in": 0.9, "aupr_out": 0.1, "degenerate": True,
            "raw": {"auroc": raw, "aupr_in": 0.93, "aupr_out": 0.12}, "n_nonfinite": 0}


def test_metric_text_says_degenerate():
    """§1: a degenerate metric reads as such, with the raw value for the curious."""
    assert explain.metric_text(_degenerate(0.699)) == \
        "0.500 — degenerate (scores differ only by float noise; raw 0.699)"
    assert explain.metric_text(_degenerate(0.699), why=False) == "0.500 — degenerate (raw 0.699)"
    assert explain.metric_text({"auroc": 0.91234, "degenerate": False}) == "0.912"
    assert explain.metric_text({"auroc": 0.91234}) == "0.912"  # records written before the flag
    assert explain.metric_text(None) == explain.metric_text({"auroc": float("nan")}) == "—"


def _records(method: str, n: int = 4, warmup: int = 2) -> list[dict]:
    """IAEAD-like records: no SVDD term and R = 0 during the warm-up, then R = 0.5 + e."""
    out = []
    for e in range(1, n + 1):
        svdd_on = method == "iaead" and e > warmup
        out.append({"epoch": e, "phase": "svdd" if svdd_on else "warm-up",
                    "loss": {"total": 1.0, "reconstruction": 1.0, "svdd": 1e-3 * e if svdd_on else None},
                    "R": 0.5 + e if svdd_on else 0.0,
                    "metrics": {"latent_mean": {"auroc": 0.9}, "reconstruction": {"auroc": 0.6}},
                    "primary_score": "latent_mean" if method == "iaead" else "reconstruction",
                    "method": method})
    return out


def test_radius_is_undefined_in_warmup_and_absent_without_R():
    """§5: R is NaN (not 0) during the warm-up; CAE and one-class Deep SVDD have no R."""
    r = radius_series(_records("iaead"), {"method": "iaead"})
    assert math.isnan(r[0]) and math.isnan(r[1]) and r[2:] == [3.5, 4.5]
    assert all(math.isnan(v) for v in radius_series(_records("cae"), {"method": "cae"}))
    svdd = [dict(x, loss={"svdd": 1.0}, R=0.0) for x in _records("cae")]
    assert all(math.isnan(v) for v in radius_series(svdd, {"method": "deep-svdd", "objective": "one-class"}))


def _items():
    from app.views.runs import RunItem

    return [RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed", _records("iaead")),
            RunItem("CAE", "cae", {"method": "cae"}, "completed", _records("cae"))]


def test_loss_chart_draws_R_only_where_defined_on_labelled_log_axis():
    """§5: the R panel has IAEAD's line only, undefined in the warm-up; the SVDD loss axis is
    labelled as log with one readable tick per decade."""
    fig = charts.loss_chart(_items())
    r_traces = [t for t in fig.data if t.xaxis == "x3"]
    assert [t.name for t in r_traces] == ["IAEAD"]
    assert math.isnan(r_traces[0].y[0]) and r_traces[0].y[2] == 3.5
    assert "(log scale)" in fig.layout.annotations[1].text
    assert fig.layout.yaxis2.type == "log"
    assert list(fig.layout.yaxis2.ticktext) == ["1e-3", "0.01"]
    from iaead_core.numbers import log_ticks

    assert log_ticks([5e-6, 50.0])[1] == ["1e-6", "1e-5", "1e-4", "1e-3", "0.01", "0.1", "1", "10", "100"][::2]
    assert log_ticks([None, float("nan"), 0.0, -1.0]) == ([], [])
    # Without IAEAD's run (deleted), the R panel says why it is empty instead of standing blank.
    empty = charts.loss_chart(_items()[1:])
    [note] = [a for a in empty.layout.annotations if a.text.startswith("No run shown has a radius R")]
    # placed over the third panel in page coordinates (bound to its trace-less axis, plotly.js
    # drew it in the first panel)
    assert note.xref == "paper" and empty.layout.xaxis3.domain[0] < note.x < empty.layout.xaxis3.domain[1]
    assert not any("No run shown" in a.text for a in fig.layout.annotations)


def test_flat_radius_gets_a_readable_axis():
    """§5: an R that varies only in its 7th digit is drawn flat on a ±5 % band with short
    ticks (plotly zoomed into the noise: ticks 7.472613 … 7.472616)."""
    from app.views.runs import RunItem

    recs = [{"epoch": e, "loss": {"reconstruction": 0.5, "svdd": 1.0}, "R": 7.472616 - 1e-6 * (e == 4),
             "metrics": {}} for e in range(1, 5)]
    fig = charts.loss_chart([RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed", recs)])
    assert fig.layout.yaxis3.range == pytest.approx((7.472616 * 0.95, 7.472616 * 1.05))
    assert fig.layout.yaxis3.tickformat == ".4~g"


def test_legend_names_the_method_once_and_coinciding_curves_stay_visible():
    """§5: legend entries sit under their method ("Deep SVDD" is not repeated in the rule's
    name); identical curves of two runs differ in width and marker, so both show."""
    from app.views.runs import RunItem

    svdd = RunItem("Deep SVDD", "deep-svdd", {"method": "deep-svdd"}, "completed",
                   [{"epoch": 1, "metrics": {"svdd": {"auroc": 0.7}}, "method": "deep-svdd"}])
    fig = charts.auroc_chart(_items() + [svdd])
    names = [(t.legendgroup, t.name) for t in fig.data]
    assert ("Deep SVDD", "Deep SVDD distance") not in names and ("Deep SVDD", "squared distance to c") in names
    assert all(not name.startswith(group) for group, name in names if group)
    same = [t for t in fig.data if t.name.startswith("distance to mean latent")]
    assert len(same) == 2 and list(same[0].y) == list(same[1].y)  # the coinciding pair
    assert same[0].line.width > same[1].line.width
    assert same[0].marker.symbol != same[1].marker.symbol


def test_coincidence_sentence_is_drawn_from_the_runs():
    """§5: the gap and the gain quoted come from the curves, not from prose."""
    a = [(1, 0.90), (2, 0.95)]
    assert coincide(a, [(1, 0.901), (2, 0.948)], tol=0.005) == pytest.approx(0.002)
    assert coincide(a, [(1, 0.80), (2, 0.95)], tol=0.005) is None
    text = explain.coincidence_sentence({("iaead", "latent_mean"): 0.95,
                                             ("cae", "latent_mean"): 0.948,
                                             ("cae", "reconstruction"): 0.62}, 0.002)
    assert "0.002" in text and "0.620 → IAEAD 0.950" in text
    assert "most of the gain over reconstruction" in text and "latent space" in text


def _collapsed_snapshot(n: int = 200) -> dict:
    rng = np.random.default_rng(0)
    c = np.zeros(8, np.float32)
    c[0] = 1.4
    z = np.tile(c + np.float32([7.119259 - 1.4] + [0.0] * 7), (n, 1))
    return {"z": z.astype(np.float32), "centre": c, "R": np.float32(5.7),
            "score_latent_mean": (1e-8 * rng.random(n)).astype(np.float32),
            "score_latent_c": (5.719259 + 1e-7 * rng.random(n)).astype(np.float32),
            "score_reconstruction": rng.random(n).astype(np.float32)}


def test_histogram_of_the_score_shows_the_headline_score_whatever_it_is():
    """A walk found the CAE panel (headline: reconstruction error) drawing the distance to the
    mean code under "Histogram of: each run's score". The score itself is drawn, named as in
    the headline, and judged "all the same" against its own size, not the codes'."""
    rng = np.random.default_rng(0)
    snap = {"z": rng.normal(size=(50, 4)).astype(np.float16),
            "score_reconstruction": np.linspace(0.01, 0.05, 50).astype(np.float32),
            "score_latent_mean": rng.random(50).astype(np.float32)}
    d = panel_distance(snap, "reconstruction", {"method": "cae"})
    assert d.name == "reconstruction error" and not d.to_c
    assert d.relation == "This is the panel's score."
    np.testing.assert_array_equal(d.values, snap["score_reconstruction"].astype(np.float64))
    assert d.scale == pytest.approx(0.05)
    # the hypersphere view is still one click away
    assert panel_distance(snap, "reconstruction", {"method": "cae"}, want="c").name == \
        "distance to the mean latent code"


def test_one_bar_exactly_when_the_metric_is_degenerate():
    """Walk 4: a nearly collapsed run (codes of RMS length 8, distances to their mean from
    4e-10 to 4e-4) got one bar "for all 3,000 images" and the words "values still differ by
    more than float noise" beside a real AUROC of 0.339: the page's "all the same" was 1e-4 of
    the codes' size, the metric's 7.6e-6. Now both use the metric's rule and scale."""
    from iaead_core.evaluation.metrics import detection_metrics, score_scale

    rng = np.random.default_rng(0)
    corner = np.ones((3000, 64), np.float32)
    y = np.zeros(3000, bool)
    y[:300] = True
    for top, degenerate in ((4e-4, False), (1e-6, True)):
        d = np.concatenate([[4e-10], rng.uniform(0, top, 2999)]).astype(np.float32)
        snap = {"z": corner.astype(np.float16), "score_latent_mean": d}
        dist = panel_distance(snap, "latent_mean", {"method": "iaead"})
        assert dist.scale == pytest.approx(score_scale("latent_mean", corner)) == pytest.approx(8.0)
        m = detection_metrics(y, d.astype(np.float64), scale=score_scale("latent_mean", corner))
        assert m["degenerate"] is degenerate
        assert explain.single_value(dist.values, dist.scale) is degenerate
        bars = [t.type for t in charts.hypersphere_chart(dist.values, y, None, dist.name, dist.scale).data]
        assert (bars == ["bar", "bar"]) is degenerate


def test_a_narrow_histogram_gets_ticks_that_differ():
    """Walk 5: distances 7.1600 … 7.1601 (a line-collapsed run, not degenerate) were ticked
    "7.16 7.16 7.16 7.16"; wide ones keep three digits."""
    y = np.zeros(200, bool)
    y[:20] = True
    narrow = charts.hypersphere_chart(7.16 + 1e-4 * np.linspace(0, 1, 200), y, 7.16005, "distance to c")
    assert narrow.layout.xaxis.tickformat == ".7~g"
    ticks = {f"{7.16 + k * 2e-5:.7g}" for k in range(6)}
    assert len(ticks) == 6  # five ticks across the span are written apart at that precision
    wide = charts.hypersphere_chart(np.linspace(0.5, 3.0, 200), y, None, "distance to c")
    assert wide.layout.xaxis.tickformat == ".3~g"


def test_collapsed_hypersphere_is_one_labelled_bar_of_the_named_distance():
    """§3: all distances equal → one bar per group labelled with the value (no blank plot
    with a "1T" density axis); the histogram's quantity is the one the panel names."""
    snap = _collapsed_snapshot()
    y = np.zeros(200, bool)
    y[:20] = True
    d = panel_distance(snap, "latent_c", {"method": "iaead"})
    assert d.name == "distance to c" and d.to_c and d.relation == "This is the panel's score."
    fig = charts.hypersphere_chart(d.values, y, 5.7, d.name)  # R named in the axis title
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert [t.y[0] for t in fig.data] == [180, 20]
    assert fig.data[0].x[0].startswith("5.719")
    assert fig.layout.xaxis.title.text == "distance to c (R = 5.7)"
    assert fig.layout.yaxis.title.text == "images"
    mean = panel_distance(snap, "latent_mean", {"method": "iaead"})
    assert mean.name == "distance to the mean latent code"
    assert panel_distance(snap, "latent_mean", {"method": "iaead"}, want="c").name == "distance to c"
    kind, story = explain.panel_story("distance to c", _degenerate(0.193),
                                      {"collapsed": True, "spread": 1e-7, "effective_rank": 1.0},
                                      d.name, d.values)
    assert kind == "error" and "every image is at distance to c 5.719" in story
    assert "reported as 0.500 (chance)" in story and "0.193" in story
    # the shape in words follows the effective rank (walk 5: "one point" beside rank 1.0)
    assert "The codes sit on (almost) one line (spread of the codes 1e-07, effective rank 1.0)" in story
    _, point = explain.panel_story("distance to c", _degenerate(0.193),
                                   {"collapsed": True, "spread": 0.0, "effective_rank": 0.0,
                                    "collapse_ratio": 0.0, "centre_norm": 0.93}, d.name, d.values)
    assert "The codes sit on (almost) one point (spread of the codes 0 × ||c||, effective rank 0.0)" in point
    # a CAE has no c: its spread is in code units, and the sentence starts with a capital
    kind, cae = explain.panel_story("distance to mean latent", {"auroc": 0.96, "degenerate": False},
                                    {"collapsed": False, "spread": 0.5, "effective_rank": 30.0,
                                     "collapse_ratio": 0.47, "centre_norm": 1.06},
                                    d.name, np.linspace(0, 2, 200), has_centre=False)
    assert kind == "success" and "**No collapse.** Spread of the codes 0.5, effective rank 30.0" in cae
    assert "||c||" not in cae


def test_group_title_and_settings_show_lambda_nu_preset_init():
    """§4: a comparison is named by the settings that produced it, λ in the one format."""
    cfgs = [scaled_config("quick", m, 4, dataset="mnist", normal_class=0, lam=5e-5).to_dict()
            for m in ("iaead", "cae")]
    title = explain.group_title("compare-20250101-120304-abcd", cfgs, "compare")
    assert title == ("2025-01-01 12:03:04 · MNIST 0 · ρ = 10 % · λ = 5e-5 · ν = 1 · quick · "
                     "4 epochs · 3,000 images · init released · seed 0")
    # issue 17 §5: a comparison of other epochs or images gets another label, with its status
    other = [{**c, "epochs": 15, "max_samples": 1000} for c in cfgs]
    assert "15 epochs · 1,000 images" in explain.group_title(
        "compare-20250101-120304-abcd", other, "compare", "stopped")
    assert explain.group_title("compare-20250101-120304-abcd", other, "compare",
                               "stopped").endswith("· seed 0 · stopped")
    # the CAE ignores ν: it is not shown as if it mattered (a walk read "ν = 1" on a CAE)
    assert explain.settings_text(cfgs[1]) == "λ = 0 · ν = — · preset quick · init released"
    diff = explain.sidebar_differences({"lam": 5e-5, "seed": 0}, {"lam": 50.0, "seed": 0})
    assert diff == ["λ: sidebar 5e-5, shown 50"]


def test_paper_value_only_beside_the_papers_setting():
    """§4: 0.966 (MNIST digit 0, Table 3) never beside a λ = 50 run; a quick run at the
    paper's λ is labelled a different protocol."""
    cfg = lambda lam: scaled_config("quick", "iaead", 4, dataset="mnist", normal_class=0, lam=lam).to_dict()  # noqa: E731
    assert explain.paper_cell(cfg(50.0)) == "— (λ = 50; the paper's is 5e-5)"
    assert explain.paper_cell(cfg(5e-5)) == "0.966 (different protocol)"
    # ... with the differing settings listed under the table (docs/method.md §7; walk 5)
    from app.views.runs import RunItem

    [line] = explain.protocol_lines([RunItem("IAEAD", "iaead", cfg(5e-5), "completed"),
                                     RunItem("IAEAD", "iaead", cfg(50.0), "completed")])
    assert line.startswith("IAEAD: different protocol: max_samples 3000 vs full set; epochs 4 vs 250;")
    # Deep SVDD on MNIST: the paper's Table 3 has no per-class value (walk 3: the caption
    # promised one for a bias-free Deep SVDD and the cell said only "—").
    svdd = scaled_config("quick", "deep-svdd", 4, dataset="mnist", normal_class=0).to_dict()
    assert explain.paper_cell(svdd) == "— (Table 3 has none for this data set, class and method)"
    fm = scaled_config("quick", "deep-svdd", 4, dataset="fashion-mnist", normal_class=0).to_dict()
    assert explain.paper_cell(fm).endswith(" (different protocol)")
    assert explain.paper_cell({**fm, "svdd_bias": True}) == (
        "— (Deep SVDD with biases; the paper's baseline is bias-free)")


def test_alerts_are_explained_in_words():
    """§3: each alert shows its kind's title and explanation with the record's message."""
    lines = explain.alert_lines({"alerts": [{"kind": "collapsed", "message": "spread 1e-07."}]})
    assert len(lines) == 1 and lines[0].endswith(". Spread 1e-07.")  # a sentence of its own
    try:
        from iaead_core.evaluation.health import ALERT_KINDS
    except ImportError:
        return
    assert "collapsed" in ALERT_KINDS and lines[0].startswith("**") and "—" in lines[0]


def test_stop_knows_who_started_a_group(registry):
    """§6: the registry remembers which browser session asked for a group; a second tab
    asking for the same group joins it rather than owning it alone."""
    a, b = Starter("tab-a", "Chrome on 10.0.0.1"), Starter("tab-b")
    g = registry.submit_group([cfg(epochs=200)], "compare", a)
    assert registry.submit_group([cfg(epochs=200)], "compare", b) == g
    assert [s.session for s in registry.starters(g)] == ["tab-a", "tab-b"]
    assert explain.started_words(a).startswith("another browser tab (Chrome on 10.0.0.1) at ")
    # the first tab presses Start again later: it is the latest, with its new time
    again = Starter("tab-a", "Chrome on 10.0.0.1", at=a.at + 60)
    assert registry.submit_group([cfg(epochs=200)], "compare", again) == g
    assert [(s.session, s.at) for s in registry.starters(g)] == [("tab-b", b.at), ("tab-a", again.at)]
    registry.stop_group(g)
    wait_until(lambda: not registry.busy())


def test_deleted_and_corrupt_folders_never_break_the_index(registry):
    """§6: a deleted run leaves its group (and the group list once it is empty); corrupt
    folders are listed with the reason instead of raising or vanishing."""
    g = registry.submit_group([cfg(epochs=2)], "compare")
    wait_until(lambda: not registry.group_active(g))
    index = RunIndex(registry.runs_root)
    assert known_groups(registry, index, "compare") == [g]
    import shutil

    shutil.rmtree(registry.jobs(g)[0].run_dir)
    assert group_items(registry, index, g) == []
    assert known_groups(registry, index, "compare") == []
    root = registry.runs_root
    (root / "bad-json").mkdir()
    (root / "bad-json" / "config.json").write_text("{not json")
    (root / "a-list").mkdir()
    (root / "a-list" / "config.json").write_text("[1, 2]")
    rows = {r["run_id"]: r for r in index.rows()}
    assert rows["bad-json"]["status"] == rows["a-list"]["status"] == "corrupt"
    assert "config.json" in rows["bad-json"]["error"]
    assert index.runs() == []


def test_runs_listing_uses_live_status(tmp_path):
    """§6: a folder that says "running" but whose process is gone is listed as interrupted."""
    d = tmp_path / "runs" / "20250101-000000-iaead-digits-0-s0-dead"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"config": cfg().to_dict(), "created": 1.0}))
    import socket

    (d / "status.json").write_text(json.dumps({"status": "running", "pid": 2**22 + 12345,
                                               "host": socket.gethostname(), "heartbeat": 1.0}))
    [row] = RunIndex(tmp_path / "runs").rows()
    assert row["status"] == "interrupted"
