"""Runs: the run folders of the lab's runs folder (IAEAD_RUNS_DIR: the runs trained on the
Train and Your images pages), or the runs of one experiment opened by a link — filter,
compare, export, delete."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app import charts, explain, state, ui
from app.opened import opened_runs
from app.views.runs import SEEN_RUNS, saved_item

from iaead_core.evaluation.analysis import (METRIC_NAMES, curve_frame, format_lambda,
                                            seed_aggregate, seed_signature)
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

#: Where the runs this page does not list are (an experiment keeps its runs in its own folder).
ELSEWHERE = ("An experiment's runs (those of the **λ sensitivity** page included) are saved in "
             "the experiment's own folder: the **Experiments** page lists every one with its "
             "state (stopped and failed ones too), the **λ sensitivity** page counts them by "
             "state, and both link here to show the finished ones.")

st.title("Runs")
head = st.container()  # what this page lists: known once the address has been read
ui.queue_panel()

opened = opened_runs()  # ?experiment=…&runs=…: one experiment cell's runs (Experiments page)
if opened is not None:
    index = opened.index
    head.caption(f"The runs of experiment **{opened.folder.name}** that the link asks for, read "
                 f"from its folder `{opened.folder / 'runs'}`. " + ui.RELIABILITY_NOTE)
else:
    head.caption(f"The runs trained on the **Train** and **Your images** pages (and by "
                 f"`python -m iaead_core train`), saved under `{state.runs_root()}` (set "
                 "IAEAD_RUNS_DIR to change); read from the run "
                 "folders, so they survive a server restart. " + ELSEWHERE + " "
                 + ui.RELIABILITY_NOTE)
rows = index.rows() if opened is None else opened.rows()
if not rows:
    if opened is None:
        st.write("No saved runs yet: start one on the **Train** or **Your images** page. "
                 + ELSEWHERE)
    else:
        st.write("None of the runs this link asks for has a folder (not started yet, or "
                 "deleted).")
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


def _shown(values, fmt) -> list[str]:
    """Numbers as text, "—" for a missing one (pandas turns None into NaN in a float column,
    which "{:g}" would write "nan")."""
    return [fmt(v) if isinstance(v, (int, float)) and math.isfinite(v) else "—" for v in values]


# AUROC and AUPR as text, as the Train and Experiments pages write the same run's own score
# ("0.956", "0.500 — degenerate (raw 0.699)", "—" without labels: never "None")
_recs = table.to_dict("records")
for _k in ("auroc", "aupr_in", "aupr_out"):
    table[_k] = [explain.row_metric_text(r, _k) for r in _recs]
table["lam"] = _shown(table["lam"], format_lambda)
table["nu"] = _shown(table["nu"], lambda v: f"{v:g}")
table["rho"] = _shown(table["rho"], lambda v: f"{v * 100:g} %")

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
    view[SHOWN].assign(method=view["method"].map(  # "Deep SVDD", as every other page writes it
        lambda m: ui.method_title(m) if isinstance(m, str) else m)), hide_index=True, width="stretch",
    column_config={
        "status": st.column_config.TextColumn("status", width="small"),
        "method": st.column_config.TextColumn("method", width="small"),
        "dataset": st.column_config.TextColumn("data", width="small"),
        "normal_class": st.column_config.TextColumn("class", width="small"),
        "rho": st.column_config.TextColumn("ρ", width="small"),
        "lam": st.column_config.TextColumn("λ", width="small"),
        "nu": st.column_config.TextColumn("ν", width="small"),
        "auroc": st.column_config.TextColumn("AUROC", width="medium"),
        "degenerate": st.column_config.CheckboxColumn(
            "degenerate", width="small",
            help=f"The {explain.DEGENERATE_WHY}: AUROC reported as 0.5 and AUPR as the base "
                 "rate; scikit-learn's value on the noise is in the CSV (auroc_raw)."),
        "aupr_in": st.column_config.TextColumn("AUPR-in", width="small"),
        "aupr_out": st.column_config.TextColumn("AUPR-out", width="small"),
        "collapsed": st.column_config.CheckboxColumn("collapsed", width="small"),
        "alerts": st.column_config.TextColumn("alerts", width="small"),
        "preset": st.column_config.TextColumn("preset", width="small"),
        "init": st.column_config.TextColumn("init", width="small"),
        "seed": st.column_config.NumberColumn("seed", width="small"),
        "epochs_done": st.column_config.NumberColumn("done", width="small"),
        "epochs": st.column_config.NumberColumn("of", width="small"),
    })
ui.auroc_help(key="runs_auroc_help")
st.caption(f"{len(view)} of {len(table)} runs. AUROC / AUPR: last epoch, each method's own score."
           + (" Status *interrupted*: the run's process ended without finishing it (a crash, a "
              "kill, a server restart)." if (view["status"] == "interrupted").any() else ""))
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


def _num(v, fmt) -> str:
    return fmt(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else "?"


#: Settings a legend names only where the compared runs differ in them (with the method, λ
#: and seed, together every field of :func:`seed_signature`): (whether a run has it, text).
_VARYING = ((lambda r: True, lambda r: f"{r.get('dataset')} {r.get('normal_class')}"),
            (lambda r: True, lambda r: f"ρ = {_num(r.get('rho'), lambda v: f'{v * 100:g} %')}"),
            (lambda r: r.get("method") == "iaead",
             lambda r: "ν = —" if r.get("nu") is None else f"ν = {_num(r.get('nu'), lambda v: f'{v:g}')}"),
            (lambda r: True, lambda r: f"{r.get('preset')}"),
            (lambda r: True, lambda r: f"{_num(r.get('epochs'), lambda v: f'{v:g}')} epochs"),
            (lambda r: True, lambda r: f"n = {_num(r.get('n'), lambda v: f'{v:g}')}"))


def curve_labels(picked: list[dict], pooled: bool) -> dict[str, str]:
    """Legend label of each picked run (its row): method, λ where it is IAEAD's, the seed
    (pooled: the seeds of its setting), and any setting in which the picked runs differ;
    runs that would still read alike keep their run id, so no two are merged by mistake."""
    varying = [(has, text) for has, text in _VARYING
               if len({text(x) for x in picked if has(x)}) > 1]

    def base(r: dict) -> list[str]:
        name = ui.method_title(r.get("method") or "?")
        if r.get("method") == "deep-svdd" and r.get("svdd_bias"):
            name += " (unregularised)"
        lam = [f"λ = {format_lambda(r.get('lam'))}"] if r.get("method") == "iaead" else []
        return [name, *lam] + [text(r) for has, text in varying if has(r)]

    out = {}
    if pooled:
        seeds: dict[tuple, list] = {}
        for r in picked:
            seeds.setdefault(seed_signature(r), []).append(r.get("seed"))
        for r in picked:
            ss = sorted(dict.fromkeys(s for s in seeds[seed_signature(r)] if s is not None))
            out[r["run_id"]] = " · ".join(base(r) + [f"seed{'s' if len(ss) > 1 else ''} "
                                                     + ", ".join(map(str, ss))])
        clash = {}
        for r in picked:  # two settings that still read alike: name each by its run ids
            clash.setdefault(out[r["run_id"]], set()).add(seed_signature(r))
        for r in picked:
            if len(clash[out[r["run_id"]]]) > 1:
                out[r["run_id"]] += " · " + ", ".join(
                    x["run_id"] for x in picked if seed_signature(x) == seed_signature(r))
        return out
    for r in picked:
        out[r["run_id"]] = " · ".join(base(r) + [f"seed {r.get('seed')}"])
    counts = pd.Series(list(out.values())).value_counts()
    return {rid: (f"{lab} · {rid}" if counts[lab] > 1 else lab) for rid, lab in out.items()}


picked = [row_by_id[rid] for rid in pick if rid in by_id and rid in row_by_id]
labels = curve_labels(picked, pool)
curves, degen_points = [], {}
for rid in pick:
    run, row = by_id.get(rid), row_by_id.get(rid)
    if run is None or row is None:
        continue  # deleted between two refreshes
    df = curve_frame(run.records, rid)
    df = df[df["rule"] == row["primary_score"]]
    sig = seed_signature(row)
    setting = labels[rid]
    curves.append(df.assign(setting=setting, sig=str(sig)))
    for r in run.records:  # a pooled point is degenerate when every pooled run's is
        m = (r.get("metrics") or {}).get(row["primary_score"])
        degen_points.setdefault((setting, r["epoch"]), []).append(explain.is_degenerate(m))
if curves and sum(len(c) for c in curves):
    agg = seed_aggregate(pd.concat(curves, ignore_index=True), metric)
    degen = {k for k, v in degen_points.items() if v and all(v)}
    ui.chart(charts.compare_chart(agg, metric, degen, pooled=pool), key="runs_chart")

st.subheader("Delete runs")
all_ids = list(view["run_id"])
DONE_KEY = "runs_deleted_note"  # what the last Delete did: shown after the rerun it causes


def _described(rid: str) -> str:
    """``"IAEAD λ = 50 · digits 0 · seed 0 (`<run id>`)"``: a run to delete, in words."""
    r = row_by_id.get(rid) or {}
    if r.get("status") == "corrupt" or not r.get("method"):
        return f"`{rid}`"
    lam = f" λ = {format_lambda(r.get('lam'))}" if r.get("method") == "iaead" else ""
    return (f"{ui.method_title(r['method'])}{lam} · {r.get('dataset')} {r.get('normal_class')} "
            f"· seed {r.get('seed')} (`{rid}`)")


def _delete(victims: list[str]) -> None:
    """Delete the chosen folders (a button callback: it runs before the page is drawn again,
    so the selection can be cleared) and keep a note of what was deleted for that rerun."""
    dirs = {r["run_id"]: r["dir"] for r in rows}
    seen = st.session_state.setdefault(SEEN_RUNS, {})
    done, errors = [], []
    for v in victims:
        if v in by_id:  # so Train and Latent space can still name it, with its settings
            seen[v] = saved_item(by_id[v])
        try:
            delete_run(dirs[v])
            done.append(v)
        except (RunError, OSError, KeyError) as e:
            errors.append(f"{v}: {e}")
    st.session_state["runs_delete"] = []
    st.session_state["runs_confirm"] = False
    st.session_state["runs_pick"] = [r for r in st.session_state.get("runs_pick", [])
                                     if r not in done]
    st.session_state[DONE_KEY] = {"done": [_described(v) for v in done], "errors": errors}


victims = st.multiselect("Runs to delete", all_ids, key="runs_delete")
last = st.session_state.get(DONE_KEY)
if victims:
    st.session_state.pop(DONE_KEY, None)  # a new choice: the last note has been read
elif last:
    if last["done"]:
        st.success(f"Deleted {len(last['done'])} run folder(s): " + "; ".join(last["done"])
                   + ". They are gone from every page; Train and Latent space say which "
                   "run of a comparison was deleted.")
    if last["errors"]:
        st.error("Could not delete: " + "; ".join(last["errors"]))
if victims:
    busy = [v for v in victims if v in live]
    if busy:
        st.warning(f"{len(busy)} of them are still running; stop them first: {', '.join(busy)}")
    elif st.checkbox(f"Yes, delete {len(victims)} run folder(s) permanently", key="runs_confirm"):
        st.button("Delete", type="primary", key="runs_do_delete", on_click=_delete,
                  args=(list(victims),))
