"""How much a run's AUROC is expected to move across seeds (issue 19; docs/method.md,
"Stability").

A single run's AUROC is one draw: another seed (another data draw and initialisation), or even
another CPU thread count (float32 sums in another order, grown by training), gives another
value. Wherever one run's AUROC is the headline, the command line and the lab show its
expected spread beside it, from :func:`expected_spread`:

* **measured** — when runs of the same setting with two or more different seeds are at hand
  (:func:`same_setting`), their sample standard deviation and range (max − min);
* **table** — otherwise, from the stability table that ships in the package
  (``stability.json`` next to this module, written by ``benchmarks/stability.py --package``):
  the spread measured for the preset over seeds × CPU thread counts, for the run's own case
  where it was measured, else pooled over the measured cases of the same data set family;
* **None** — when neither applies (another setting than the measured one, a method or data
  set the table does not cover): nothing is claimed.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["SeedSpread", "TABLE_PATH", "SETTING_FIELDS", "RUN_ONLY_FIELDS", "load_table",
           "setting_of", "same_setting", "measured_spread", "expected_spread", "spread_text",
           "completed_runs", "MeanStd", "seed_summary", "mean_std_text"]

#: The table shipped with the package (``benchmarks/stability.py --package`` writes it).
TABLE_PATH = Path(__file__).with_name("stability.json")
#: The settings a stability table was measured at; a run must match every one to use it.
#: ``lam`` and ``nu`` are the values in use (λ is 0 for the CAE, ν its method's default).
SETTING_FIELDS = ("epochs", "warmup_epochs", "lr", "lr_step", "lr_gamma", "batch_size", "width",
                  "latent_dim", "max_samples", "init", "rho", "lam", "nu")
#: Config fields that do not change what is trained (where, from which folder, how the
#: scoring pass is batched, the job's group): ignored when two runs' settings are compared.
RUN_ONLY_FIELDS = ("seed", "device", "data_root", "download", "eval_batch_size")
#: ``extra`` keys that only name a run's group in the lab or an experiment.
_GROUP_KEYS = ("group", "kind", "experiment", "point")


class SeedSpread(NamedTuple):
    """The expected spread of one run's AUROC across seeds.

    Attributes
    ----------
    std : float
        Sample standard deviation (ddof 1) of the final AUROC over the runs.
    spread : float
        Their range, max − min.
    n : int
        How many runs it comes from.
    source : {"measured", "table"}
        Measured on the spot from runs of the same setting, or the package's stability table.
    detail : str
        In words: which runs, or which table (its preset, case, seeds, thread counts, date).
    """

    std: float
    spread: float
    n: int
    source: str
    detail: str


def load_table(path: str | Path | None = None) -> dict[str, Any] | None:
    """The stability table (:data:`TABLE_PATH` by default) as a dict, or None when the file
    is missing or unreadable (no spread is claimed then)."""
    try:
        table = json.loads(Path(path or TABLE_PATH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return table if isinstance(table, dict) else None


def _get(config: Any, name: str) -> Any:
    return config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)


def setting_of(config: Any) -> dict[str, Any]:
    """The :data:`SETTING_FIELDS` of a config (a :class:`~iaead_core.config.TrainConfig` or
    its dict), with λ and ν as used: λ = 0 for ``cae``, None for methods without a λ;
    ν = the given value, else 0.1 for ``deep-svdd`` and 1 otherwise."""
    method = _get(config, "method")
    out = {f: _get(config, f) for f in SETTING_FIELDS}
    lam = out["lam"]
    out["lam"] = 0.0 if method == "cae" else (lam if method == "iaead" else None)
    if out["nu"] is None:
        out["nu"] = 0.1 if method == "deep-svdd" else 1.0
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-15)
    return a == b


def _without_run_fields(config: Any) -> dict[str, Any]:
    d = dict(config) if isinstance(config, Mapping) else dict(config.to_dict())
    for f in RUN_ONLY_FIELDS:
        d.pop(f, None)
    extra = {k: v for k, v in (d.get("extra") or {}).items() if k not in _GROUP_KEYS}
    d["extra"] = extra
    return d


def same_setting(a: Any, b: Any) -> bool:
    """Whether two configs (dicts or TrainConfigs) train the same thing but for the seed:
    every field equal (numbers up to rounding) except :data:`RUN_ONLY_FIELDS` and the group
    keys of ``extra``."""
    da, db = _without_run_fields(a), _without_run_fields(b)
    if set(da) != set(db):
        return False
    return all(_equal(da[k], db[k]) if k != "extra" else
               set(da[k]) == set(db[k]) and all(_equal(da[k][x], db[k][x]) for x in da[k])
               for k in da)


def measured_spread(values: Sequence[float], detail: str = "") -> SeedSpread | None:
    """:class:`SeedSpread` of final AUROCs measured on the spot (source ``"measured"``), or
    None for fewer than two values. NaN values are left out."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(vals) < 2:
        return None
    return SeedSpread(statistics.stdev(vals), max(vals) - min(vals), len(vals), "measured",
                      detail or f"{len(vals)} seeds of this setting")


