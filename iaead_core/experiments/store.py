"""The experiment folder: saved spec, run folders, event log, driver lock and report.

Layout of ``<experiments root>/<name>-<preset>/``::

    spec.json        the (narrowed) spec last run here; ``status`` and ``report`` default to it
    runs/<run_id>/   one run folder per planned run (iaead_core.runs layout), named by the
                     content hash of its config
    log.jsonl        one line per event: start, each run's end (status, error, seconds),
                     each stale folder cleared before a rerun, end
    .driver.lock     the experiment's lock: one driver at a time (the command line, the lab,
                     a Ray driver), held with ``flock`` (:class:`iaead_core.storage.FileLock`)
                     so that the system frees it when its holder dies
    driver.json      who holds the lock: pid, host, heartbeat, and ``by`` (what drives it)
    report/          CSV, Markdown and HTML written by ``experiment report``
    .incoming/       run folders arriving from Ray workers, moved into runs/ in one rename

A run counts as finished only when its ``status.json`` says ``completed``; the engine writes
that last, after the final arrays and weights, so a ``kill -9`` at any moment leaves each run
either finished or to be rerun, never half-counted.

The lock is taken atomically (:meth:`ExperimentFolder.acquire_driver`): of two drivers that
start together, exactly one gets it and the other an :class:`ExperimentBusyError` saying who
runs the experiment. driver.json and spec.json are written through uniquely named temporary
files (:mod:`iaead_core.storage`), so two processes never share one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from iaead_core.experiments.spec import ExperimentSpec, PlannedRun
from iaead_core.runs import RunError, load_run
from iaead_core.storage import (FileLock, StorageError, check_folder, load_json, open_append,
                                read_limited, storage_error, write_json)
__all__ = ["ExperimentFolder", "RunInfo", "ExperimentBusyError", "DriverLock",
           "resolve_experiments_root", "ENV_EXPERIMENTS_DIR", "RUN_STATES"]

ENV_EXPERIMENTS_DIR = "IAEAD_EXPERIMENTS_DIR"

#: Every state a planned run can be in (``missing``: no folder yet).
RUN_STATES = ("completed", "failed", "stopped", "interrupted", "running", "corrupt", "missing")


class ExperimentBusyError(RuntimeError):
    """Another live process is driving this experiment (its pid and host are in the message)."""


def resolve_experiments_root(root: str | os.PathLike | None = None) -> Path:
    """The experiments folder: ``root``, else ``$IAEAD_EXPERIMENTS_DIR``, else ``./experiments``."""
    return Path(root or os.environ.get(ENV_EXPERIMENTS_DIR) or "experiments")


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process on this machine."""
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
        return False
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


@dataclass
class RunInfo:
    """What the experiment needs to know about one planned run.

    Attributes
    ----------
    run_id : str
    state : str
        One of :data:`RUN_STATES`.
    error : str or None
        The error of a failed run, the reason of a stopped / interrupted / corrupt one.
    metrics : dict
        Final metrics per scoring rule (``{rule: {"auroc", "aupr_in", "aupr_out", ...}}``;
        empty unless the run has records).
    primary_score : str or None
    seconds : float or None
        The run's share of training wall time, for time estimates: the last record's
        ``elapsed``, divided by K for a run trained in a stack of K models (the stack's time
        is the time of all K; a walk saw one run priced at four runs' time).
    epochs_done : int
    n_images : int or None
        Size of the run's contaminated set.
    device : str or None
        Device the run trained on (``"cpu"``, ``"cuda:0"``, ...).
    collapsed : bool or None
        Whether the last epoch's latent space collapsed
        (:func:`iaead_core.evaluation.metrics.latent_diagnostics`); None without records.
    """

    run_id: str
    state: str
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    primary_score: str | None = None
    seconds: float | None = None
    epochs_done: int = 0
    n_images: int | None = None
    device: str | None = None
    collapsed: bool | None = None


