"""The tables of an experiment's report: tidy frames, the cells of the paper's Table 2 / 3, and
the ablation's numbers, as DataFrames and Markdown.

Aggregation (one *cell* = one setting: data set, ρ, method, λ, ν, other axes, scoring rule):

* class-averaged (the paper's Table 2): for each seed, the mean over the normal classes; then
  mean ± std over seeds (std with ``ddof=1``; a single seed has none);
* per class (Table 3): mean ± std over seeds.

A cell is computed only when **every** run it needs has finished: otherwise it says
``k/n runs`` (and how many failed), and figures leave the point out. A cell never silently
averages fewer seeds or classes. Values are the last epoch's (the final model; the labels are
used only to compute the metrics — oracle monitoring).

Each AUROC cell of a method's own scoring rule carries the paper's value and the difference
(values from :mod:`iaead_core.evaluation.paper`), where the paper reports that setting.
The figures drawn from these cells are in :mod:`iaead_core.experiments.figures`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from iaead_core.data import DATASETS
from iaead_core.evaluation import paper
from iaead_core.experiments.runner import Plan
from iaead_core.numbers import format_lambda
__all__ = ["METRICS", "results_frame", "runs_frame", "aggregate", "setting_columns",
           "varying_axes", "cell_text", "table2_markdown", "table3_markdown",
           "ablation_effects", "ablation_markdown", "protocol_note"]


#: Metric keys → column titles, in the paper's order.
METRICS: dict[str, str] = {"auroc": "AUROC", "aupr_in": "AUPR-in", "aupr_out": "AUPR-out"}

_POINT_BASE = ("dataset", "normal_class", "class_name", "rho", "method", "lam", "nu", "seed")


def _method_title(method: str) -> str:
    from iaead_core.evaluation.analysis import METHOD_TITLES  # lazy: loads torch
    from iaead_core.methods import METHODS  # lazy: loads torch

    return getattr(METHODS.get(method), "title", None) or METHOD_TITLES.get(method, method)


def _rules_for(method: str, rules: list[str] | None) -> list[str]:
    from iaead_core.methods import METHODS  # lazy: loads torch

    cls = METHODS.get(method)
    primary = getattr(cls, "primary_score", None)
    if rules is None:
        return [primary] if primary else []
    own = set(getattr(cls, "score_rules", ()) or ())
    return [r for r in rules if r in own]


def _none(v: Any) -> Any:
    """NaN (how pandas keeps a missing axis value) → None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _extra_axes(plan: Plan) -> list[str]:
    return list(plan.spec.axes)


def results_frame(plan: Plan) -> pd.DataFrame:
    """One row per (planned run, reported scoring rule).

    Columns: the point's axes (``dataset, normal_class, class_name, rho, method, lam, nu, seed``
    and every ``[axes]`` name), ``rule, primary, run_id, state, auroc, aupr_in, aupr_out,
    degenerate, error``. Metrics are NaN for a run that has not completed.
    """
    rows = []
    extra = _extra_axes(plan)
    for p in plan.runs:
        info = plan.infos[p.run_id]
        rules = _rules_for(p.config.method, plan.spec.rules)
        for rule in rules:
            m = info.metrics.get(rule) if info.state == "completed" else None
            row = {k: p.point.get(k) for k in (*_POINT_BASE, *extra)}
            row.update(rule=rule, primary=(rule == (info.primary_score or _rules_for(p.config.method, None)[0])),
                       run_id=p.run_id, state=info.state, error=info.error,
                       degenerate=bool(m.get("degenerate", False)) if m else None,
                       **{k: (float(m[k]) if m and m.get(k) is not None else np.nan) for k in METRICS})
            rows.append(row)
    cols = [*_POINT_BASE, *extra, "rule", "primary", "run_id", "state", *METRICS, "degenerate", "error"]
    return pd.DataFrame(rows, columns=cols)


def runs_frame(plan: Plan) -> pd.DataFrame:
    """Tidy table, one row per planned run: its axes, state, error, seconds, epochs, and
    ``<rule>_<metric>`` for every rule its last epoch reported."""
    rows = []
    for p in plan.runs:
        info = plan.infos[p.run_id]
        row = {"run_id": p.run_id, **p.point, "state": info.state, "error": info.error,
               "seconds": info.seconds, "epochs_done": info.epochs_done,
               "epochs": p.config.epochs, "preset": p.config.preset,
               "primary_score": info.primary_score}
        for rule, m in (info.metrics or {}).items():
            for k in METRICS:
                row[f"{rule}_{k}"] = m.get(k)
            row[f"{rule}_degenerate"] = m.get("degenerate")
        rows.append(row)
    return pd.DataFrame(rows)


