"""An experiment's progress, without Streamlit. The lab runs an experiment's runs through
:class:`app.jobs.JobRegistry` (one job per planned run, into the experiment's ``runs/`` folder
under its content-hash id, :func:`start`), so they share the worker slots, the queue panel and
Stop with every other training of the lab, and a rerun or a second tab never starts a run
twice; resuming is starting again (finished runs are skipped because their folders say so).
:class:`ExperimentWatch` re-reads the experiment folder cheaply for a page that redraws every
second; :func:`run_states`, :func:`cost_text`, :func:`time_left`, :func:`state_counts` and
:func:`run_table` say where each run stands and what is left, with the core's time estimates.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from iaead_core.data import DATASETS, dataset_status
from iaead_core.evaluation.analysis import METHOD_TITLES, format_lambda
from iaead_core.experiments import (ExperimentFolder, ExperimentSpec, Plan,
                                    RunInfo, expand)
from iaead_core.experiments.estimate import (PaceMeter, format_duration, learn_rates, load_factor,
                                             run_seconds)
from iaead_core.experiments.runner import describe_point
from ..jobs import JobRegistry, Starter
from .runs import folder_signature

__all__ = ["observe", "running_lines", "ExperimentWatch", "WatchedPlan", "start", "outside_text", "group_id", "run_states",
           "RunState", "cost_text", "time_left", "unfinished_text", "state_counts", "run_table",
           "STATE_WORDS"]


# --------------------------------------------------------------------------- planning

@functools.lru_cache(maxsize=16)
def _expanded(spec_json: str, data_root: str | None, device: str):
    """Expansion of a spec given as JSON (cached: a table2 spec expands to 1,600 runs)."""
    return tuple(expand(ExperimentSpec.from_dict(json.loads(spec_json)), data_root=data_root,
                        device=device))


@dataclass
class WatchedPlan(Plan):
    """A :class:`~iaead_core.experiments.Plan` that also says where its estimates come from.

    Attributes
    ----------
    learned : bool — the estimates use rates measured by this experiment's finished runs
    device_type : str — the kind of device they are for (``cpu``, ``cuda``, ...)
    measured : bool — the estimates use epochs measured in this process (a
        :class:`~iaead_core.experiments.estimate.PaceMeter`), scaled to the load seen now
    """

    learned: bool = False
    device_type: str = field(default="cpu")
    measured: bool = False


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
        sig = folder_signature(d)
        with self._lock:
            hit = self._infos.get(d)
        if hit is not None and hit[0] == sig and hit[1].state != "running":
            return hit[1]
        info = folder.run_info(run_id)
        with self._lock:
            self._infos[d] = (sig, info)
        return info

    def plan(self, spec: ExperimentSpec, root: str | os.PathLike | None = None,
             data_root: str | None = None, device: str = "auto",
             meter: PaceMeter | None = None) -> WatchedPlan:
        """The spec's runs and their state now, with time estimates for ``device``'s kind:
        at the rates ``meter`` measured in this process (scaled to the load now) where it has
        them, else those of the experiment's finished runs, else the core's table.

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
        here = meter.rates() if meter is not None else {}
        estimates = {p.run_id: run_seconds(p.config, kind, {**learned, **here}) for p in runs}
        return WatchedPlan(spec, folder, runs, infos, estimates, bool(learned), kind, bool(here))


# --------------------------------------------------------------------------- running

def group_id(plan: Plan) -> str:
    """The registry group of an experiment's runs: one per experiment folder."""
    return f"experiment-{plan.folder.dir.name}"


