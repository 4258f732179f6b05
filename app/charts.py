"""Plotly figures of the lab, built from records, tables and arrays (no Streamlit here).

Conventions: colour = method (or class), line dash = scoring rule, marker symbol = method (so
two curves that coincide stay visible: the one drawn first is wider and shows around the
other); a metric reported as *degenerate* (its scores differ only by float noise) is drawn as
an open marker and says so on hover; log axes say "(log scale)" and carry one tick per decade
written like λ (``1e-5``), never with SI prefixes (``10µ``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from iaead_core.evaluation.analysis import METRIC_NAMES, curve_frame, format_lambda, loss_frame
from iaead_core.numbers import log_ticks
from .explain import DEGENERATE_WHY, metric_text, rule_name, single_value
from .views.latent import has_radius, radius_series
from .views.runs import RunItem

__all__ = ["auroc_chart", "loss_chart", "projection_chart", "hypersphere_chart", "sweep_chart",
           "compare_chart", "class_name", "own_rule", "presentation", "export_config", "METHOD_COLOURS",
           "SLIDE_FONT", "SLIDE_SIZE"]

#: Presentation mode: the font size (px) of every chart text — ticks, legend, axis and
#: subplot titles, annotations — readable from the back of a lecture room (issue 17: 11 px
#: at 1280×720 was not).
SLIDE_FONT = 20
#: Presentation mode: the narrowest line (px) a curve is drawn with.
SLIDE_LINE = 4.0
#: Width × height (px) of a chart exported from its toolbar: a 16:9 slide.
SLIDE_SIZE = (1920, 1080)

METHOD_COLOURS = {"iaead": "#2c6fbb", "cae": "#e07b22", "deep-svdd": "#2a9d55",
                  "drae": "#c0392b", "rdae": "#8e44ad", "dagmm": "#16a085", "memae": "#d4a017",
                  "rsrae": "#34495e"}
_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star", "hexagon", "pentagon"]
_PALETTE = ["#2c6fbb", "#e07b22", "#2a9d55", "#c0392b", "#8e44ad", "#16a085", "#7f8c8d",
            "#d4a017", "#34495e", "#e84393"]
_DASH = {"latent_mean": "solid", "latent_c": "dash", "reconstruction": "dot", "svdd": "dashdot"}
_NORMAL, _ANOMALY = "#2c6fbb", "#d62728"


def class_name(k: int, class_names) -> str:
    """``"3"`` for digits, ``"3 · dress"`` for named classes (no "0 0" legends)."""
    name = class_names[k] if k < len(class_names) else str(k)
    return name if name == str(k) else f"{k} · {name}"


def _flat_band(values: np.ndarray, rtol: float = 1e-3) -> list[float] | None:
    """An axis range of ±5 % around values that vary by less than ``rtol`` of their size
    (plotly would zoom into the float noise and write seven-digit ticks); None otherwise."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    mid, span = float(np.median(v)), float(np.ptp(v))
    if span > rtol * abs(mid) or mid == 0:
        return None
    return [mid - 0.05 * abs(mid), mid + 0.05 * abs(mid)]


def _width(i: int) -> float:
    """Line width of the ``i``-th curve: earlier curves are wider, so a later curve drawn on
    top of one it coincides with leaves a visible border."""
    return max(2.0, 6.0 - 2.0 * i)


def _symbol(item: RunItem, i: int) -> str:
    """The method's marker (the same whatever else is on the chart: a walk saw the CAE's
    square become a circle once IAEAD's run was deleted); position in the list only for runs
    of a method without one."""
    order = list(METHOD_COLOURS)
    k = order.index(item.method) if item.method in order else i
    return _SYMBOLS[k % len(_SYMBOLS)]


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


def own_rule(item: RunItem) -> str | None:
    """The run's own score (its ``primary_score``: what its AUROC in the tables is of)."""
    return next((r.get("primary_score") for r in item.records if r.get("primary_score")), None)


