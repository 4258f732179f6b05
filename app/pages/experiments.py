"""Experiments: a whole study — its cost before it starts, start / stop / resume, and its
tables and figures filling in as its runs finish."""

from __future__ import annotations

import time

import streamlit as st

from app.views import experiment_spec as xspec
from app.views import experiment_progress as xprog
from app.views import experiment_results as xres
from app import state, ui
from iaead_core.data import DATASETS
from iaead_core.experiments import KINDS, ExperimentBusyError
from iaead_core.experiments.estimate import format_duration
from iaead_core.experiments.runner import describe_point
from iaead_core.experiments.spec import method_names
from iaead_core.methods import METHODS, SCORE_RULES

reg = state.registry()
root = xspec.experiments_root()
data_root = str(state.data_root())
sb = st.sidebar
ui.keep_widget_state("experiments")  # settings survive page switches

watch = state.experiment_watch()
saved = xspec.saved_experiments(root)
bases = list(xspec.BUILTINS) + ["custom"] + [s for s in saved if s not in xspec.BUILTINS]


def base_label(name: str) -> str:
    if name in xspec.BUILTINS:
        return f"{name} (built-in)"
    return "custom: start from one IAEAD run" if name == "custom" else f"saved: {name}"


def fill(from_preset: bool = False) -> None:
    """Put the chosen starting point's axes into the fields (a saved experiment keeps its
    own scale; a built-in takes the scale chosen)."""
    base = st.session_state.get("exp_base")
    if from_preset and base not in xspec.BUILTINS and base != "custom":
        return  # a saved spec: the scale is just one more field
    try:
        spec = xspec.base_spec(base, st.session_state.get("exp_preset", "quick"), root)
    except ValueError as e:
        st.session_state["exp_message"] = (None, "error", str(e))
        return
    for k, v in xspec.fields_from_spec(spec).items():
        st.session_state[f"exp_{k}"] = v


if "exp_name" not in st.session_state:  # first visit: the newest saved experiment, else Fig. 4
    st.session_state["exp_base"] = saved[0] if saved else "fig4-lambda"
    st.session_state.setdefault("exp_preset", "quick")
    fill()
if st.session_state.get("exp_base") not in bases:  # its folder was deleted
    st.session_state["exp_base"] = "custom"

# ---------------------------------------------------------------- the spec (sidebar)
sb.header("Experiment")
base = sb.selectbox("Start from", bases, format_func=base_label, key=ui.kept("exp_base"),
                    on_change=fill, **ui.PERSIST,
                    help="A built-in study of the paper, a saved experiment (to watch or resume "
                         "it), or a small custom one. Then change any axis below.")
if base in xspec.BUILTINS:
    sb.caption(xspec.BUILTINS[base])
sb.radio("Scale", ["quick", "paper"], horizontal=True, key=ui.kept("exp_preset"), **ui.PERSIST,
         on_change=fill, kwargs={"from_preset": True},
         format_func={"quick": "quick (CPU)", "paper": "paper (full protocol)"}.get,
         help="quick: light network, 3,000-image subsample, 30 epochs (not the paper's "
              "protocol, and the report says so); paper: the paper's protocol.")
sb.text_input("Name", key=ui.kept("exp_name"), **ui.PERSIST,
              help="Names the folder, <name>-<scale>. Runs are named by a hash of their "
                   "settings, so two experiments that share a run share its result.")
sb.selectbox("Kind (the report's main view)", KINDS, key=ui.kept("exp_kind"), **ui.PERSIST)
sb.multiselect("Data sets", list(DATASETS), key=ui.kept("exp_datasets"), **ui.PERSIST,
               format_func=lambda d: DATASETS[d].title)
sb.text_input("Normal classes", key=ui.kept("exp_classes"), **ui.PERSIST,
              help="all; a list such as 0, 2, 8 (indices or names); or per data set: "
                   "mnist: 0, 2, 8; fashion-mnist: 0, 6")
sb.text_input("Anomaly ratios ρ", key=ui.kept("exp_rho"), **ui.PERSIST, help="e.g. 0.1, 0.2")
sb.multiselect("Methods", method_names(), key=ui.kept("exp_methods"), **ui.PERSIST,
               format_func=lambda m: getattr(METHODS.get(m), "title", m))
sb.text_input("λ values (blank: each method's default)", key=ui.kept("exp_lam"), **ui.PERSIST,
              help="e.g. 0, 5e-5, 0.5. A method that ignores λ (the CAE) runs once.")
sb.text_input("ν values (blank: each method's default)", key=ui.kept("exp_nu"), **ui.PERSIST)
sb.text_input("Seeds", key=ui.kept("exp_seeds"), **ui.PERSIST,
              help="A count (3 → seeds 0, 1, 2) or a list such as 0, 4, 7.")
