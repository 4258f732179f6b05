"""Detection metrics and latent-space diagnostics.

Metrics follow docs/method.md §6: AUROC, AUPR-in (normal images are the positive class) and
AUPR-out (anomalies are the positive class). Every score in this project is "higher = more
anomalous". The PR areas are scikit-learn's *average precision* (step-wise interpolation),
not the trapezoid rule of the released code; the two differ slightly.

A score that differs across images only by float rounding (a collapsed latent space) is
reported as *degenerate*: AUROC 0.5 and AUPR equal to the base rates, whatever order the
noise happens to take (:func:`is_degenerate`, :data:`DEGENERATE_RTOL`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import ThreadpoolController

__all__ = ["detection_metrics", "is_degenerate", "score_scale", "latent_diagnostics",
           "collapse_kind", "collapse_place", "COLLAPSE_KINDS", "ON_CENTRE_RATIO", "DEGENERATE_RTOL", "FLOAT32_EPS", "LATENT_RULES", "COLLAPSE_RATIO",
           "COLLAPSE_MIN_RANK", "DEAD_RTOL", "SATURATION_LEVEL"]

#: Machine epsilon of float32, ``2**-23 ≈ 1.19e-7``: the relative resolution of the latent
#: codes, which every network here computes in float32.
FLOAT32_EPS = float(np.finfo(np.float32).eps)

#: A score vector is *degenerate* (carries no information beyond float noise) when its range
#: ``max − min`` is at most ``DEGENERATE_RTOL × scale``. ``scale`` is the magnitude of the
#: float32 numbers the score's rounding comes from: for a latent distance the code length
#: (:func:`score_scale`), for any other rule the score's own largest ``|value|``. Codes that
#: coincide up to float32 rounding differ by a few units in the last place (ULP) of each
#: coordinate, the rounding that piles up through the encoder's float32 layers can reach tens
#: of ULPs, and a distance between two such codes doubles it; ``64 · FLOAT32_EPS ≈ 7.6e-6``
#: covers that with room to spare. Measured (MNIST digit 0, quick preset, seed 0, range of
#: the scores over their scale): healthy IAEAD at λ = 5e-5 stays above 0.25 at every epoch
#: (latent_mean, latent_c), a working Deep SVDD above 0.05 (latent_mean and svdd), so the
#: rule is four orders of magnitude away from a healthy run; a collapsed IAEAD at
#: λ = 50 gives exactly 0 here (every code pinned at the same ±1 corner) and about 1e-8 on
#: a CPU whose tanh stops a few ULP short of ±1 (scores 7.1192585 ± 1e-7, where sklearn
#: reported AUROC 0.699 on the noise).
DEGENERATE_RTOL = 64 * FLOAT32_EPS

#: Scoring rules that are functions of the latent codes alone: ``"distance"`` (a distance
#: between codes or to a fixed point) or ``"squared"`` (a squared distance to the centre c,
#: possibly minus R²). Every method reports ``latent_mean``; a new latent-distance rule belongs
#: here so that its noise is judged against the code length, not against its own values
#: (which are themselves tiny when the codes collapse).
LATENT_RULES: dict[str, str] = {"latent_mean": "distance", "latent_c": "distance",
                                "svdd": "squared"}

#: A latent dimension counts as *dead* when its range (max − min) over the scored set is at
#: most ``DEAD_RTOL × sqrt(mean z²)`` (the RMS code entry over all dimensions): it varies no
#: more than float32 rounding of the codes would make it, the same tolerance as
#: :data:`DEGENERATE_RTOL`. The range, not the standard deviation, so that "every dimension
#: dead" implies "every latent distance degenerate": the distances to a fixed point then
#: differ by at most ``sqrt(d) × DEAD_RTOL × RMS entry = DEGENERATE_RTOL × RMS code length``
#: (a walk saw "100 % dead" by the std beside distances that still ranked images). Relative, because freshly initialised codes are tiny but alive
#: (a 600-image run's first epoch: every std about 2e-5, none dead by this rule). Measured on
#: MNIST digit 0, quick preset: a healthy IAEAD's smallest std is 0.1 of the RMS entry after
#: one epoch and 0.2 later, a working Deep SVDD's 0.02; the dimensions that die at λ = 50
#: and λ = 1e6 (codes pinned at ±1) have a std of exactly 0.
DEAD_RTOL = DEGENERATE_RTOL

#: A bounded code entry counts as *saturated* when ``|z| ≥ SATURATION_LEVEL × bound`` (for
#: Tanh codes, ``|z| ≥ 0.99``: the gradient of tanh there is below 0.02). Measured: a healthy
#: IAEAD never reaches it (largest ``|z|`` 0.92 after 30 epochs); at λ = 50 and λ = 1e6
#: every entry is at ±1.
SATURATION_LEVEL = 0.99

#: A latent space counts as collapsed when the RMS distance of the codes to their mean is
#: below this fraction of the centre's norm (every code sits in a ball 1000× smaller than its
#: distance from the origin) ...
COLLAPSE_RATIO = 1e-3
#: ... or when the codes vary along fewer than this many effective directions. Measured on
#: MNIST digit 0, quick preset: IAEAD at λ = 5e-5 keeps an effective rank of about 40 (of 64)
#: and a ratio near 0.4; a working bias-free Deep SVDD contracts to a ratio near 0.03 (rank
#: 30 of 32, AUROC 0.89); at λ = 50 every code saturates to the same corner of the Tanh cube
#: (spread 0, rank 0); at λ = 1e6 63 of the 64 dimensions die and the codes take two values
#: (rank 1).
COLLAPSE_MIN_RANK = 2.0


def score_scale(rule: str, z: np.ndarray, centre: np.ndarray | None = None) -> float | None:
    """The magnitude a latent-distance score's float noise is relative to.

    A float32 code ``z`` carries a rounding error of order ``FLOAT32_EPS × ||z||``. A distance
    (to the mean code, to c) inherits that error; a squared distance ``||z − c||²`` inherits
    ``2 ||z − c|| × FLOAT32_EPS × ||z||``. A fixed point (c, the mean, R) adds no noise that
    differs between images, so its own size does not count.

    Parameters
    ----------
    rule : str
        Scoring rule name; only those in :data:`LATENT_RULES` have a code scale.
    z : ndarray ``(N, d)`` float
        Latent codes the score was computed from.
    centre : ndarray ``(d,)`` or None
        The centre c of a ``"squared"`` rule.

    Returns
    -------
    float or None
        ``L = sqrt(mean_i ||z_i||²)`` (RMS code length, in code units) for a distance;
        ``L × max_i ||z_i − c||`` for a squared distance to c; ``None`` for any other rule,
        for a squared rule without a centre, or when ``z`` holds non-finite values (the
        score's own magnitude is then the scale).
    """
    kind = LATENT_RULES.get(rule)
    z = np.asarray(z, dtype=np.float64)
    if kind is None or z.size == 0 or not np.isfinite(z).all():
        return None
    length = math.sqrt(float((z**2).sum(axis=-1).mean()))
    if kind == "distance":
        return length
    if centre is None or not np.size(centre):
        return None
    return length * float(np.linalg.norm(z - np.asarray(centre, dtype=np.float64), axis=-1).max())


def _flat(finite: np.ndarray, scale: float | None) -> bool:
    """True when the finite values ``finite`` (non-empty) differ only within float noise."""
    use_own = scale is None or not math.isfinite(scale)
    ref = float(np.abs(finite).max()) if use_own else abs(float(scale))
    return float(finite.max() - finite.min()) <= DEGENERATE_RTOL * ref


def is_degenerate(score: np.ndarray, scale: float | None = None) -> bool:
    """Whether a score vector carries no information beyond numerical noise.

    Parameters
    ----------
    score : ndarray ``(N,)`` float
        Anomaly scores (any sign; NaN/inf allowed).
    scale : float, optional
        Magnitude of the float32 quantities the score's rounding comes from
        (:func:`score_scale`); None uses the score's own largest ``|value|``.

    Returns
    -------
    bool
        True when no score is finite, or when every score is finite and
        ``max − min ≤ DEGENERATE_RTOL × scale`` (which includes a single distinct value).
        When some scores are non-finite and others finite, the split between them is a
        ranking in itself, so the vector is not degenerate.
    """
    s = np.asarray(score, dtype=np.float64).ravel()
    ok = np.isfinite(s)
    if not ok.any():
        return True
    return bool(ok.all() and _flat(s, scale))


def detection_metrics(is_anomaly: np.ndarray, score: np.ndarray,
                      scale: float | None = None) -> dict[str, Any]:
    """AUROC, AUPR-in and AUPR-out of an anomaly score (docs/method.md §6), noise-aware.

    Parameters
    ----------
    is_anomaly : ndarray ``(N,)`` bool
        Ground truth, used only for evaluation (oracle monitoring during training).
    score : ndarray ``(N,)`` float
        Anomaly score, higher = more anomalous. NaN and ±inf are allowed.
    scale : float, optional
        Magnitude the score's noise is relative to (see :func:`is_degenerate`,
        :func:`score_scale`); the engine passes the code length for latent distances.

    Returns
    -------
    dict
        ``auroc``, ``aupr_in`` (average precision with normal = positive, ranked by
        ``−score``), ``aupr_out`` (anomaly = positive, ranked by ``score``), each in [0, 1];
        ``degenerate`` (bool, :func:`is_degenerate`): then ``auroc`` is 0.5, ``aupr_in`` the
        fraction of normal samples and ``aupr_out`` the fraction of anomalies (what a score
        that ranks nothing achieves), and ``raw`` holds scikit-learn's values on the noise
        (None otherwise, or when no score is finite); ``n_nonfinite`` (int): NaN/inf scores,
        which are ranked as the most anomalous (tied with each other), since a model that
        cannot score an input should flag it. When the finite scores are flat but some are
        non-finite, the finite ones are ranked as ties.

    Raises
    ------
    ValueError
        If shapes differ or only one class is present.

    Notes
    -----
    Without this rule, scikit-learn ranks float noise: IAEAD at λ = 50 on MNIST digit 0
    (quick preset) reported latent_mean AUROC 0.699 on scores that differ by about 1e-7.
    """
    y = np.asarray(is_anomaly, dtype=bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"is_anomaly {y.shape} and score {s.shape} must have the same shape")
    if y.all() or not y.any():
        raise ValueError("metrics need both normal and anomalous samples")
    ok = np.isfinite(s)
    n_bad = int((~ok).sum())
    if n_bad == len(s):
        rate = float(y.mean())
        return {"auroc": 0.5, "aupr_in": 1.0 - rate, "aupr_out": rate, "degenerate": True,
                "raw": None, "n_nonfinite": n_bad}
    flat = _flat(s[ok], scale)
    if n_bad:
        # Never hand NaN/inf to sklearn: rank them above every finite score (only the order
        # matters to these metrics), with the finite scores tied when they are mere noise.
        s = rankdata(np.where(ok, 0.0 if flat else s, np.inf))
    raw = {"auroc": float(roc_auc_score(y, s)),
           "aupr_in": float(average_precision_score(~y, -s)),
           "aupr_out": float(average_precision_score(y, s))}
    if flat and not n_bad:
        rate = float(y.mean())
        return {"auroc": 0.5, "aupr_in": 1.0 - rate, "aupr_out": rate, "degenerate": True,
                "raw": raw, "n_nonfinite": 0}
    return {**raw, "degenerate": False, "raw": None, "n_nonfinite": n_bad}


_BLAS_LOCK = threading.Lock()


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's thread pools, found once, on first use (not at import)."""
    return ThreadpoolController()


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run the enclosed BLAS/LAPACK calls on one thread. Their matrices are small (d × d, an
    (N, d) product), and a BLAS pool that waits for cores busy with training (the CPU's
    torch threads, or a GPU's driver and other runs) made them 10 to 50 times slower: two
    cores measured 758 ms instead of 74 ms for a paper-sized epoch record. The limit is process
    wide, so one such block runs at a time."""
    with _BLAS_LOCK, _blas().limit(limits=1, user_api="blas"):
        yield


def latent_diagnostics(z: np.ndarray, c: np.ndarray | None = None,
                       bound: float | None = None) -> dict[str, float | bool | None]:
    """Statistics of the latent codes that reveal feature collapse.

    Parameters
    ----------
    z : ndarray ``(N, d)`` float
        Latent codes of the whole scored set.
    c : ndarray ``(d,)`` or None
        Hypersphere centre; ``None`` (before it is fixed, or for a plain CAE) uses the mean
        code as the centre.
    bound : float or None
        The bound of the code's output activation (1 for Tanh codes), or None for codes
        without one (linear, ReLU, unit-normalised), which cannot saturate.

    Returns
    -------
    dict with
        ``std_mean`` — mean over dimensions of the per-dimension standard deviation;
        ``dead_dims`` — fraction of dimensions whose range (max − min) is at most
        ``DEAD_RTOL`` times the RMS code entry ``sqrt(mean z²)`` (:data:`DEAD_RTOL`: constant
        up to float rounding);
        ``saturated`` — fraction of code entries with ``|z| ≥ SATURATION_LEVEL × bound``
        (:data:`SATURATION_LEVEL`), None without a ``bound``;
        ``spread`` — RMS distance of the codes to their mean, ``sqrt(mean ||z − z̄||²)``;
        ``dist_centre`` — mean distance ``||z − c||`` to the centre;
        ``centre_norm`` — ``||c||``;
        ``effective_rank`` — ``exp`` of the entropy of the normalised singular values of the
        centred codes (Roy & Vetterli, 2007); 0 when all codes coincide (``coincide``);
        ``coincide`` — every code lies within ``DEGENERATE_RTOL × code_norm`` of the mean code
        (the codes are one point up to float32 rounding, and their distances to the mean a
        degenerate score);
        ``code_norm`` — RMS code length ``sqrt(mean ||z||²)`` (code units);
        ``collapse_ratio`` — ``spread / max(||c||, 1e-12)``;
        ``collapsed`` — with a centre ``c``: ``collapse_ratio < COLLAPSE_RATIO`` or
        ``effective_rank < COLLAPSE_MIN_RANK`` (see :data:`COLLAPSE_RATIO`,
        :data:`COLLAPSE_MIN_RANK`). Collapse is the SVDD term pulling codes onto ``c``; without
        a centre (CAE, warm-up, pre-training) the flag is False, since freshly initialised
        codes are tiny and low-rank without being collapsed.
    """
    z = np.asarray(z, dtype=np.float64)
    mean = z.mean(axis=0)
    centre = mean if c is None else np.asarray(c, dtype=np.float64)
    centred = z - mean
    std = z.std(axis=0)
    sq = (centred**2).sum(axis=1)  # squared distances to the mean code, (N,)
    spread = math.sqrt(float(sq.mean()))
    n, d = centred.shape
    if n > d:
        # The d×d Gram matrix's eigenvalues are the squared singular values, at a fraction of
        # an (N, d) SVD's cost (7,670 × 256 codes, one thread: 11 ms against 81 ms; MemAE's
        # 1024-wide codes made the SVD dominate its epochs). Eigenvalues below d·eps of the
        # largest are rounding of the product, not directions: they are set to 0 (an SVD of
        # float32 codes resolves nothing finer either).
        with _one_blas_thread():
            ev = np.linalg.eigvalsh(centred.T @ centred)[::-1]
        ev[ev <= d * np.finfo(np.float64).eps * max(float(ev[0]), 0.0)] = 0.0
        sv = np.sqrt(ev)
    else:
        with _one_blas_thread():
            sv = np.linalg.svd(centred, compute_uv=False)
    total = sv.sum()
    z2 = float((z**2).sum())
    length = math.sqrt(z2 / len(z)) if z.size else 0.0
    # Codes that coincide up to float32 rounding (every code within DEGENERATE_RTOL × the RMS
    # code length of their mean: the distances to the mean are then a degenerate score) have
    # no direction: their singular values are rounding noise, whose entropy would read as a
    # "line" (a walk saw effective rank 1.0 beside a spread of 2.4e-9 on codes of norm 8).
    far = math.sqrt(float(sq.max())) if z.size else 0.0
    coincide = far <= DEGENERATE_RTOL * length
    if total > 0 and not coincide:
        p = sv[sv > 0] / total
        erank = float(np.exp(-(p * np.log(p)).sum()))
    else:
        erank = 0.0
    centre_norm = float(np.linalg.norm(centre))
    ratio = spread / max(centre_norm, 1e-12)
    saturated = None if bound is None else float((np.abs(z) >= SATURATION_LEVEL * bound).mean())
    return {
        "std_mean": float(std.mean()),
        "dead_dims": float((np.ptp(z, axis=0) <= DEAD_RTOL * math.sqrt(z2 / max(z.size, 1))).mean()),
        "saturated": saturated,
        "spread": spread,
        "dist_centre": float((np.sqrt(sq) if c is None else np.linalg.norm(z - centre, axis=1)).mean()),
        "centre_norm": centre_norm,
        "effective_rank": erank,
        "coincide": bool(coincide),
        "code_norm": length,
        "collapse_ratio": float(ratio),
        "collapsed": c is not None and bool(ratio < COLLAPSE_RATIO or erank < COLLAPSE_MIN_RANK),
    }


#: The shapes a collapsed latent space can take, by its effective rank (:func:`collapse_kind`).
COLLAPSE_KINDS = ("point", "line", "region")

#: A collapsed space sits *on c* when the mean distance of its codes to c is at most this
#: fraction of the larger of ``||c||`` and the RMS code length: the codes are then as close to
#: c as the collapse criterion asks of their spread (:data:`COLLAPSE_RATIO`).
ON_CENTRE_RATIO = COLLAPSE_RATIO


def collapse_kind(diag: dict[str, Any]) -> str:
    """The shape of a (collapsed) latent space, from :func:`latent_diagnostics`.

    Returns
    -------
    str
        ``"point"`` when the codes coincide up to float rounding (``coincide``, or an effective
        rank below 0.5 for records written before ``coincide`` existed), ``"line"`` for an
        effective rank below 1.5, else ``"region"`` (a low-dimensional blob). One of
        :data:`COLLAPSE_KINDS`. Raises nothing (missing figures read as a region).
    """
    rank = diag.get("effective_rank")
    if diag.get("coincide") or (isinstance(rank, (int, float)) and rank < 0.5):
        return "point"
    if isinstance(rank, (int, float)) and rank < 1.5:
        return "line"
    return "region"


def collapse_place(diag: dict[str, Any]) -> dict[str, Any]:
    """Where the codes went, from :func:`latent_diagnostics` (with a centre c).

    Returns
    -------
    dict with
        ``place`` — ``"c"`` when the mean distance ``||z − c||`` is at most
        :data:`ON_CENTRE_RATIO` × max(``||c||``, code length); else ``"corner"`` when at least
        half the entries of bounded (Tanh) codes are saturated (``saturated`` ≥ 0.5, the
        ``saturated`` alert's level: the codes sit in a corner of the cube ``[−1, 1]^d``);
        else ``"away"`` (a point or line away from c); ``None`` without the figures;
        ``distance`` — mean ``||z − c||`` (code units, the ``dist_centre`` figure);
        ``centre_norm`` — ``||c||``; ``code_norm`` — RMS ``||z||`` (None for older records);
        ``saturated`` — the fraction of saturated entries (None for unbounded codes).
    """
    dist, cn = diag.get("dist_centre"), diag.get("centre_norm")
    norm, sat = diag.get("code_norm"), diag.get("saturated")
    out = {"place": None, "distance": dist, "centre_norm": cn, "code_norm": norm, "saturated": sat}
    if not isinstance(dist, (int, float)) or not isinstance(cn, (int, float)):
        return out
    ref = max(cn, norm if isinstance(norm, (int, float)) else 0.0, 1e-12)
    if dist <= ON_CENTRE_RATIO * ref:
        out["place"] = "c"
    elif isinstance(sat, (int, float)) and sat >= 0.5:
        out["place"] = "corner"
    else:
        out["place"] = "away"
    return out
