"""The lab's words: metrics, settings, alerts and collapse told in sentences (no Streamlit).

Every number a sentence here contains is taken from a run (its records, its config or its
snapshot) or from the core's documented constants; nothing is typed into prose. The pages
only place these strings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from iaead_core.config import TrainConfig
from iaead_core.data import DATASETS
from iaead_core.evaluation.analysis import METHOD_TITLES, METRIC_NAMES, RULE_TITLES, format_lambda
from iaead_core.evaluation.health import TANH_GRADIENT_AT_SATURATION
from iaead_core.evaluation.metrics import DEGENERATE_RTOL
__all__ = ["AUROC_MEANS", "pace_words", "below_chance_sentence", "DEGENERATE_WHY", "metric_text", "row_metric_text", "radius_warning", "is_degenerate", "dataset_title", "settings",
           "settings_text", "group_title", "paper_cell", "protocol_lines", "alert_lines", "rule_name",
           "panel_story", "collapse_cause", "collapsed_map_caption", "coincidence_sentence", "sweep_sentence", "sidebar_differences",
           "single_value", "started_words"]

#: What AUROC means, in one paragraph, for the popover beside every AUROC of the lab.
AUROC_MEANS = (
    "**AUROC** (area under the ROC curve) is the probability that a randomly chosen anomaly "
    "gets a higher anomaly score than a randomly chosen normal image. **1** means every "
    "anomaly is ranked above every normal image; **0.5** is chance — a coin toss, or a score "
    "that is the same for every image (the lab then reports it as *degenerate*); **below "
    "0.5** the score ranks upside down: anomalies look *more* normal than the normal images "
    "more often than not. It needs no threshold, and does not change if the scores are "
    "rescaled. The labels are used only to compute it (oracle monitoring), never to train. "
    "Every page writes it on a 0–1 scale with three decimals.")

#: Why a metric is reported as degenerate (the core's rule: iaead_core.evaluation.metrics.is_degenerate).
DEGENERATE_WHY = "scores differ only by float noise"


def is_degenerate(m: dict[str, Any] | None) -> bool:
    """Whether a ``metrics[rule]`` dict is marked degenerate (False for records written before
    the core reported it)."""
    return bool(isinstance(m, dict) and m.get("degenerate"))


def metric_text(m: dict[str, Any] | None, key: str = "auroc", why: bool = True,
                raw: bool = True) -> str:
    """One metric of a ``metrics[rule]`` dict for display.

    ``"0.912"``; a degenerate one says so, with scikit-learn's value on the noise when kept:
    ``"0.500 — degenerate (scores differ only by float noise; raw 0.699)"`` (``why=False``:
    ``"0.500 — degenerate (raw 0.699)"``; ``raw=False``: without the raw value). ``"—"``
    when absent or not finite.
    """
    if not isinstance(m, dict):
        return "—"
    v = m.get(key)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "—"
    if not is_degenerate(m):
        return f"{v:.3f}"
    noise = (m.get("raw") or {}).get(key) if raw else None
    parts = (([DEGENERATE_WHY] if why else [])
             + ([f"raw {noise:.3f}"] if isinstance(noise, (int, float)) else []))
    return f"{v:.3f} — degenerate" + (f" ({'; '.join(parts)})" if parts else "")


def row_metric_text(row: dict[str, Any], key: str = "auroc") -> str:
    """A metric of a runs-table row (:func:`iaead_core.evaluation.analysis.run_row`: ``auroc``,
    ``aupr_in``, ``aupr_out``, ``degenerate``, ``auroc_raw``) written as the Train page's table
    writes the same run's own score (``metric_text(m, key, why=False)``): ``"0.956"``,
    ``"0.500 — degenerate (raw 0.699)"``, ``"—"`` for a run without labels or metrics (never
    "None")."""
    raw = row.get(f"{key}_raw")
    m = {key: row.get(key), "degenerate": bool(row.get("degenerate")),
         "raw": {key: raw} if isinstance(raw, (int, float)) and math.isfinite(raw) else None}
    return metric_text(m, key, why=False)


def radius_warning(nu: float | None, flagged: int | None = None, n: int | None = None) -> str:
    """The warning beside the learned-radius threshold when ν = 1 (``""`` otherwise): R is
    then the (1 − ν) = 0-quantile of a batch's distances to c, i.e. the *smallest* distance,
    so almost every image lies outside the sphere (a walk flagged 299 of 300 with no word
    why). ``flagged``/``n``: this threshold's count, quoted when given."""
    if nu is None or not math.isclose(float(nu), 1.0):
        return ""
    count = (f" Here it flags {flagged:,} of {n:,} images." if flagged is not None and n
             else "")
    return ("With ν = 1, R is the smallest distance to c in a training batch (the (1 − ν) = "
            "0-quantile), so nearly every image lies outside the sphere and is flagged." + count
            + " Use a contamination or quantile threshold, or train with a smaller ν.")