sb.multiselect("Scoring rules to report (none: each method's own)", list(SCORE_RULES),
               key=ui.kept("exp_rules"), **ui.PERSIST)
sb.number_input("Epochs (blank: the scale's)", min_value=1, max_value=10_000, step=1,
                key=ui.kept("exp_epochs"), **ui.PERSIST)
sb.number_input("Images per set (blank: the scale's; 0: the whole set)", min_value=0,
                max_value=100_000, step=100, key=ui.kept("exp_max_samples"), **ui.PERSIST)
with sb.expander("More axes and fixed settings (TOML)"):
    st.text_area("[axes] and [config] tables", key=ui.kept("exp_more"), height=140, **ui.PERSIST,
                 help="[axes] varies any other setting (init = [\"released\", \"pytorch\"]); "
                      "[config] fixes one for every run (warmup_epochs = 1), or for one "
                      "method's runs under [config.deep-svdd].")
start_col, stop_col = sb.columns(2)
start = start_col.button("Start / resume", type="primary", width="stretch", key="exp_start")
stop = stop_col.button("Stop", width="stretch", key="exp_stop")

# ---------------------------------------------------------------- main area
st.title("Experiments")
st.caption("A study as one object: every combination of the axes on the left is one run, named "
           "by a hash of its settings, so starting again resumes (finished runs are skipped, "
           "failed and stopped ones run again). The runs train in the lab's job queue; the "
           "tables and figures are read from the experiment's folder under "
           f"`{root}` (set IAEAD_EXPERIMENTS_DIR to change), as `python -m iaead_core "
           "experiment report` writes them.")
st.info(ui.ORACLE_NOTE)

try:
    _fields = {k: st.session_state.get(f"exp_{k}") for k in xspec.FIELDS}
    spec = xspec.spec_from_fields(_fields, description=xspec.base_description(base, _fields))
    plan = watch.plan(spec, root, data_root, meter=state.pace_meter())
except ValueError as e:
    st.error(f"This spec cannot run: {e}")
    st.stop()

# What the last press did stays on screen (the page reruns as soon as runs go live) until
# the next press, for the experiment it was about.
when = time.strftime("%H:%M:%S")
if start:
    st.session_state.pop("exp_stopped_note", None)
    try:
        group, n = xprog.start(reg, plan, ui.starter())
        st.session_state["exp_message"] = (
            plan.folder.dir.name, "success",
            f"{when}: queued {n} run(s) of {plan.folder.dir.name}." if n else
            f"{when}: nothing to queue: every run of {plan.folder.dir.name} has completed, is "
            "running or is queued.")
    except (ValueError, ExperimentBusyError, OSError) as e:
        st.session_state["exp_message"] = (plan.folder.dir.name, "error", f"Not started: {e}")
if stop:  # another tab's experiment: ask first (as the Train and λ pages do)
    st.session_state.pop("exp_message", None)
ui.stop_control(reg, xprog.group_id(plan), stop, "exp", what="experiment")
message = st.session_state.get("exp_message")
if message and message[0] in (None, plan.folder.dir.name):
    getattr(st, message[1])(message[2])

st.markdown(f"**{plan.folder.dir.name}** · kind {spec.kind} · scale {spec.preset} · "
            f"{len(plan.runs)} runs · folder `{plan.folder.dir}`")
if spec.description:
    st.caption(spec.description)


def open_cell(table, ids: list[list[str]]) -> None:
    """A same-tab way to a cell's runs: pick the cell, follow the link."""
    if table.empty:
        return
    skip = {"AUROC", "AUPR-in", "AUPR-out", "runs"}
    labels = [" · ".join(str(v) for k, v in row.items() if k not in skip)
              for row in table.to_dict("records")]
    i = st.selectbox("Open a cell's runs on the Runs page (or use the table's *runs* links)",
                     range(len(labels)), format_func=labels.__getitem__, key="exp_cell")
    params = {xres.QUERY_EXPERIMENT: plan.folder.dir.name, xres.QUERY_RUNS: ",".join(ids[i])}
    try:
        st.page_link("pages/runs.py", label=f"Open its {len(ids[i])} run(s) on the Runs page",
                     icon=":material/folder_open:", query_params=params)
    except st.errors.StreamlitAPIException:  # the page shown on its own (no navigation)
        st.markdown(f"[Open its {len(ids[i])} run(s) on the Runs page]"
                    f"({xres.runs_link(plan.folder.dir.name, ids[i])})")