def auroc_chart(items: Sequence[RunItem], metric: str = "auroc",
                own_only: bool = False) -> go.Figure:
    """One line per run × scoring rule: colour and marker = method, dash = scoring rule; the
    legend groups the rules under their method and marks each method's own score ("· own
    score", the rule its tables report). Degenerate points are open markers. ``own_only``:
    only each run's own score (presentation mode, unless every rule is asked for)."""
    fig = go.Figure()
    for i, item in enumerate(items):
        df = curve_frame(item.records, item.label, item.method)
        by_epoch = {r["epoch"]: r.get("metrics") or {} for r in item.records}
        own = own_rule(item)
        for rule, part in df.groupby("rule", sort=False):
            if own_only and own is not None and rule != own:
                continue
            ms = [by_epoch.get(e, {}).get(rule) for e in part["epoch"]]
            degen = [bool(isinstance(m, dict) and m.get("degenerate")) for m in ms]
            hover = [metric_text(m, metric) for m in ms]
            fig.add_trace(go.Scatter(
                x=part["epoch"], y=part[metric], mode="lines+markers",
                name=rule_name(rule, item.method) + (" · own score" if rule == own else ""),
                legendgroup=item.label,
                legendgrouptitle_text=item.label,
                customdata=hover,
                hovertemplate=f"{item.label} · {rule_name(rule, item.method)}<br>"
                              "epoch %{x}: %{customdata}<extra></extra>",
                marker=dict(size=[11 if d else _width(i) + 4 for d in degen],
                            symbol=[f"{_symbol(item, i)}-open" if d else _symbol(item, i)
                                    for d in degen]),
                # earlier runs are drawn wider, so a later curve on top leaves them visible
                line=dict(color=_colour(item, i), dash=_DASH.get(rule, "solid"),
                          width=_width(i))))
    if any(isinstance(m, dict) and m.get("degenerate") for it in items for r in it.records
           for m in (r.get("metrics") or {}).values()):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"degenerate ({DEGENERATE_WHY})",
                                 marker=dict(symbol="circle-open", size=10, color="#555")))
    _epoch_axis(fig, items)
    fig.update_yaxes(title=METRIC_NAMES[metric], range=[0, 1.02])
    fig.add_hline(y=0.5, line=dict(color="#999", dash="dot", width=1),
                  annotation_text="chance", annotation_position="bottom right")
    fig = _layout(fig, f"{METRIC_NAMES[metric]} per epoch, "
                       + ("each method's own score" if own_only else "every method × scoring rule")
                       + " (oracle monitoring)", 480)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.15, x=0, xanchor="left",
                                  groupclick="toggleitem"),
                      margin=dict(b=40))
    return fig


