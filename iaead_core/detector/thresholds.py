"""Thresholds on anomaly scores, and the flags and ranks they give.

**Thresholds** turn scores into flags, ``flagged = score > threshold`` (a NaN score is
flagged). Three choices, all taken from the training set so they mean the same for every
new batch:

- ``contamination`` ρ: the (1 − ρ)-quantile of the training scores, so the top ρ of the
  training images are flagged (the paper's protocol assumes a known ρ; PyOD's rule);
- ``quantile`` q: the q-quantile of the training scores (``contamination`` 1 − q);
- ``radius``: the learned radius R of the soft-boundary SVDD term (eq. 7) — IAEAD flags
  ``||z − c|| > R`` (rule ``latent_c``), Deep SVDD (soft-boundary objective) flags
  ``||z − c||² − R² > 0`` (rule ``svdd``). Only these two methods learn an R. With IAEAD's
  paper setting ν = 1, R is the smallest distance of the last batch, so nearly every image
  lies outside it; train with e.g. ν = 0.1 for a radius that holds about 90 % of the data.

Quantiles use numpy's linear interpolation. :func:`flag` applies a threshold; :func:`rank`
orders the images, most anomalous first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iaead_core.methods.base import Method
__all__ = ["Threshold", "ThresholdError", "THRESHOLD_KINDS", "RADIUS_RULES", "choose_threshold",
           "flag", "rank"]

#: How a threshold is chosen (module docstring).
THRESHOLD_KINDS = ("contamination", "quantile", "radius")
#: Methods that learn a radius R, and the score rule R is compared with.
RADIUS_RULES = {"iaead": "latent_c", "deep-svdd": "svdd"}


class ThresholdError(ValueError):
    """A threshold that cannot be used (unknown kind, value out of range, no learned R)."""


@dataclass(frozen=True)
class Threshold:
    """A decision threshold on one score rule.

    Attributes
    ----------
    kind : {"contamination", "quantile", "radius"}
    param : float or None
        ρ for ``contamination``, q for ``quantile``, the radius R for ``radius``.
    value : float
        Flag when ``score > value`` (same units as the score).
    rule : str
        Score rule the value applies to (``latent_mean``, ``latent_c``, ``svdd``, ...).
    """

    kind: str
    param: float | None
    value: float
    rule: str

    def describe(self) -> str:
        """Short text for the CSV's ``threshold_by`` column, e.g. ``contamination 0.1``."""
        if self.kind == "radius":
            return f"radius R={self.param:.6g}"
        return f"{self.kind} {self.param:g}"


def _finite(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ThresholdError("the training scores hold no finite value; no threshold exists.")
    return s


def choose_threshold(train_scores: np.ndarray, kind: str = "contamination",
                     param: float | None = None, *, method: Method | None = None,
                     rule: str = "") -> Threshold:
    """Pick a threshold from the training set's scores (module docstring).

    Parameters
    ----------
    train_scores : ndarray (N,) float
        Scores of the training images under ``rule`` (non-finite values are left out).
    kind : {"contamination", "quantile", "radius"}
    param : float or None
        ρ in (0, 0.5] for ``contamination``; q in (0, 1) for ``quantile``; unused for
        ``radius``.
    method : Method or None
        The trained method (needed for ``radius``: its name, ``c``, ``R`` and objective).
    rule : str
        Score rule of ``train_scores``; for ``radius`` it must be :data:`RADIUS_RULES`'s rule.

    Returns
    -------
    Threshold

    Raises
    ------
    ThresholdError
        Unknown kind, missing or out-of-range ``param``, or ``radius`` for a method without a
        learned R (not IAEAD / Deep SVDD, Deep SVDD's one-class objective, or R = 0, e.g. a run
        stopped before its SVDD phase).
    """
    if kind not in THRESHOLD_KINDS:
        raise ThresholdError(f"unknown threshold {kind!r}; choose one of "
                             f"{', '.join(THRESHOLD_KINDS)}.")
    if kind == "radius":
        return _radius_threshold(method, rule)
    if param is None:
        raise ThresholdError(f"the {kind} threshold needs a value (ρ in (0, 0.5] or q in "
                             f"(0, 1)).")
    p = float(param)
    if kind == "contamination":
        if not 0.0 < p <= 0.5:
            raise ThresholdError(f"contamination ρ (the fraction of training images to flag) "
                                 f"must lie in (0, 0.5]; got {p}.")
        q = 1.0 - p
    else:
        if not 0.0 < p < 1.0:
            raise ThresholdError(f"the quantile q must lie in the open interval (0, 1), e.g. "
                                 f"0.95; got {p}.")
        q = p
    return Threshold(kind, p, float(np.quantile(_finite(train_scores), q)), rule)


def _radius_threshold(method: Method | None, rule: str) -> Threshold:
    name = getattr(method, "name", None)
    if name not in RADIUS_RULES:
        raise ThresholdError(
            f"the radius threshold uses the learned radius R of the soft-boundary SVDD term, "
            f"which only {' and '.join(RADIUS_RULES)} learn; this run's method is {name!r}. "
            f"Use a contamination or quantile threshold.")
    if rule and rule != RADIUS_RULES[name]:
        raise ThresholdError(f"R is compared with the {RADIUS_RULES[name]!r} score, not {rule!r}.")
    R = float(method.R)
    if name == "deep-svdd" and method.cfg.objective != "soft-boundary":
        raise ThresholdError("this Deep SVDD run used the one-class objective, which learns no "
                             "radius R; train with the soft-boundary objective, or use a "
                             "contamination or quantile threshold.")
    if method.c is None or not R > 0.0:
        raise ThresholdError(f"this {name} run has no learned radius (R = {R:g}; the SVDD phase "
                             f"never ran). Use a contamination or quantile threshold.")
    # Deep SVDD's soft-boundary score is ||z − c||² − R², so R itself sits at 0.
    return Threshold("radius", R, R if name == "iaead" else 0.0, RADIUS_RULES[name])


def flag(scores: np.ndarray, threshold: float) -> np.ndarray:
    """``score > threshold`` as int64 0/1 ``(N,)``; a NaN score is flagged (1)."""
    s = np.asarray(scores, np.float64)
    return (~(s <= threshold)).astype(np.int64)


def rank(scores: np.ndarray) -> np.ndarray:
    """Ranks int64 ``(N,)``: 1 = most anomalous (highest score); NaN first, ties by position."""
    s = np.asarray(scores, np.float64)
    key = np.where(np.isnan(s), np.inf, s)
    order = np.argsort(-key, kind="stable")
    r = np.empty(len(s), np.int64)
    r[order] = np.arange(1, len(s) + 1)
    return r