def live() -> bool:
    """Progress, failures, tables and figures of the experiment; True while its runs are
    queued or running here, or the command line runs it."""
    ui.queue_panel()
    now = watch.plan(spec, root, data_root, meter=state.pace_meter())
    xprog.observe(state.pace_meter(), reg, now)  # the next refresh prices with these epochs
    states = xprog.run_states(now, reg)
    counts = xprog.state_counts(states)
    active = reg.group_active(xprog.group_id(now))
    other = now.folder.other_driver()  # the command line, a Ray driver, another lab server
    cli = other is not None
    done, total = counts.get("completed", 0), len(now.runs)
    if not (active or cli):  # while it runs, the time left below says it (kept current)
        st.markdown(xprog.cost_text(now, reg.slots))
    words = xprog.unfinished_text(counts)
    st.progress(done / total if total else 0.0,
                text=f"{done} of {total} runs completed" + (f" · {words}" if words else ""))
    for frac, text in xprog.running_lines(now, states, time.time()):
        st.progress(frac, text=text)  # each running run's epochs, without opening a panel
    left = xprog.time_left(now, states, reg.slots)
    if active and left > 0:
        st.caption(f"About {format_duration(left)} left (running runs at their own pace so "
                   "far, the others at the pace measured in this process at the load now, "
                   "where there is one).")
    outside = xprog.outside_text(reg, now)
    if outside:
        st.info(outside)
    if cli:
        by = other.get("by") if isinstance(other.get("by"), str) else "another process"
        st.info(f"{by[:1].upper()}{by[1:]} (process {other.get('pid')} on {other.get('host')}) "
                "is running this experiment; its runs fill in here as they finish.")
    failed = [(p, states[p.run_id]) for p in now.runs if states[p.run_id].state == "failed"]
    for p, s in failed[:5]:
        st.error(f"**{describe_point(p.point)} failed.** {s.error or ''} It runs again when "
                 "the experiment is resumed.")
    if len(failed) > 5:
        st.error(f"… and {len(failed) - 5} more failed runs (see the runs table below).")

    results, agg, ids = xres.cells(now)
    try:
        figs = xres.figures(now, results, agg)
    except (ValueError, KeyError, TypeError) as e:  # a report figure that cannot be drawn yet
        figs = []
        st.error(f"The figures cannot be drawn from these runs: {type(e).__name__}: {e}")
    for i, fig in enumerate(figs):
        ui.chart(fig, key=f"exp_fig_{i}")
    if not figs and not results.empty:
        why = xspec.figure_missing_reason(now.spec.kind, results["rho"].nunique(),
                                          len({float(v) for v in results["lam"].dropna()}))
        if why:
            st.info(why)
    if not agg.empty and not agg["complete"].all():
        st.caption("A point appears when every run of its cell has completed: a cell never "
                   "averages fewer seeds or classes than the spec asks for.")
    st.subheader("Table 2: class-averaged cells")
    ui.auroc_help(key="exp_auroc_help")
    table = xres.cell_table(now, results, agg, ids)
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "runs": st.column_config.LinkColumn("runs", display_text="open runs",
                                            help="The cell's runs on the Runs page")})
    st.caption("Mean ± std over seeds, on a 0–1 scale as on every page of the lab, of the "
               "final epoch (for each seed the mean over the classes); the paper's value and "
               "the difference Δ beside AUROC where the setting is the paper's. `k/n runs`: the "
               "cell waits for its runs. *degenerate*: a run's scores differed only by float "
               "noise. The downloaded report writes them in % like the paper.")
    open_cell(table, ids)
    with st.expander("Table 3: per class"):
        r3, agg3, ids3 = xres.cells(now, by_class=True)
        st.dataframe(xres.cell_table(now, r3, agg3, ids3, by_class=True), hide_index=True,
                     width="stretch", column_config={
                         "runs": st.column_config.LinkColumn("runs", display_text="open runs")})
    with st.expander(f"Every run ({total})"):
        st.dataframe(xprog.run_table(now, states), hide_index=True, width="stretch")

    st.subheader("Download the report")
    name = now.folder.dir.name
    c1, c2, c3 = st.columns(3)
    c1.download_button("Report (HTML)", data=lambda: xres.report_html(watch.plan(spec, root, data_root)),
                       file_name=f"{name}-report.html", mime="text/html", on_click="ignore",
                       key="exp_dl_html", icon=":material/download:")
    c2.download_button("Tables (Markdown)", data=lambda: xres.report_markdown(watch.plan(spec, root, data_root)),
                       file_name=f"{name}-tables.md", mime="text/markdown", on_click="ignore",
                       key="exp_dl_md", icon=":material/download:")
    c3.download_button("Runs (CSV)", data=lambda: xres.runs_csv(watch.plan(spec, root, data_root)),
                       file_name=f"{name}-runs.csv", mime="text/csv", on_click="ignore",
                       key="exp_dl_csv", icon=":material/download:")
    st.caption("The HTML report is also written into the experiment's report/ folder, as "
               "`experiment report` does.")
    return active or cli


ui.poll(live, every=2.0, idle_every=10.0)  # another tab or the CLI may start its runs