def loss_chart(items: Sequence[RunItem]) -> go.Figure:
    """Reconstruction loss, SVDD loss (log axis) and radius R per epoch, one colour per run.
    R is drawn only for methods that have one, and only where it is defined (not during
    IAEAD's warm-up or Deep SVDD's pre-training)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "reconstruction loss", "SVDD loss<br>(log scale)", "radius R<br>(IAEAD, soft-boundary SVDD)"))
    shown = set()  # one legend entry per run, in the first panel that has it
    svdd_values = []
    for i, item in enumerate(items):
        df = loss_frame(item.records, item.label)
        df["R"] = radius_series(item.records, item.config)
        for col, key in enumerate(("reconstruction", "svdd", "R"), start=1):
            y = pd.to_numeric(df[key], errors="coerce")
            if key == "svdd":
                y = y.where(y > 0)  # a log axis cannot show 0
                svdd_values += list(y.dropna())
            if y.notna().any():
                first = item.label not in shown
                shown.add(item.label)
                fig.add_trace(go.Scatter(x=df["epoch"], y=y, mode="lines+markers",
                                         marker=dict(size=_width(i) + 2, symbol=_symbol(item, i)),
                                         name=item.label, legendgroup=item.label,
                                         showlegend=first,
                                         line=dict(color=_colour(item, i), width=_width(i))),
                              row=1, col=col)
    # An empty panel says why (walk 3: after IAEAD's run was deleted, R's panel stood blank).
    radius = any(has_radius(it.config) for it in items)
    for col, empty in ((2, "No run shown has an SVDD loss"),
                       (3, "R appears once the SVDD term is on" if radius else
                        "No run shown has a radius R<br>(only IAEAD and soft-boundary Deep SVDD)")):
        if not any(t.xaxis == f"x{col}" for t in fig.data):
            # in page coordinates: plotly.js drops an axis without traces, and an annotation
            # bound to it lands in the first panel (walk 4)
            lo, hi = fig.layout[f"xaxis{col}"].domain
            fig.add_annotation(text=empty, xref="paper", yref="paper", x=(lo + hi) / 2, y=0.5,
                               showarrow=False, font=dict(color="#777"))
    vals, text = log_ticks(svdd_values, max_ticks=12)
    # the range runs from decade to decade, so every labelled tick is in view (a walk saw a
    # jump from 0.22 to 53 drawn with no tick label, and a loss near 1 with only "1")
    fig.update_yaxes(type="log", row=1, col=2, tickvals=vals or None, ticktext=text or None,
                     range=[math.log10(vals[0]), math.log10(vals[-1])] if vals else None)
    for t in fig.data:  # a curve that spans a decade or more: both ends written on it
        if t.xaxis != "x2":
            continue
        ys = np.asarray(t.y, np.float64)
        ok = np.flatnonzero(np.isfinite(ys))
        if ok.size < 2 or ys[ok].max() < 10 * ys[ok].min():
            continue
        for j in (ok[int(np.argmin(ys[ok]))], ok[int(np.argmax(ys[ok]))]):
            fig.add_annotation(x=t.x[j], y=math.log10(ys[j]), xref="x2", yref="y2",
                               text=f"{ys[j]:.3g}", showarrow=True, arrowhead=0, ax=0, ay=-18,
                               font=dict(color=t.line.color))
    for col in (1, 3):  # a flat curve: a readable band around it, not 7.472613…7.472616
        ys = np.concatenate([np.asarray(t.y, np.float64) for t in fig.data
                             if t.xaxis == ("x" if col == 1 else f"x{col}")] or [np.zeros(0)])
        band = _flat_band(ys)
        if band is not None:
            fig.update_yaxes(range=band, tickformat=".4~g", row=1, col=col)
    _epoch_axis(fig, items)
    fig = _layout(fig, "Losses and radius per epoch", 380)
    # the legend below the panels: above them it covered the two-line subplot titles
    fig.update_layout(margin=dict(t=90, b=90), legend=dict(orientation="h", yanchor="top",
                                                           y=-0.28, x=0, xanchor="left"))
    return fig


def projection_chart(xy: np.ndarray, is_anomaly: np.ndarray, labels: np.ndarray,
                     class_names: Sequence[str], colour_by: str, title: str,
                     half_range: float | None = None) -> go.Figure:
    """2-D scatter of latent codes ``xy`` ``(N, 2)``: normal vs anomaly, or by original class.

    ``half_range`` (code units): draw both axes over ``[−half_range, half_range]`` with their
    ticks (a collapsed epoch at the scale of its codes, :func:`app.views.latent.collapsed_map_range`);
    None autoscales them without ticks (a healthy map: only its shape matters)."""
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
    if half_range is None:
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(showticklabels=False)
    else:
        r = [-float(half_range), float(half_range)]
        fig.update_xaxes(range=r, title="PC 1 (code units)", zeroline=False)
        fig.update_yaxes(range=r, title="PC 2 (code units)", zeroline=False)
    _layout(fig, title, 360)
    if colour_by == "class":  # ten entries: below the plot, clear of the title
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.02, x=0, xanchor="left"),
                          margin=dict(b=70))
    return fig


def hypersphere_chart(dist: np.ndarray, is_anomaly: np.ndarray, R: float | None,
                      name: str, scale: float = 0.0) -> go.Figure:
    """Histograms (image counts) of one distance per image, normals vs anomalies, R marked
    when given.

    When every distance is the same up to float noise (:func:`~app.explain.single_value`;
    ``scale``: the codes' size, the yardstick for distances that are all ~0) a
    histogram has nothing to draw (zero-width bins, densities of 1e12): one bar per group is
    drawn instead, at that value, labelled with it; R, when given, is then named in the
    axis title.
    """
    d = np.asarray(dist, np.float64)
    y = np.asarray(is_anomaly, bool)
    fig = go.Figure()
    if d.size and single_value(d, scale):
        # the mean, as the Latent page's story box gives a collapsed space's distance to c
        value = float(np.mean(d[np.isfinite(d)])) if np.isfinite(d).any() else float("nan")
        label = f"{value:.4g} for all {d.size:,} images (all within {np.ptp(d):.1g})"
        for flag, group, colour in ((False, "normal", _NORMAL), (True, "anomaly", _ANOMALY)):
            count = int((y == flag).sum())
            fig.add_trace(go.Bar(x=[label], y=[count], name=group, marker_color=colour,
                                 text=[f"{count:,}"], textposition="inside",
                                 insidetextanchor="middle", constraintext="none"))
        fig.update_layout(barmode="stack", uniformtext=dict(minsize=10, mode="show"),
                          legend=dict(traceorder="normal"))  # normal, anomaly, as elsewhere
        fig.update_yaxes(range=[0, d.size * 1.08])  # room above the stack: no clipped count
        # a category axis has no place for a line at R: the radius goes in the axis title
        radius = f" (R = {R:.4g})" if R is not None and math.isfinite(R) and R > 0 else ""
        fig.update_xaxes(title=name + radius, type="category")
    else:
        span = float(np.ptp(d)) if d.size else 0.0
        bins = dict(start=float(d.min()), end=float(d.max()) + span * 1e-6, size=span / 40) if d.size else None
        for flag, group, colour in ((False, "normal", _NORMAL), (True, "anomaly", _ANOMALY)):
            fig.add_trace(go.Histogram(x=d[y == flag], name=group, xbins=bins, marker_color=colour,
                                       opacity=0.6))
        fig.update_layout(barmode="overlay")
        # enough significant digits to tell the ticks apart (walk 5: "7.16 7.16 7.16 7.16"
        # on distances 7.1600 … 7.1601)
        mid = float(np.abs(d[np.isfinite(d)]).max()) if np.isfinite(d).any() else 0.0
        digits = 3 if span <= 0 or mid <= 0 else int(min(10, max(3, math.ceil(math.log10(5 * mid / span)) + 1)))
        if R is not None and math.isfinite(R) and R > 0:
            fig.add_vline(x=R, line=dict(color="#333", dash="dash"),
                          annotation_text=f"R = {R:.{digits}g}")
        fig.update_xaxes(title=name, tickformat=f".{digits}~g")
    fig.update_yaxes(title="images")
    return _layout(fig, "Histogram, per image", 300)


def sweep_chart(summary: pd.DataFrame, metric: str, best_lam: float) -> go.Figure:
    """Metric against λ: λ = 0 in its own narrow panel, the rest on a log axis; mean ± std
    over seeds per class; collapsed points drawn as red crosses, degenerate metrics as open
    markers; the paper's best λ marked."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.1, 0.9],
                        horizontal_spacing=0.02)
    has_degen = "degenerate" in summary.columns
    for i, (cls, part) in enumerate(summary.groupby("normal_class", sort=True)):
        colour = _PALETTE[i % len(_PALETTE)]
        for col, sel in ((1, part["lam"] == 0), (2, part["lam"] > 0)):
            p = part[sel]
            if p.empty:
                continue
            degen = p["degenerate"].astype(bool).tolist() if has_degen else [False] * len(p)
            fig.add_trace(go.Scatter(
                x=["0"] * len(p) if col == 1 else p["lam"], y=p["mean"],
                error_y=dict(type="data", array=p["std"], visible=True),
                mode="lines+markers" if col == 2 else "markers", name=f"class {cls}",
                legendgroup=str(cls), showlegend=bool(col == 2 or (part["lam"] > 0).sum() == 0),
                # a degenerate point's open ring is wider than the collapsed cross drawn on it,
                # so both marks stay visible (walk 6: the cross hid the ring)
                marker=dict(size=[20 if d else 9 for d in degen], color=colour,
                            symbol=["circle-open" if d else "circle" for d in degen],
                            line=dict(width=2, color=colour)),
                line=dict(color=colour),
                customdata=np.stack([p["n"].astype(str), [format_lambda(v) for v in p["lam"]],
                                     ["degenerate: " + DEGENERATE_WHY if d else "" for d in degen]],
                                    axis=1),
                hovertemplate="λ=%{customdata[1]}<br>mean %{y:.3f}<br>seeds %{customdata[0]}"
                              "<br>%{customdata[2]}<extra></extra>"),
                row=1, col=col)
            bad = p[p["collapsed"].astype(bool)]
            if not bad.empty:
                fig.add_trace(go.Scatter(
                    x=["0"] * len(bad) if col == 1 else bad["lam"], y=bad["mean"], mode="markers",
                    name="collapsed", legendgroup="collapsed", showlegend=False, hoverinfo="skip",
                    marker=dict(symbol="x", size=14, color="#d62728", line=dict(width=2))),
                    row=1, col=col)
    if summary["collapsed"].astype(bool).any():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="latent space collapsed",
                                 marker=dict(symbol="x", size=12, color="#d62728")), row=1, col=2)
    if has_degen and summary["degenerate"].astype(bool).any():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers",
                                 name=f"degenerate ({DEGENERATE_WHY})",
                                 marker=dict(symbol="circle-open", size=12, color="#555")), row=1, col=2)
    # The paper's best λ as a trace (shapes on log axes take log10 coordinates and are easy
    # to get wrong); the axis range is set from the data so one point cannot stretch it.
    lo = float(summary["mean"].min() - summary["std"].max() - 0.02) if len(summary) else 0.4
    fig.add_trace(go.Scatter(x=[best_lam, best_lam], y=[min(lo, 0.45), 1.0], mode="lines",
                             name=f"paper's best λ = {format_lambda(best_lam)}",
                             line=dict(color="#555", dash="dash")), row=1, col=2)
    fig.add_hline(y=0.5, line=dict(color="#999", dash="dot", width=1))
    pos = summary.loc[summary["lam"] > 0, "lam"].to_numpy(float)
    lams = np.log10(np.concatenate([pos, [best_lam]]))
    vals, text = log_ticks(np.concatenate([pos, [best_lam]]))
    fig.update_xaxes(type="log", title="λ (log scale)", row=1, col=2, tickvals=vals, ticktext=text,
                     range=[lams.min() - 0.5, lams.max() + 0.5])
    fig.update_xaxes(title="λ = 0", row=1, col=1, type="category")
    fig.update_yaxes(title=f"final {METRIC_NAMES[metric]} (mean ± std over seeds)", row=1, col=1)
    return _layout(fig, f"λ sensitivity: final {METRIC_NAMES[metric]} of IAEAD", 440)


