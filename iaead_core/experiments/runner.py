"""Drive an experiment: plan, skip what is finished, run the rest, report progress.

:func:`run_experiment` is what ``experiment run`` and the lab call. It expands the spec,
takes the experiment's lock, clears the folders of runs that did not finish (failed, stopped,
interrupted, corrupt), and hands the missing runs to an executor. Every finished run is
logged and reported to a progress callback with the overall counts and an ETA. Killing the
process at any moment loses no finished run; running it again runs only what is missing.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from iaead_core.data import load_pool, resolve_data_root
from iaead_core.experiments.estimate import format_duration, learn_rates, run_seconds
from iaead_core.experiments.executor_base import Executor, RunOutcome
from iaead_core.experiments.local_executor import LocalExecutor
from iaead_core.experiments.spec import ExperimentSpec, PlannedRun, expand
from iaead_core.experiments.store import ExperimentFolder, RunInfo
__all__ = ["Plan", "plan_experiment", "run_experiment", "Progress", "ExperimentSummary",
           "describe_point"]


@dataclass
class Plan:
    """An expanded experiment against its folder.

    Attributes
    ----------
    spec : ExperimentSpec
    folder : ExperimentFolder
    runs : list of PlannedRun
        Every run of the spec.
    infos : dict run id → RunInfo
        Their state now.
    estimates : dict run id → float
        Estimated seconds of each run (:func:`~iaead_core.experiments.estimate.run_seconds`).
    """

    spec: ExperimentSpec
    folder: ExperimentFolder
    runs: list[PlannedRun]
    infos: dict[str, RunInfo]
    estimates: dict[str, float]

    def count(self, *states: str) -> int:
        """Number of runs in any of ``states``."""
        return sum(1 for i in self.infos.values() if i.state in states)

    @property
    def todo(self) -> list[PlannedRun]:
        """Runs to train: every one not completed and not running in another live process."""
        return [p for p in self.runs if self.infos[p.run_id].state not in ("completed", "running")]

    def estimated_seconds(self, slots: int = 1) -> float:
        """Estimated wall time of :attr:`todo` with ``slots`` runs at once."""
        return sum(self.estimates[p.run_id] for p in self.todo) / max(1, slots)

    def counts(self) -> dict[str, int]:
        """State → number of runs (states with none are left out)."""
        out: dict[str, int] = {}
        for i in self.infos.values():
            out[i.state] = out.get(i.state, 0) + 1
        return out


def plan_experiment(spec: ExperimentSpec, root: str | os.PathLike | None = None,
                    data_root: str | None = None, device: str = "auto",
                    device_type: str = "cpu",
                    folder: str | os.PathLike | None = None) -> Plan:
    """Expand ``spec`` and read the state of each run in its folder (writes nothing).

    ``device_type`` is the kind of device the estimates are for. ``folder`` is the
    experiment's folder itself, wherever it is (default ``<root>/<name>-<preset>``). Raises
    ``ValueError`` as :func:`~iaead_core.experiments.spec.expand`.
    """
    runs = expand(spec, data_root=data_root, device=device)
    folder = ExperimentFolder(folder) if folder is not None else ExperimentFolder.for_spec(spec, root)
    infos = folder.infos(runs)
    learned = learn_rates(runs, infos)
    estimates = {p.run_id: run_seconds(p.config, device_type, learned) for p in runs}
    return Plan(spec, folder, runs, infos, estimates)


def describe_point(point: dict[str, Any]) -> str:
    """A run's axis values in a few words: ``iaead mnist/0 ρ=10 % λ=5e-5 ν=1 seed 0`` (ρ in
    per cent, as the lab writes it)."""
    from iaead_core.evaluation.analysis import format_lambda  # lazy: loads torch

    parts = [f"{point.get('method')} {point.get('dataset')}/{point.get('normal_class')}",
             f"ρ={100 * point.get('rho'):g} %"]
    if point.get("lam") is not None:
        parts.append(f"λ={format_lambda(point['lam'])}")
    if point.get("nu") is not None:
        parts.append(f"ν={point['nu']:g}")
    for k, v in point.items():
        if k not in ("method", "dataset", "normal_class", "class_name", "rho", "lam", "nu", "seed") \
                and v is not None:
            parts.append(f"{k}={v}")
    parts.append(f"seed {point.get('seed')}")
    return " ".join(parts)


@dataclass
class Progress:
    """Overall progress of an experiment run, updated as runs end.

    Attributes
    ----------
    total : int — runs in the experiment; done : int — completed (including earlier ones);
    failed, stopped : int — in this session; to_run : int — runs this session started with;
    finished : int — runs that ended in this session; started : float — ``time.time()``.
    """

    total: int
    done: int
    to_run: int
    estimates: dict[str, float]
    slots: int = 1
    failed: int = 0
    stopped: int = 0
    finished: int = 0
    started: float = field(default_factory=time.time)
    _estimated_finished: float = 0.0
    _pending: set[str] = field(default_factory=set)

    def update(self, plan: PlannedRun, outcome: RunOutcome) -> None:
        """Count one run's end."""
        self.finished += 1
        self._pending.discard(plan.run_id)
        self._estimated_finished += self.estimates.get(plan.run_id, 0.0)
        if outcome.status == "completed":
            self.done += 1
        elif outcome.status == "failed":
            self.failed += 1
        else:
            self.stopped += 1

    def eta(self) -> float | None:
        """Seconds left: the estimates of the runs not yet ended, scaled by how the ended ones
        compared with their estimates in wall time (so parallelism and a slow machine are
        accounted for)."""
        left = sum(self.estimates.get(r, 0.0) for r in self._pending)
        if not self._pending:
            return 0.0
        elapsed = time.time() - self.started
        if self._estimated_finished > 0 and self.finished > 0:
            return left * elapsed / self._estimated_finished
        return left / max(1, self.slots)

    def line(self, plan: PlannedRun | None = None, outcome: RunOutcome | None = None) -> str:
        """One progress line: ``[ 5/12] completed <run> AUROC 0.953 (41 s) | failed 0 | ETA 4 min``."""
        head = f"[{self.done:>{len(str(self.total))}}/{self.total}]"
        what = ""
        if plan is not None and outcome is not None:
            what = f" {outcome.status} {describe_point(plan.point)}"
            rule = outcome.primary_score
            m = (outcome.metrics or {}).get(rule) if rule else None
            if m and m.get("auroc") is not None:
                what += f" AUROC {m['auroc']:.3f}"
            what += f" ({format_duration(outcome.seconds)})"
            if outcome.status == "failed" and outcome.error:
                what += f": {outcome.error.splitlines()[0][:200]}"
        return f"{head}{what} | failed {self.failed} | ETA {format_duration(self.eta())}"