def start(reg: JobRegistry, plan: Plan, starter: Starter | None = None) -> tuple[str, int]:
    """Queue every run of ``plan`` that is not completed, running or already queued; returns
    ``(group id, runs queued)``. Starting again later is resuming. ``starter``: the browser
    session that asked (a Stop from another one asks for confirmation).

    The experiment's lock (:meth:`~iaead_core.experiments.ExperimentFolder.acquire_driver`,
    the one the command line and Ray drivers take) is taken first and handed to the registry,
    which keeps it while the experiment's jobs are queued or running and releases it when the
    last one ends; a start while this lab already drives the experiment reuses it. Then the
    folders of failed, stopped, interrupted and corrupt runs are cleared (logged in the
    experiment's ``log.jsonl``, as the command line does), and the spec is saved.

    Raises
    ------
    ExperimentBusyError
        Another process (the command line, a Ray driver, another lab server) runs this
        experiment: "… is being run by process … on …".
    ValueError
        A data set of the spec is not on disk (the lab does not download for experiments).
    iaead_core.storage.StorageError
        The experiment folder cannot be written (read-only, disk full).
    """
    folder = plan.folder
    group = group_id(plan)
    lock = reg.held(group)
    fresh = lock is None or not lock.held
    if fresh:
        lock = folder.acquire_driver(by="the lab (its Experiments or λ sensitivity page)")
    try:
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
    except BaseException:
        if fresh:
            reg.hold(group, lock)  # kept only while some of its jobs are queued or running
        raise
    if fresh:
        reg.hold(group, lock)  # released by the registry when the last job ends
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
    pace : seconds per epoch this run has taken so far (None before its first epoch, or when
        it does not run here); since : ``time.time()`` of its last epoch's end (or its start)
    """

    state: str
    error: str | None
    epochs_done: int
    epochs: int
    pace: float | None = None
    since: float | None = None


def run_states(plan: Plan, reg: JobRegistry) -> dict[str, RunState]:
    """:class:`RunState` of every planned run, by run id."""
    jobs = {j.run_id: j for j in reg.jobs(group_id(plan)) if j.run_id}
    out = {}
    for p in plan.runs:
        info, job = plan.infos[p.run_id], jobs.get(p.run_id)
        state, error, done = info.state, info.error, info.epochs_done
        pace = since = None
        if job is not None and job.active:
            state, done = job.status, len(job.records)
            last = job.records[-1] if job.records else {}
            if last.get("epoch") and isinstance(last.get("elapsed"), (int, float)):
                pace = last["elapsed"] / last["epoch"]
            since = job.progressed or job.started
        elif job is not None and job.status == "failed" and info.state == "missing":
            state, error = "failed", job.error
        out[p.run_id] = RunState(state, error, done, p.config.epochs, pace, since)
    return out


def observe(meter: PaceMeter, reg: JobRegistry, plan: Plan) -> None:
    """Feed ``meter`` the epochs of the experiment's jobs in this process (each once)."""
    kind = getattr(plan, "device_type", "cpu")
    for j in reg.jobs(group_id(plan)):
        for r in j.records:
            if j.run_id and r.get("epoch"):
                meter.observe(j.cfg, j.run_id, r["epoch"], r.get("seconds"), device=kind)


def running_lines(plan: Plan, states: dict[str, RunState], now: float) -> list[tuple[float, str]]:
    """One progress line per running run, so that epoch progress is on screen without
    opening a panel (a walk read "0 of 5 runs finished · 5 running" beside an empty bar):
    ``(fraction done, "λ=50 · 0 · seed 0 · epoch 3/10 · about 40 s left")``; the time left
    from the run's own pace, counting down within the epoch."""
    out = []
    for p in plan.runs:
        s = states[p.run_id]
        if s.state != "running":
            continue
        text = f"{describe_point(p.point)} · epoch {s.epochs_done}/{s.epochs}"
        if s.pace is not None and s.epochs:
            left = s.pace * (s.epochs - s.epochs_done) - max(0.0, now - (s.since or now))
            text += f" · about {format_duration(max(0.0, left))} left"
        elif s.epochs_done == 0:
            text += " · first epoch under way"
        out.append((s.epochs_done / s.epochs if s.epochs else 0.0, text))
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
        if s.state == "running" and s.pace is not None and s.epochs:
            # its own measured pace (under the load it sees), not the table's estimate
            left += s.pace * max(0, s.epochs - s.epochs_done)
            continue
        share = 1.0 - s.epochs_done / s.epochs if s.state == "running" and s.epochs else 1.0
        left += plan.estimates[p.run_id] * max(0.0, share)
    return left / max(1, slots)


def cost_text(plan: Plan, slots: int = 1) -> str:
    """The cost of what is left, in words: runs × estimated time on this device."""
    todo = plan.todo
    total = plan.estimated_seconds(slots)
    measured = getattr(plan, "measured", False)
    source = ("from epochs measured in this process, at the load now" if measured else
              "measured by this experiment's finished runs" if getattr(plan, "learned", False)
              else "from rates measured on the project's idle 2-core CPU")
    device = getattr(plan, "device_type", "cpu")
    if not todo:
        done = plan.count("completed")
        if done == len(plan.runs):
            return f"All {len(plan.runs)} runs have completed."
        return (f"Nothing left to start: {done} of {len(plan.runs)} runs have completed and "
                f"the other {len(plan.runs) - done} are running.")
    at_once = f"{slots} training slots" if slots > 1 else "one training slot"
    # One figure, the total: "4 × about 11 s = about 42 s" read as wrong sums of rounded parts.
    text = (f"**{len(todo)} of {len(plan.runs)} runs to train**: about **{format_duration(total)}** "
            f"in all on this device ({device}, {at_once}; estimate {source}).")
    factor = load_factor()
    if not measured and device == "cpu" and factor > 1.05:
        # rates of a machine that was idle then, against the load it sees now
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
        text += (f" This machine's load is {load:.1f} on {cpus} cores now: at that load, "
                 f"about {format_duration(total * factor)}.")
    return text


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
