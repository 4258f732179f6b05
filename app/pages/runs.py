"""Runs: every saved run folder — filter, compare, export, delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, state, ui
from iaead_core.analysis import (METRIC_NAMES, curve_frame, format_lambda, seed_aggregate,
                                 seed_signature)
from iaead_core.runs import RunError, delete_run

reg, index = state.registry(), state.run_index()
sb = st.sidebar
ui.keep_widget_state()  # settings survive page switches

st.title("Runs")
st.caption(f"Every run saved under `{state.runs_root()}` (set IAEAD_RUNS_DIR to change); read "
           "from the run folders, so they survive a server restart.")
ui.queue_panel()

rows = index.rows()
if not rows:
    st.write("No saved runs yet: start one on the **Train** or **λ sensitivity** page.")
    st.stop()
table = pd.DataFrame(rows).sort_values("created", ascending=False)
table["created"] = pd.to_datetime(table["created"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
live = {r["run_id"] for r in rows if reg.is_running_dir(r["dir"])}
table.loc[table["run_id"].isin(live), "status"] = "running"
table.loc[(table["status"] == "running") & ~table["run_id"].isin(live), "status"] = "interrupted"

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

shown = ["run_id", "created", "status", "method", "dataset", "normal_class", "rho", "lam", "seed",
         "preset", "epochs_done", "epochs", "auroc", "aupr_in", "aupr_out", "collapsed", "error"]
st.dataframe(view[shown], hide_index=True, width="stretch",
             column_config={"auroc": st.column_config.NumberColumn(format="%.3f"),
                            "aupr_in": st.column_config.NumberColumn(format="%.3f"),
                            "aupr_out": st.column_config.NumberColumn(format="%.3f")})
st.caption(f"{len(view)} of {len(table)} runs. AUROC / AUPR: last epoch, each method's own score.")
st.download_button("Download these runs as CSV", view.drop(columns=["dir"]).to_csv(index=False),
                   file_name="iaead_runs.csv", mime="text/csv", key="runs_csv")

st.subheader("Compare curves")
ids = list(view["run_id"])
pick = st.multiselect("Runs to compare", ids, default=ids[:min(3, len(ids))], key="runs_pick")
c1, c2 = st.columns(2)
metric = c1.radio("Metric", list(METRIC_NAMES), format_func=METRIC_NAMES.get, horizontal=True,
                  key="runs_metric")
pool = c2.toggle("Mean ± std over seeds (pool runs that differ only in seed)", key="runs_pool")
if pick:
    by_id = {r.run_id: r for r in index.runs()}
    row_by_id = {r["run_id"]: r for r in rows}
    curves = []
    for rid in pick:
        run, row = by_id[rid], row_by_id[rid]
        df = curve_frame(run.records, rid)
        df = df[df["rule"] == row["primary_score"]]
        sig = seed_signature(row)
        setting = (f"{ui.method_title(row['method'])} · {row['dataset']} {row['normal_class']} · "
                   f"ρ={row['rho']:g} · λ={format_lambda(row['lam'])}" if pool else rid)
        curves.append(df.assign(setting=setting, sig=str(sig)))
    agg = seed_aggregate(pd.concat(curves, ignore_index=True), metric)
    st.plotly_chart(charts.compare_chart(agg, metric), width="stretch", key="runs_chart")

st.subheader("Delete runs")
victims = st.multiselect("Runs to delete", ids, key="runs_delete")
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
                except RunError as e:
                    errors.append(str(e))
            for key in ("runs_delete", "runs_confirm", "runs_pick"):
                st.session_state.pop(key, None)
            if errors:
                st.error("; ".join(errors))
            else:
                st.rerun()
