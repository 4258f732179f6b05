"""Plotly figures of the lab, built from records, tables and arrays (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from iaead_core.analysis import METRIC_NAMES, RULE_TITLES, curve_frame, format_lambda, loss_frame

from .views import RunItem

__all__ = ["auroc_chart", "loss_chart", "projection_chart", "hypersphere_chart", "sweep_chart",
           "compare_chart", "METHOD_COLOURS"]

METHOD_COLOURS = {"iaead": "#2c6fbb", "cae": "#e07b22", "deep-svdd": "#2a9d55"}
_PALETTE = ["#2c6fbb", "#e07b22", "#2a9d55", "#c0392b", "#8e44ad", "#16a085", "#7f8c8d",
            "#d4a017", "#34495e", "#e84393"]
_DASH = {"latent_mean": "solid", "latent_c": "dash", "reconstruction": "dot", "svdd": "dashdot"}
_NORMAL, _ANOMALY = "#2c6fbb", "#d62728"


def class_name(k: int, class_names) -> str:
    """``"3"`` for digits, ``"3 · dress"`` for named classes (no "0 0" legends)."""
    name = class_names[k] if k < len(class_names) else str(k)
    return name if name == str(k) else f"{k} · {name}"


def _colour(item: RunItem, i: int) -> str:
    if item.config.get("svdd_bias") and item.method == "deep-svdd":
        return "#8e44ad"
    return METHOD_COLOURS.get(item.method, _PALETTE[i % len(_PALETTE)])


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=15)), height=height,
                      margin=dict(l=50, r=20, t=50, b=40), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    return fig


def _epoch_axis(fig: go.Figure, items: Sequence[RunItem]) -> None:
    """Whole-number epoch ticks (plotly would write 0.5, 1.5 for short runs)."""
    last = max((len(i.records) for i in items), default=1)
    fig.update_xaxes(title="epoch", tick0=0, dtick=None if last > 12 else 1, tickformat="d")


def auroc_chart(items: Sequence[RunItem], metric: str = "auroc") -> go.Figure:
    """One line per run × scoring rule: colour = method, dash = scoring rule."""
    fig = go.Figure()
    for i, item in enumerate(items):
        df = curve_frame(item.records, item.label, item.method)
        for rule, part in df.groupby("rule", sort=False):
            fig.add_trace(go.Scatter(
                x=part["epoch"], y=part[metric], mode="lines+markers", marker=dict(size=5),
                name=f"{item.label} · {RULE_TITLES.get(rule, rule)}",
                line=dict(color=_colour(item, i), dash=_DASH.get(rule, "solid"), width=2)))
    _epoch_axis(fig, items)
    fig.update_yaxes(title=METRIC_NAMES[metric], range=[0, 1.02])
    fig.add_hline(y=0.5, line=dict(color="#999", dash="dot", width=1),
                  annotation_text="chance", annotation_position="bottom right")
    fig = _layout(fig, f"{METRIC_NAMES[metric]} per epoch, every method × scoring rule "
                       "(oracle monitoring)", 460)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.15, x=0, xanchor="left"),
                      margin=dict(b=40))
    return fig


def loss_chart(items: Sequence[RunItem]) -> go.Figure:
    """Reconstruction loss, SVDD loss (log axis) and radius R per epoch, one colour per run."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("reconstruction loss", "SVDD loss",
                                                        "radius R"))
    shown = set()  # one legend entry per run, in the first panel that has it
    for i, item in enumerate(items):
        df = loss_frame(item.records, item.label)
        for col, key in enumerate(("reconstruction", "svdd", "R"), start=1):
            if df[key].notna().any():
                first = item.label not in shown
                shown.add(item.label)
                fig.add_trace(go.Scatter(x=df["epoch"], y=df[key], mode="lines+markers",
                                         marker=dict(size=4), name=item.label,
                                         legendgroup=item.label, showlegend=first,
                                         line=dict(color=_colour(item, i))), row=1, col=col)
    fig.update_yaxes(type="log", row=1, col=2)
    _epoch_axis(fig, items)
    fig = _layout(fig, "Losses and radius per epoch", 340)
    fig.update_layout(margin=dict(t=80), legend=dict(y=1.12))
    return fig


def projection_chart(xy: np.ndarray, is_anomaly: np.ndarray, labels: np.ndarray,
                     class_names: Sequence[str], colour_by: str, title: str) -> go.Figure:
    """2-D scatter of latent codes: normal vs anomaly, or by original class."""
    fig = go.Figure()
    if colour_by == "class":
        for k in np.unique(labels):
            m = labels == k
            fig.add_trace(go.Scattergl(x=xy[m, 0], y=xy[m, 1], mode="markers",
                                       name=class_name(int(k), class_names),
                                       marker=dict(size=4, color=_PALETTE[int(k) % 10], opacity=0.7)))
    else:
        for flag, name, colour in ((False, "normal", _NORMAL), (True, "anomaly", _ANOMALY)):
            m = is_anomaly == flag
            fig.add_trace(go.Scattergl(x=xy[m, 0], y=xy[m, 1], mode="markers", name=name,
                                       marker=dict(size=4 if not flag else 5, color=colour,
                                                   opacity=0.45 if not flag else 0.85)))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    _layout(fig, title, 360)
    if colour_by == "class":  # ten entries: below the plot, clear of the title
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.02, x=0, xanchor="left"),
                          margin=dict(b=70))
    return fig


