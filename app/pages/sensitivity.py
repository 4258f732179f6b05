"""λ sensitivity: IAEAD's final AUROC / AUPR against λ, from λ = 0 to total collapse."""

from __future__ import annotations

import streamlit as st

from app import charts, explain, state, ui
from app.views import group_items, known_groups
from iaead_core.analysis import (DEFAULT_LAMBDA_GRID, METRIC_NAMES, format_lambda,
                                 parse_lambda_grid, scaled_config, sweep_frame, sweep_summary)
from iaead_core.config import PRESETS
from iaead_core.data import DATASETS
from iaead_core.engine import select_device
from iaead_core.metrics import COLLAPSE_MIN_RANK, COLLAPSE_RATIO
from iaead_core.paper import PAPER_BEST_LAM

reg, index = state.registry(), state.run_index()
sb = st.sidebar
ui.keep_widget_state("sensitivity")  # settings survive page switches

sb.header("Sweep")
dataset = ui.dataset_picker("sens_ds", sb)
n_classes = len(DATASETS[dataset].classes)
classes = sb.multiselect("Normal class(es)", list(range(n_classes)),
                         format_func=lambda k: ui.class_label(dataset, k),
                         **ui.PERSIST, key=ui.kept(f"sens_cls_{dataset}", [0]))
rho = sb.select_slider("Anomaly ratio ρ", options=[5, 10, 15, 20, 25],
                       format_func=lambda v: f"{v} %", **ui.PERSIST, key=ui.kept("sens_rho", 10))
n_seeds = sb.number_input("Seeds (0, 1, …)", 1, 10, **ui.PERSIST, key=ui.kept("sens_seeds", 1))
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

try:
    grid = parse_lambda_grid(grid_text)
    problems.caption(f"{len(grid) * len(classes) * int(n_seeds)} runs of IAEAD "
                     f"({len(grid)} λ × {len(classes)} class(es) × {int(n_seeds)} seed(s)).")
except ValueError as e:
    grid = None
    problems.error(str(e))

if start:
    st.session_state.pop("sens_error", None)
    try:
        if grid is None:
            raise ValueError("Fix the λ grid first (see above).")
        if not classes:
            raise ValueError("Choose at least one normal class.")
        select_device(device)
        # Seed-major order: the whole curve appears for seed 0 first, then fills in.
        cfgs = [scaled_config(preset, "iaead", int(epochs), dataset=dataset, normal_class=int(k),
                              rho=rho / 100, seed=s, lam=lam, device=device,
                              data_root=str(state.data_root()), download=True,
                              max_samples=max_samples)
                for s in range(int(n_seeds)) for k in classes for lam in grid]
        st.session_state["sens_group"] = reg.submit_group(cfgs, "sweep", ui.starter())
    except ValueError as e:
        st.session_state["sens_error"] = ("input", str(e))

groups = known_groups(reg, index, "sweep")
ui.stop_control(reg, ui.shown_group(groups, "sens_group"), stop, "sens", problems, what="sweep")
err = st.session_state.get("sens_error")
if err:
    problems.error(err[1])

st.title("λ sensitivity")
st.caption("λ weighs the Deep SVDD term against reconstruction. At λ = 0 IAEAD is a plain "
           "autoencoder scored in its latent space; as λ grows the codes are pulled towards "
           "the centre c, and at a large enough λ they collapse onto one point, where the "
           "scores carry nothing but float noise and the metric is reported as degenerate "
           f"(at chance). The paper's best λ is {format_lambda(PAPER_BEST_LAM)}. What this "
           "code measures is drawn below from the runs themselves.")
st.info(ui.ORACLE_NOTE)
titles = {g: explain.group_title(g, [i.config for i in group_items(reg, index, g)], "sweep")
          for g in groups}
group = ui.group_picker(groups, "sens_group", "Sweep shown", titles=titles)
metric = st.radio("Metric", list(METRIC_NAMES), format_func=METRIC_NAMES.get, horizontal=True,
                  key="sens_metric")


def sweep() -> bool:
    """Draw the chosen sweep; True while runs are queued or running."""
    ui.queue_panel()  # inside the polling fragment, so it stays current
    if group is None:
        st.write("Pick the grid in the sidebar and press **Start sweep**; each point appears "
                 "as soon as its run finishes.")
        return False
    items = group_items(reg, index, group)
    done = [i for i in items if i.status == "completed" and i.records]
    active = [i for i in items if i.active]
    st.progress(len(done) / max(1, len(items)),
                text=f"{len(done)} of {len(items)} runs finished"
                     + (f" · about {ui.fmt_seconds(ui.group_eta(items))} left" if active else ""))
    ui.progress_panel([i for i in items if i.status == "running"])
    ui.failures(items, "sens_ds")
    rows, degen, raw = [], {}, {}
    for it in done:
        last = it.records[-1]
        m = (last.get("metrics") or {}).get(last.get("primary_score")) or {}
        if not isinstance(m.get(metric), (int, float)):
            continue  # a run without labels has no metric to plot
        key = (ui.class_label(it.config.get("dataset", ""), it.config.get("normal_class")),
               float(it.config.get("lam", 0.0)))
        degen.setdefault(key, []).append(explain.is_degenerate(m))
        if explain.is_degenerate(m) and isinstance((m.get("raw") or {}).get(metric), (int, float)):
            raw.setdefault(key, []).append(m["raw"][metric])
        rows.append({"lam": key[1], "normal_class": key[0],
                     "seed": it.config.get("seed"), "status": it.status,
                     "collapsed": (last.get("diagnostics") or {}).get("collapsed"),
                     "degenerate": explain.is_degenerate(m),
                     **{k: m.get(k) for k in METRIC_NAMES}})
    df = sweep_frame(rows)
    if df.empty:
        st.caption("No run of this sweep has finished yet.")
        return bool(active)
    summary = sweep_summary(df, metric)
    keys = list(zip(summary["normal_class"], summary["lam"]))
    if "degenerate" not in summary:  # a core without it: every seed's metric is float noise
        summary["degenerate"] = [bool(degen.get(k)) and all(degen[k]) for k in keys]
    st.plotly_chart(charts.sweep_chart(summary, metric, PAPER_BEST_LAM), width="stretch",
                    key="sens_chart")
    sentence = explain.sweep_sentence(summary, metric)
    if sentence:
        st.markdown(f"**Measured in this sweep.** {sentence}")
    st.caption(f"Red crosses: the final latent space collapsed (the codes' spread fell below "
               f"{COLLAPSE_RATIO:g} of the centre's norm, or they vary along fewer than "
               f"{COLLAPSE_MIN_RANK:g} directions). Open markers: the metric is degenerate — "
               f"the {explain.DEGENERATE_WHY}, so it is reported at chance; *raw* in the "
               "table is scikit-learn's value on that noise. Error bars: std over seeds.")
    table = summary.assign(
        lam=summary["lam"].map(format_lambda),
        raw=[", ".join(f"{v:.3f}" for v in raw.get(k, [])) for k in keys]).rename(
        columns={"mean": f"{METRIC_NAMES[metric]} mean", "std": "std", "n": "seeds",
                 "n_degenerate": "degenerate seeds"})
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        f"{METRIC_NAMES[metric]} mean": st.column_config.NumberColumn(format="%.3f"),
        "std": st.column_config.NumberColumn(format="%.3f")})
    return bool(active)


ui.poll(sweep, every=2.0)