def pace_words(load: float | None = None, cpus: int | None = None) -> str:
    """Where a time left comes from, with the load it is scaled to:
    ``"at the pace measured in this process, scaled to this machine's load now: 6.2 on 2
    cores"`` (``load``/``cpus``: the 1-minute load average and the cores, read when None)."""
    import os

    try:
        load = os.getloadavg()[0] if load is None else load
    except (OSError, AttributeError):
        return "at the pace measured in this process"
    cpus = cpus or os.cpu_count() or 1
    return (f"at the pace measured in this process, scaled to this machine's load now: "
            f"{load:.1f} on {cpus} cores")


def dataset_title(name: str) -> str:
    """``"mnist"`` → ``"MNIST"``; a set that is not a benchmark keeps its name."""
    spec = DATASETS.get(name)
    return spec.title if spec is not None else str(name)


def _cfg(config: dict[str, Any]) -> TrainConfig | None:
    try:
        return TrainConfig.from_dict(config)
    except (TypeError, ValueError):
        return None


def settings(config: dict[str, Any]) -> dict[str, str]:
    """The settings a result depends on, formatted: ``λ``, ``ν``, ``preset``, ``init`` (λ in
    the project's one format, :func:`iaead_core.evaluation.analysis.format_lambda`; "—" for a method
    without λ, and for ν where the method ignores it: the CAE, IAEAD at λ = 0, one-class
    Deep SVDD)."""
    cfg = _cfg(config)
    lam = cfg.effective_lam if cfg is not None else config.get("lam")
    if cfg is not None:  # a setting the method ignores is not shown as if it mattered
        from iaead_core.methods.fields import used_nu

        nu = used_nu(cfg)
    else:
        nu = config.get("nu")
    return {"λ": format_lambda(lam), "ν": "—" if nu is None else f"{nu:g}",
            "preset": str(config.get("preset", "?")), "init": str(config.get("init", "?"))}


def settings_text(config: dict[str, Any]) -> str:
    """``"λ = 5e-5 · ν = 1 · preset quick · init released"``."""
    s = settings(config)
    return f"λ = {s['λ']} · ν = {s['ν']} · preset {s['preset']} · init {s['init']}"


