"""The experiment folder: saved spec, run folders, event log, driver lock and report.

Layout of ``<experiments root>/<name>-<preset>/``::

    spec.json        the (narrowed) spec last run here; ``status`` and ``report`` default to it
    runs/<run_id>/   one run folder per planned run (iaead_core.runs layout), named by the
                     content hash of its config
    log.jsonl        one line per event: start, each run's end (status, error, seconds),
                     each stale folder cleared before a rerun, end
    driver.json      pid and host of the process driving the experiment (a lock)
    report/          CSV, Markdown and HTML written by ``experiment report``
    .incoming/       run folders arriving from Ray workers, moved into runs/ in one rename

A run counts as finished only when its ``status.json`` says ``completed``; the engine writes
that last, after the final arrays and weights, so a ``kill -9`` at any moment leaves each run
either finished or to be rerun, never half-counted.
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
__all__ = ["ExperimentFolder", "RunInfo", "ExperimentBusyError", "resolve_experiments_root",
           "ENV_EXPERIMENTS_DIR", "RUN_STATES"]

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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
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

    @classmethod
    def for_spec(cls, spec: ExperimentSpec, root: str | os.PathLike | None = None) -> "ExperimentFolder":
        """The folder of ``spec``: ``<root>/<name>-<preset>``."""
        return cls(resolve_experiments_root(root) / spec.folder_name)

    # ----------------------------------------------------------------------------- spec

    def save_spec(self, spec: ExperimentSpec) -> None:
        """Write ``spec.json`` (atomically)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.spec_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(spec.to_dict(), indent=2))
        os.replace(tmp, self.spec_path)

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
            return ExperimentSpec.from_dict(json.loads(self.spec_path.read_text()))
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.spec_path} is corrupt: {e}") from None

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
        """Append one event (with its time) to ``log.jsonl``, flushed to disk."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.time(), **event}, default=str)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_log(self) -> list[dict[str, Any]]:
        """Every event of ``log.jsonl`` (a line torn by a crash is skipped)."""
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    # ---------------------------------------------------------------------------- lock

    def driver(self) -> dict[str, Any] | None:
        """Contents of ``driver.json`` (None if absent or unreadable)."""
        try:
            return json.loads(self.lock_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def driver_alive(self) -> bool:
        """Whether the process in ``driver.json`` is alive (on another host: whether it wrote
        within the last 10 minutes)."""
        d = self.driver()
        if not d:
            return False
        if d.get("host") == socket.gethostname():
            return isinstance(d.get("pid"), int) and _pid_alive(d["pid"])
        return time.time() - float(d.get("heartbeat", 0)) < 600

    @contextmanager
    def driving(self) -> Iterator[None]:
        """Hold the experiment's lock for the duration of a ``with`` block.

        A lock left by a dead process (``kill -9``) is taken over.

        Raises
        ------
        ExperimentBusyError
            If a live process holds it.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.driver_alive():
            d = self.driver() or {}
            if d.get("pid") != os.getpid() or d.get("host") != socket.gethostname():
                raise ExperimentBusyError(
                    f"experiment {self.dir} is being run by process {d.get('pid')} on "
                    f"{d.get('host')}; wait for it or stop it first")
        self.beat()
        try:
            yield
        finally:
            try:
                self.lock_path.unlink()
            except FileNotFoundError:
                pass

    def beat(self) -> None:
        """Write/refresh ``driver.json`` with this process, host and the current time."""
        tmp = self.lock_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                   "heartbeat": time.time()}))
        os.replace(tmp, self.lock_path)