def setting_columns(plan: Plan) -> list[str]:
    """Columns that identify a cell besides class and seed."""
    return ["dataset", "rho", "method", "lam", "nu", *_extra_axes(plan), "rule"]


def varying_axes(results: pd.DataFrame, plan: Plan) -> list[str]:
    """Setting axes (besides data set, ρ and method) that take more than one value, in order:
    they label the columns of the tables and the traces of the figures."""
    out = []
    # Without a ``rules`` axis each method reports its own rule: that is not a varying axis.
    axes = ["lam", "nu", *_extra_axes(plan)] + (["rule"] if plan.spec.rules else [])
    for c in axes:
        values = {_none(v) for v in results[c].tolist()} - {None}
        if len(values) > 1:
            out.append(c)
    return out


def _paper_value(config: dict[str, Any], per_class: bool,
                 classes: list[int] | None = None) -> tuple[float | None, str]:
    """The paper's AUROC for a cell (in [0, 1]) and its label, or ``(None, "")``.

    Per class: :func:`iaead_core.evaluation.paper.paper_reference`. Class-averaged (Table 2): the same
    rules on the method's settings (IAEAD at the paper's λ and ν, Deep SVDD bias-free), with
    the class average of Table 2 when the cell holds every class, else the mean of Table 3's
    values of its ``classes`` (None where Table 3 lacks one): an average over other classes
    would not compare like with like."""

    if per_class and hasattr(paper, "paper_reference"):
        ref = paper.paper_reference(config)
        return (ref.value, ref.label) if ref.value is not None else (None, "")
    ds, method, rho = config["dataset"], config["method"], float(config["rho"])
    if per_class:
        value = paper.paper_auroc(ds, method, rho, int(config["normal_class"]))
    elif classes is None or ds not in DATASETS or sorted(classes) == list(range(len(DATASETS[ds].classes))):
        value = paper.paper_auroc(ds, method, rho)
    else:
        values = [paper.paper_auroc(ds, method, rho, int(k)) for k in classes]
        value = None if any(v is None for v in values) else sum(values) / len(values)
    if value is None:
        return None, ""
    if paper.setting_difference(config):  # another λ, ν, bias or option: not the paper's value
        return None, ""
    differs = paper.protocol_differences(config)
    return value, "paper (different protocol)" if differs else "paper"


def aggregate(results: pd.DataFrame, plan: Plan, by_class: bool = False) -> pd.DataFrame:
    """Cells of the paper's Table 2 (class-averaged) or, with ``by_class``, Table 3.

    Returns one row per cell, in expansion order, with the setting columns (and
    ``normal_class, class_name`` per class), ``n`` (runs the cell needs), ``k`` (completed with
    a value), ``failed``, ``seeds``, ``complete``, ``<metric>_mean`` and ``<metric>_std`` for
    every metric (NaN unless complete; std NaN for one seed), ``degenerate`` (runs whose score
    was degenerate), ``paper_auroc`` and ``paper_label`` (primary rule only), ``diff_auroc``
    (mean − paper).
    """
    keys = setting_columns(plan) + (["normal_class", "class_name"] if by_class else [])
    configs = {p.run_id: p.config.to_dict() for p in plan.runs}
    rows = []
    if results.empty:
        return pd.DataFrame(columns=keys)
    for key, g in results.groupby(keys, dropna=False, sort=False):
        row = {k: _none(v) for k, v in zip(keys, key)}
        n, k = len(g), int(g["auroc"].notna().sum())
        seeds = sorted(g["seed"].unique().tolist())
        row.update(n=n, k=k, failed=int((g["state"] == "failed").sum()), seeds=len(seeds),
                   complete=(k == n), degenerate=int(g["degenerate"].fillna(False).astype(bool).sum()))
        for m in METRICS:
            mean = std = np.nan
            if k == n:
                per_seed = g.groupby("seed")[m].mean()  # class mean per seed (one value per class)
                mean = float(per_seed.mean())
                std = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan
            row[f"{m}_mean"], row[f"{m}_std"] = mean, std
        primary = bool(g["primary"].iloc[0])
        classes = sorted({int(c) for c in g["normal_class"].dropna()})
        value, label = (_paper_value(configs[g["run_id"].iloc[0]], by_class, classes)
                        if primary else (None, ""))
        row["paper_auroc"] = np.nan if value is None else value
        row["paper_label"] = label
        row["diff_auroc"] = row["auroc_mean"] - value if value is not None else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def cell_text(row: dict[str, Any] | pd.Series, metric: str = "auroc", paper: bool = True,
              percent: bool = True) -> str:
    """A cell as the tables show it, in percent like the paper:
    ``92.31 ± 0.40 (paper 92.05, Δ +0.26)``; while runs are missing only their count,
    ``3/5 runs (1 failed; paper 92.05)``; a ``†`` marks a cell where a run's score was
    degenerate (constant). ``percent=False`` writes the lab's 0–1 convention with three
    decimals, as every other page of the lab does (``0.923 ± 0.004 (paper 0.921, Δ +0.003)``,
    ``0.500 — degenerate``)."""
    k, unit = (100, ".2f") if percent else (1, ".3f")
    ref = _none(row.get("paper_auroc"))
    if not row["complete"]:
        notes = [f"{int(row['failed'])} failed"] if row["failed"] else []
        if paper and metric == "auroc" and ref is not None:
            notes.append(f"{_paper_word(row)} {k * ref:{unit}}")
        return f"{int(row['k'])}/{int(row['n'])} runs" + (f" ({'; '.join(notes)})" if notes else "")
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    text = f"{k * mean:{unit}}" + ("" if _none(std) is None else f" ± {k * std:{unit}}")
    if row.get("degenerate"):
        text += " †" if percent else " — degenerate"
    if paper and metric == "auroc" and ref is not None:
        text += f" ({_paper_word(row)} {k * ref:{unit}}, Δ {k * (mean - ref):+{unit}})"
    return text


