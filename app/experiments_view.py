"""What the Experiments page shows and does, without Streamlit: a spec from the page's fields
and back, a cheap re-reading plan of the experiment folder, starting the missing runs through
the job registry, the cells of its tables with the runs behind each, figures and report files.

The lab runs an experiment's runs through :class:`app.jobs.JobRegistry` (one job per planned
run, into the experiment's ``runs/`` folder under its content-hash id), so they share the
worker slots, the queue panel and Stop with every other training of the lab, and a rerun or a
second tab never starts a run twice. The experiment itself is the core's: the same expansion,
run ids, folder, report functions and time estimates as ``python -m iaead_core experiment``;
resuming is starting again (finished runs are skipped because their folders say so).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import tempfile
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from iaead_core.data import DATASETS, dataset_status
from iaead_core.evaluation.analysis import METHOD_TITLES, format_lambda
from iaead_core.experiments import (BUILTIN_SPECS, ExperimentBusyError, ExperimentFolder,
                                    ExperimentSpec, Plan, RunInfo, builtin_spec, expand,
                                    resolve_experiments_root, tables as rep, write_report)
from iaead_core.experiments.estimate import format_duration, learn_rates, run_seconds
from iaead_core.experiments.figures import figure_ablation, figure_lambda, figure_rho
from iaead_core.experiments.runner import describe_point
from .jobs import JobRegistry, Starter

__all__ = ["experiments_root", "saved_experiments", "fields_from_spec", "spec_from_fields",
           "ExperimentWatch", "start", "outside_text", "group_id", "run_states", "RunState", "cost_text",
           "cells", "figures", "unfinished_text", "report_markdown", "report_html", "runs_csv", "runs_link",
           "parse_floats", "parse_classes", "parse_seeds", "toml_text", "FIELDS", "BUILTINS",
           "WatchedPlan", "base_spec", "cell_table", "state_counts", "run_table", "STATE_WORDS",
           "QUERY_EXPERIMENT", "QUERY_RUNS", "time_left", "lambda_spec", "lambda_fields", "lambda_rows",
           "LAMBDA_EXPERIMENT"]

#: Built-in specs offered as starting points (name → description).
BUILTINS = dict(BUILTIN_SPECS)
#: Query parameters of a link that opens an experiment's runs on the Runs page.
QUERY_EXPERIMENT, QUERY_RUNS = "experiment", "runs"
#: The page's fields (widget values) that describe a spec.
FIELDS = ("name", "kind", "preset", "datasets", "classes", "rho", "methods", "lam", "nu",
          "seeds", "rules", "epochs", "max_samples", "more")


def experiments_root() -> Path:
    """The experiments folder (``$IAEAD_EXPERIMENTS_DIR`` or ``./experiments``), absolute."""
    return resolve_experiments_root().resolve()


def saved_experiments(root: str | os.PathLike | None = None) -> list[str]:
    """Folder names under the experiments root that hold a saved spec, newest first."""
    base = Path(root) if root is not None else experiments_root()
    try:
        found = [d for d in base.iterdir() if (d / "spec.json").is_file()]
    except OSError:  # no experiments root yet
        return []
    return [d.name for d in sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)]


# ------------------------------------------------------------------------ spec ↔ fields

def parse_floats(text: str, name: str) -> list[float] | None:
    """``"0, 5e-5, 0.5"`` → ``[0.0, 5e-05, 0.5]``; blank → None (the method's default).

    Raises
    ------
    ValueError
        Naming the field and the entry that is not a number.
    """
    parts = [p for p in re.split(r"[,\s;]+", text or "") if p]
    if not parts:
        return None
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{name}: {p!r} is not a number (write e.g. 0, 5e-5, 0.5)") from None
        if not math.isfinite(v):
            raise ValueError(f"{name}: {p!r} is not a finite number")
        out.append(v)
    return out


def _class_items(text: str) -> str | list[Any]:
    text = text.strip()
    if text.lower() == "all":
        return "all"
    items = [p.strip() for p in re.split(r"[,\s]+", text) if p.strip()]
    if not items:
        raise ValueError("normal classes: give 'all' or a list such as 0, 2, 8")
    return [int(p) if p.isdigit() else p for p in items]


def parse_classes(text: str) -> str | list[Any] | dict[str, Any]:
    """Normal classes: ``all``; ``0, 2, 8`` (indices or names); or per data set,
    ``mnist: 0, 2, 8; fashion-mnist: all``.

    Raises
    ------
    ValueError
        For an empty entry or a data set written twice.
    """
    text = (text or "").strip()
    if ":" not in text:
        return _class_items(text)
    out: dict[str, Any] = {}
    for part in [p for p in text.split(";") if p.strip()]:
        if ":" not in part:
            raise ValueError(f"normal classes: {part.strip()!r} names no data set; write "
                             "e.g. 'mnist: 0, 2; fashion-mnist: all'")
        ds, items = part.split(":", 1)
        ds = ds.strip()
        if ds in out:
            raise ValueError(f"normal classes: {ds!r} is given twice")
        out[ds] = _class_items(items)
    return out


def parse_seeds(text: str) -> int | list[int]:
    """``3`` → 3 seeds (0, 1, 2); ``0, 4, 7`` → those seeds.

    Raises
    ------
    ValueError
        For anything but whole numbers.
    """
    parts = [p for p in re.split(r"[,\s;]+", (text or "").strip()) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"seeds: give a count (3 → seeds 0, 1, 2) or a list such as 0, 4, 7; "
                         f"got {text!r}")
    return int(parts[0]) if len(parts) == 1 else [int(p) for p in parts]


def _classes_text(classes: Any) -> str:
    def items(c: Any) -> str:
        return "all" if c == "all" else ", ".join(str(k) for k in c)
    if isinstance(classes, dict):
        return "; ".join(f"{ds}: {items(c)}" for ds, c in classes.items())
    return items(classes)


def _seeds_text(seeds: list[int]) -> str:
    return str(len(seeds)) if list(seeds) == list(range(len(seeds))) else ", ".join(map(str, seeds))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, int) else repr(float(v))
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for these simple values
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {v!r} as a TOML value")


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    """``{"axes": {...}, "config": {...}}`` as TOML tables; a dict value under ``config`` is a
    method's own table (``[config.deep-svdd]``). None values are left out (TOML has none)."""
    out = []
    for name, table in tables.items():
        plain = {k: v for k, v in (table or {}).items() if v is not None and not isinstance(v, dict)}
        nested = {k: v for k, v in (table or {}).items() if isinstance(v, dict)}
        if plain:
            out.append(f"[{name}]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in plain.items()))
        for sub, values in nested.items():
            body = {k: v for k, v in values.items() if v is not None}
            out.append(f"[{name}.{sub}]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in body.items()))
    return "\n\n".join(out)


def fields_from_spec(spec: ExperimentSpec) -> dict[str, Any]:
    """The page's field values (:data:`FIELDS`) that give back ``spec``."""
    config = dict(spec.config)
    epochs = config.pop("epochs", None)
    max_samples = config.pop("max_samples", None)
    return {
        "name": spec.name, "kind": spec.kind, "preset": spec.preset,
        "datasets": list(spec.datasets), "classes": _classes_text(spec.classes),
        "rho": ", ".join(f"{v:g}" for v in spec.rho), "methods": spec.method_list(),
        "lam": "" if spec.lam is None else ", ".join(format_lambda(v) for v in spec.lam),
        "nu": "" if spec.nu is None else ", ".join(f"{v:g}" for v in spec.nu if v is not None),
        "seeds": _seeds_text(spec.seeds), "rules": list(spec.rules or []),
        "epochs": None if epochs is None else int(epochs),
        "max_samples": None if max_samples is None else int(max_samples),
        "more": toml_text({"axes": spec.axes, "config": config}),
    }


def spec_from_fields(f: dict[str, Any], description: str = "") -> ExperimentSpec:
    """A validated spec from the page's fields (:data:`FIELDS`).

    ``epochs`` / ``max_samples`` None keep the preset's; ``more`` is TOML with ``[axes]`` and
    ``[config]`` tables (any other TrainConfig field or method option).

    Raises
    ------
    ValueError
        Naming the field and what is wrong (an unknown data set, class, method, a value out of
        range, invalid TOML, ...).
    """
    if not f.get("methods"):
        raise ValueError("methods: choose at least one method")
    if not f.get("datasets"):
        raise ValueError("data sets: choose at least one data set")
    try:
        more = tomllib.loads(f.get("more") or "")
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"more axes and settings: not valid TOML ({e})") from None
    unknown = sorted(set(more) - {"axes", "config"})
    if unknown:
        raise ValueError(f"more axes and settings: only [axes] and [config] tables go here, "
                         f"not {', '.join(unknown)}")
    config = dict(more.get("config") or {})
    if f.get("epochs") is not None:
        config["epochs"] = int(f["epochs"])
    if f.get("max_samples") is not None:
        config["max_samples"] = int(f["max_samples"])
    d: dict[str, Any] = {
        "name": (f.get("name") or "").strip(), "kind": f.get("kind", "custom"),
        "preset": f.get("preset", "quick"), "datasets": list(f["datasets"]),
        "classes": parse_classes(f.get("classes", "all")),
        "rho": parse_floats(f.get("rho", ""), "ρ") or [],
        "methods": list(f["methods"]), "seeds": parse_seeds(f.get("seeds", "1")),
        "axes": dict(more.get("axes") or {}), "config": config, "description": description}
    for key, title in (("lam", "λ"), ("nu", "ν")):
        values = parse_floats(f.get(key, ""), title)
        if values is not None:
            d[key] = values
    if f.get("rules"):
        d["rules"] = list(f["rules"])
    if not d["rho"]:
        raise ValueError("ρ: give at least one anomaly ratio, e.g. 0.1")
    return ExperimentSpec.from_dict(d)


def base_spec(base: str, preset: str, root: str | os.PathLike | None = None) -> ExperimentSpec:
    """The spec a page starts from: a built-in at ``preset``, ``"custom"`` (IAEAD on MNIST
    class 0), or a saved experiment folder's spec (at its own preset).

    Raises
    ------
    ValueError
        An unknown built-in, or a saved spec that cannot be read.
    """
    if base in BUILTINS:
        return builtin_spec(base, preset)
    if base == "custom":
        return ExperimentSpec.from_dict({"name": "my-study", "preset": preset,
                                         "datasets": ["mnist"], "classes": [0], "rho": [0.1],
                                         "methods": ["iaead"], "seeds": 1})
    folder = ExperimentFolder((Path(root) if root else experiments_root()) / base)
    spec = folder.saved_spec()
    if spec is None:
        raise ValueError(f"{folder.dir} holds no saved spec")
    return spec


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


# --------------------------------------------------------------------------- planning

@functools.lru_cache(maxsize=16)
def _expanded(spec_json: str, data_root: str | None, device: str):
    """Expansion of a spec given as JSON (cached: a table2 spec expands to 1,600 runs)."""
    return tuple(expand(ExperimentSpec.from_dict(json.loads(spec_json)), data_root=data_root,
                        device=device))


def _signature(d: Path) -> tuple:
    sig = []
    for name in ("status.json", "metrics.jsonl", "config.json"):
        try:
            s = (d / name).stat()
            sig.append((s.st_mtime_ns, s.st_size))
        except OSError:
            sig.append(None)
    return tuple(sig)


@dataclass
class WatchedPlan(Plan):
    """A :class:`~iaead_core.experiments.Plan` that also says where its estimates come from.

    Attributes
    ----------
    learned : bool — the estimates use rates measured by this experiment's finished runs
    device_type : str — the kind of device they are for (``cpu``, ``cuda``, ...)
    """

    learned: bool = False
    device_type: str = field(default="cpu")


class ExperimentWatch:
    """Plans of experiments for a page that redraws every second.

    Like :func:`iaead_core.experiments.plan_experiment`, but each run folder is read again
    only when its files changed (or while it says it is running, whose liveness depends on
    its process), and the expansion is cached. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._infos: dict[Path, tuple[tuple, RunInfo]] = {}

    def _info(self, folder: ExperimentFolder, run_id: str) -> RunInfo:
        d = folder.runs_dir / run_id
        if not d.exists():
            return RunInfo(run_id, "missing")
        sig = _signature(d)
        with self._lock:
            hit = self._infos.get(d)
        if hit is not None and hit[0] == sig and hit[1].state != "running":
            return hit[1]
        info = folder.run_info(run_id)
        with self._lock:
            self._infos[d] = (sig, info)
        return info

    def plan(self, spec: ExperimentSpec, root: str | os.PathLike | None = None,
             data_root: str | None = None, device: str = "auto") -> WatchedPlan:
        """The spec's runs and their state now, with time estimates for ``device``'s kind.

        Raises
        ------
        ValueError
            As :func:`~iaead_core.experiments.spec.expand` (an invalid combination).
        """
        from iaead_core.training.engine import select_device

        runs = list(_expanded(json.dumps(spec.to_dict(), sort_keys=True, default=str),
                              data_root, device))
        folder = ExperimentFolder.for_spec(spec, root)
        infos = {p.run_id: self._info(folder, p.run_id) for p in runs}
        kind = select_device(device).type
        learned = learn_rates(runs, infos)
        estimates = {p.run_id: run_seconds(p.config, kind, learned) for p in runs}
        return WatchedPlan(spec, folder, runs, infos, estimates, bool(learned), kind)


# --------------------------------------------------------------------------- running

def group_id(plan: Plan) -> str:
    """The registry group of an experiment's runs: one per experiment folder."""
    return f"experiment-{plan.folder.dir.name}"


def start(reg: JobRegistry, plan: Plan, starter: Starter | None = None) -> tuple[str, int]:
    """Queue every run of ``plan`` that is not completed, running or already queued; returns
    ``(group id, runs queued)``. Starting again later is resuming. ``starter``: the browser
    session that asked (a Stop from another one asks for confirmation).

    The folders of failed, stopped, interrupted and corrupt runs are cleared first (logged in
    the experiment's ``log.jsonl``, as the command line does), and the spec is saved.

    Raises
    ------
    ExperimentBusyError
        The command line (another live process) is running this experiment.
    ValueError
        A data set of the spec is not on disk (the lab does not download for experiments).
    """
    folder = plan.folder
    if folder.driver_alive():
        d = folder.driver() or {}
        raise ExperimentBusyError(
            f"this experiment is being run by process {d.get('pid')} on {d.get('host')} (the "
            "command line); its runs show here as they finish. Wait for it, or stop it first.")
    group = group_id(plan)
    active = {j.run_id for j in reg.jobs(group) if j.active}
    todo = [p for p in plan.todo if p.run_id not in active]
    for ds, root in dict.fromkeys((p.config.dataset, p.config.data_root) for p in todo):
        status = dataset_status(ds, root)
        if status not in ("on disk", "embedded"):
            raise ValueError(
                f"{DATASETS[ds].title} is {'damaged' if status == 'corrupt' else 'not on disk'} "
                f"under {root}; the lab does not download data for experiments. Fetch it "
                f"first (python -m iaead_core experiment run ... --download), or point "
                f"IAEAD_DATA_ROOT at a folder that holds it.")
    folder.save_spec(plan.spec)
    folder.log({"event": "start", "executor": "lab", "total": len(plan.runs),
                "to_run": len(todo), "skipped": plan.count("completed"), "pid": os.getpid()})
    for p in todo:
        if plan.infos[p.run_id].state != "missing":
            folder.clear_run(p.run_id, "rerun")
        reg.submit(p.config, group, "experiment", runs_root=folder.runs_dir, run_id=p.run_id,
                   starter=starter)
    return group, len(todo)


def outside_text(reg: JobRegistry, plan: Plan) -> str | None:
    """A sentence on the runs of the experiment's folder that are queued or running in the lab
    but are not in ``plan`` (they were started with other axes, e.g. a longer λ grid in
    another tab), which the page's counts leave out and its Stop stops too; when none is,
    on the folder's other finished, stopped or failed runs; None if there are none.
    ``"1 more run of this experiment, outside the settings on the left, is queued or running
    (IAEAD, λ = 5, class 0, seed 0) …"``."""
    mine = {p.run_id for p in plan.runs}
    extra = [j for j in reg.jobs(group_id(plan)) if j.active and j.run_id not in mine]
    if not extra:
        return _outside_folders(plan, mine)
    n = len(extra)
    shown = "; ".join(
        METHOD_TITLES.get(j.cfg.method, j.cfg.method)
        + (f", λ = {format_lambda(j.cfg.lam)}" if j.cfg.method == "iaead" else "")
        + f", class {j.cfg.normal_class}, seed {j.cfg.seed}" for j in extra[:3]) + ("; …" if n > 3 else "")
    return (f"{n} more run{'s' if n > 1 else ''} of this experiment, outside the settings on the "
            f"left, {'are' if n > 1 else 'is'} queued or running ({shown}): started with other "
            "settings, perhaps in another tab. The counts here leave "
            f"{'them' if n > 1 else 'it'} out; Stop stops {'them' if n > 1 else 'it'} too.")


def _outside_folders(plan: Plan, mine: set[str]) -> str | None:
    """A sentence on the run folders of the experiment that the settings on the left do not
    cover (e.g. a run another tab added and stopped), with their states when they are few
    (each is read from disk; the page polls)."""
    try:
        others = sorted(d.name for d in plan.folder.runs_dir.iterdir()
                        if d.is_dir() and d.name not in mine)
    except OSError:  # no runs folder yet
        return None
    if not others:
        return None
    n = len(others)
    states = ""
    if n <= 10:
        counts: dict[str, int] = {}
        for rid in others:
            state = plan.folder.run_info(rid).state
            counts[state] = counts.get(state, 0) + 1
        states = " (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")"
    return (f"The folder of this experiment holds {n} more run{'s' if n > 1 else ''}{states} "
            "outside the settings on the left, which the counts here leave out: started with "
            "other settings, perhaps in another tab.")


@dataclass
class RunState:
    """One planned run as the page shows it: the folder's state, overlaid by the registry's
    while it is queued or running here, and its error (a run that failed before it could
    write a folder has only the registry's).

    Attributes
    ----------
    state : str — ``completed``, ``running``, ``queued``, ``failed``, ``stopped``,
        ``interrupted``, ``corrupt`` or ``missing``
    error : str or None; epochs_done, epochs : int
    """

    state: str
    error: str | None
    epochs_done: int
    epochs: int


def run_states(plan: Plan, reg: JobRegistry) -> dict[str, RunState]:
    """:class:`RunState` of every planned run, by run id."""
    jobs = {j.run_id: j for j in reg.jobs(group_id(plan)) if j.run_id}
    out = {}
    for p in plan.runs:
        info, job = plan.infos[p.run_id], jobs.get(p.run_id)
        state, error, done = info.state, info.error, info.epochs_done
        if job is not None and job.active:
            state, done = job.status, len(job.records)
        elif job is not None and job.status == "failed" and info.state == "missing":
            state, error = "failed", job.error
        out[p.run_id] = RunState(state, error, done, p.config.epochs)
    return out


def time_left(plan: Plan, states: dict[str, RunState], slots: int = 1) -> float:
    """Estimated seconds until every run of ``plan`` has completed: each running run's
    estimate times the share of its epochs still to do, plus the whole estimate of every
    run not completed (queued, to start, or to rerun), over ``slots`` runs at once."""
    left = 0.0
    for p in plan.runs:
        s = states[p.run_id]
        if s.state == "completed":
            continue
        share = 1.0 - s.epochs_done / s.epochs if s.state == "running" and s.epochs else 1.0
        left += plan.estimates[p.run_id] * max(0.0, share)
    return left / max(1, slots)


def cost_text(plan: Plan, slots: int = 1) -> str:
    """The cost of what is left, in words: runs × estimated time on this device."""
    todo = plan.todo
    total = plan.estimated_seconds(slots)
    source = ("measured by this experiment's finished runs" if getattr(plan, "learned", False)
              else "from rates measured on the project's 2-core CPU")
    device = getattr(plan, "device_type", "cpu")
    if not todo:
        done = plan.count("completed")
        if done == len(plan.runs):
            return f"All {len(plan.runs)} runs have completed."
        return (f"Nothing left to start: {done} of {len(plan.runs)} runs have completed and "
                f"the other {len(plan.runs) - done} are running.")
    at_once = f"{slots} training slots" if slots > 1 else "one training slot"
    # One figure, the total: "4 × about 11 s = about 42 s" read as wrong sums of rounded parts.
    return (f"**{len(todo)} of {len(plan.runs)} runs to train**: about **{format_duration(total)}** "
            f"in all on this device ({device}, {at_once}; estimate {source}).")


# ------------------------------------------------------------------------- the results

def _setting_keys(plan: Plan, by_class: bool) -> list[str]:
    return rep.setting_columns(plan) + (["normal_class", "class_name"] if by_class else [])


def cells(plan: Plan, by_class: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, list[list[str]]]:
    """The cells of Table 2 (or Table 3 with ``by_class``) with the runs behind each.

    Returns
    -------
    (results, agg, run_ids)
        :func:`~iaead_core.experiments.tables.results_frame`, its
        :func:`~iaead_core.experiments.tables.aggregate`, and for each row of ``agg`` the run
        ids of its cell (in the same order).
    """
    results = rep.results_frame(plan)
    agg = rep.aggregate(results, plan, by_class=by_class)
    ids: list[list[str]] = []
    if not results.empty:
        keys = _setting_keys(plan, by_class)
        ids = [list(dict.fromkeys(g["run_id"]))
               for _, g in results.groupby(keys, dropna=False, sort=False)]
    return results, agg, ids


def _axis_text(axis: str, value: Any) -> str:
    from iaead_core.evaluation.analysis import RULE_TITLES

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if axis == "lam":
        return format_lambda(float(value))
    if axis == "rule":
        return RULE_TITLES.get(value, value)
    if axis == "rho":
        return f"{100 * float(value):g} %"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def cell_table(plan: Plan, results: pd.DataFrame, agg: pd.DataFrame, ids: list[list[str]],
               by_class: bool = False) -> pd.DataFrame:
    """The cells as a table to show: the setting (data set, ρ, method and every axis that
    varies), AUROC / AUPR-in / AUPR-out as the report writes them (mean ± std in %, the paper's
    value and Δ beside AUROC; ``k/n runs`` while runs are missing), and ``runs``: a link that
    opens the cell's runs on the Runs page."""
    if agg.empty:
        return pd.DataFrame()
    varying = rep.varying_axes(results, plan)
    titles = {"lam": "λ", "nu": "ν", "rule": "score"}
    rows = []
    for (_, r), run_ids in zip(agg.iterrows(), ids):
        row = {"data set": DATASETS[r["dataset"]].title if r["dataset"] in DATASETS else r["dataset"]}
        if by_class:
            row["class"] = rep._class_title(r["normal_class"], r["class_name"])
        row["ρ"] = _axis_text("rho", r["rho"])
        row["method"] = rep._method_title(r["method"])
        for a in varying:
            row[titles.get(a, a)] = _axis_text(a, r[a])
        row["AUROC %"] = rep.cell_text(r, "auroc")
        row["AUPR-in %"] = rep.cell_text(r, "aupr_in", paper=False)
        row["AUPR-out %"] = rep.cell_text(r, "aupr_out", paper=False)
        row["runs"] = runs_link(plan.folder.dir.name, run_ids)
        rows.append(row)
    return pd.DataFrame(rows)


def runs_link(folder_name: str, run_ids: list[str]) -> str:
    """Relative address of the Runs page showing these runs of an experiment folder."""
    return "runs?" + urlencode({QUERY_EXPERIMENT: folder_name, QUERY_RUNS: ",".join(run_ids)})


def figures(plan: Plan, results: pd.DataFrame, agg: pd.DataFrame) -> list:
    """The report's figures for this experiment's kind (as ``experiment report`` chooses
    them): AUROC against ρ (Fig. 2), against λ (Fig. 4, class-averaged), the ablation bars. A
    figure leaves out the cells whose runs have not all completed, so it fills in as they do."""
    if results.empty:
        return []
    kind, out = plan.spec.kind, []
    if kind in ("fig2-rho", "table2", "custom") and results["rho"].nunique() > 1:
        out.append(figure_rho(agg, results, plan))
    if kind in ("fig4-lambda", "custom") and len({float(v) for v in results["lam"].dropna()}) > 1:
        out.append(figure_lambda(agg, results, plan))
    varying = rep.varying_axes(results, plan)
    if kind == "ablation" or (kind == "custom" and ("rule" in varying or "init" in varying)):
        out.append(figure_ablation(results, plan))
    return out


# ----------------------------------------------------------------------------- report

def report_markdown(plan: Plan) -> str:
    """The report's text: the protocol note, Table 2 and Table 3 (and the ablation's answer
    for that kind), as ``experiment report`` writes them."""
    results = rep.results_frame(plan)
    agg = rep.aggregate(results, plan)
    agg_class = rep.aggregate(results, plan, by_class=True)
    parts = [f"# {plan.spec.name} ({plan.spec.kind}, preset {plan.spec.preset})",
             rep.protocol_note(plan)]
    if plan.spec.kind == "ablation":
        parts += ["## Ablation", rep.ablation_markdown(results, plan)]
    parts += ["## Table 2 (class-averaged)", rep.table2_markdown(agg, results, plan),
              "## Table 3 (per class)", rep.table3_markdown(agg_class, agg, results, plan)]
    return "\n\n".join(parts) + "\n"


def runs_csv(plan: Plan) -> str:
    """One row per planned run (``runs.csv`` of the report)."""
    return rep.runs_frame(plan).to_csv(index=False)


def report_html(plan: Plan) -> bytes:
    """The standalone HTML report (plotly inline), written into the experiment's ``report/``
    folder like ``experiment report`` does (into a temporary folder if that is not writable)."""
    try:
        paths = write_report(plan)
    except OSError:
        paths = write_report(plan, tempfile.mkdtemp(prefix="iaead-report-"))
    return Path(paths["report.html"]).read_bytes()


#: How a run's state is written on the page (the core says "missing" for a run without folder).
STATE_WORDS = {"missing": "not started"}


def state_counts(states: dict[str, RunState]) -> dict[str, int]:
    """State → number of runs, in a fixed order (states with none left out)."""
    order = ("completed", "running", "queued", "failed", "stopped", "interrupted", "corrupt",
             "missing")
    counts = {s: 0 for s in order}
    for s in states.values():
        counts[s.state] = counts.get(s.state, 0) + 1
    return {k: v for k, v in counts.items() if v}


def unfinished_text(counts: dict[str, int]) -> str:
    """The runs not completed, by state, for a progress line: ``"1 stopped · 2 not started"``
    ("" when every run has completed); ``counts`` as :func:`state_counts` gives them."""
    return " · ".join(f"{n} {STATE_WORDS.get(s, s)}" for s, n in counts.items() if s != "completed")


def run_table(plan: Plan, states: dict[str, RunState]) -> pd.DataFrame:
    """One row per planned run: what it is, its state, epochs, estimate and error."""
    return pd.DataFrame([{
        "run": describe_point(p.point),
        "state": STATE_WORDS.get(states[p.run_id].state, states[p.run_id].state),
        "epochs": f"{states[p.run_id].epochs_done}/{states[p.run_id].epochs}",
        "estimate": format_duration(plan.estimates[p.run_id]),
        "error": states[p.run_id].error or "", "run id": p.run_id} for p in plan.runs])