def _auroc(metrics: Mapping[str, Any] | None, rule: str) -> float | None:
    m = (metrics or {}).get(rule)
    if not isinstance(m, Mapping) or not isinstance(m.get("auroc"), (int, float)):
        return None
    return float(m["auroc"])


def completed_runs(runs: Iterable[Any]) -> list[tuple[Any, Mapping[str, Any]]]:
    """The ``runs`` argument of :func:`expected_spread` from saved runs
    (:class:`iaead_core.runs.Run`, or anything with ``config``, ``final_metrics`` and
    ``live_status``): (config, final metrics) of the completed ones. A stopped, failed,
    interrupted or running run's last epoch is not where its setting ends, so it never enters
    a spread across seeds. Never raises."""
    return [(r.config, r.final_metrics) for r in runs
            if r.config and getattr(r, "live_status", None) == "completed"]


def expected_spread(config: Any, rule: str | None = None,
                    runs: Iterable[tuple[Any, Mapping[str, Any]]] = (),
                    table: Mapping[str, Any] | None | bool = True) -> SeedSpread | None:
    """The expected spread across seeds of the AUROC of ``config``'s run under ``rule``.

    Parameters
    ----------
    config : TrainConfig or dict
        The run's config (``config.json``'s ``config``).
    rule : str, optional
        The scoring rule of the headline AUROC; default: the method's own rule in the table.
    runs : iterable of (config, final metrics)
        Runs at hand (the run itself may be among them): those of the same setting
        (:func:`same_setting`) give one final AUROC per seed (the last one listed for a
        seed). Two seeds or more → a ``"measured"`` spread.
    table : dict, None, or True
        The stability table (True: the shipped one, :func:`load_table`; None: no table).

    Returns
    -------
    SeedSpread or None
        Measured, else from the table when the run's preset, method, rule and every
        :data:`SETTING_FIELDS` value match the table's (its own case's numbers where the table
        measured the run's data set and class, else the mean std and largest spread of the
        measured cases of the same data set), else None.
    """
    per_seed: dict[Any, float] = {}
    for other, metrics in runs:
        if rule is None or not same_setting(config, other):
            continue
        value = _auroc(metrics, rule)
        if value is not None:
            per_seed[_get(other, "seed")] = value
    got = measured_spread(list(per_seed.values()),
                          f"{len(per_seed)} seeds of this setting at hand")
    if got is not None:
        return got
    if table is True:
        table = load_table()
    if not table:
        return None
    method = _get(config, "method")
    entry = (table.get("methods") or {}).get(method)
    if entry is None or _get(config, "preset") != table.get("preset"):
        return None
    if rule is not None and rule != entry.get("rule"):
        return None
    wanted = (table.get("settings") or {}).get(method) or {}
    mine = setting_of(config)
    if any(not _equal(mine.get(k), v) for k, v in wanted.items() if k in SETTING_FIELDS):
        return None
    dataset, cls = _get(config, "dataset"), _get(config, "normal_class")
    cases = entry.get("cases") or {}
    seeds, threads = table.get("seeds", []), table.get("threads", [])
    when = (table.get("measured") or {}).get("date", "?")
    grid = (f"{len(seeds)} seeds × {len(threads)} thread counts "
            f"({', '.join(map(str, threads))})")
    case = cases.get(f"{dataset}:{cls}")
    if case is not None:
        return SeedSpread(float(case["std"]), float(case["spread"]), int(case["n"]), "table",
                          f"stability table of the {table['preset']} preset, {dataset} class "
                          f"{cls}: {grid}, measured {when}")
    same_family = [c for k, c in cases.items() if k.split(":", 1)[0] == dataset]
    if not same_family:
        return None
    return SeedSpread(statistics.mean(float(c["std"]) for c in same_family),
                      max(float(c["spread"]) for c in same_family),
                      sum(int(c["n"]) for c in same_family), "table",
                      f"stability table of the {table['preset']} preset, pooled over the "
                      f"{len(same_family)} measured {dataset} classes: {grid}, measured {when}")


