"""Pure helpers that turn run records and latent snapshots into tables and projections.

Everything here is UI-free (no Streamlit): the lab (``app/``) draws what these functions
compute, and a notebook or a script can use them the same way. Inputs are the per-epoch
record dicts of :class:`iaead_core.training.engine.Trainer` / :mod:`iaead_core.runs` and plain arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from iaead_core.config import TrainConfig
from iaead_core.data import class_index
from iaead_core.evaluation.health import ALERT_KINDS, summarize as summarize_alerts
from iaead_core.evaluation.metrics import latent_diagnostics
from iaead_core.evaluation.paper import paper_auroc
from iaead_core.evaluation.projection import umap_2d  # re-exported (fast, cached UMAP)
from iaead_core.methods import METHODS
from iaead_core.methods.fields import used_nu
from iaead_core.numbers import format_lambda
__all__ = [
    "METHOD_TITLES", "RULE_TITLES", "DEFAULT_LAMBDA_GRID", "LAMBDA_CHOICES", "METRIC_NAMES",
    "curve_frame", "loss_frame", "final_frame", "epoch_pace", "time_left", "parse_lambda_grid",
    "format_lambda", "subsample_index", "pca_2d", "umap_2d", "centre_distances", "extremes",
    "snapshot_for_epoch", "run_row", "saved_nu", "seed_signature", "seed_aggregate", "sweep_frame",
    "sweep_summary", "snapshot_diagnostics", "display_images",
]

#: Display names of the methods, in the order the lab shows them.
METHOD_TITLES: dict[str, str] = {name: cls.title for name, cls in METHODS.items()}

#: Short display names of the scoring rules (see :data:`iaead_core.methods.SCORE_RULES`).
RULE_TITLES: dict[str, str] = {
    "latent_mean": "distance to mean latent",
    "latent_c": "distance to c",
    "reconstruction": "reconstruction error",
    "svdd": "Deep SVDD distance",
}

METRIC_NAMES: dict[str, str] = {"auroc": "AUROC", "aupr_in": "AUPR-in", "aupr_out": "AUPR-out"}

#: The λ sweep's default grid: λ = 0 (the CAE) and both ends of the curve. Measured with a
#: quick-sized run on MNIST digit 0: AUROC ≈ 0.95 from 0 to 5e-3, ≈ 0.6 at 0.5, 0.5 at 50
#: (total collapse). 5e-5 is the paper's best λ.
DEFAULT_LAMBDA_GRID: tuple[float, ...] = (0.0, 5e-6, 5e-5, 5e-3, 0.5, 50.0)

#: λ values offered by selectors: 0, then a 1–5 log grid from 5e-6 to 50.
LAMBDA_CHOICES: tuple[float, ...] = (0.0, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2,
                                     0.1, 0.5, 1.0, 5.0, 10.0, 50.0)


def parse_lambda_grid(text: str) -> list[float]:
    """Parse a λ grid typed by a person: numbers separated by commas, spaces or semicolons.

    Returns the sorted distinct values. Raises ``ValueError`` with a message in words for an
    empty grid, a token that is not a number, or a negative / non-finite value.
    """
    tokens = [t for t in re.split(r"[,;\s]+", text.strip()) if t]
    if not tokens:
        raise ValueError("The λ grid is empty: type numbers such as 0, 5e-6, 5e-5, 0.5, 50.")
    values = []
    for t in tokens:
        try:
            v = float(t)
        except ValueError:
            raise ValueError(f"{t!r} in the λ grid is not a number; write values like 5e-5 or 0.5.") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"λ must be a finite number ≥ 0; {t!r} is not.")
        values.append(v)
    return sorted(set(values))


def curve_frame(records: Sequence[dict[str, Any]], label: str, method: str | None = None) -> pd.DataFrame:
    """Long table of per-epoch metrics: one row per (epoch, scoring rule).

    Columns: ``label, method, epoch, rule, rule_title, phase, auroc, aupr_in, aupr_out,
    degenerate`` (True where the rule's scores were float noise and the metrics are reported
    at chance, :func:`iaead_core.evaluation.metrics.detection_metrics`; False for records written before
    the field existed). ``method`` defaults to the records' own ``method`` field.
    """
    rows = []
    for r in records:
        m = method or r.get("method", "")
        for rule, vals in (r.get("metrics") or {}).items():
            rows.append({"label": label, "method": m, "epoch": r["epoch"], "rule": rule,
                         "rule_title": RULE_TITLES.get(rule, rule), "phase": r.get("phase"),
                         **{k: vals.get(k) for k in METRIC_NAMES},
                         "degenerate": bool(vals.get("degenerate", False))})
    cols = ["label", "method", "epoch", "rule", "rule_title", "phase", *METRIC_NAMES,
            "degenerate"]
    return pd.DataFrame(rows, columns=cols)


def loss_frame(records: Sequence[dict[str, Any]], label: str) -> pd.DataFrame:
    """Per-epoch losses and radius: columns ``label, epoch, reconstruction, svdd, total, R``
    (``NaN`` where a part is absent in that phase)."""
    rows = [{"label": label, "epoch": r["epoch"],
             **{k: (np.nan if (r.get("loss") or {}).get(k) is None else r["loss"][k])
                for k in ("reconstruction", "svdd", "total")},
             "R": r.get("R", np.nan)} for r in records]
    return pd.DataFrame(rows, columns=["label", "epoch", "reconstruction", "svdd", "total", "R"])


def final_frame(records: Sequence[dict[str, Any]], config: dict[str, Any], label: str) -> pd.DataFrame:
    """The last epoch's metrics, one row per scoring rule, with the paper's AUROC beside the
    method's own rule where the paper reports this setting (data set, class, ρ).

    Columns: ``run, rule, epoch, auroc, aupr_in, aupr_out, degenerate, paper_auroc, primary``
    (``degenerate``: the rule's scores were float noise, so the metrics are at chance). The
    paper's value is given for the per-class table first, then the class average is not used
    (it is a different quantity).
    """
    if not records:
        return pd.DataFrame(columns=["run", "rule", "epoch", "auroc", "aupr_in", "aupr_out",
                                     "degenerate", "paper_auroc", "primary"])
    last = records[-1]
    method = last.get("method", config.get("method"))
    primary = last.get("primary_score")
    paper = paper_auroc(config.get("dataset", ""), method, float(config.get("rho", 0)),
                        _class_index(config))
    rows = []
    for rule, vals in last["metrics"].items():
        rows.append({"run": label, "rule": RULE_TITLES.get(rule, rule), "epoch": last["epoch"],
                     **{k: vals[k] for k in METRIC_NAMES},
                     "degenerate": bool(vals.get("degenerate", False)),
                     "paper_auroc": paper if rule == primary else None,
                     "primary": rule == primary})
    return pd.DataFrame(rows)


def _class_index(config: dict[str, Any]) -> int | None:

    try:
        return class_index(config["dataset"], config["normal_class"])
    except (KeyError, ValueError):
        return None


def epoch_pace(records: Sequence[dict[str, Any]]) -> float | None:
    """A run's typical seconds per epoch so far: the mean epoch time, the first epoch left out
    when later ones exist (it pays warm-up costs); None before the first epoch."""
    if not records:
        return None
    secs = [r.get("seconds", 0.0) for r in records]
    return float(np.mean(secs[1:] if len(secs) > 1 else secs))


def time_left(records: Sequence[dict[str, Any]], epochs: int) -> float | None:
    """Seconds left for a run: :func:`epoch_pace` × epochs remaining (None before the first
    epoch)."""
    pace = epoch_pace(records)
    return None if pace is None else max(0, epochs - records[-1]["epoch"]) * pace


# ----------------------------------------------------------------------------------- latents

def subsample_index(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of a fixed random subset of ``min(n, k)`` of ``range(n)``."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def pca_2d(z: np.ndarray) -> np.ndarray:
    """First two principal components of ``z`` ``(N, d)`` → ``(N, 2)`` float32. A collapsed
    latent space (all codes equal) gives all zeros instead of an error."""
    z = np.asarray(z, np.float64)
    centred = z - z.mean(0)
    if not np.isfinite(centred).all() or np.abs(centred).max(initial=0.0) < 1e-12:
        return np.zeros((len(z), 2), np.float32)
    from sklearn.decomposition import PCA

    n_comp = min(2, z.shape[1], len(z))
    out = PCA(n_components=n_comp, random_state=0).fit_transform(centred)
    if n_comp < 2:
        out = np.pad(out, ((0, 0), (0, 2 - n_comp)))
    return out.astype(np.float32)


def centre_distances(z: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """``||z_i − centre||`` ``(N,)``; the mean code stands in for a missing centre (CAE, or
    before c is fixed)."""
    z = np.asarray(z, np.float64)
    c = z.mean(0) if centre is None or np.size(centre) == 0 else np.asarray(centre, np.float64)
    return np.linalg.norm(z - c, axis=1)


def extremes(score: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` highest scores (most anomalous, descending) and the ``k`` lowest
    (most normal, ascending). Ties are broken by index, so the choice is deterministic."""
    order = np.argsort(np.asarray(score), kind="stable")
    return order[::-1][:k].copy(), order[:k].copy()


def display_images(x: Any) -> list[np.ndarray]:
    """Model inputs ``(N, C, 32, 32)`` in [-1, 1] (tensor or array) → a list of uint8 images,
    ``(32, 32)`` grey or ``(32, 32, 3)`` colour, for display."""
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    a = ((a.astype(np.float32) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    return [img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0) for img in a]


def snapshot_for_epoch(available: Sequence[int], epoch: int) -> int | None:
    """The latest snapshot epoch ≤ ``epoch`` (or the earliest one if none is); None if there
    are no snapshots."""
    if not available:
        return None
    below = [e for e in available if e <= epoch]
    return max(below) if below else min(available)


def snapshot_diagnostics(snapshot: dict[str, np.ndarray],
                         bound: float | None = None) -> dict[str, Any]:
    """:func:`~iaead_core.evaluation.metrics.latent_diagnostics` of a saved snapshot (``z``, ``centre``);
    ``bound``: the code activation's bound for the saturation fraction
    (:func:`iaead_core.evaluation.health.code_bound` of the method's ``code_activation``; None leaves
    ``saturated`` None)."""
    centre = snapshot.get("centre")
    centre = centre if centre is not None and np.size(centre) else None
    return latent_diagnostics(snapshot["z"], centre, bound=bound)


# -------------------------------------------------------------------------------- run tables

def run_row(run_id: str, meta: dict[str, Any], status: dict[str, Any],
            records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One flat row describing a saved run (for the runs table and CSV export).

    Besides the settings and the primary rule's final metrics: ``degenerate`` — the primary
    rule's final scores were float noise (metrics at chance; None when there is no metric);
    ``alerts`` — the training-health alert kinds raised in any epoch or at failure
    (:mod:`iaead_core.evaluation.health`), joined by ``", "`` in :data:`~iaead_core.evaluation.health.ALERT_KINDS`
    order, ``""`` for a healthy run; ``nu`` — None where the method ignores ν (the CAE,
    IAEAD at λ = 0, one-class Deep SVDD: :func:`~iaead_core.methods.fields.used_nu`),
    as the lab and the experiment tables show it.
    """
    cfg = meta.get("config", {})
    last = records[-1] if records else {}
    primary = last.get("primary_score") or meta.get("primary_score")
    m = (last.get("metrics") or {}).get(primary, {})
    data = meta.get("data", {})
    extra = cfg.get("extra") or {}
    return {
        "run_id": run_id, "created": meta.get("created"), "status": status.get("status"),
        "method": cfg.get("method"), "dataset": cfg.get("dataset"),
        "normal_class": data.get("class_name", cfg.get("normal_class")),
        "rho": cfg.get("rho"), "lam": meta.get("lam", cfg.get("lam")), "nu": saved_nu(cfg, meta.get("nu")),
        "seed": cfg.get("seed"), "preset": cfg.get("preset"), "epochs": cfg.get("epochs"),
        "epochs_done": len(records), "primary_score": primary,
        "auroc": m.get("auroc"), "aupr_in": m.get("aupr_in"), "aupr_out": m.get("aupr_out"),
        "degenerate": bool(m.get("degenerate", False)) if m else None,
        "collapsed": (last.get("diagnostics") or {}).get("collapsed"),
        "alerts": _alert_kinds(records, status),
        "svdd_bias": cfg.get("svdd_bias"), "n": data.get("n"),
        "group": extra.get("group"), "kind": extra.get("kind"),
        "error": status.get("error"),
    }


def saved_nu(cfg: dict[str, Any], nu: float | None) -> float | None:
    """ν of a saved config as results show it (None where its method ignores ν); an
    unreadable config keeps the recorded ``nu``."""

    try:
        return used_nu(TrainConfig.from_dict(cfg))
    except (TypeError, ValueError):
        return nu


def _alert_kinds(records: Sequence[dict[str, Any]], status: dict[str, Any]) -> str:
    """Alert kinds of a run's records plus its status (``diverged``), in ALERT_KINDS order."""
    kinds = {a["kind"] for a in summarize_alerts(records)}
    kinds |= {a.get("kind") for a in status.get("alerts") or [] if isinstance(a, dict)}
    order = {k: i for i, k in enumerate(ALERT_KINDS)}
    return ", ".join(sorted((k for k in kinds if k), key=lambda k: (order.get(k, len(order)), k)))


def _flag(value: Any) -> bool:
    """A table cell as a flag: True only for a true boolean (None, NaN, missing → False)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def seed_signature(row: dict[str, Any]) -> tuple:
    """What identifies a setting across seeds: every row field that is not per-run."""
    keys = ("method", "dataset", "normal_class", "rho", "lam", "nu", "preset", "epochs",
            "svdd_bias", "n")
    return tuple(row.get(k) for k in keys)


def seed_aggregate(curves: pd.DataFrame, value: str = "auroc") -> pd.DataFrame:
    """Mean ± std over seeds of a per-epoch curve.

    ``curves`` has columns ``setting`` (a label shared by runs that differ only in seed),
    ``epoch`` and ``value``. Returns ``setting, epoch, mean, std, n`` (std 0 for one seed).
    """
    g = curves.groupby(["setting", "epoch"])[value]
    out = g.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    return out


def sweep_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Table of λ-sweep runs from :func:`run_row` rows: keeps those with a final metric and
    returns ``lam, normal_class, seed, auroc, aupr_in, aupr_out, degenerate, collapsed,
    status`` (``degenerate`` False where a row does not say)."""
    cols = ["lam", "normal_class", "seed", "auroc", "aupr_in", "aupr_out", "degenerate",
            "collapsed", "status"]
    df = pd.DataFrame([{k: r.get(k) for k in cols} for r in rows], columns=cols)
    df["degenerate"] = df["degenerate"].map(_flag)  # None (not said) → False
    return df.dropna(subset=["auroc"]).reset_index(drop=True)


def sweep_summary(df: pd.DataFrame, metric: str = "auroc") -> pd.DataFrame:
    """Mean ± std over seeds per (class, λ), sorted by λ.

    Columns: ``normal_class, lam, mean, std, n, collapsed, degenerate, n_degenerate`` —
    collapsed: any seed's final latent space collapsed; degenerate: every seed's metric is
    degenerate (float noise, so the mean is exactly chance); n_degenerate: how many seeds'
    are. A frame without a ``degenerate`` column counts as none degenerate.
    """
    cols = ["normal_class", "lam", "mean", "std", "n", "collapsed", "degenerate", "n_degenerate"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    degen = df["degenerate"] if "degenerate" in df else pd.Series(False, index=df.index)
    d = df.assign(collapsed=df["collapsed"].fillna(False).astype(bool),
                  degenerate=degen.map(_flag))
    g = d.groupby(["normal_class", "lam"])
    out = g[metric].agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    out["collapsed"] = g["collapsed"].any().values
    out["degenerate"] = g["degenerate"].all().values
    out["n_degenerate"] = g["degenerate"].sum().astype(int).values
    return out.sort_values(["normal_class", "lam"]).reset_index(drop=True)