def _paper_word(row: dict[str, Any] | pd.Series) -> str:
    """``"paper"`` at the paper's protocol, ``"paper, different protocol"`` otherwise (the quick
    preset, fewer epochs, a subsample: the same experiment run shorter or smaller)."""
    label = row.get("paper_label") or "paper"
    return "paper" if label == "paper" else "paper, different protocol"


def _fmt_axis(axis: str, value: Any) -> str:
    from iaead_core.evaluation.analysis import RULE_TITLES  # lazy: loads torch

    value = _none(value)
    if axis == "lam":
        return f"λ={format_lambda(value)}"
    if axis == "nu":
        return "ν=—" if value is None else f"ν={value:g}"
    if axis == "rule":
        return RULE_TITLES.get(value, value)
    if axis == "rho" and value is not None:
        return f"ρ={100 * float(value):g} %"
    return f"{axis}={'—' if value is None else value}"


def _setting_label(row: dict[str, Any] | pd.Series, varying: list[str], skip: tuple = ()) -> str:
    parts = [_method_title(row["method"])]
    # An axis the method ignores (None) is left out: "CAE", not "CAE λ=—".
    parts += [_fmt_axis(a, row[a]) for a in varying if a not in skip and _none(row[a]) is not None]
    return " ".join(parts)


def _class_title(k: Any, name: Any) -> str:
    """``3`` for MNIST's digit 3, ``0 (t-shirt)`` where the class has a name."""
    return str(k) if str(name) == str(k) else f"{k} ({name})"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _dataset_title(ds: str) -> str:

    return DATASETS[ds].title if ds in DATASETS else ds


def protocol_note(plan: Plan) -> str:
    """The report's header note: preset, seeds, what the cells are, and, unless the preset is
    ``paper``, that the numbers do not follow the paper's protocol."""
    spec = plan.spec
    lines = [f"Experiment **{plan.folder.dir.name}** ({spec.kind}), preset **{spec.preset}**, "
             f"{len(spec.seeds)} seed(s), {len(plan.runs)} runs "
             f"({plan.count('completed')} completed)."]
    if spec.preset != "paper":
        lines.append(f"**Not the paper's protocol**: preset `{spec.preset}` (see "
                     "`iaead_core.config.PRESETS`: e.g. a light network, a subsample and fewer "
                     "epochs). The paper's values are shown for orientation; a difference "
                     "measures the protocol as much as the method.")
    lines.append("Cells: final-epoch metrics in %, class-averaged per seed then mean ± std over "
                 "seeds (Table 2) or mean ± std over seeds per class (Table 3). `k/n runs`: the "
                 "cell waits for runs that have not completed; no partial averages are shown. "
                 "`†`: some run's score was degenerate (constant). Labels are used only to "
                 "compute the metrics (oracle monitoring).")
    return "\n\n".join(lines)