def compare_chart(agg: pd.DataFrame, metric: str, degenerate: set | None = None,
                  pooled: bool = False) -> go.Figure:
    """One curve per setting (``setting, epoch, mean, std, n``; the setting names the legend
    entry), with a ± std band where several seeds are pooled; ``degenerate``: the (setting,
    epoch) points whose metric is degenerate (open markers). ``pooled``: whether runs that
    differ only in seed are pooled (the Runs page's toggle) — only then does the title say
    mean ± std over seeds."""
    degenerate = degenerate or set()
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
        degen = [(setting, e) in degenerate for e in part["epoch"]]
        sym = _SYMBOLS[i % len(_SYMBOLS)]
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["mean"], mode="lines+markers",
                                 name=setting, legendgroup=setting,
                                 customdata=[f"degenerate ({DEGENERATE_WHY})" if d else "" for d in degen],
                                 hovertemplate="epoch %{x}: %{y:.3f} %{customdata}",
                                 marker=dict(size=[11 if d else _width(i) + 3 for d in degen],
                                             symbol=[f"{sym}-open" if d else sym for d in degen]),
                                 line=dict(color=colour, width=_width(i))))
    if degenerate:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"degenerate ({DEGENERATE_WHY})",
                                 marker=dict(symbol="circle-open", size=10, color="#555")))
    last = int(agg["epoch"].max()) if len(agg) else 1
    fig.update_xaxes(title="epoch", tick0=0, dtick=None if last > 12 else 1, tickformat="d")
    fig.update_yaxes(title=METRIC_NAMES[metric])
    fig = _layout(fig, f"{METRIC_NAMES[metric]} of each run's own score per epoch"
                       + (" (mean ± std over seeds)" if pooled else ""), 420)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.15, x=0, xanchor="left"))
    return fig


