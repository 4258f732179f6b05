"""What every executor shares: the :class:`Executor` contract, a run's :class:`RunOutcome`,
and what a worker runs for one planned run (:func:`train_plan`).

:func:`train_plan` trains one run with the engine wherever it is called (a local thread or a
Ray worker) and never raises for a failing run: the error is returned in the outcome and
written to the run folder (:func:`write_failed_run` when the engine could not write one).
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from iaead_core.experiments.spec import PlannedRun
from iaead_core.runs import RunError, RunWriter
__all__ = ["RunOutcome", "Executor", "train_plan", "write_failed_run", "crash_callback",
           "TEST_CRASH_ENV"]


#: Test-only hook: ``FIELD=VALUE`` (e.g. ``normal_class=1``) makes a *worker* (a Ray task or a
#: local worker process) training a run whose config has that value end its own process with
#: ``os._exit`` after the first epoch, as a crashed worker would. Never set it outside the tests.
TEST_CRASH_ENV = "IAEAD_TEST_CRASH_WORKER"


def crash_callback(cfg) -> Callable[[dict], None] | None:
    """The test-only hook of :data:`TEST_CRASH_ENV`: a per-epoch callback that ends the
    process, for a run whose config matches; else None."""
    spec = os.environ.get(TEST_CRASH_ENV)
    if not spec or "=" not in spec:
        return None
    name, value = spec.split("=", 1)
    if str(getattr(cfg, name, None)) != value:
        return None

    def die(record: dict) -> None:
        os._exit(17)
    return die


@dataclass
class RunOutcome:
    """How one run ended.

    Attributes
    ----------
    run_id : str
    status : {"completed", "stopped", "failed"}
    error : str or None
    seconds : float
        Wall time of the attempt.
    metrics : dict
        Final metrics per scoring rule (empty for a run without records).
    primary_score : str or None
    """

    run_id: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    primary_score: str | None = None


OnDone = Callable[[PlannedRun, RunOutcome], None]


# --------------------------------------------------------------------- one run, anywhere

def write_failed_run(runs_root: str | os.PathLike, plan: PlannedRun, error: str) -> None:
    """Write a run folder whose status is ``failed`` with ``error``, for a run that failed
    before the engine could write one (bad data, a dead worker). Replaces nothing: an existing
    folder is left as it is."""

    meta = {"run_id": plan.run_id, "config": plan.config.to_dict(), "seed": plan.config.seed,
            "data": {}, "created": time.time(), "point": plan.point}
    kwargs = {"heartbeat_period": 0} if "heartbeat_period" in inspect.signature(RunWriter).parameters else {}
    try:
        writer = RunWriter(runs_root, plan.run_id, meta, **kwargs)
    except (RunError, OSError):  # a folder exists, or the disk refuses one: nothing to add
        return
    try:
        writer.set_status("failed", error, epochs_done=0)
    except OSError:  # a full or read-only disk: the folder says "running", then "interrupted"
        pass
    finally:
        writer.close()


def train_plan(plan: PlannedRun, runs_root: str | os.PathLike, stop_event: threading.Event | None = None,
               data: Any = None, callback: Callable[[dict], None] | None = None) -> RunOutcome:
    """Train one planned run with the engine, writing its folder ``runs_root/<run_id>``.

    Never raises for a failing run (KeyboardInterrupt excepted): the error is returned in the
    outcome and written to the run folder.

    Parameters
    ----------
    plan : PlannedRun
    runs_root : path
    stop_event : threading.Event, optional
        Set it to stop the run between batches (status ``stopped``).
    data : ContaminatedSet, optional
        The run's data draw, when already built (several runs share one).
    callback : callable, optional
        Called with every epoch record.
    """
    from iaead_core.training.engine import NonFiniteLossError, Trainer  # lazy: loads torch

    start = time.perf_counter()
    try:
        trainer = Trainer(plan.config, data=data, runs_root=runs_root, stop_event=stop_event,
                          run_id=plan.run_id)
    except Exception as e:  # bad data, device, config: no folder written yet
        error = f"{type(e).__name__}: {e}"
        write_failed_run(runs_root, plan, error)
        return RunOutcome(plan.run_id, "failed", error, time.perf_counter() - start)
    try:
        result = trainer.run(callback)
    except NonFiniteLossError as e:
        return RunOutcome(plan.run_id, "failed", str(e), time.perf_counter() - start,
                          _last_metrics(trainer))
    except Exception as e:  # the engine marked the folder failed with this message
        return RunOutcome(plan.run_id, "failed", f"{type(e).__name__}: {e}",
                          time.perf_counter() - start, _last_metrics(trainer))
    return RunOutcome(plan.run_id, result.status,
                      None if result.status == "completed" else "stopped before the last epoch",
                      time.perf_counter() - start, result.final_metrics,
                      result.records[-1]["primary_score"] if result.records else None)


def _last_metrics(trainer) -> dict[str, Any]:
    return trainer.records[-1]["metrics"] if trainer.records else {}


# ------------------------------------------------------------------------------- executors

class Executor(ABC):
    """Runs a list of planned runs, reporting each one's end to ``on_done``."""

    name: str = ""

    @property
    def slots(self) -> int:
        """How many runs train at once (for the ETA); 1 until :meth:`run` knows better."""
        return getattr(self, "_slots", 1)

    @property
    def device_type(self) -> str:
        """Kind of device the runs train on (``cpu``, ``cuda``, ...), for time estimates."""
        return "cpu"

    @abstractmethod
    def run(self, plans: list[PlannedRun], runs_root: Path, on_done: OnDone,
            stop_event: threading.Event, install: Callable[[Path, str], None] | None = None) -> None:
        """Train ``plans``; call ``on_done(plan, outcome)`` as each ends (in the calling
        thread). Returns when all have ended or ``stop_event`` is set (then the running ones
        end as ``stopped`` and the others are not started).

        ``install(folder, run_id)`` moves a run folder built elsewhere into ``runs_root``
        (executors whose runs train in another process use it)."""