def spread_text(s: SeedSpread | None, short: bool = False) -> str:
    """How a spread is written beside an AUROC: ``"± 0.012 over seeds (range 0.031; 3 seeds
    of this setting at hand)"``; ``short``: ``"± 0.012"``; ``""`` for None."""
    if s is None:
        return ""
    if short:
        return f"± {s.std:.3f}"
    return f"± {s.std:.3f} over seeds (range {s.spread:.3f}; {s.detail})"


class MeanStd(NamedTuple):
    """One metric over the seeds of a setting: ``mean``, sample ``std`` (ddof 1; 0.0 for one
    value), ``n`` values, and ``degenerate`` — how many of them were degenerate (reported at
    chance, docs/method.md §6)."""

    mean: float
    std: float
    n: int
    degenerate: int


def seed_summary(final_metrics: Sequence[Mapping[str, Any]],
                 keys: Sequence[str] = ("auroc", "aupr_in", "aupr_out")
                 ) -> dict[str, dict[str, MeanStd]]:
    """Mean ± std over seeds of every scoring rule's final metrics (the quick preset's
    headline when one run is not enough, docs/method.md §11).

    Parameters
    ----------
    final_metrics : sequence of dicts
        One per run (seed): ``{rule: {"auroc", "aupr_in", "aupr_out", "degenerate", ...}}``,
        a run's last-epoch metrics. Runs without metrics (failed before the first epoch)
        are skipped; a rule counts the runs that report it.
    keys : the metrics summarised (values in [0, 1], unitless).

    Returns
    -------
    dict
        ``{rule: {key: MeanStd}}`` in the order rules first appear; a metric with no finite
        value is left out. A degenerate run enters with its reported value (chance), and
        ``degenerate`` counts such runs. Never raises.
    """
    out: dict[str, dict[str, MeanStd]] = {}
    rules = list(dict.fromkeys(r for fm in final_metrics for r in (fm or {})))
    for rule in rules:
        ms = [m for fm in final_metrics if isinstance(m := (fm or {}).get(rule), Mapping)]
        n_degenerate = sum(bool(m.get("degenerate")) for m in ms)
        row = {}
        for k in keys:
            vals = [float(m[k]) for m in ms
                    if isinstance(m.get(k), (int, float)) and math.isfinite(float(m[k]))]
            if vals:
                row[k] = MeanStd(statistics.mean(vals),
                                 statistics.stdev(vals) if len(vals) > 1 else 0.0,
                                 len(vals), n_degenerate)
        if row:
            out[rule] = row
    return out


def mean_std_text(m: MeanStd | None, digits: int = 3) -> str:
    """``"0.767 ± 0.027 (3 seeds)"``; one value: ``"0.767 (1 seed)"``; ``""`` for None. Degenerate
    runs are named: ``"0.500 ± 0.000 (3 seeds, 3 degenerate)"``. Never raises."""
    if m is None:
        return ""
    seeds = f"{m.n} seed{'s' if m.n != 1 else ''}" + (f", {m.degenerate} degenerate"
                                                      if m.degenerate else "")
    if m.n == 1:
        return f"{m.mean:.{digits}f} ({seeds})"
    return f"{m.mean:.{digits}f} ± {m.std:.{digits}f} ({seeds})"