def presentation(fig: go.Figure, font: int = SLIDE_FONT) -> go.Figure:
    """Restyle ``fig`` for a projector, in place: every text at ``font`` px or more (ticks,
    legend, axis titles, the title at ``font + 4``, subplot titles and annotations), curves at
    least :data:`SLIDE_LINE` px wide, markers at least 10 px, and a taller canvas (at least
    480 px) so that the larger text leaves room for the data. Returns ``fig``."""
    fig.update_layout(font=dict(size=font), legend=dict(font=dict(size=font)),
                      title=dict(font=dict(size=font + 4)),
                      height=max(480, int(fig.layout.height or 0) + 80))
    fig.update_xaxes(tickfont=dict(size=font), title_font=dict(size=font))
    fig.update_yaxes(tickfont=dict(size=font), title_font=dict(size=font))
    leg = fig.layout.legend
    if leg.y is not None and leg.y < 0 and leg.yanchor == "top":
        # a legend below the plot: lower, clear of the larger axis title (a walk saw "epoch"
        # written over the legend's first group title)
        fig.update_layout(legend=dict(y=leg.y - 0.12))
    for a in fig.layout.annotations or ():
        a.font = dict(size=max(font - 2, (a.font.size or 0)), color=a.font.color)
    for t in fig.data:
        if t.type in ("scatter", "scattergl") and t.mode and "lines" in t.mode:
            t.line.width = max(SLIDE_LINE, t.line.width or 0)
        if t.type in ("scatter", "scattergl") and t.marker is not None:
            size = t.marker.size
            if isinstance(size, (int, float)):
                t.marker.size = max(10, size)
            elif size is not None:
                t.marker.size = [max(10, v) for v in size]
    return fig


def export_config(fmt: str = "png", name: str = "iaead-chart") -> dict:
    """plotly's config for a chart: the toolbar's camera button saves the figure as ``fmt``
    (``"png"`` or ``"svg"``) at slide size (:data:`SLIDE_SIZE`), named ``name``."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"export format must be png or svg, not {fmt!r}")
    w, h = SLIDE_SIZE
    return {"displaylogo": False,
            "toImageButtonOptions": {"format": fmt, "width": w, "height": h, "scale": 1,
                                     "filename": name}}
