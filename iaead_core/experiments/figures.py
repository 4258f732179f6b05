"""The figures of an experiment's report, as plotly objects: AUROC against ρ (Fig. 2), against
λ (Fig. 4), and the ablation's bars.

They are drawn from the cells of :mod:`iaead_core.experiments.tables` (the same aggregation and
labels as the tables); a cell whose runs have not all finished is left out, never averaged over
fewer seeds or classes.
"""

from __future__ import annotations

import pandas as pd

from iaead_core.evaluation import paper
from iaead_core.experiments.runner import Plan
from iaead_core.experiments.tables import (_class_title, _dataset_title, _method_title, _none,
                                           _setting_label, varying_axes)
from iaead_core.numbers import format_lambda, log_ticks
__all__ = ["figure_rho", "figure_lambda", "figure_ablation"]


# -------------------------------------------------------------------------------- figures

def _complete(agg: pd.DataFrame) -> pd.DataFrame:
    return agg[agg["complete"]] if not agg.empty else agg


def _err(std: pd.Series) -> list[float]:
    return [0.0 if _none(s) is None else 100 * s for s in std]


def figure_rho(agg: pd.DataFrame, results: pd.DataFrame, plan: Plan):
    """Fig. 2: class-averaged AUROC (%) against ρ (%), one line per method (and setting), one
    panel per data set, error bars = std over seeds; the paper's Table 2 values (ρ = 10 and
    20 %) as crosses. Incomplete cells are left out."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    datasets = list(dict.fromkeys(agg["dataset"])) if not agg.empty else []
    fig = make_subplots(rows=1, cols=max(1, len(datasets)), shared_yaxes=True,
                        subplot_titles=[_dataset_title(d) for d in datasets])
    varying = [a for a in varying_axes(results, plan) if a != "rho"]
    done = _complete(agg)
    colours: dict[str, str] = {}
    for col, ds in enumerate(datasets, start=1):
        block = done[done["dataset"] == ds]
        # (an empty block: no cell of this data set has all its runs yet)
        labels = (block.apply(lambda r: _setting_label(r, varying), axis=1) if not block.empty
                  else pd.Series(index=block.index, dtype=object))
        for label, g in block.groupby(labels, sort=False):
            colour = colours.setdefault(label, qualitative.Plotly[len(colours) % 10])
            g = g.sort_values("rho")
            fig.add_trace(go.Scatter(x=100 * g["rho"], y=100 * g["auroc_mean"], mode="lines+markers",
                                     name=label, legendgroup=label, showlegend=(col == 1),
                                     line=dict(color=colour),
                                     error_y=dict(type="data", array=_err(g["auroc_std"]))),
                          row=1, col=col)
        for method in dict.fromkeys(agg["method"]):
            xs, ys = [], []
            for rho in (0.1, 0.2):
                v = paper.paper_auroc(ds, method, rho)
                if v is not None:
                    xs.append(100 * rho)
                    ys.append(100 * v)
            if xs:
                label = f"paper: {_method_title(method)}"
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=label, legendgroup=label,
                                         showlegend=(col == 1),
                                         marker=dict(symbol="x", size=10,
                                                     color=colours.get(_method_title(method), "black"))),
                              row=1, col=col)
        fig.update_xaxes(title_text="anomaly ratio ρ (%)", row=1, col=col)
    fig.update_yaxes(title_text="class-averaged AUROC (%)", row=1, col=1)
    fig.update_layout(title="AUROC against ρ (Fig. 2); error bars: std over seeds", height=450)
    return fig


def figure_lambda(agg: pd.DataFrame, results: pd.DataFrame, plan: Plan, by_class: bool = False):
    """Fig. 4: AUROC (%) against λ on a log axis, with λ = 0 in its own panel on the left;
    one row of panels per data set; one line per method/setting (per class with
    ``by_class``), error bars = std over seeds. A method that ignores λ (e.g. the CAE) is a
    dashed horizontal line. Incomplete cells are left out."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    datasets = list(dict.fromkeys(agg["dataset"])) if not agg.empty else []
    n = max(1, len(datasets))
    fig = make_subplots(rows=n, cols=2, column_widths=[0.12, 0.88], shared_yaxes=True,
                        horizontal_spacing=0.03,
                        subplot_titles=[t for d in datasets for t in (f"{_dataset_title(d)}: λ = 0", "λ > 0")])
    varying = [a for a in varying_axes(results, plan) if a != "lam"]
    done = _complete(agg)
    lam_pos = sorted({float(v) for v in results["lam"].dropna() if v > 0})
    colours: dict[str, str] = {}
    for row_i, ds in enumerate(datasets, start=1):
        block = done[done["dataset"] == ds]
        if block.empty:
            continue

        def label_of(r):
            base = _setting_label(r, varying)
            return f"{base}, class {_class_title(r['normal_class'], r['class_name'])}" if by_class else base
        for label, g in block.groupby(block.apply(label_of, axis=1), sort=False):
            colour = colours.setdefault(label, qualitative.Plotly[len(colours) % 10])
            show = row_i == 1
            if g["lam"].isna().all():  # the method ignores λ: a flat reference line
                y = 100 * float(g["auroc_mean"].iloc[0])
                fig.add_trace(go.Scatter(x=["0"], y=[y], mode="markers", name=f"{label} (no λ)",
                                         legendgroup=label, showlegend=False,
                                         marker=dict(color=colour, symbol="diamond-open", size=10)),
                              row=row_i, col=1)
                if lam_pos:  # across the whole λ range (a little beyond, for a single λ)
                    fig.add_trace(go.Scatter(x=[lam_pos[0] / 3, lam_pos[-1] * 3], y=[y, y], mode="lines",
                                             name=f"{label} (no λ)", legendgroup=label, showlegend=show,
                                             line=dict(color=colour, dash="dash")),
                                  row=row_i, col=2)
                continue
            g = g.sort_values("lam")
            zero, pos = g[g["lam"] == 0], g[g["lam"] > 0]
            if not zero.empty:
                fig.add_trace(go.Scatter(x=["0"] * len(zero), y=100 * zero["auroc_mean"], mode="markers",
                                         name=label, legendgroup=label, showlegend=False,
                                         marker=_degenerate_marker(zero, colour, 9),
                                         customdata=_hover_data(zero), hovertemplate=_HOVER,
                                         error_y=dict(type="data", array=_err(zero["auroc_std"]))),
                              row=row_i, col=1)
            if not pos.empty:
                fig.add_trace(go.Scatter(x=pos["lam"], y=100 * pos["auroc_mean"], mode="lines+markers",
                                         name=label, legendgroup=label, showlegend=show,
                                         line=dict(color=colour), marker=_degenerate_marker(pos, colour, 7),
                                         customdata=_hover_data(pos), hovertemplate=_HOVER,
                                         error_y=dict(type="data", array=_err(pos["auroc_std"]))),
                              row=row_i, col=2)
        vals, text = log_ticks(lam_pos)  # λ written as everywhere else (plotly writes 1e−4)
        fig.update_xaxes(type="log", title_text="λ (log scale)", tickvals=vals, ticktext=text,
                         row=row_i, col=2)
        fig.update_xaxes(type="category", row=row_i, col=1)
        fig.update_yaxes(title_text="AUROC (%)", row=row_i, col=1)
    what = "per class" if by_class else "class-averaged"
    fig.update_layout(title=f"AUROC against λ (Fig. 4), {what}; error bars: std over seeds; "
                            "open markers: a run's score was degenerate (†)",
                      height=380 * n)
    return fig