def table2_markdown(agg: pd.DataFrame, results: pd.DataFrame, plan: Plan) -> str:
    """The paper's Table 2: per ρ, rows = data set × metric (× rule), columns = settings
    (method and every varying axis), class-averaged cells."""
    if agg.empty:
        return "_No runs._"
    varying = varying_axes(results, plan)
    col_skip = ("rule",)
    out = []
    for rho, block in agg.groupby("rho", sort=False):
        labels = list(dict.fromkeys(_setting_label(r, varying, col_skip) for _, r in block.iterrows()))
        multi_rule = "rule" in varying
        header = ["data set", "metric"] + (["rule"] if multi_rule else []) + labels
        table_rows = []
        for ds, dblock in block.groupby("dataset", sort=False):
            rule_groups = dblock.groupby("rule", sort=False) if multi_rule else [(None, dblock)]
            for rule, rblock in rule_groups:
                cells = {_setting_label(r, varying, col_skip): r for _, r in rblock.iterrows()}
                for metric, title in METRICS.items():
                    line = [_dataset_title(ds), title] + ([_fmt_axis("rule", rule)] if multi_rule else [])
                    line += [cell_text(cells[lab], metric) if lab in cells else "" for lab in labels]
                    table_rows.append(line)
        out.append(f"### Table 2 — ρ = {100 * rho:g} %\n\n" + _md_table(header, table_rows))
    return "\n\n".join(out)


def table3_markdown(agg_class: pd.DataFrame, agg: pd.DataFrame, results: pd.DataFrame,
                    plan: Plan) -> str:
    """The paper's Table 3: per data set and ρ, rows = normal classes (and the class mean),
    columns = settings, AUROC cells (mean ± std over seeds)."""
    if agg_class.empty:
        return "_No runs._"
    varying = varying_axes(results, plan)
    out = []
    for (ds, rho), block in agg_class.groupby(["dataset", "rho"], sort=False):
        labels = list(dict.fromkeys(_setting_label(r, varying) for _, r in block.iterrows()))
        rows = []
        for (k, name), cblock in block.groupby(["normal_class", "class_name"], sort=False):
            cells = {_setting_label(r, varying): r for _, r in cblock.iterrows()}
            rows.append([_class_title(k, name)] + [cell_text(cells[lab]) if lab in cells else ""
                                             for lab in labels])
        means = agg[(agg["dataset"] == ds) & (agg["rho"] == rho)]
        cells = {_setting_label(r, varying): r for _, r in means.iterrows()}
        rows.append(["**class mean**"] + [cell_text(cells[lab]) if lab in cells else ""
                                          for lab in labels])
        out.append(f"### Table 3 — {_dataset_title(ds)}, ρ = {100 * rho:g} % (AUROC %)\n\n"
                   + _md_table(["normal class"] + labels, rows))
    return "\n\n".join(out)