def hypersphere_chart(dist: np.ndarray, is_anomaly: np.ndarray, R: float | None,
                      centre_name: str) -> go.Figure:
    """Overlaid histograms of the distance to the centre, normals vs anomalies, R marked."""
    fig = go.Figure()
    span = float(np.ptp(dist)) if len(dist) else 0.0
    bins = dict(start=float(dist.min()), end=float(dist.max()) + 1e-12, size=max(span / 40, 1e-12))
    for flag, name, colour in ((False, "normal", _NORMAL), (True, "anomaly", _ANOMALY)):
        fig.add_trace(go.Histogram(x=dist[is_anomaly == flag], name=name, xbins=bins,
                                   marker_color=colour, opacity=0.6, histnorm="probability density"))
    fig.update_layout(barmode="overlay")
    if R is not None and R > 0:
        fig.add_vline(x=R, line=dict(color="#333", dash="dash"), annotation_text=f"R = {R:.3g}")
    fig.update_xaxes(title=f"distance to {centre_name}")
    fig.update_yaxes(title="density")
    return _layout(fig, "Hypersphere view", 280)


def sweep_chart(summary: pd.DataFrame, metric: str, best_lam: float) -> go.Figure:
    """Metric against λ: λ = 0 in its own narrow panel, the rest on a log axis; mean ± std
    over seeds per class; collapsed points drawn as red crosses; the paper's best λ marked."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.1, 0.9],
                        horizontal_spacing=0.02)
    for i, (cls, part) in enumerate(summary.groupby("normal_class", sort=True)):
        colour = _PALETTE[i % len(_PALETTE)]
        for col, sel in ((1, part["lam"] == 0), (2, part["lam"] > 0)):
            p = part[sel]
            if p.empty:
                continue
            fig.add_trace(go.Scatter(
                x=["0"] * len(p) if col == 1 else p["lam"], y=p["mean"],
                error_y=dict(type="data", array=p["std"], visible=True),
                mode="lines+markers" if col == 2 else "markers", name=f"class {cls}",
                legendgroup=str(cls), showlegend=bool(col == 2 or (part["lam"] > 0).sum() == 0),
                marker=dict(size=9, color=colour), line=dict(color=colour),
                customdata=np.stack([p["n"], [format_lambda(v) for v in p["lam"]]], axis=1),
                hovertemplate="λ=%{customdata[1]}<br>mean %{y:.3f}<br>seeds %{customdata[0]}"),
                row=1, col=col)
            bad = p[p["collapsed"]]
            if not bad.empty:
                fig.add_trace(go.Scatter(
                    x=["0"] * len(bad) if col == 1 else bad["lam"], y=bad["mean"], mode="markers",
                    name="collapsed", legendgroup="collapsed", showlegend=False,
                    marker=dict(symbol="x", size=14, color="#d62728", line=dict(width=2))),
                    row=1, col=col)
    if summary["collapsed"].any():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="latent space collapsed",
                                 marker=dict(symbol="x", size=12, color="#d62728")), row=1, col=2)
    # The paper's best λ as a trace (shapes on log axes take log10 coordinates and are easy
    # to get wrong); the axis range is set from the data so one point cannot stretch it.
    lo = float(summary["mean"].min() - summary["std"].max() - 0.02) if len(summary) else 0.4
    fig.add_trace(go.Scatter(x=[best_lam, best_lam], y=[min(lo, 0.45), 1.0], mode="lines",
                             name=f"paper's best λ = {format_lambda(best_lam)}",
                             line=dict(color="#555", dash="dash")), row=1, col=2)
    fig.add_hline(y=0.5, line=dict(color="#999", dash="dot", width=1))
    pos = summary.loc[summary["lam"] > 0, "lam"]
    lams = np.log10(np.concatenate([pos.to_numpy(float), [best_lam]]))
    fig.update_xaxes(type="log", title="λ (log scale)", row=1, col=2,
                     range=[lams.min() - 0.5, lams.max() + 0.5])
    fig.update_xaxes(title="λ = 0", row=1, col=1, type="category")
    fig.update_yaxes(title=f"final {METRIC_NAMES[metric]} (mean ± std over seeds)", row=1, col=1)
    return _layout(fig, f"λ sensitivity: final {METRIC_NAMES[metric]} of IAEAD", 440)


def compare_chart(agg: pd.DataFrame, metric: str) -> go.Figure:
    """Per-epoch mean ± std bands, one per setting (``setting, epoch, mean, std, n``)."""
    fig = go.Figure()
    for i, (setting, part) in enumerate(agg.groupby("setting", sort=False)):
        colour = _PALETTE[i % len(_PALETTE)]
        part = part.sort_values("epoch")
        if (part["std"] > 0).any():
            fig.add_trace(go.Scatter(
                x=np.concatenate([part["epoch"], part["epoch"][::-1]]),
                y=np.concatenate([part["mean"] + part["std"], (part["mean"] - part["std"])[::-1]]),
                fill="toself", fillcolor=colour, opacity=0.18, line=dict(width=0),
                hoverinfo="skip", showlegend=False, legendgroup=setting))
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["mean"], mode="lines", name=setting,
                                 legendgroup=setting, line=dict(color=colour, width=2)))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=METRIC_NAMES[metric])
    return _layout(fig, f"{METRIC_NAMES[metric]} of each run's own score per epoch "
                        "(mean ± std over seeds)", 400)
