"""λ sensitivity: IAEAD's final AUROC / AUPR against λ, from λ = 0 to total collapse.

A view of an experiment of kind ``fig4-lambda`` (:mod:`iaead_core.experiments`): the sidebar
sets its axes, Start queues its missing runs in the lab's job queue, and the curve is read
from the experiment's folder. A sweep run from the command line (``python -m iaead_core
experiment run fig4-lambda``) therefore shows here, and this one on the Experiments page.
"""

from __future__ import annotations

import time

import streamlit as st

from app import charts, explain, state, ui
from app.views import experiment_spec as xspec
from app.views import lambda_sweep as xlam
from app.views import experiment_progress as xprog
from app.views import experiment_results as xres

from iaead_core.config import PRESETS, QUICK_SEEDS
from iaead_core.data import DATASETS
from iaead_core.evaluation.analysis import (DEFAULT_LAMBDA_GRID, METRIC_NAMES, format_lambda,
                                            parse_lambda_grid, sweep_frame, sweep_summary)
from iaead_core.evaluation.metrics import COLLAPSE_MIN_RANK, COLLAPSE_RATIO
from iaead_core.evaluation.paper import PAPER_BEST_LAM
from iaead_core.experiments import ExperimentBusyError, ExperimentFolder
from iaead_core.experiments.estimate import format_duration
from iaead_core.experiments.runner import describe_point
from iaead_core.training.engine import select_device

reg = state.registry()
root = xspec.experiments_root()
data_root = str(state.data_root())
sb = st.sidebar
ui.keep_widget_state("sensitivity")  # settings survive page switches

watch = state.experiment_watch()

if "_sens_filled" not in st.session_state:  # first visit: the saved λ experiment, if any
    st.session_state["_sens_filled"] = True
    saved = ExperimentFolder(root / f"{xlam.LAMBDA_EXPERIMENT}-quick").saved_spec()
    if saved is not None and saved.datasets[0] in DATASETS:
        f = xlam.lambda_fields(saved)
        st.session_state.update({"sens_ds": f["dataset"], f"sens_cls_{f['dataset']}": f["classes"],
                                 "sens_rho": f["rho"], "sens_seeds": f["seeds"],
                                 "sens_grid": f["grid"]})
        if f["epochs"] is not None:
            st.session_state["sens_epochs_quick"] = f["epochs"]
        if f["max_samples"] is not None:
            st.session_state["sens_max_quick"] = f["max_samples"]

sb.header("Sweep")
dataset = ui.dataset_picker("sens_ds", sb)
n_classes = len(DATASETS[dataset].classes)
classes = sb.multiselect("Normal class(es)", list(range(n_classes)),
                         format_func=lambda k: ui.class_label(dataset, k),
                         **ui.PERSIST, key=ui.kept(f"sens_cls_{dataset}", [0]))
rho = sb.select_slider("Anomaly ratio ρ", options=[5, 10, 15, 20, 25],
                       format_func=lambda v: f"{v} %", **ui.PERSIST, key=ui.kept("sens_rho", 10))
n_seeds = sb.number_input("Seeds (0, 1, …)", 1, 10, **ui.PERSIST, key=ui.kept("sens_seeds", QUICK_SEEDS),
                          help=f"Each point averages this many seeds ({QUICK_SEEDS} by default: one "
                               "quick run's AUROC moves with the seed, see docs/method.md, "
                               "Stability).")
grid_text = sb.text_input(
    "λ grid", **ui.PERSIST, key=ui.kept("sens_grid", ", ".join(format_lambda(v) for v in DEFAULT_LAMBDA_GRID)),
    help="Numbers separated by commas; 0 is drawn apart from the log axis.")
preset = ui.preset_picker("sens_preset", sb)
epochs = sb.number_input("Epochs per run", 2, 1000,
                         **ui.PERSIST, key=ui.kept(f"sens_epochs_{preset}", PRESETS[preset]["epochs"]))
device = ui.device_picker("sens_device", sb)
max_samples = ui.images_picker("sens_max", preset, sb)
start_col, stop_col = sb.columns(2)
start = start_col.button("Start sweep", type="primary", width="stretch", key="sens_start")
stop = stop_col.button("Stop sweep", width="stretch", key="sens_stop")
problems = sb.container()

st.title("λ sensitivity")
st.caption("λ weighs the Deep SVDD term against reconstruction. At λ = 0 IAEAD is a plain "
           "autoencoder scored in its latent space; as λ grows the codes are pulled towards "
           "the centre c, and at a large enough λ they collapse onto one point, where the "
           "scores carry nothing but float noise and the metric is reported as degenerate "
           f"(at chance). The paper's best λ is {format_lambda(PAPER_BEST_LAM)}. What this "
           "code measures is drawn below from the runs themselves.")
st.info(ui.ORACLE_NOTE)

plan = None
try:
    grid = parse_lambda_grid(grid_text)
    if not classes:
        raise ValueError("Choose at least one normal class.")
    select_device(device)
    spec = xlam.lambda_spec(dataset, [int(k) for k in classes], rho / 100, int(n_seeds), grid,
                          preset, int(epochs), max_samples)
    plan = watch.plan(spec, root, data_root, device, meter=state.pace_meter())
    problems.caption(f"{len(plan.runs)} runs of IAEAD ({len(grid)} λ × {len(classes)} "
                     f"class(es) × {int(n_seeds)} seed(s)).")
except ValueError as e:
    problems.error(str(e))