class ExperimentFolder:
    """One experiment's folder (see the module docstring).

    Parameters
    ----------
    path : path
        The folder (created on first write).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.dir = Path(path)
        self.runs_dir = self.dir / "runs"
        self.report_dir = self.dir / "report"
        self.incoming_dir = self.dir / ".incoming"
        self.spec_path = self.dir / "spec.json"
        self.log_path = self.dir / "log.jsonl"
        self.lock_path = self.dir / "driver.json"
        self.lock_file = self.dir / ".driver.lock"
        self._driver_lock: DriverLock | None = None

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, root: str | os.PathLike | None = None) -> "ExperimentFolder":
        """The folder of ``spec``: ``<root>/<name>-<preset>``."""
        return cls(resolve_experiments_root(root) / spec.folder_name)

    # ----------------------------------------------------------------------------- spec

    def save_spec(self, spec: ExperimentSpec) -> None:
        """Write ``spec.json`` (atomically, through a uniquely named temporary file).

        Raises
        ------
        StorageError
            The folder cannot be written (read-only, disk full); the message names it.
        """
        write_json(self.spec_path, spec.to_dict())

    def saved_spec(self) -> ExperimentSpec | None:
        """The spec last run here, or None if there is none.

        Raises
        ------
        ValueError
            If ``spec.json`` exists but is not a valid spec.
        """
        if not self.spec_path.is_file():
            return None
        try:
            data = load_json(read_limited(self.spec_path, 1 << 20))
        except OSError as e:
            raise ValueError(f"{self.spec_path} cannot be read: {e}") from None
        except ValueError as e:
            raise ValueError(f"{self.spec_path} is corrupt: {e}; delete it or run the spec "
                             "again") from None
        return ExperimentSpec.from_dict(data)

    # ---------------------------------------------------------------------------- runs

    def run_info(self, run_id: str) -> RunInfo:
        """Read one run folder into a :class:`RunInfo` (``missing`` if there is none)."""

        d = self.runs_dir / run_id
        if not d.exists():
            return RunInfo(run_id, "missing")
        try:
            run = load_run(d)
        except RunError as e:
            return RunInfo(run_id, "corrupt", error=str(e))
        live = getattr(run, "live_status", None)
        if live is None:  # runs.py without live status: judge "running" by our own lock
            live = run.status.get("status", "corrupt")
            if live == "running" and not self.driver_alive():
                live = "interrupted"
        error = run.status.get("error")
        if live in ("interrupted", "corrupt") and not error:
            error = getattr(run, "status_note", "") or None
        last = run.records[-1] if run.records else {}
        stacked = (run.config.get("extra") or {}).get("stacked") or 1
        if not isinstance(stacked, int) or isinstance(stacked, bool) or not 1 <= stacked <= 4096:
            stacked = 1
        elapsed = last.get("elapsed")
        return RunInfo(
            run_id=run_id, state=live if live in RUN_STATES else "corrupt", error=error,
            metrics=last.get("metrics") or {},
            primary_score=last.get("primary_score") or run.meta.get("primary_score"),
            seconds=None if elapsed is None else elapsed / max(1, int(stacked)),
            epochs_done=len(run.records),
            n_images=(run.meta.get("data") or {}).get("n"),
            device=(run.meta.get("environment") or {}).get("device"),
            collapsed=(last.get("diagnostics") or {}).get("collapsed") if last else None)

    def infos(self, plans: list[PlannedRun]) -> dict[str, RunInfo]:
        """:meth:`run_info` of every planned run, by run id."""
        return {p.run_id: self.run_info(p.run_id) for p in plans}

    def clear_run(self, run_id: str, reason: str = "") -> None:
        """Delete a run's unfinished folder before it is run again (logged with ``reason``).

        Raises
        ------
        ValueError
            If the run is completed (a finished run is never deleted here).
        """
        d = self.runs_dir / run_id
        if not d.exists():
            return
        info = self.run_info(run_id)
        if info.state == "completed":
            raise ValueError(f"refusing to clear completed run {run_id}")
        self.log({"event": "cleared", "run_id": run_id, "previous": info.state,
                  "error": info.error, "reason": reason})
        shutil.rmtree(d)

    def install_run(self, source: Path, run_id: str) -> None:
        """Move a finished run folder (built elsewhere, e.g. unpacked from a Ray worker) into
        ``runs/`` in one rename, replacing an unfinished one."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        target = self.runs_dir / run_id
        if target.exists():
            self.clear_run(run_id, "replaced by a newer attempt")
        os.replace(source, target)

    # ----------------------------------------------------------------------------- log

    def log(self, event: dict[str, Any]) -> None:
        """Append one event (with its time) to ``log.jsonl``, flushed to disk.

        Raises
        ------
        StorageError
            The log cannot be written (disk full, read-only; a symbolic link or a device in its
            place is refused).
        """
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create {self.dir}: {e.strerror}; write to another "
                               "folder", self.dir, e.errno) from e
        line = json.dumps({"time": time.time(), **event}, default=str)
        with open_append(self.log_path) as f:
            try:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise storage_error(e, self.log_path) from e

    def read_log(self) -> list[dict[str, Any]]:
        """Every event of ``log.jsonl`` (unreadable lines, e.g. one torn by a crash, are
        skipped; a log larger than 64 MB or not a regular file reads as empty)."""
        try:
            data = read_limited(self.log_path, 64 << 20)
        except (OSError, ValueError):
            return []
        out = []
        for line in data.split(b"\n"):
            try:
                event = load_json(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out

    # ---------------------------------------------------------------------------- lock

    def driver(self) -> dict[str, Any] | None:
        """Contents of ``driver.json`` (None if absent, unreadable, or not a driver's:
        ``pid`` a process id, ``host`` a string)."""
        try:
            d = load_json(read_limited(self.lock_path, 64 << 10))
        except (OSError, ValueError):
            return None
        if not (isinstance(d, dict) and isinstance(d.get("pid"), int)
                and not isinstance(d.get("pid"), bool) and 0 < d["pid"] < 2**31
                and isinstance(d.get("host"), str)):
            return None
        return d

    def driver_alive(self) -> bool:
        """Whether the process in ``driver.json`` is alive (on another host: whether it wrote
        within the last 10 minutes). True for this process too while it drives."""
        d = self.driver()
        if not d:
            return False
        if d.get("host") == socket.gethostname():
            return _pid_alive(d["pid"])
        beat = d.get("heartbeat")
        return isinstance(beat, (int, float)) and time.time() - float(beat) < 600

    def other_driver(self) -> dict[str, Any] | None:
        """``driver.json`` of a live driver that is not this process (the lab asks: is the
        command line running it?), else None."""
        d = self.driver()
        if d is None or not self.driver_alive():
            return None
        if d.get("pid") == os.getpid() and d.get("host") == socket.gethostname():
            return None
        return d

    def busy_message(self) -> str:
        """``experiment <folder> is being run by process 123 on host (the command line,
        since 14:02:11); ...``: who holds the lock, and what to do."""
        d = self.driver() or {}
        by = d.get("by") if isinstance(d.get("by"), str) else None
        since = d.get("since")
        when = (time.strftime(", since %H:%M:%S", time.localtime(since))
                if isinstance(since, (int, float)) and not isinstance(since, bool)
                and 0 < since < 1e11 else "")
        who = (f"process {d['pid']} on {d['host']}" if d else "another process (starting now)")
        what = f" ({by}{when})" if by else (f" ({when[2:]})" if when else "")
        return (f"experiment {self.dir} is being run by {who}{what}; its runs show as they "
                "finish. Wait for it, or stop it first, then start again to resume.")

    def acquire_driver(self, by: str = "the command line") -> "DriverLock":
        """Take the experiment's lock for this process (atomic: of two callers at once,
        exactly one gets it) and write ``driver.json`` (pid, host, heartbeat, ``by``).

        A lock left by a dead process (``kill -9``) is free: the system released it.

        Parameters
        ----------
        by : str
            What drives it, in words (``"the command line"``, ``"the lab"``, ...), shown to
            a second driver.

        Returns
        -------
        DriverLock
            Release it (or use it in ``with``) when the experiment's runs have ended.

        Raises
        ------
        ExperimentBusyError
            Another driver holds the lock ("being run by process … on …").
        StorageError
            The folder cannot be written (read-only, disk full).
        """
        check_folder(self.dir, create=True)
        lock = FileLock(self.lock_file)
        if not lock.acquire():
            # The holder writes driver.json just after taking the lock: wait a moment for it,
            # so the message can say who it is.
            deadline = time.monotonic() + 2.0
            while not self.driver_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            raise ExperimentBusyError(self.busy_message())
        held = DriverLock(self, lock, by)
        try:
            held.beat(strict=True)
        except BaseException:
            lock.release()
            raise
        self._driver_lock = held
        return held

    @contextmanager
    def driving(self, by: str = "the command line") -> Iterator["DriverLock"]:
        """Hold the experiment's lock for the duration of a ``with`` block
        (:meth:`acquire_driver`; released, and driver.json removed, at its end).

        Raises
        ------
        ExperimentBusyError
            If another driver holds it.
        """
        held = self.acquire_driver(by)
        try:
            yield held
        finally:
            held.release()

    def beat(self) -> bool:
        """Refresh the heartbeat in ``driver.json`` while this folder object holds the lock.
        Never raises: a heartbeat that cannot be written (disk full) is skipped. Returns
        whether it was written."""
        held = self._driver_lock
        return held.beat() if held is not None and held.held else False


class DriverLock:
    """The experiment lock held by this process (:meth:`ExperimentFolder.acquire_driver`).

    Attributes
    ----------
    folder : ExperimentFolder; by : str — what drives it; token : str — a unique id written
    into driver.json, so that a release removes only this holder's file.
    """

    def __init__(self, folder: ExperimentFolder, lock: FileLock, by: str) -> None:
        self.folder, self._lock, self.by = folder, lock, by
        self.token = f"{os.getpid()}-{time.time_ns()}-{id(self):x}"
        self.since = time.time()
        self.beat_problem: str | None = None

    @property
    def held(self) -> bool:
        """Whether the lock is still held."""
        return self._lock.held

    def beat(self, strict: bool = False) -> bool:
        """Write ``driver.json`` with this process, host, ``by`` and the current time.

        Returns whether it was written; a failure (disk full) is kept in
        :attr:`beat_problem` and raised only when ``strict``."""
        if not self._lock.held:
            return False
        try:
            write_json(self.folder.lock_path, {
                "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": time.time(),
                "by": self.by, "since": self.since, "token": self.token}, indent=None)
        except OSError as e:
            self.beat_problem = str(e)
            if strict:
                raise
            return False
        self.beat_problem = None
        return True

    def release(self) -> None:
        """Remove driver.json (if it is still this holder's) and release the lock."""
        if not self._lock.held:
            return
        try:
            d = self.folder.driver()
            if d is not None and d.get("token") == self.token:
                self.folder.lock_path.unlink()
        except OSError:
            pass
        finally:
            self._lock.release()
            if self.folder._driver_lock is self:
                self.folder._driver_lock = None

    def __enter__(self) -> "DriverLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
