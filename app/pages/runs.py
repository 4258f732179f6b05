"""Runs: every saved run folder — filter, compare, export, delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, explain, state, ui
from app.opened import opened_runs
from iaead_core.analysis import METRIC_NAMES, curve_frame, format_lambda, seed_aggregate, seed_signature
from iaead_core.runs import RunError, delete_run

reg, index = state.registry(), state.run_index()
sb = st.sidebar
ui.keep_widget_state("runs")  # settings survive page switches

#: Columns of the table, in order: what identifies a result and its settings first, then the
#: metric, so AUROC is on screen without scrolling; bookkeeping last.
SHOWN = ["status", "method", "dataset", "normal_class", "rho", "lam", "nu", "auroc", "degenerate",
         "aupr_in", "aupr_out", "collapsed", "alerts", "preset", "init", "seed", "epochs_done",
         "epochs", "created", "run_id", "error"]
#: The CSV holds every row field (``degenerate``, ``auroc_raw`` included) with numbers as
#: numbers, λ written like everywhere else (``5e-5``, which still parses as a float).
CSV_DROP = ["dir"]

st.title("Runs")
st.caption(f"Every run saved under `{state.runs_root()}` (set IAEAD_RUNS_DIR to change); read "
           "from the run folders, so they survive a server restart. " + ui.RELIABILITY_NOTE)
ui.queue_panel()

opened = opened_runs()  # ?experiment=…&runs=…: one experiment cell's runs (Experiments page)
if opened is not None:
    index = opened.index
rows = index.rows() if opened is None else opened.rows()
if not rows:
    st.write("No saved runs yet: start one on the **Train** or **λ sensitivity** page.")
    st.stop()
table = pd.DataFrame(rows)
for col in SHOWN + ["primary_score", "dir"]:
    if col not in table:
        table[col] = None
table = table.sort_values("created", ascending=False, na_position="last")
table["created"] = pd.to_datetime(table["created"], unit="s", errors="coerce").dt.strftime("%Y-%m-%d %H:%M:%S")
live = {r["run_id"] for r in rows if reg.is_running_dir(r["dir"])}
table.loc[table["run_id"].isin(live), "status"] = "running"
raw_table = table.copy()  # numbers as numbers, for the CSV
table["lam"] = [format_lambda(v) if isinstance(v, (int, float)) else "—" for v in table["lam"]]
table["nu"] = [f"{v:g}" if isinstance(v, (int, float)) else "—" for v in table["nu"]]
table["rho"] = [f"{v * 100:g} %" if isinstance(v, (int, float)) else "—" for v in table["rho"]]

corrupt = table[table["status"] == "corrupt"]
if len(corrupt):
    st.warning(f"{len(corrupt)} folder(s) cannot be read and are listed as *corrupt* with the "
               "reason in the error column: " + "; ".join(corrupt["run_id"].astype(str)))

sb.header("Filter")
f_method = sb.multiselect("Method", sorted(table["method"].dropna().unique()), key="runs_method",
                          format_func=ui.method_title)
f_data = sb.multiselect("Data set", sorted(table["dataset"].dropna().unique()), key="runs_data")
f_status = sb.multiselect("Status", sorted(table["status"].dropna().unique()), key="runs_status")
f_text = sb.text_input("Run id contains", key="runs_text")
view = table
for col, chosen in (("method", f_method), ("dataset", f_data), ("status", f_status)):
    if chosen:
        view = view[view[col].isin(chosen)]
if f_text:
    view = view[view["run_id"].str.contains(f_text, case=False, regex=False)]

st.dataframe(
    view[SHOWN], hide_index=True, width="stretch",
    column_config={
        "status": st.column_config.TextColumn("status", width="small"),
        "method": st.column_config.TextColumn("method", width="small"),
        "dataset": st.column_config.TextColumn("data", width="small"),
        "normal_class": st.column_config.TextColumn("class", width="small"),
        "rho": st.column_config.TextColumn("ρ", width="small"),
        "lam": st.column_config.TextColumn("λ", width="small"),
        "nu": st.column_config.TextColumn("ν", width="small"),
        "auroc": st.column_config.NumberColumn("AUROC", format="%.3f", width="small"),
        "degenerate": st.column_config.CheckboxColumn(
            "degenerate", width="small",
            help=f"The {explain.DEGENERATE_WHY}: AUROC reported as 0.5 and AUPR as the base "
                 "rate; scikit-learn's value on the noise is in the CSV (auroc_raw)."),
        "aupr_in": st.column_config.NumberColumn("AUPR-in", format="%.3f", width="small"),
        "aupr_out": st.column_config.NumberColumn("AUPR-out", format="%.3f", width="small"),
        "collapsed": st.column_config.CheckboxColumn("collapsed", width="small"),
        "alerts": st.column_config.TextColumn("alerts", width="small"),
        "preset": st.column_config.TextColumn("preset", width="small"),
        "init": st.column_config.TextColumn("init", width="small"),
        "seed": st.column_config.NumberColumn("seed", width="small"),
        "epochs_done": st.column_config.NumberColumn("done", width="small"),
        "epochs": st.column_config.NumberColumn("of", width="small"),
    })
st.caption(f"{len(view)} of {len(table)} runs. AUROC / AUPR: last epoch, each method's own score. "
           "Status *interrupted*: the run's process ended without finishing it (a crash, a "
           "kill, a server restart).")
csv = raw_table.loc[view.index].drop(columns=CSV_DROP)
csv["lam"] = [format_lambda(v) if isinstance(v, (int, float)) else "" for v in csv["lam"]]
st.download_button("Download these runs as CSV", csv.to_csv(index=False),
                   file_name="iaead_runs.csv", mime="text/csv", key="runs_csv")

st.subheader("Compare curves")
readable = view[view["status"] != "corrupt"]
ids = list(readable["run_id"])
st.session_state["runs_pick"] = [r for r in st.session_state.get("runs_pick", ids[:min(3, len(ids))])
                                 if r in ids]  # drop runs deleted since
pick = st.multiselect("Runs to compare", ids, key="runs_pick")
c1, c2 = st.columns(2)
metric = c1.radio("Metric", list(METRIC_NAMES), format_func=METRIC_NAMES.get, horizontal=True,
                  key="runs_metric")
pool = c2.toggle("Mean ± std over seeds (pool runs that differ only in seed)", key="runs_pool")
by_id = {r.run_id: r for r in index.runs()}
row_by_id = {r["run_id"]: r for r in rows}
curves, degen_points = [], {}
for rid in pick:
    run, row = by_id.get(rid), row_by_id.get(rid)
    if run is None or row is None:
        continue  # deleted between two refreshes
    df = curve_frame(run.records, rid)
    df = df[df["rule"] == row["primary_score"]]
    sig = seed_signature(row)
    setting = (f"{ui.method_title(row['method'])} · {row['dataset']} {row['normal_class']} · "
               f"ρ={row['rho']:g} · λ={format_lambda(row['lam'])}" if pool else rid)
    curves.append(df.assign(setting=setting, sig=str(sig)))
    for r in run.records:  # a pooled point is degenerate when every pooled run's is
        m = (r.get("metrics") or {}).get(row["primary_score"])
        degen_points.setdefault((setting, r["epoch"]), []).append(explain.is_degenerate(m))
if curves and sum(len(c) for c in curves):
    agg = seed_aggregate(pd.concat(curves, ignore_index=True), metric)
    degen = {k for k, v in degen_points.items() if v and all(v)}
    st.plotly_chart(charts.compare_chart(agg, metric, degen), width="stretch", key="runs_chart")

st.subheader("Delete runs")
all_ids = list(view["run_id"])
victims = st.multiselect("Runs to delete", all_ids, key="runs_delete")
if victims:
    busy = [v for v in victims if v in live]
    if busy:
        st.warning(f"{len(busy)} of them are still running; stop them first: {', '.join(busy)}")
    elif st.checkbox(f"Yes, delete {len(victims)} run folder(s) permanently", key="runs_confirm"):
        if st.button("Delete", type="primary", key="runs_do_delete"):
            dirs = {r["run_id"]: r["dir"] for r in rows}
            errors = []
            for v in victims:
                try:
                    delete_run(dirs[v])
                except (RunError, OSError) as e:
                    errors.append(str(e))
            for key in ("runs_delete", "runs_confirm", "runs_pick"):
                st.session_state.pop(key, None)
            if errors:
                st.error("; ".join(errors))
            else:
                st.rerun()