when = time.strftime("%H:%M:%S")
if start:
    st.session_state.pop("sens_stopped_note", None)
    if plan is None:
        st.session_state["sens_message"] = ("error", "Not started: fix the settings first "
                                                     "(see the sidebar).")
    else:
        try:
            _, n = xprog.start(reg, plan, ui.starter())
            st.session_state["sens_message"] = (
                "success", f"{when}: queued {n} run(s)." if n else
                f"{when}: nothing to queue: every run of this sweep has completed, is running "
                "or is queued.")
        except (ValueError, ExperimentBusyError, OSError) as e:
            st.session_state["sens_message"] = ("error", f"Not started: {e}")
if stop:  # another tab's sweep: ask first (waiting runs are dropped, the running one stops
    st.session_state.pop("sens_message", None)  # after its batch; Start again resumes)
ui.stop_control(reg, None if plan is None else xprog.group_id(plan), stop, "sens", problems,
                what="sweep")
message = st.session_state.get("sens_message")
if message:
    getattr(problems, message[0])(message[1])
if plan is None:
    st.stop()

st.caption(f"Experiment **{plan.folder.dir.name}** (kind fig4-lambda) in `{plan.folder.dir}`; "
           "the Experiments page has its tables and report.")
metric = st.radio("Metric", list(METRIC_NAMES), format_func=METRIC_NAMES.get, horizontal=True,
                  key="sens_metric")


def sweep() -> bool:
    """Draw the sweep; True while its runs are queued or running here or on the command line."""
    ui.queue_panel()  # inside the polling fragment, so it stays current
    now = watch.plan(spec, root, data_root, device, meter=state.pace_meter())
    xprog.observe(state.pace_meter(), reg, now)  # the next refresh prices with these epochs
    states = xprog.run_states(now, reg)
    active = reg.group_active(xprog.group_id(now)) or now.folder.other_driver() is not None
    if not active:  # while it runs, the progress line's time left says it (kept current)
        st.markdown(xprog.cost_text(now, reg.slots))
    counts = xprog.state_counts(states)
    done = counts.get("completed", 0)
    others = xprog.unfinished_text(counts)  # stopped, failed, queued, not started, ...
    left = xprog.time_left(now, states, reg.slots)
    st.progress(done / max(1, len(now.runs)),
                text=f"{done} of {len(now.runs)} runs finished"
                     + (f" · {others}" if others else "")
                     + (f" · about {format_duration(left)} left" if active and left > 0 else ""))
    for frac, text in xprog.running_lines(now, states, time.time()):
        st.progress(frac, text=text)  # each running run's epochs, without opening a panel
    outside = xprog.outside_text(reg, now)
    if outside:
        st.info(outside)
    for p in now.runs:
        if states[p.run_id].state == "failed":
            st.error(f"**{describe_point(p.point)} failed.** {states[p.run_id].error or ''} "
                     "It runs again when the sweep is started again.")
    rows = xlam.lambda_rows(now)
    for r in rows:
        r["normal_class"] = ui.class_label(dataset, r["normal_class"])
    df = sweep_frame(rows)
    if df.empty:
        st.caption("No run of this sweep has finished yet; each point appears as soon as its "
                   "run finishes." if active else
                   "No run of this sweep has finished yet: press **Start sweep**; each point "
                   "appears as soon as its run finishes.")
        return bool(active)
    summary = sweep_summary(df, metric)
    ui.chart(charts.sweep_chart(summary, metric, PAPER_BEST_LAM), key="sens_chart")
    ui.auroc_help(key="sens_auroc_help")
    sentence = explain.sweep_sentence(summary, metric)
    if sentence:
        st.markdown(f"**Measured in this sweep.** {sentence}")
    st.caption(f"Red crosses: the final latent space collapsed (the codes' spread fell below "
               f"{COLLAPSE_RATIO:g} of the centre's norm, or they vary along fewer than "
               f"{COLLAPSE_MIN_RANK:g} directions). Open markers: the metric is degenerate — "
               f"the {explain.DEGENERATE_WHY}, so it is reported at chance; *raw* in the "
               "table is scikit-learn's value on that noise. Error bars: std over seeds; "
               f"*seeds* counts the seeds a point averages so far (of {int(n_seeds)} asked).")
    raw: dict[tuple, list[float]] = {}
    for r in rows:
        if r["degenerate"] and isinstance(r["raw"].get(metric), (int, float)):
            raw.setdefault((r["normal_class"], r["lam"]), []).append(r["raw"][metric])
    keys = list(zip(summary["normal_class"], summary["lam"]))
    table = summary.assign(
        lam=summary["lam"].map(format_lambda),
        std=[f"{v:.3f}" if n > 1 else "—"  # one seed has no spread ("—", not 0.000)
             for v, n in zip(summary["std"], summary["n"])],
        raw=[", ".join(f"{v:.3f}" for v in raw.get(k, [])) for k in keys]).rename(
        columns={"lam": "λ", "normal_class": "normal class",
                 "mean": f"{METRIC_NAMES[metric]} mean", "std": "std", "n": "seeds",
                 "n_degenerate": "degenerate seeds"})
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        f"{METRIC_NAMES[metric]} mean": st.column_config.NumberColumn(format="%.3f")})
    ids = [p.run_id for p in now.runs if states[p.run_id].state == "completed"]
    label = f"Open the {len(ids)} finished run(s) on the Runs page"
    try:
        st.page_link("pages/runs.py", label=label, icon=":material/folder_open:",
                     query_params={xres.QUERY_EXPERIMENT: now.folder.dir.name,
                                   xres.QUERY_RUNS: ",".join(ids)})
    except st.errors.StreamlitAPIException:  # the page shown on its own (no navigation)
        st.markdown(f"[{label}]({xres.runs_link(now.folder.dir.name, ids)})")
    return bool(active)


ui.poll(sweep, every=2.0, idle_every=10.0)  # another tab or the CLI may start its runs