#: Hover text of a λ point: λ as the project writes it (plotly would write 5e-5 as "50µ").
_HOVER = "%{fullData.name}<br>λ = %{customdata[0]}<br>AUROC %{y:.2f} % ± %{customdata[1]}<br>%{customdata[2]}<extra></extra>"


def _hover_data(g: pd.DataFrame) -> list[list[str]]:
    """Per point: λ written by :func:`~iaead_core.numbers.format_lambda`, the std over seeds
    (%), and the degenerate note (the † of the tables)."""
    return [[format_lambda(float(lam)), "—" if pd.isna(sd) else f"{100 * sd:.2f}",
             f"† {int(d)} run(s) with a degenerate score" if d else ""]
            for lam, sd, d in zip(g["lam"], g["auroc_std"], g["degenerate"].fillna(0))]


def _degenerate_marker(g: pd.DataFrame, colour: str, size: int) -> dict:
    """Filled markers, open where a run of the point had a degenerate score (as the lab's λ
    page draws them)."""
    return dict(color=colour, size=size,
                symbol=["circle-open" if d else "circle" for d in g["degenerate"].fillna(0)])


def figure_ablation(results: pd.DataFrame, plan: Plan):
    """The ablation as bars: mean AUROC (%) over the classes and seeds of each data set for
    every setting (x) and scoring rule (colour); error bars = std over those runs. A setting
    with missing runs is left out and named in the title."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from iaead_core.evaluation.analysis import RULE_TITLES  # lazy: loads torch

    varying = [a for a in varying_axes(results, plan) if a != "rule"]
    datasets = list(dict.fromkeys(results["dataset"]))
    fig = make_subplots(rows=len(datasets) or 1, cols=1, shared_xaxes=True,
                        subplot_titles=[_dataset_title(d) for d in datasets])
    keyed = results.assign(_setting=results.apply(lambda r: _setting_label(r, varying), axis=1))
    incomplete = 0
    for row_i, ds in enumerate(datasets, start=1):
        block = keyed[keyed["dataset"] == ds]
        for rule, g in block.groupby("rule", sort=False):
            xs, ys, es = [], [], []
            for setting, s in g.groupby("_setting", sort=False):
                if s["auroc"].isna().any():
                    incomplete += 1
                    continue
                xs.append(setting)
                ys.append(100 * s["auroc"].mean())
                es.append(100 * s["auroc"].std(ddof=1) if len(s) > 1 else 0.0)
            fig.add_trace(go.Bar(x=xs, y=ys, name=RULE_TITLES.get(rule, rule), legendgroup=rule,
                                 showlegend=(row_i == 1), error_y=dict(type="data", array=es),
                                 marker_color={"latent_mean": "#1f77b4", "latent_c": "#2ca02c",
                                               "reconstruction": "#d62728"}.get(rule)),
                          row=row_i, col=1)
        fig.update_yaxes(title_text="AUROC (%)", row=row_i, col=1)
    title = "Ablation: mean AUROC over classes and seeds; error bars: std over those runs"
    if incomplete:
        title += f" ({incomplete} bar(s) waiting for runs)"
    fig.update_layout(title=title, barmode="group", height=max(400, 330 * len(datasets)))
    return fig
