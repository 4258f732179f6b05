"""An experiment's results as the Experiments page shows them, without Streamlit: the cells of
Table 2 / Table 3 with the runs behind each (:func:`cells`) and as a table to show, each cell
linked to its runs on the Runs page (:func:`cell_table`, :func:`runs_link`); the report's
figures for the experiment's kind; and the report's files to download (HTML, Markdown tables,
runs CSV), written by the same core functions as ``python -m iaead_core experiment report``.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from iaead_core.data import DATASETS
from iaead_core.evaluation.analysis import format_lambda
from iaead_core.experiments import Plan
from iaead_core.experiments import figures as xfig, report as xreport, tables as xtab

__all__ = ["cells", "cell_table", "runs_link", "figures", "report_markdown", "report_html",
           "runs_csv", "QUERY_EXPERIMENT", "QUERY_RUNS"]

#: Query parameters of a link that opens an experiment's runs on the Runs page.
QUERY_EXPERIMENT, QUERY_RUNS = "experiment", "runs"


# ------------------------------------------------------------------------- the results

def _setting_keys(plan: Plan, by_class: bool) -> list[str]:
    return xtab.setting_columns(plan) + (["normal_class", "class_name"] if by_class else [])


def cells(plan: Plan, by_class: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list[list[str]]]:
    """The cells of Table 2 (or Table 3 with ``by_class``) with the runs behind each.

    Returns
    -------
    (results, agg, run_ids)
        :func:`~iaead_core.experiments.tables.results_frame`, its
        :func:`~iaead_core.experiments.tables.aggregate`, and for each row of ``agg`` the run
        ids of its cell (in the same order).
    """
    results = xtab.results_frame(plan)
    agg = xtab.aggregate(results, plan, by_class=by_class)
    ids: list[list[str]] = []
    if not results.empty:
        keys = _setting_keys(plan, by_class)
        ids = [list(dict.fromkeys(g["run_id"]))
               for _, g in results.groupby(keys, dropna=False, sort=False)]
    return results, agg, ids


def _axis_text(axis: str, value: Any) -> str:
    from iaead_core.evaluation.analysis import RULE_TITLES

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if axis == "lam":
        return format_lambda(float(value))
    if axis == "rule":
        return RULE_TITLES.get(value, value)
    if axis == "rho":
        return f"{100 * float(value):g} %"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def cell_table(plan: Plan, results: pd.DataFrame, agg: pd.DataFrame, ids: list[list[str]],
               by_class: bool = False) -> pd.DataFrame:
    """The cells as a table to show: the setting (data set, ρ, method and every axis that
    varies), AUROC / AUPR-in / AUPR-out on the lab's 0–1 scale (mean ± std, the paper's
    value and Δ beside AUROC; ``k/n runs`` while runs are missing), and ``runs``: a link that
    opens the cell's runs on the Runs page."""
    if agg.empty:
        return pd.DataFrame()
    varying = xtab.varying_axes(results, plan)
    titles = {"lam": "λ", "nu": "ν", "rule": "score"}
    rows = []
    for (_, r), run_ids in zip(agg.iterrows(), ids):
        row = {"data set": DATASETS[r["dataset"]].title if r["dataset"] in DATASETS else r["dataset"]}
        if by_class:
            row["class"] = xtab._class_title(r["normal_class"], r["class_name"])
        row["ρ"] = _axis_text("rho", r["rho"])
        row["method"] = xtab._method_title(r["method"])
        for a in varying:
            row[titles.get(a, a)] = _axis_text(a, r[a])
        # 0–1, three decimals: the lab's one convention (the report files keep the paper's %)
        row["AUROC"] = xtab.cell_text(r, "auroc", percent=False)
        row["AUPR-in"] = xtab.cell_text(r, "aupr_in", paper=False, percent=False)
        row["AUPR-out"] = xtab.cell_text(r, "aupr_out", paper=False, percent=False)
        row["runs"] = runs_link(plan.folder.dir.name, run_ids)
        rows.append(row)
    return pd.DataFrame(rows)