def _lam_config(configs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The config whose λ and ν describe a comparison: IAEAD's (the only method with both)."""
    return next((c for c in configs if c.get("method") == "iaead"), None)


def group_title(group: str, configs: Sequence[dict[str, Any]], kind: str,
                status: str | None = None) -> str:
    """One line naming a comparison or a sweep by its settings, for the picker and headers:
    ``"12:03:15 · MNIST 0 · ρ = 10 % · λ = 50 · ν = 1 · quick · 15 epochs · 1,000 images ·
    init released · seed 0 · completed"``. ``configs`` are the group's run configs (empty:
    only the start time is known); epochs and images are always named (a walk found two
    comparisons of 30 epochs / 3,000 images and 15 epochs / 1,000 images under one label);
    ``status`` (:func:`app.views.runs.group_status`) ends the line when given."""
    parts = group.split("-")
    when = (f"{parts[1][:4]}-{parts[1][4:6]}-{parts[1][6:]} {parts[2][:2]}:{parts[2][2:4]}:{parts[2][4:6]}"
            if len(parts) >= 3 and len(parts[1]) == 8 and len(parts[2]) >= 6 else group)
    if not configs:
        return when
    c0 = configs[0]
    classes = sorted({str(c.get("normal_class")) for c in configs}, key=_natural)
    seeds = sorted({int(c.get("seed", 0)) for c in configs})
    out = [when, f"{dataset_title(c0.get('dataset', '?'))} {', '.join(classes)}",
           f"ρ = {float(c0.get('rho', 0)) * 100:g} %"]
    if kind == "sweep":
        lams = sorted({float(c.get("lam", 0)) for c in configs})
        out.append("λ ∈ {" + ", ".join(format_lambda(v) for v in lams) + "}")
        out.append(f"ν = {settings(c0)['ν']}")
    else:
        lc = _lam_config(configs)
        s = settings(lc) if lc is not None else {"λ": "—", "ν": "—"}
        out += [f"λ = {s['λ']}", f"ν = {s['ν']}"]
    s0 = settings(c0)
    epochs = sorted({int(c.get("epochs") or 0) for c in configs})
    sizes = sorted({int(c.get("max_samples") or 0) for c in configs})
    out += [s0["preset"], "/".join(map(str, epochs)) + " epochs",
            "/".join("all" if n == 0 else f"{n:,}" for n in sizes) + " images",
            f"init {s0['init']}",
            f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"]
    return " · ".join(out + ([status] if status else []))


def _natural(s: str):
    return (0, int(s)) if s.isdigit() else (1, s)


def paper_cell(config: dict[str, Any]) -> str:
    """The paper's AUROC for a run, from :func:`iaead_core.evaluation.paper.paper_reference`, for a
    column named "paper AUROC": ``"0.966"`` at the paper's setting and protocol, ``"0.966
    (different protocol)"`` at its setting with another protocol (the quick preset), else
    ``"—"`` with the reason: ``"— (λ = 50; the paper's is 5e-5)"``, ``"— (Table 3 has none
    for this data set, class and method)"``."""
    try:
        from iaead_core.evaluation.paper import paper_reference
    except ImportError:  # an older core without it: show nothing rather than a wrong number
        return "—"
    value, label = paper_reference(config)
    if value is None:
        reason = label.removeprefix("no paper value: ").replace(" (", "; ").replace(")", "")
        return f"— ({reason})"
    return f"{value:.3f}" if label == "paper" else f"{value:.3f} (different protocol)"


def protocol_lines(items: Sequence[Any]) -> list[str]:
    """For each run whose paper value is marked *different protocol*, the settings in which it
    differs (docs/method.md §7): ``"CAE: different protocol: epochs 10 vs 250; …"``."""
    try:
        from iaead_core.evaluation.paper import paper_reference, protocol_differences
    except ImportError:
        return []
    out = []
    for it in items:
        try:
            value, label = paper_reference(it.config)
            diffs = protocol_differences(it.config) if value is not None and label != "paper" else []
        except (TypeError, ValueError):
            continue
        if diffs:
            out.append(f"{it.label}: different protocol: "
                       + "; ".join(d.replace(": ", " ", 1) for d in diffs) + " (run vs paper).")
    return out


# ------------------------------------------------------------------------------ alerts

def _alert_kinds() -> dict[str, Any]:
    try:
        from iaead_core.evaluation.health import ALERT_KINDS
    except ImportError:  # a core without health alerts: messages only
        return {}
    return ALERT_KINDS


def _title_and_why(kind: str) -> tuple[str, str]:
    entry = _alert_kinds().get(kind)
    if isinstance(entry, dict):
        return (str(entry.get("title", kind)),
                str(entry.get("explanation") or entry.get("description") or entry.get("why") or ""))
    if isinstance(entry, (tuple, list)) and entry:
        return str(entry[0]), str(entry[1]) if len(entry) > 1 else ""
    if isinstance(entry, str):
        return kind, entry
    title = getattr(entry, "title", None)
    if title is not None:
        return str(title), str(getattr(entry, "explanation", "") or "")
    return kind.replace("_", " "), ""


def alert_lines(record: dict[str, Any] | None) -> list[str]:
    """The training-health alerts of an epoch record, one markdown line each:
    ``"**Codes collapsed to a point** — <why>. <the record's message>"`` (kinds and
    explanations from :data:`iaead_core.evaluation.health.ALERT_KINDS`)."""
    out = []
    for a in (record or {}).get("alerts") or []:
        if not isinstance(a, dict):
            continue
        title, why = _title_and_why(str(a.get("kind", "?")))
        text = f"**{title}**"
        if why:
            text += f" — {why.rstrip('.')}."
        if a.get("message"):  # a sentence of its own: capitalised after the full stop
            text += f" {a['message'][:1].upper()}{a['message'][1:]}"
        out.append(text)
    return out


# ------------------------------------------------------------------------------ charts

#: Rule names where the core's title starts with the method's name ("Deep SVDD distance"); Deep
#: SVDD's score is a *squared* distance, never named like IAEAD's plain distance to c.
_RULE_NAMES = {"svdd": "squared distance to c"}


def rule_name(rule: str, method: str) -> str:
    """A scoring rule's name without the method's name in it (legend entries sit under the
    method: "Deep SVDD · Deep SVDD distance" would repeat it)."""
    if rule in _RULE_NAMES:
        return _RULE_NAMES[rule]
    title = RULE_TITLES.get(rule, rule.replace("_", " "))
    mt = METHOD_TITLES.get(method, method)
    if title.lower().startswith(mt.lower() + " "):
        title = title[len(mt) + 1:]
    return title


def below_chance_sentence(curves: Sequence[tuple[str, str, float]]) -> str:
    """The sentence under an AUROC chart when some final values are below chance, with
    those values: ``curves`` are (run label, rule name, final AUROC) of the non-degenerate
    curves on screen. ``""`` when none is below 0.5."""
    low = [(lab, rule, v) for lab, rule, v in curves
           if isinstance(v, (int, float)) and math.isfinite(v) and v < 0.5]
    if not low:
        return ""
    listed = "; ".join(f"{lab} · {rule} {v:.3f}" for lab, rule, v in low)
    return (f"Below the chance line (0.5): {listed}. Such a score ranks the anomalies as *more* "
            "normal than the normal images more often than not: it carries information, but "
            "upside down, and as the method's score it fails.")


def coincidence_sentence(finals: dict[tuple[str, str], float], gap: float,
                         since: int | None = None) -> str:
    """The one sentence that explains why IAEAD's and CAE's distance-to-mean-latent curves
    coincide (``gap``: their largest difference; ``since``: the first epoch compared when
    only the later epochs coincide, :func:`app.views.latent.coincide_late`), with the gain
    over CAE's reconstruction error taken from the runs (``finals``: final AUROC per
    (method, rule))."""
    iaead, cae_lat = finals.get(("iaead", "latent_mean")), finals.get(("cae", "latent_mean"))
    rec = finals.get(("cae", "reconstruction"))
    when = f" from epoch {since} on" if since is not None and since > 1 else ""
    text = (f"IAEAD's and CAE's distance-to-mean-latent curves coincide{when} (they differ by "
            f"at most {gap:.3f}), so the SVDD term changed little here")
    if None not in (iaead, cae_lat, rec) and iaead > rec:
        text += (f": most of the gain over reconstruction (CAE's reconstruction error "
                 f"{rec:.3f} → IAEAD {iaead:.3f}) comes from scoring in the latent space "
                 f"(the CAE scored there already reaches {cae_lat:.3f})")
    return text + "."


def sweep_sentence(summary, metric: str) -> str:
    """What the finished sweep shows, from its own numbers: the best λ and the end points,
    marking degenerate and collapsed points. ``summary`` has ``normal_class, lam, mean, n,
    collapsed`` and optionally ``degenerate`` columns."""
    if summary is None or len(summary) == 0:
        return ""
    name = METRIC_NAMES.get(metric, metric)
    out = []
    for cls, part in summary.groupby("normal_class", sort=True):
        part = part.sort_values("lam")
        best = part.loc[part["mean"].idxmax()]
        worst = part.loc[part["mean"].idxmin()]

        def mark(row) -> str:
            tags = [t for t, col in (("degenerate", "degenerate"), ("collapsed", "collapsed"))
                    if col in row and bool(row[col])]
            return f" ({', '.join(tags)})" if tags else ""

        if len(part) == 1:  # "highest … lowest …" of one point would say it twice
            out.append(f"Class {cls}: {name} {best['mean']:.3f} at λ = "
                       f"{format_lambda(best['lam'])}{mark(best)}, the only λ so far.")
            continue
        out.append(f"Class {cls}: highest {name} {best['mean']:.3f} at λ = {format_lambda(best['lam'])}"
                   f"{mark(best)}, lowest {worst['mean']:.3f} at λ = {format_lambda(worst['lam'])}"
                   f"{mark(worst)}.")
    return " ".join(out)


# ------------------------------------------------------------------------- latent page

def single_value(values: np.ndarray, scale: float = 0.0, rtol: float = DEGENERATE_RTOL) -> bool:
    """Whether every value is the same for display: the spread (max − min) is at most
    ``rtol`` of their magnitude or of ``scale`` (the codes' RMS length, for distances that
    are all ~0), or 1e-12. The default is the metrics' own degenerate rule
    (:data:`iaead_core.evaluation.metrics.DEGENERATE_RTOL`), so a histogram draws one bar exactly when
    the score's AUROC is reported as degenerate (walk 4: a bar "for all 3,000 images" beside
    a real AUROC of 0.339 on distances from 4e-10 to 4e-4)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return True
    span = float(v.max() - v.min())
    return span <= max(1e-12, rtol * max(float(np.abs(v).max()), float(scale)))


def collapse_cause(report: dict[str, Any] | None) -> str:
    """Which term did it, from :func:`iaead_core.evaluation.health.collapse_report`: the SVDD
    loss frozen at R² and the dead gradients of saturated codes, in one or two sentences
    (``""`` when the report has neither)."""
    if not report:
        return ""
    out = []
    sv = report.get("svdd") or {}
    if sv.get("frozen"):
        out.append(f"The SVDD term did it: its loss went from {sv['first']:.4g} (epoch "
                   f"{sv['first_epoch']}) to {sv['loss']:.4g} = R² (R = {sv['R2'] ** 0.5:.4g}) "
                   f"and has stayed there since epoch {sv['since_epoch']}: with ν = 1, R is the "
                   "smallest distance to c in a batch, so codes piled at one distance from c "
                   "leave it nothing to reduce.")
    if report.get("dead_gradients"):
        out.append(f"{report['saturated']:.0%} of the code entries are saturated at ±1, where "
                   f"tanh passes at most {TANH_GRADIENT_AT_SATURATION:.0%} of the gradient: the "
                   "encoder cannot move them back.")
    return " ".join(out)


def collapsed_map_caption(n: int, half: float, far: float, umap_chosen: bool) -> str:
    """The caption under a collapsed epoch's map (:func:`app.views.latent.collapsed_map_range`):
    its scale, how far the ``n`` drawn codes lie from their mean on it (``far``, code units),
    and, when UMAP was chosen, why it is not drawn."""
    text = (f"Drawn at the scale of the codes (axes ±{half:.3g}, their RMS length): the "
            f"{n:,} codes drawn lie within {far:.1g} of their mean"
            + (", so they show as one dot." if far < 0.01 * half else "."))
    if umap_chosen:
        text += (" UMAP is not drawn for a collapsed epoch: it would stretch float-noise "
                 "differences over the whole panel and invent structure.")
    return text


def panel_story(rule_title: str, m: dict[str, Any] | None, diag: dict[str, Any],
                dist_name: str, dist: np.ndarray, scale: float = 0.0,
                has_centre: bool = True, report: dict[str, Any] | None = None) -> tuple[str, str]:
    """What happened in a Latent-page panel, in words, and why its AUROC is what it is.

    Parameters
    ----------
    rule_title : the headline score's name; m : its ``metrics[rule]`` dict (or None)
    diag : :func:`iaead_core.evaluation.metrics.latent_diagnostics` of the snapshot
    dist_name, dist : the distance the panel's histogram shows ``(N,)`` (same quantity)
    scale : the codes' size, for :func:`single_value`
    has_centre : whether the run has a centre c at this epoch (else the spread is given in
        code units, not as a fraction of ||c||)
    report : :func:`iaead_core.evaluation.health.collapse_report` of the epoch (kind, place,
        distance to c, SVDD loss frozen at R²); without it the shape comes from the rank alone

    Returns
    -------
    (kind, markdown) — kind ``"error"`` (collapsed), ``"warning"`` (degenerate scores without
    a collapse flag) or ``"success"``.
    """
    d = np.asarray(dist, np.float64)
    d = d[np.isfinite(d)]
    if d.size and single_value(d, scale):
        where = (f"every image is at {dist_name} {np.median(d):.4g} (all within "
                 f"{np.ptp(d):.1g} of each other" + (f", against codes of mean norm {scale:.2g})"
                                                    if scale else ")"))
    elif d.size:
        where = f"the {dist_name} ranges from {d.min():.3g} to {d.max():.3g}"
    else:
        where = f"no finite {dist_name}"
    ratio = diag.get("collapse_ratio")  # as the alert and the diagnostics line write it
    # × ||c|| only where there is a c (a CAE's "ratio" is to the mean code's norm)
    spread = (f"{ratio:.2g} × ||c||" if has_centre and diag.get("centre_norm")
              and isinstance(ratio, float) else f"{diag.get('spread', float('nan')):.2g}")
    shape = (f"spread of the codes {spread}, effective rank "
             f"{diag.get('effective_rank', float('nan')):.1f}")
    if is_degenerate(m):
        raw = (m.get("raw") or {}).get("auroc")
        why = (f"The {rule_title} values differ only by float noise, so they cannot rank "
               f"anomalies: the AUROC is reported as {m['auroc']:.3f} (chance)"
               + (f"; scikit-learn's value on the noise would be {raw:.3f}, a ranking of "
                  "rounding errors" if isinstance(raw, (int, float)) else "") + ".")
    elif isinstance(m, dict) and isinstance(m.get("auroc"), (int, float)):
        why = (f"The {rule_title} values still differ by more than float noise, so the AUROC "
               f"({m['auroc']:.3f}) measures how they rank normal images against anomalies.")
    else:
        why = "This epoch has no AUROC for this score."
    if diag.get("collapsed"):
        if report and report.get("where"):
            # kind and place as the core's collapse_report (and the alert) say them
            cause = collapse_cause(report)
            not_c = (" — not on c" if report.get("place") in ("corner", "away") else "")
            return "error", (f"**Feature collapse.** The codes form {report['where']}{not_c} "
                             f"({shape}); {where}. {why}" + (f" {cause}" if cause else ""))
        rank = diag.get("effective_rank", float("nan"))
        onto = "(almost) one point" if not rank >= 0.5 else "(almost) one line" if rank < 1.5 \
            else "a tiny region"  # as the rank says: a walk read "one point" beside rank 1.0
        return "error", f"**Feature collapse.** The codes sit on {onto} ({shape}); {where}. {why}"
    shape = shape[:1].upper() + shape[1:]  # starts a sentence below
    if is_degenerate(m):
        return "warning", f"**Degenerate score.** {shape}; {where}. {why}"
    return "success", f"**No collapse.** {shape}; {where}. {why}"


# ------------------------------------------------------------------------ sidebar check

def sidebar_differences(sidebar: dict[str, Any], shown: dict[str, Any]) -> list[str]:
    """Settings in which the sidebar differs from the comparison on screen, in words
    (``"λ: sidebar 5e-5, shown 50"``). Both dicts use TrainConfig field names, plus
    ``methods`` (a list) and ``seeds`` (seeds per method); only keys present in both are
    compared."""
    fmt = {"lam": ("λ", format_lambda), "nu": ("ν", lambda v: "—" if v is None else f"{v:g}"),
           "rho": ("ρ", lambda v: f"{float(v) * 100:g} %"), "dataset": ("data set", dataset_title),
           "normal_class": ("normal class", str), "seed": ("seed", str), "preset": ("preset", str),
           "seeds": ("seeds per method", str),
           "epochs": ("epochs", str), "init": ("init", str), "methods": ("methods", _methods),
           "svdd_bias": ("unregularised Deep SVDD", lambda v: "on" if v else "off"),
           "max_samples": ("images", lambda v: "all" if not v else f"{int(v):,}")}
    out = []
    for key, (name, f) in fmt.items():
        if key in sidebar and key in shown and not _same(sidebar[key], shown[key]):
            out.append(f"{name}: sidebar {f(sidebar[key])}, shown {f(shown[key])}")
    return out


def _methods(v) -> str:
    return ", ".join(METHOD_TITLES.get(m, m) for m in v)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return str(a) == str(b) if not (a is None or b is None) else a is b


def started_words(starter) -> str:
    """``"another browser tab (Chrome on 127.0.0.1) at 14:03:22"`` for a
    :class:`~app.jobs.Starter`."""
    when = time.strftime("%H:%M:%S", time.localtime(starter.at))
    where = f" ({starter.where})" if starter.where else ""
    return f"another browser tab{where} at {when}"