@dataclass
class ExperimentSummary:
    """What :func:`run_experiment` did.

    Attributes
    ----------
    folder : Path; total : int; skipped : int (already completed); ran : int;
    completed, failed, stopped : int (in this session); interrupted : bool (stop requested);
    seconds : float
    """

    folder: Path
    total: int
    skipped: int
    ran: int
    completed: int
    failed: int
    stopped: int
    interrupted: bool
    seconds: float


def _prepare_data(runs: list[PlannedRun], download: bool) -> None:
    """Check (and download, if allowed) every data set once, before any run starts, so a
    missing data set fails at once with its message instead of once per run."""

    seen: set[tuple] = set()
    for p in runs:
        key = (p.config.dataset, p.config.data_root)
        if key not in seen:
            seen.add(key)
            load_pool(p.config.dataset, p.config.data_root, download=download)


def run_experiment(spec: ExperimentSpec, executor: Executor | None = None,
                   root: str | os.PathLike | None = None, data_root: str | None = None,
                   device: str = "auto", download: bool = False,
                   progress: Callable[[str, Progress], None] | None = None,
                   stop_event: threading.Event | None = None,
                   folder: str | os.PathLike | None = None,
                   driver: str | None = None) -> ExperimentSummary:
    """Run every missing run of ``spec`` (see the module docstring).

    Parameters
    ----------
    spec : ExperimentSpec
    executor : Executor, optional
        Default :class:`~iaead_core.experiments.local_executor.LocalExecutor` on ``device``.
    root : path, optional
        Experiments root (default ``$IAEAD_EXPERIMENTS_DIR`` or ``./experiments``).
    data_root : str, optional
        Data root written into every config (resolved to an absolute path).
    device : str
        Device of the runs (``auto`` picks one on the machine that trains).
    download : bool
        Download missing data sets before starting (once, on this machine).
    progress : callable, optional
        ``progress(line, Progress)`` after each run ends and once at the start.
    stop_event : threading.Event, optional
        Set it to stop: the running runs end as ``stopped``, the others are not started.
    folder : path, optional
        The experiment's folder itself, wherever it is (default ``<root>/<name>-<preset>``).
    driver : str, optional
        What drives the experiment, in words, written into driver.json and shown to a second
        driver (default ``"run_experiment (<executor> executor)"``).

    The experiment's lock (:meth:`ExperimentFolder.acquire_driver`) is taken before anything
    is written; the driver keeps going when its own heartbeat or log line cannot be written
    (a full disk), and says so once through ``progress``.

    Returns
    -------
    ExperimentSummary

    Raises
    ------
    ValueError
        For an invalid spec.
    ExperimentBusyError
        If another live process drives this experiment.
    StorageError
        If the experiment folder cannot be written (read-only, disk full): before any run.
    DatasetUnavailableError
        If a data set is missing (and cannot be downloaded).
    KeyboardInterrupt
        After the running runs were stopped and logged (Ctrl-C, or SIGTERM via the CLI).
    """

    t0 = time.time()
    executor = executor or LocalExecutor(device=device)
    stop_event = stop_event or threading.Event()
    root_data = str(resolve_data_root(data_root).resolve())
    plan = plan_experiment(spec, root, root_data, device, executor.device_type, folder=folder)
    folder = plan.folder
    say = progress or (lambda line, prog: None)
    with folder.driving(driver or f"run_experiment ({executor.name} executor)"):
        folder.save_spec(spec)
        plan.infos = folder.infos(plan.runs)  # again, under the lock
        todo = plan.todo
        if todo:
            _prepare_data(todo, download)
        folder.log({"event": "start", "executor": executor.name, "total": len(plan.runs),
                    "to_run": len(todo), "skipped": plan.count("completed"),
                    "pid": os.getpid()})
        for p in todo:
            if plan.infos[p.run_id].state != "missing":
                folder.clear_run(p.run_id, "rerun")
        tracker = Progress(total=len(plan.runs), done=plan.count("completed"), to_run=len(todo),
                           estimates=plan.estimates, _pending={p.run_id for p in todo})
        warned: set[str] = set()

        def bookkeeping(what: str, write: Callable[[], Any]) -> None:
            """The driver's own log line or heartbeat: a failure (disk full) is said once and
            does not stop the experiment."""
            try:
                ok = write()
            except OSError as e:
                ok, reason = False, str(e)
            else:
                reason = folder._driver_lock.beat_problem if folder._driver_lock else None
            if ok is False and what not in warned:
                warned.add(what)
                say(f"warning: the experiment's {what} could not be written "
                    f"({reason or 'the disk refused it'}); the runs go on", tracker)

        say(f"{spec.folder_name}: {len(plan.runs)} runs, {plan.count('completed')} already "
            f"completed, {len(todo)} to run on {executor.name}", tracker)

        def on_done(p: PlannedRun, outcome: RunOutcome) -> None:
            tracker.slots = executor.slots
            tracker.update(p, outcome)
            bookkeeping("log", lambda: folder.log({
                "event": "run", "run_id": p.run_id, "status": outcome.status,
                "error": outcome.error, "seconds": round(outcome.seconds, 3)}))
            bookkeeping("heartbeat (driver.json)", folder.beat)
            say(tracker.line(p, outcome), tracker)

        interrupted = False
        try:
            executor.run(todo, folder.runs_dir, on_done, stop_event, install=folder.install_run)
        except KeyboardInterrupt:
            stop_event.set()
            interrupted = True
            bookkeeping("log", lambda: folder.log({"event": "interrupted"}))
            raise
        finally:
            bookkeeping("log", lambda: folder.log({
                "event": "end", "completed": tracker.done, "failed": tracker.failed,
                "stopped": tracker.stopped}))
    return ExperimentSummary(folder=folder.dir, total=len(plan.runs),
                             skipped=plan.count("completed"), ran=tracker.finished,
                             completed=tracker.done - plan.count("completed"),
                             failed=tracker.failed, stopped=tracker.stopped,
                             interrupted=interrupted or stop_event.is_set(),
                             seconds=time.time() - t0)