def runs_link(folder_name: str, run_ids: list[str]) -> str:
    """Relative address of the Runs page showing these runs of an experiment folder."""
    return "runs?" + urlencode({QUERY_EXPERIMENT: folder_name, QUERY_RUNS: ",".join(run_ids)})


def figures(plan: Plan, results: pd.DataFrame, agg: pd.DataFrame) -> list:
    """The report's figures for this experiment's kind (as ``experiment report`` chooses
    them): AUROC against ρ (Fig. 2), against λ (Fig. 4, class-averaged), the ablation bars. A
    figure leaves out the cells whose runs have not all completed, so it fills in as they do."""
    if results.empty:
        return []
    kind, out = plan.spec.kind, []
    if kind in ("fig2-rho", "table2", "custom") and results["rho"].nunique() > 1:
        out.append(xfig.figure_rho(agg, results, plan))
    if kind in ("fig4-lambda", "custom") and len({float(v) for v in results["lam"].dropna()}) > 1:
        out.append(xfig.figure_lambda(agg, results, plan))
    varying = xtab.varying_axes(results, plan)
    if kind == "ablation" or (kind == "custom" and ("rule" in varying or "init" in varying)):
        out.append(xfig.figure_ablation(results, plan))
    return [unit_scale(f) for f in out]


def unit_scale(fig):
    """A report figure (AUROC in %, like the paper) on the lab's 0–1 scale: every trace's y
    and its error bars divided by 100, the y-axis titles' ``(%)`` replaced by ``(0–1)``. The
    x axes (ρ in %, λ) are left as they are. Returns the same figure, changed in place."""
    for t in fig.data:
        if getattr(t, "y", None) is not None:
            t.y = [None if v is None else float(v) / 100 for v in t.y]
        err = getattr(t, "error_y", None)
        if err is not None and err.array is not None:
            err.array = [float(v) / 100 for v in err.array]
    if fig.layout.title and fig.layout.title.text:  # the lab's tables write "degenerate", not †
        fig.layout.title.text = fig.layout.title.text.replace(" (†)", "")
    for name in fig.layout:
        if name.startswith("yaxis"):
            ax = fig.layout[name]
            if ax.title and ax.title.text:
                ax.title.text = ax.title.text.replace("(%)", "(0–1)")
    return fig


# ----------------------------------------------------------------------------- report

def report_markdown(plan: Plan) -> str:
    """The report's text: the protocol note, Table 2 and Table 3 (and the ablation's answer
    for that kind), as ``experiment report`` writes them."""
    results = xtab.results_frame(plan)
    agg = xtab.aggregate(results, plan)
    agg_class = xtab.aggregate(results, plan, by_class=True)
    parts = [f"# {plan.spec.name} ({plan.spec.kind}, preset {plan.spec.preset})",
             xtab.protocol_note(plan)]
    if plan.spec.kind == "ablation":
        parts += ["## Ablation", xtab.ablation_markdown(results, plan)]
    parts += ["## Table 2 (class-averaged)", xtab.table2_markdown(agg, results, plan),
              "## Table 3 (per class)", xtab.table3_markdown(agg_class, agg, results, plan)]
    return "\n\n".join(parts) + "\n"


def runs_csv(plan: Plan) -> str:
    """One row per planned run (``runs.csv`` of the report)."""
    return xtab.runs_frame(plan).to_csv(index=False)


def report_html(plan: Plan) -> bytes:
    """The standalone HTML report (plotly inline), written into the experiment's ``report/``
    folder like ``experiment report`` does (into a temporary folder if that is not writable)."""
    try:
        paths = xreport.write_report(plan)
    except OSError:
        paths = xreport.write_report(plan, tempfile.mkdtemp(prefix="iaead-report-"))
    return Path(paths["report.html"]).read_bytes()
