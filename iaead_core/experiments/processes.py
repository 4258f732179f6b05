"""Several runs at once on one machine as worker *processes*, each owning its runs.

Threads of one process that each launch hundreds of small kernels per training step
serialise on Python's global interpreter lock: on one GPU, eight runs as threads of one
process finished none in the time ten separate processes finished ten. So the local
executor's slots (:class:`~iaead_core.experiments.executors.LocalExecutor`, ``slots > 1``)
are worker processes started with ``spawn`` (a fresh interpreter: no CUDA state is inherited).
A worker lives for the whole experiment and trains one run after another: it builds the run's
data draw and trains it with the engine into the experiment's ``runs/`` folder, exactly as one
run at a time would. The driver hands out runs and collects their outcomes.

Guarantees, as with threads:

* **Stop / Ctrl-C.** The driver's stop request reaches every worker through one shared event;
  a worker's run stops after its current batch and is marked ``stopped``. Workers ignore
  SIGINT themselves, so a Ctrl-C in the terminal stops the runs once, through the driver.
* **A worker that dies** (killed, out of memory, a crash in native code) fails its own run,
  with the reason in the run folder; a new worker takes its place and the other runs go on.
* **The driver killed (``kill -9``).** Each worker watches its parent; when the driver is gone
  it stops its run (marked ``stopped``) and exits, so a rerun of the experiment retrains it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from iaead_core.experiments.spec import PlannedRun
from iaead_core.runs import JSON_LIMIT_BYTES
from iaead_core.storage import load_json, read_limited, write_json
from iaead_core.experiments.executor_base import (RunOutcome, crash_callback, train_plan,
                                                  write_failed_run)

__all__ = ["run_in_processes", "PARENT_POLL_S", "DIED"]

#: Seconds between a worker's checks that the driver is still alive.
PARENT_POLL_S = 1.0
#: The error of a run whose worker process died.
DIED = ("its worker process died (killed, out of memory, or a crash in native code) before "
        "the run ended")


def _worker(conn, stop_event, threads: int | None, parent: int) -> None:
    """A worker process: train each plan it is sent, send back its outcome; ``None`` ends it."""
    # Ctrl-C and a terminal's SIGTERM reach the runs through the driver, which stops them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        # Every pool of the process, numpy's BLAS and OpenMP too: slots × all cores each would
        # oversubscribe the machine (a BLAS thread spins while it waits).
        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        stop_event.set()  # the driver is gone: stop the run, then exit

    threading.Thread(target=watch_parent, name="iaead-parent-watch", daemon=True).start()
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the driver closed its end
            return
        if task is None or stop_event.is_set() and os.getppid() != parent:
            return
        plan, runs_root = task
        conn.send(train_plan(plan, runs_root, stop_event, callback=crash_callback(plan.config)))


class _Slot:
    """One worker process and the run it is training."""

    def __init__(self, ctx, stop_event, threads: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, stop_event, threads, os.getpid()),
                                name="iaead-run", daemon=True)
        self.proc.start()
        child.close()
        self.plan: PlannedRun | None = None

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def run_in_processes(queue: list[PlannedRun], slots: int, runs_root: Path,
                     on_done: Callable[[PlannedRun, RunOutcome], None],
                     stop_event: threading.Event, threads: int | None = None,
                     poll_s: float = 0.2) -> None:
    """Train the runs of ``queue`` (emptied from the front) in ``slots`` worker processes.

    Parameters
    ----------
    queue : the planned runs.
    slots : worker processes (runs at once), ≥ 1.
    runs_root : the experiment's ``runs/`` folder.
    on_done : called in this thread with ``(plan, RunOutcome)`` as each run ends.
    stop_event : set it to stop: running runs stop after their batch, queued ones never start.
    threads : torch's CPU threads in each worker (None: torch's default).
    poll_s : how often the stop request is passed on while runs train.

    Raises
    ------
    KeyboardInterrupt
        After the workers were asked to stop and their runs ended (marked stopped).
    """
    ctx = mp.get_context("spawn")
    shared_stop = ctx.Event()
    pool = [_Slot(ctx, shared_stop, threads) for _ in range(max(1, int(slots)))]
    try:
        while True:
            if stop_event.is_set():
                shared_stop.set()
            for slot in pool:
                if slot.plan is None and queue and not stop_event.is_set():
                    slot.plan = queue.pop(0)
                    slot.conn.send((slot.plan, str(runs_root)))
            busy = [s for s in pool if s.plan is not None]
            if not busy:
                return
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout=poll_s)
            for slot in busy:
                if slot.conn not in ready and slot.proc.sentinel not in ready:
                    continue
                try:
                    outcome = slot.conn.recv() if slot.conn.poll() else None
                except (EOFError, OSError):  # the worker's end closed: it died
                    outcome = None
                if outcome is not None:
                    plan, slot.plan = slot.plan, None
                    on_done(plan, outcome)
                elif not slot.proc.is_alive():
                    plan, slot.plan = slot.plan, None
                    on_done(plan, _died(plan, Path(runs_root)))
                    slot.close()
                    pool[pool.index(slot)] = _Slot(ctx, shared_stop, threads)
    except BaseException:  # Ctrl-C: stop the workers' runs, collect them, then raise
        stop_event.set()
        shared_stop.set()
        for slot in pool:
            if slot.plan is None:
                continue
            try:
                outcome = slot.conn.recv() if slot.conn.poll(120) else None
            except (EOFError, OSError):  # the worker died meanwhile
                outcome = None
            on_done(slot.plan, outcome or _died(slot.plan, Path(runs_root)))
        raise
    finally:
        for slot in pool:
            slot.close()


def _died(plan: PlannedRun, runs_root: Path) -> RunOutcome:
    """The outcome of a run whose worker process died; its folder says so."""
    folder = runs_root / plan.run_id
    if not (folder / "config.json").exists():
        write_failed_run(runs_root, plan, DIED)
    else:
        path = folder / "status.json"
        try:  # a run folder is untrusted input: a regular file, bounded, depth-checked
            status = load_json(read_limited(path, JSON_LIMIT_BYTES))
        except (OSError, ValueError):
            status = {}
        if not isinstance(status, dict):
            status = {}
        if status.get("status") in (None, "running"):
            status.update({"status": "failed", "error": DIED, "updated": time.time()})
            try:
                write_json(path, status)
            except OSError:  # a full or read-only disk: the run reads "interrupted" instead
                pass
    return RunOutcome(plan.run_id, "failed", DIED)