def _ablation_runs(results: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The rows of completed runs."""
    return results[results["auroc"].notna()].copy()


def ablation_effects(results: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Main effect of each ablation factor: for every factor that takes several values
    (scoring rule, init, λ, ν and any other axis), the mean AUROC of the completed runs at each
    of its levels, over all other settings, per data set and over all data sets ("all").

    Columns: ``dataset, factor, level, auroc, runs, spread`` (spread = best − worst level of
    that factor: how much the factor moves AUROC). ν is judged on runs where it is used
    (λ > 0). Only complete experiments give balanced comparisons; the ``runs`` column shows
    the counts.
    """
    done = _ablation_runs(results, plan)
    factors = varying_axes(results, plan)
    rows = []
    datasets = list(dict.fromkeys(done["dataset"]))
    scopes = [("all", done)] + ([(ds, done[done["dataset"] == ds]) for ds in datasets]
                                if len(datasets) > 1 else [])
    for scope, d in scopes:
        for f in factors:
            sub = d[d[f].notna()] if f in ("nu", "lam") else d
            if sub.empty:
                continue
            means = sub.groupby(f, dropna=True, sort=True)["auroc"].agg(["mean", "count"])
            spread = float(means["mean"].max() - means["mean"].min()) if len(means) > 1 else 0.0
            for level, r in means.iterrows():
                rows.append({"dataset": scope, "factor": f, "level": level, "auroc": float(r["mean"]),
                             "runs": int(r["count"]), "spread": spread})
    return pd.DataFrame(rows, columns=["dataset", "factor", "level", "auroc", "runs", "spread"])


def _cae_steps(results: pd.DataFrame) -> list[tuple[str, dict[str, Any]]]:
    """Named settings that take the CAE to IAEAD one factor at a time (when present)."""
    return [
        ("CAE: λ = 0, reconstruction error, released init", dict(lam=0.0, rule="reconstruction", init="released")),
        ("+ scoring rule: λ = 0, distance to mean latent", dict(lam=0.0, rule="latent_mean", init="released")),
        ("+ loss: λ = 5e-5, ν = 1, reconstruction error", dict(lam=5e-5, nu=1.0, rule="reconstruction", init="released")),
        ("IAEAD: λ = 5e-5, ν = 1, distance to mean latent", dict(lam=5e-5, nu=1.0, rule="latent_mean", init="released")),
        ("IAEAD with PyTorch's default init", dict(lam=5e-5, nu=1.0, rule="latent_mean", init="pytorch")),
    ]


def ablation_markdown(results: pd.DataFrame, plan: Plan) -> str:
    """The ablation's answer in numbers: the one-factor-at-a-time path from the CAE to IAEAD,
    and the main effect of every factor (AUROC %, mean over classes and seeds)."""
    done = _ablation_runs(results, plan)
    n_missing = int(results["auroc"].isna().sum())
    out = []
    if n_missing:
        out.append(f"**{n_missing} of {len(results)} (run, rule) results are missing**: the "
                   "numbers below use completed runs only and are not balanced.")
    step_rows = []
    inits = {p.config.init for p in plan.runs}
    datasets = list(dict.fromkeys(results["dataset"]))
    for ds in ["all", *datasets] if len(datasets) > 1 else ["all"]:
        d = done if ds == "all" else done[done["dataset"] == ds]
        base = None
        for title, cond in _cae_steps(results):
            # Without an init axis the condition holds when every run has the released init.
            cond = {c: v for c, v in cond.items() if not (c == "init" and c not in d.columns
                                                          and inits == {v})}
            if any(c not in d.columns for c in cond):
                continue
            mask = np.ones(len(d), bool)
            for c, v in cond.items():
                col = d[c]
                mask &= np.isclose(col.astype(float), v) if isinstance(v, float) else (col == v).to_numpy()
            sel = d[mask]
            if sel.empty:
                continue
            mean = 100 * float(sel["auroc"].mean())
            base = mean if base is None else base
            step_rows.append([_dataset_title(ds) if ds != "all" else "all", title, f"{mean:.2f}",
                              f"{mean - base:+.2f}", str(len(sel))])
    if step_rows:
        out.append("### From the CAE to IAEAD, one factor at a time\n\n" + _md_table(
            ["data", "setting", "AUROC %", "Δ vs CAE", "runs"], step_rows))
    eff = ablation_effects(results, plan)
    if not eff.empty:
        rows = [[_dataset_title(r.dataset) if r.dataset != "all" else "all", r.factor,
                 _fmt_axis(r.factor, r.level), f"{100 * r.auroc:.2f}", str(r.runs),
                 f"{100 * r.spread:.2f}"] for r in eff.itertuples()]
        out.append("### Main effects (mean AUROC % at each level, over all other settings)\n\n"
                   + _md_table(["data", "factor", "level", "AUROC %", "runs", "spread"], rows))
        overall = eff[eff["dataset"] == "all"].drop_duplicates("factor").sort_values("spread", ascending=False)
        if not overall.empty:
            top = overall.iloc[0]
            levels = eff[(eff["dataset"] == "all") & (eff["factor"] == top["factor"])]
            best, worst = levels.loc[levels["auroc"].idxmax()], levels.loc[levels["auroc"].idxmin()]
            out.append(f"**Largest main effect: {top['factor']}** — "
                       f"{_fmt_axis(top['factor'], worst['level'])} {100 * worst['auroc']:.2f} → "
                       f"{_fmt_axis(top['factor'], best['level'])} {100 * best['auroc']:.2f} "
                       f"({100 * top['spread']:+.2f} AUROC points). Spreads of the others: "
                       + ", ".join(f"{r.factor} {100 * r.spread:.2f}" for r in overall.iloc[1:].itertuples())
                       + ".")
    return "\n\n".join(out) if out else "_No completed runs._"
