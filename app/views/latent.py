"""The latent space as the pages draw it (no Streamlit here): the radius R per epoch where the
method has one (:func:`radius_series`), the distance a Latent-page histogram shows and how it
relates to the panel's score (:func:`panel_distance`), and whether two per-epoch latent curves
coincide (:func:`coincide`, the Train page's IAEAD-versus-CAE sentence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from iaead_core.evaluation.analysis import RULE_TITLES
from iaead_core.evaluation.metrics import score_scale
from .runs import _float

__all__ = ["has_radius", "radius_series", "PanelDistance", "panel_distance", "coincide",
           "coincide_late",
           "collapsed_map_range"]


# ------------------------------------------------------------------------------- radius R

def has_radius(config: dict[str, Any]) -> bool:
    """Whether the run's method has a radius R at all: IAEAD (soft boundary, eq. 7) and Deep
    SVDD with the soft-boundary objective. CAE, one-class Deep SVDD and the reconstruction
    baselines have none."""
    method = config.get("method")
    if method == "iaead":
        return True
    return method == "deep-svdd" and config.get("objective") == "soft-boundary"


def radius_series(records: list[dict[str, Any]], config: dict[str, Any]) -> list[float]:
    """R per record, NaN where R is undefined: a method without R (every record), and the
    epochs without the SVDD term (IAEAD's warm-up, Deep SVDD's pre-training), where the
    engine leaves R at its initial 0."""
    out = []
    for r in records:
        R = _float(r.get("R"))
        svdd_on = (r.get("loss") or {}).get("svdd") is not None
        ok = has_radius(config) and svdd_on and R is not None and math.isfinite(R)
        out.append(R if ok else math.nan)
    return out


# ---------------------------------------------------------------------- hypersphere view

@dataclass
class PanelDistance:
    """The distance a Latent-page histogram shows, and how it relates to the panel's score.

    Attributes
    ----------
    values : ndarray ``(N,)`` float64 — one value per image: a latent distance (latent
        units), or the panel's own score where that is no latent distance.
    name : "distance to c", "distance to the mean latent code", or the score's title (e.g.
        "reconstruction error").
    to_c : whether ``values`` are distances to the centre c (so R may be marked).
    relation : one sentence relating it to the score named in the panel's headline.
    scale : the codes' RMS length (:func:`iaead_core.evaluation.metrics.score_scale`, the metrics' own
        scale): the yardstick for "all these distances are the same" (distances to the mean
        of collapsed codes are all ~1e-8).
    """

    values: np.ndarray
    name: str
    to_c: bool
    relation: str
    scale: float = 0.0


_TO_C, _TO_MEAN = "distance to c", "distance to the mean latent code"


def panel_distance(snap: dict[str, np.ndarray], rule: str | None, config: dict[str, Any],
                   want: str = "score") -> PanelDistance:
    """See :func:`_panel_distance`; adds :attr:`PanelDistance.scale`."""
    out = _panel_distance(snap, rule, config, want)
    if out.name not in (_TO_C, _TO_MEAN):  # a score that is no latent distance: its own size
        finite = out.values[np.isfinite(out.values)]
        out.scale = float(np.abs(finite).max()) if finite.size else 0.0
        return out
    # The metrics' scale for a latent distance (the codes' RMS length), so "all the same" on
    # the page is the metrics' "degenerate".
    out.scale = score_scale("latent_mean", np.asarray(snap["z"], np.float64)) or 0.0
    return out


def _panel_distance(snap: dict[str, np.ndarray], rule: str | None, config: dict[str, Any],
                    want: str = "score") -> PanelDistance:
    """Choose and compute the distance a panel's histogram shows.

    Parameters
    ----------
    snap : a latent snapshot (``z`` ``(N, d)``, ``score_<rule>`` ``(N,)``, ``centre``, ``R``).
    rule : the scoring rule named in the panel's headline (or None).
    config : the run's TrainConfig dict (Deep SVDD's objective decides how its score relates
        to the distance).
    want : ``"score"`` — the headline score itself (a latent distance, or any other score
        such as the reconstruction error, as saved); ``"c"`` — the distance to c where c is
        fixed, else to the mean code.

    Returns
    -------
    PanelDistance. Saved scores (computed in float64, stored as float32) are preferred to
    distances recomputed from the float16 codes of the snapshot.
    """
    title = RULE_TITLES.get(rule or "", rule or "no score")
    has_c = snap.get("centre") is not None and np.size(snap.get("centre")) > 0
    svdd = snap.get("score_svdd")
    if want == "score" and rule in ("latent_mean", "latent_c") and f"score_{rule}" in snap:
        return PanelDistance(np.asarray(snap[f"score_{rule}"], np.float64),
                             _TO_C if rule == "latent_c" else _TO_MEAN, rule == "latent_c",
                             "This is the panel's score.")
    if rule == "svdd" and svdd is not None and (want == "score" or has_c):
        s = np.asarray(svdd, np.float64)
        if config.get("objective") == "soft-boundary":
            s = s + float(snap.get("R", 0.0)) ** 2  # the score is ||z − c||² − R²
        return PanelDistance(np.sqrt(np.clip(s, 0.0, None)), _TO_C, True,
                             "The panel's score is the square of this distance"
                             + (" minus R²." if config.get("objective") == "soft-boundary" else "."))
    if want == "score" and rule and f"score_{rule}" in snap:  # any other score, as it is
        return PanelDistance(np.asarray(snap[f"score_{rule}"], np.float64), title, False,
                             "This is the panel's score.")
    if "score_latent_c" in snap:
        return PanelDistance(np.asarray(snap["score_latent_c"], np.float64), _TO_C, True,
                             f"Not the panel's score ({title}): the hypersphere view.")
    if has_c:
        z = np.asarray(snap["z"], np.float64)
        return PanelDistance(np.linalg.norm(z - np.asarray(snap["centre"], np.float64), axis=1),
                             _TO_C, True, f"Not the panel's score ({title}): the hypersphere view.")
    relation = (f"Not the panel's score ({title}, which is not this distance): c is not fixed "
                "in this run or at this epoch, so the distance is to the mean code.")
    if "score_latent_mean" in snap:
        return PanelDistance(np.asarray(snap["score_latent_mean"], np.float64), _TO_MEAN, False,
                             "This is the panel's score." if rule == "latent_mean" else relation)
    z = np.asarray(snap["z"], np.float64)
    return PanelDistance(np.linalg.norm(z - z.mean(0), axis=1), _TO_MEAN, False, relation)


# ----------------------------------------------------------------------------- curves

def coincide(a: list[tuple[int, float]], b: list[tuple[int, float]], tol: float) -> float | None:
    """The largest gap between two per-epoch curves over their common epochs, if every gap is
    at most ``tol`` and they share at least two epochs; else None. ``a``, ``b``: (epoch, value)."""
    da = {e: v for e, v in a if v is not None and math.isfinite(v)}
    gaps = [abs(da[e] - v) for e, v in b if e in da and v is not None and math.isfinite(v)]
    if len(gaps) < 2:
        return None
    worst = max(gaps)
    return worst if worst <= tol else None


def coincide_late(a: list[tuple[int, float]], b: list[tuple[int, float]],
                  tol: float) -> tuple[float, int] | None:
    """Whether two per-epoch curves coincide over the second half of their common epochs
    (all of them when they share fewer than four): ``(largest gap there, first epoch
    compared)`` if every gap there is at most ``tol``, else None. A walk saw two curves end at
    0.952 and 0.954 whose sentence never appeared because one early epoch differed by 0.040;
    the sentence then names the epoch from which they coincide."""
    da = {e: v for e, v in a if v is not None and math.isfinite(v)}
    common = sorted(e for e, v in b if e in da and v is not None and math.isfinite(v))
    if len(common) < 2:
        return None
    late = common[len(common) // 2:] if len(common) >= 4 else common
    db = dict(b)
    gap = coincide([(e, da[e]) for e in late], [(e, db[e]) for e in late], tol)
    return None if gap is None else (gap, late[0])


# ------------------------------------------------------------------------------ the map

def collapsed_map_range(diag: dict[str, Any], metric: dict[str, Any] | None) -> float | None:
    """The half-width of the axes of a collapsed or degenerate epoch's map, in code units.

    A map autoscaled to codes that differ by float noise draws one red and one blue dot at
    opposite ends (a walk read it as perfect separation). Drawn at the scale of the codes
    themselves (their RMS length, :func:`iaead_core.evaluation.metrics.latent_diagnostics`'
    ``code_norm``; the spread where that is missing), one point looks like one point.

    Parameters
    ----------
    diag : the epoch's latent diagnostics; metric : the headline score's ``metrics[rule]``.

    Returns
    -------
    float or None
        The half-width (> 0) when the space is collapsed (``diag["collapsed"]``) or the
        headline metric is degenerate; None for a healthy epoch (autoscaled map, UMAP
        allowed).
    """
    bad = bool(diag.get("collapsed")) or bool(isinstance(metric, dict) and metric.get("degenerate"))
    if not bad:
        return None
    for key in ("code_norm", "centre_norm", "spread"):
        v = _float(diag.get(key))
        if v is not None and math.isfinite(v) and v > 0:
            return v
    return 1.0
