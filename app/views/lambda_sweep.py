"""The λ page's sweep as an experiment, without Streamlit: the built-in ``fig4-lambda`` spec
narrowed to the page's sidebar (:func:`lambda_spec`), a saved spec back into the sidebar's
values (:func:`lambda_fields`), and one row per completed run for the sweep's table and
figure (:func:`lambda_rows`). The page shares its folder and finished runs with ``python -m
iaead_core experiment run fig4-lambda``.
"""

from __future__ import annotations

from typing import Any

from iaead_core.evaluation.analysis import format_lambda
from iaead_core.experiments import ExperimentSpec, Plan, builtin_spec

__all__ = ["lambda_spec", "lambda_fields", "lambda_rows", "LAMBDA_EXPERIMENT"]


# ------------------------------------------------------------------- the λ page's experiment

#: The built-in experiment the λ page is a view of (its folder: ``fig4-lambda-<preset>``).
LAMBDA_EXPERIMENT = "fig4-lambda"


def lambda_spec(dataset: str, classes: list[int], rho: float, seeds: int, grid: list[float],
                preset: str, epochs: int | None = None,
                max_samples: int | None = None) -> ExperimentSpec:
    """The λ page's sweep as the built-in ``fig4-lambda`` experiment narrowed to its axes:
    IAEAD on ``dataset`` / ``classes`` at ρ = ``rho`` (a fraction), λ over ``grid``, seeds
    0 … ``seeds`` − 1. ``epochs`` / ``max_samples`` (0: the whole set) override the preset's
    where they differ; the warm-up scales with the epochs.

    It keeps the built-in's name, so it lives in the same folder as ``python -m iaead_core
    experiment run fig4-lambda`` and shares its finished runs (run ids are hashes of the
    settings).

    Raises
    ------
    ValueError
        As :meth:`ExperimentSpec.validate` (an unknown class, ρ outside (0, 0.5), ...).
    """
    from iaead_core.config import PRESETS

    d = builtin_spec(LAMBDA_EXPERIMENT, preset).to_dict()
    config = {}
    if epochs is not None and int(epochs) != PRESETS[preset]["epochs"]:
        config["epochs"] = int(epochs)
    if max_samples is not None:
        size = int(max_samples) or None
        if size != PRESETS[preset].get("max_samples"):
            config["max_samples"] = size
    d.update(datasets=[dataset], classes=list(classes), rho=[float(rho)], lam=list(grid),
             seeds=int(seeds), config=config)
    return ExperimentSpec.from_dict(d)


def lambda_fields(spec: ExperimentSpec) -> dict[str, Any]:
    """The λ page's sidebar values that give back a saved ``fig4-lambda`` spec (its first
    data set and ρ): ``dataset, classes, rho`` (in %), ``seeds`` (a count), ``grid``
    (text), ``epochs`` and ``max_samples`` (None: the preset's)."""
    ds = spec.datasets[0]
    seeds = spec.seeds if isinstance(spec.seeds, int) else len(spec.seeds)
    return {"dataset": ds, "classes": spec.classes_for(ds), "rho": round(100 * spec.rho[0]),
            "seeds": seeds, "grid": ", ".join(format_lambda(v) for v in spec.lam or []),
            "epochs": spec.config.get("epochs"),
            "max_samples": (spec.config["max_samples"] or 0) if "max_samples" in spec.config else None}


def lambda_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per completed run of a λ experiment, for
    :func:`iaead_core.evaluation.analysis.sweep_frame`: ``lam, normal_class, seed, status, collapsed,
    degenerate``, the three metrics of the run's own scoring rule, and ``raw``
    (scikit-learn's values on a degenerate score, by metric)."""
    rows = []
    for p in plan.runs:
        info = plan.infos[p.run_id]
        m = info.metrics.get(info.primary_score or "") if info.state == "completed" else None
        if not m:
            continue
        rows.append({"lam": float(p.point.get("lam") or 0.0),
                     "normal_class": p.point.get("normal_class"), "seed": p.point.get("seed"),
                     "status": info.state, "collapsed": bool(info.collapsed),
                     "degenerate": bool(m.get("degenerate")), "raw": m.get("raw") or {},
                     **{k: m.get(k) for k in ("auroc", "aupr_in", "aupr_out")}})
    return rows
