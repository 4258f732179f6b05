"""Training-health alerts: every way a latent space or a training run can die, each named,
explained in one sentence and flagged by a documented rule.

The engine calls :func:`epoch_alerts` after every epoch and stores the result as
``record["alerts"]`` (an empty list for a healthy epoch); the CLI and the lab print one line
per kind (:func:`summarize`). The kinds:

``collapsed``
    the SVDD term pulled the codes onto a point or a line (the rule of
    :func:`~iaead_core.evaluation.metrics.latent_diagnostics`: :data:`~iaead_core.evaluation.metrics.COLLAPSE_RATIO`,
    :data:`~iaead_core.evaluation.metrics.COLLAPSE_MIN_RANK`);
``dead_units``
    most latent dimensions no longer vary (:data:`DEAD_FRACTION`);
``saturated``
    most Tanh code entries are pinned at ±1 (:data:`SATURATED_FRACTION`);
``stalled``
    the total loss has not moved beyond float32 rounding for :data:`STALL_EPOCHS` epochs
    (:data:`STALL_RTOL`);
``diverged``
    the loss became NaN or infinite: the run fails with
    :class:`~iaead_core.training.engine.NonFiniteLossError` and its ``status.json`` carries the alert.

Thresholds were measured on MNIST digit 0, ρ = 0.1, quick preset, seed 0 (3,000 images,
30 epochs), with ``iaead`` at λ = 5e-5 (healthy), λ = 50, λ = 1e6 and lr = 1e3, and
``deep-svdd`` (healthy); the figures are given beside each constant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from iaead_core.evaluation.metrics import (COLLAPSE_MIN_RANK, COLLAPSE_RATIO, DEAD_RTOL,
                                           FLOAT32_EPS, SATURATION_LEVEL, collapse_kind,
                                           collapse_place)
__all__ = ["ALERT_KINDS", "DEAD_FRACTION", "SATURATED_FRACTION", "STALL_RTOL", "STALL_EPOCHS",
           "R2_RTOL", "TANH_GRADIENT_AT_SATURATION", "code_bound", "loss_stalled",
           "epoch_alerts", "diverged_alert", "summarize", "svdd_frozen", "collapse_report",
           "place_words"]

#: ``dead_units`` is raised when at least this fraction of the latent dimensions are dead
#: (constant up to float rounding: :data:`~iaead_core.evaluation.metrics.DEAD_RTOL`). Measured: 0 at
#: every epoch of a healthy IAEAD (λ = 5e-5) and of Deep SVDD; 3–20 % in the wrecked but
#: still moving lr = 1e3 run; 98 % (63 of 64) at λ = 1e6 (86 % on another CPU); 100 % at
#: λ = 50.
DEAD_FRACTION = 0.5

#: ``saturated`` is raised for Tanh codes when at least this fraction of all code entries
#: have ``|z| ≥ SATURATION_LEVEL`` (0.99). Measured: 0 at every epoch of a healthy IAEAD
#: (largest ``|z|`` 0.92); 51 % after lr = 1e3 wrecks the network in its first epoch; 100 %
#: at λ = 50 and λ = 1e6 from the first SVDD epoch on.
SATURATED_FRACTION = 0.5

#: ``stalled``: the relative change of the epoch's total loss,
#: ``|L_t − L_{t−1}| / max(|L_t|, |L_{t−1}|)``, stays at or below this for
#: :data:`STALL_EPOCHS` consecutive epochs. The epoch loss is a mean of float32 batch losses,
#: so a model whose weights no longer move still shows changes of about one float32 epsilon
#: (the batches are drawn in a new order). Measured: 3e-9 to 4e-9 once lr = 1e3 froze the
#: loss at 0.448718 (epochs 2–5); 3e-9 to 1.5e-7 at λ = 50 (loss 2458.80, epochs 9–30); at
#: least 1.3e-3 at every epoch of a healthy IAEAD, 5e-4 of Deep SVDD.
STALL_RTOL = 4 * FLOAT32_EPS

#: Number of consecutive flat epoch-to-epoch changes that make ``stalled`` (so the loss has
#: been the same for ``STALL_EPOCHS + 1`` epochs); one flat step can happen by chance (the
#: smallest single step of the moving lr = 1e3 run was 3.8e-7), three in a row did not in
#: any measured run that was still learning.
STALL_EPOCHS = 3

#: Every alert kind: a title, a one-sentence explanation and the rule that raises it.
ALERT_KINDS: dict[str, dict[str, str]] = {
    "collapsed": {
        "title": "latent space collapsed",
        "explanation": "The hypersphere term squeezed the codes onto one point, a line or a "
                       "small region (not necessarily at c), so the distances between codes are "
                       "tiny; where they differ only by float rounding, the latent scores are "
                       "degenerate.",
        "rule": f"with a centre c: spread of the codes < {COLLAPSE_RATIO:g} × ||c||, or "
                f"effective rank < {COLLAPSE_MIN_RANK:g}",
    },
    "dead_units": {
        "title": "dead latent units",
        "explanation": "Most latent dimensions take the same value for every image, so they "
                       "carry nothing the score could use.",
        "rule": f"at least {DEAD_FRACTION:.0%} of the latent dimensions have a range "
                f"(max − min) over the scored set of at most {DEAD_RTOL:.2g} × the RMS code "
                f"entry (64 float32 epsilons: constant up to rounding)",
    },
    "saturated": {
        "title": "saturated codes",
        "explanation": "Most Tanh code entries sit at ±1, where the activation passes "
                       "almost no gradient, so the encoder can no longer learn.",
        "rule": f"Tanh codes only: at least {SATURATED_FRACTION:.0%} of all code entries have "
                f"|z| ≥ {SATURATION_LEVEL:g}",
    },
    "stalled": {
        "title": "training stalled",
        "explanation": "The total loss has stopped changing beyond float rounding, so the "
                       "optimiser is making no progress.",
        "rule": f"the epoch's total loss changed by at most {STALL_RTOL:.2g} (relative, "
                f"4 float32 epsilons) for {STALL_EPOCHS} consecutive epochs",
    },
    "diverged": {
        "title": "training diverged",
        "explanation": "The loss became NaN or infinite, so the run stopped; the epochs "
                       "completed before it are kept.",
        "rule": "a mini-batch loss is NaN or ±inf",
    },
}


def code_bound(activation: str | None) -> float | None:
    """The bound of a method's latent output activation, for the saturation check.

    Parameters
    ----------
    activation : str or None
        :attr:`Method.code_activation <iaead_core.methods.base.Method.code_activation>`:
        ``"tanh"``, ``"unit"``, ``"relu"``, ``"linear"``.

    Returns
    -------
    float or None
        1.0 for Tanh codes; None otherwise (those codes cannot saturate).
    """
    return 1.0 if activation == "tanh" else None


def loss_stalled(loss_history: Sequence[float | None], rtol: float = STALL_RTOL,
                 k: int = STALL_EPOCHS) -> bool:
    """Whether the last ``k`` epoch-to-epoch changes of the total loss are all within
    ``rtol`` (relative to the larger of the two losses).

    Parameters
    ----------
    loss_history : sequence of float
        Total loss of every epoch so far, oldest first (one value per epoch).
    rtol, k : see :data:`STALL_RTOL`, :data:`STALL_EPOCHS`.

    Returns
    -------
    bool
        False with fewer than ``k + 1`` epochs or a missing/non-finite value in the window.
    """
    window = list(loss_history)[-(k + 1):]
    if len(window) < k + 1 or any(v is None or v != v or abs(v) == float("inf") for v in window):
        return False
    return all(abs(b - a) <= rtol * max(abs(a), abs(b)) for a, b in zip(window, window[1:]))


def epoch_alerts(diagnostics: dict[str, Any], loss_history: Sequence[float | None], *,
                 k: int = STALL_EPOCHS) -> list[dict[str, str]]:
    """The health alerts of one epoch.

    Parameters
    ----------
    diagnostics : dict
        :func:`~iaead_core.evaluation.metrics.latent_diagnostics` of the epoch's codes (``collapsed``,
        ``dead_dims``, ``saturated`` (None for codes without a bound), ``collapse_ratio``,
        ``effective_rank``).
    loss_history : sequence of float
        Total loss of every epoch up to and including this one.
    k : int
        Flat epochs that make ``stalled`` (:data:`STALL_EPOCHS`).

    Returns
    -------
    list of ``{"kind": str, "message": str}``
        In the order of :data:`ALERT_KINDS`; empty for a healthy epoch. ``kind`` is a key of
        :data:`ALERT_KINDS`; ``message`` gives this epoch's figures in words.
    """
    alerts = []
    if diagnostics.get("collapsed"):
        # Name only the criteria this epoch meets: a figure cited as evidence must be evidence.
        ratio = diagnostics.get("collapse_ratio", float("nan"))
        rank = diagnostics.get("effective_rank", float("nan"))
        met = []
        if ratio < COLLAPSE_RATIO:
            met.append(f"spread of the codes {ratio:.2g} × ||c||, below the collapse level "
                       f"{COLLAPSE_RATIO:g}")
        if rank < COLLAPSE_MIN_RANK:
            met.append(f"effective rank {rank:.1f}, below the collapse level {COLLAPSE_MIN_RANK:g}")
        alerts.append({"kind": "collapsed", "message": (
            f"the codes form {place_words(diagnostics)}: " + ("; ".join(met) or "collapse flag set"))})
    dead = diagnostics.get("dead_dims")
    if dead is not None and dead >= DEAD_FRACTION:
        alerts.append({"kind": "dead_units", "message": (
            f"{dead:.0%} of the latent dimensions are constant up to float rounding")})
    sat = diagnostics.get("saturated")
    if sat is not None and sat >= SATURATED_FRACTION:
        alerts.append({"kind": "saturated", "message": (
            f"{sat:.0%} of the code entries are pinned at |z| ≥ {SATURATION_LEVEL:g}")})
    if loss_stalled(loss_history, k=k):
        flat = _flat_epochs(loss_history)
        alerts.append({"kind": "stalled", "message": (
            f"the total loss has stayed at {loss_history[-1]:.6g} for the last {flat} epochs "
            f"(each change ≤ {_short(STALL_RTOL)} of it, i.e. float rounding)")})
    return alerts


#: The SVDD loss counts as *frozen at R²* when it is within this relative tolerance of the
#: epoch's R² (a mean of float32 batch losses against R computed once: measured at λ = 50,
#: MNIST digit 0, quick preset, 1,000 images: loss 50.878082 against R² = 50.878082 from
#: epoch 7 on, equal to 7 digits).
R2_RTOL = 1e-4

#: tanh'(z) = 1 − tanh² at the saturation level: the most gradient a saturated entry passes.
TANH_GRADIENT_AT_SATURATION = 1.0 - SATURATION_LEVEL**2


def place_words(diag: dict[str, Any]) -> str:
    """Where a collapsed latent space is, in words, with the core's figures:
    ``"one point in a saturated corner of the code space, at distance 7.133 from c (||c|| =
    0.886, RMS code length 8)"``, ``"one line on c"``, ``"a small region at distance 0.5
    from c (||c|| = 0.9)"``. From :func:`~iaead_core.evaluation.metrics.latent_diagnostics`;
    distances at 4 significant digits (as the Latent page's histogram writes them)."""
    kind = collapse_kind(diag)
    what = {"point": "one point", "line": "one line", "region": "a small region"}[kind]
    p = collapse_place(diag)
    if p["place"] is None:
        return what
    figures = f"||c|| = {p['centre_norm']:.3g}"
    if isinstance(p["code_norm"], (int, float)):
        figures += f", RMS code length {p['code_norm']:.3g}"
    if p["place"] == "c":
        return f"{what} on c (mean distance to c {p['distance']:.4g}; {figures})"
    where = (" in a saturated corner of the code space" if p["place"] == "corner"
             else " away from c")
    return f"{what}{where}, at distance {p['distance']:.4g} from c ({figures})"


def svdd_frozen(records: Sequence[dict[str, Any]], k: int = STALL_EPOCHS) -> dict[str, Any] | None:
    """Whether the SVDD loss is frozen at R²: the epoch SVDD loss has not moved beyond float
    rounding for ``k`` epochs (:func:`loss_stalled`) and equals R² within :data:`R2_RTOL`.
    With ν = 1, R is the smallest distance to c in a batch, so codes piled on one point at
    distance R from c give exactly ``loss = R²``: the term can no longer decrease (its
    gradient through saturated Tanh codes is at most :data:`TANH_GRADIENT_AT_SATURATION`).

    Parameters
    ----------
    records : epoch records, oldest first (``loss.svdd``, ``R``, ``epoch``).

    Returns
    -------
    dict or None
        None without an SVDD loss in the records; else ``frozen`` (bool), ``loss`` (the last
        SVDD loss), ``R2`` (the last ``R²``, None without R), ``first`` and ``first_epoch``
        (the first SVDD loss and its epoch), ``since_epoch`` (the first epoch of the run of
        equal losses that ends at the last record; the last epoch when not frozen).
    """
    rows = [(r.get("epoch"), (r.get("loss") or {}).get("svdd"), r.get("R")) for r in records]
    rows = [(e, float(v), R) for e, v, R in rows if isinstance(v, (int, float)) and v == v]
    if not rows:
        return None
    losses = [v for _, v, _ in rows]
    last_R = rows[-1][2]
    R2 = float(last_R) ** 2 if isinstance(last_R, (int, float)) else None
    at_R2 = R2 is not None and abs(losses[-1] - R2) <= R2_RTOL * max(R2, 1e-12)
    frozen = loss_stalled(losses, k=k) and at_R2
    since = len(losses) - _flat_epochs(losses) if frozen else len(losses) - 1
    return {"frozen": bool(frozen), "loss": losses[-1], "R2": R2, "first": losses[0],
            "first_epoch": rows[0][0], "since_epoch": rows[since][0]}


def collapse_report(diag: dict[str, Any], records: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Every figure of a collapse in one place, so that the alert, the Latent page's box, its
    histogram and the README say the same numbers.

    Parameters
    ----------
    diag : :func:`~iaead_core.evaluation.metrics.latent_diagnostics` of the epoch.
    records : the run's epoch records up to this epoch (for the SVDD loss history).

    Returns
    -------
    dict with ``collapsed`` (the diagnostics' flag), ``kind``
    (:func:`~iaead_core.evaluation.metrics.collapse_kind`), the keys of
    :func:`~iaead_core.evaluation.metrics.collapse_place` (``place``, ``distance``,
    ``centre_norm``, ``code_norm``, ``saturated``), ``where`` (:func:`place_words`),
    ``svdd`` (:func:`svdd_frozen`, or None), ``dead_gradients`` (True when at least
    :data:`SATURATED_FRACTION` of the entries are saturated: tanh passes at most
    :data:`TANH_GRADIENT_AT_SATURATION` of the gradient there).
    """
    sat = diag.get("saturated")
    return {"collapsed": bool(diag.get("collapsed")), "kind": collapse_kind(diag),
            **collapse_place(diag), "where": place_words(diag), "svdd": svdd_frozen(records),
            "dead_gradients": isinstance(sat, (int, float)) and sat >= SATURATED_FRACTION}


def _flat_epochs(loss_history: Sequence[float | None]) -> int:
    """How many epochs, counting back from the last, the loss has been flat for (the whole
    run of flat changes, not the detection window: a walk read "for 4 epochs" at epoch 10 of
    a loss flat since epoch 3)."""
    h = list(loss_history)
    n = 1
    while n < len(h) and loss_stalled(h[-(n + 1):], k=n):
        n += 1
    return n


def _short(x: float) -> str:
    """``4.76837e-07`` → ``"4.8e-7"``."""
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e")


def diverged_alert(message: str) -> dict[str, str]:
    """The ``diverged`` alert for a run stopped by a non-finite loss (``message``: the
    :class:`~iaead_core.training.engine.NonFiniteLossError` text)."""
    return {"kind": "diverged", "message": message}


def summarize(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per alert kind raised in a run's records.

    Parameters
    ----------
    records : iterable of epoch record dicts (each may hold ``alerts``; older runs do not).

    Returns
    -------
    list of ``{"kind", "title", "message", "first_epoch", "last_epoch", "epochs"}``
        In the order of :data:`ALERT_KINDS`; ``message`` is the latest epoch's, ``epochs``
        the number of epochs that raised the kind.
    """
    seen: dict[str, dict[str, Any]] = {}
    for rec in records:
        for a in rec.get("alerts") or []:
            kind = a.get("kind", "")
            title = ALERT_KINDS.get(kind, {}).get("title", kind)
            entry = seen.setdefault(kind, {"kind": kind, "title": title,
                                           "first_epoch": rec.get("epoch"), "epochs": 0})
            entry.update(message=a.get("message", ""), last_epoch=rec.get("epoch"))
            entry["epochs"] += 1
    order = {kind: i for i, kind in enumerate(ALERT_KINDS)}
    return sorted(seen.values(), key=lambda e: order.get(e["kind"], len(order)))
