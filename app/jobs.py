"""The background job registry: the training jobs and the worker threads that run them.

A :class:`JobRegistry` holds every training job of the server process. Pages submit groups of
jobs (a comparison of methods on one data draw, or a λ sweep) and read snapshots of them; worker
threads run the jobs with :class:`iaead_core.training.engine.Trainer`, which writes each run's folder as
it goes. Workers never touch Streamlit, so a rerun, a page switch, a second tab or a closed
tab neither starts a duplicate job nor stops a running one.

Jobs are keyed by a hash of their full config (which carries the group id), and groups by a
hash of their configs: submitting what is already queued or running returns the existing
jobs. With ``stack=True`` (opt-in: a stacked run matches a single run only up to float32
rounding, which the presets amplify), a worker that takes an experiment's job also takes the
queued jobs of that experiment that can train with it as one stacked network
(:mod:`iaead_core.training.stacked`: a λ sweep of one data draw), where
:func:`~iaead_core.training.stacked.stacking_pays` measures a speed-up on the device at hand;
each job keeps its own records, folder, status and Stop. By default every job trains alone, so
the λ page and the Train page show one number for one setting. Slow, cacheable computations (UMAP) run off
the page thread in :class:`app.tasks.BackgroundTasks`, the lab's only other thread.

Pure Python: everything here is testable without Streamlit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from iaead_core.config import TrainConfig
from iaead_core.data import ContaminatedSet, DatasetUnavailableError, make_contaminated
from iaead_core.storage import StorageError
from iaead_core.training.engine import NonFiniteLossError, Trainer
__all__ = ["Job", "JobRegistry", "Starter", "ACTIVE", "FINISHED", "config_key", "default_slots"]

log = logging.getLogger("iaead.app.jobs")

ACTIVE = ("queued", "running")
FINISHED = ("completed", "stopped", "failed")


def config_key(cfg: TrainConfig) -> str:
    """A deterministic id of a config (every field, group included): 16 hex digits."""
    blob = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def default_slots(device: str = "auto") -> int:
    """How many jobs run at once: one per CUDA device, one on a CPU (two trainings on two
    cores only slow each other down and make the page sluggish)."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return 1


@dataclass(frozen=True)
class Starter:
    """Who asked for a group of jobs: one browser session of the lab.

    Attributes
    ----------
    session : str — an id of the browser session (tab) that pressed Start.
    where : str — how to recognise it in words (browser and address), may be "".
    at : float — ``time.time()`` when it pressed Start.
    """

    session: str
    where: str = ""
    at: float = field(default_factory=time.time)


@dataclass
class Job:
    """One training run as the registry sees it. Pages get copies (:meth:`JobRegistry.jobs`);
    only worker threads change the registry's own instances, under its lock.

    Attributes
    ----------
    key : str — :func:`config_key` of ``cfg``.
    group, kind : the group id and its kind ("compare", "sweep" or "single").
    cfg : TrainConfig
    status : "queued" | "running" | "completed" | "stopped" | "failed"
    records : per-epoch record dicts so far (kept when the run fails).
    error : words for a failed run (a diverged run names the epoch), else None.
    error_kind : "data" (data set unavailable), "diverged", "config", "storage" (the runs
        folder cannot be written: disk full, read-only) or "crash".
    run_id, run_dir : the run folder, once the job has started (``run_id`` may be given at
        submission: an experiment's content-hash id).
    submitted, started, finished : ``time.time()`` stamps.
    progressed : ``time.time()`` of the last epoch's end (None before the first), so a page
        can count down the epoch in progress.
    data : a ready data set to train on instead of the draw ``cfg`` describes (an
        :class:`~iaead_core.data.image_set.ImageSet` of the user's images); dropped when the job ends.
    runs_root : where its folder goes, if not the registry's runs root (an experiment's
        ``runs/``).
    stack : how many jobs (this one included) train together as one stacked network in one
        worker slot; 1 when it trains alone.
    """

    key: str
    group: str
    kind: str
    cfg: TrainConfig
    status: str = "queued"
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    run_id: str | None = None
    run_dir: Path | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    progressed: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)
    data: Any = field(default=None, repr=False)
    runs_root: Path | None = None
    stack: int = 1

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE

    @property
    def epochs_done(self) -> int:
        """Completed epochs."""
        return len(self.records)


class JobRegistry:
    """Queue + worker threads for training jobs (see module docstring).

    Parameters
    ----------
    runs_root : path
        Where run folders go (the lab passes ``resolve_runs_root()``).
    slots : int, optional
        Jobs that run at once (default :func:`default_slots`); the rest wait in FIFO order.
    data_cache_size : int
        Contaminated sets kept in memory, so every method of a comparison trains on the one
        draw without rebuilding it.
    warmup : callable, optional
        Run once by the first worker before it takes jobs (e.g. read the default data set and
        run one tiny training step), so the first real job starts warm. Errors are logged.
    stack : bool
        Let an experiment's compatible queued jobs train as one stacked network where that
        pays (see the module docstring); off by default.
    """

    def __init__(self, runs_root: str | Path, slots: int | None = None,
                 data_cache_size: int = 4, warmup: Callable[[], Any] | None = None,
                 stack: bool = False) -> None:
        self.runs_root = Path(runs_root)
        self.stack = stack
        self.slots = slots or default_slots()
        self._lock = threading.Condition()
        self._jobs: dict[str, Job] = {}          # key -> job, in submission order
        self._queue: list[str] = []              # keys waiting for a slot
        self._groups: dict[str, list[str]] = {}  # group id -> job keys
        self._group_kind: dict[str, str] = {}
        self._active_groups: dict[str, str] = {}  # content hash -> group id while active
        self._starters: dict[str, list[Starter]] = {}  # group id -> sessions that asked for it
        self._stops: dict[str, Starter] = {}  # group id -> the session that last stopped it
        self._holds: dict[str, Any] = {}  # group id -> an experiment lock kept while it is active
        self._data: OrderedDict[tuple, ContaminatedSet] = OrderedDict()
        self._data_cache_size = data_cache_size
        self._data_lock = threading.Lock()
        self._closed = False
        self._warmup = warmup
        self._workers = [threading.Thread(target=self._work, args=(i,), name=f"iaead-worker-{i}",
                                          daemon=True) for i in range(self.slots)]
        for t in self._workers:
            t.start()

    # ------------------------------------------------------------------ submitting
    def submit_group(self, cfgs: Sequence[TrainConfig], kind: str = "compare",
                     starter: Starter | None = None) -> str:
        """Queue a group of runs; returns the group id.

        If an identical group (same configs, same kind) is still queued or running, nothing
        is queued and its id is returned: a double click, a rerun or a second tab pressing
        Start cannot start a duplicate (that tab is added to the group's starters). Each
        config gets ``extra = {"group", "kind"}`` so the run folders remember their group
        after a server restart. ``starter`` says which browser session asked
        (:meth:`starters`), so a Stop from another session can ask for confirmation.

        Raises
        ------
        ValueError
            For an empty group or a config that does not validate.
        """
        if not cfgs:
            raise ValueError("nothing to run: choose at least one method / λ value")
        for c in cfgs:
            c.validate()
        content = hashlib.sha1(json.dumps(
            [kind] + [c.replace(extra={}).to_dict() for c in cfgs], sort_keys=True,
            default=str).encode()).hexdigest()[:8]
        with self._lock:
            gid = self._active_groups.get(content)
            if gid is not None and any(self._jobs[k].active for k in self._groups[gid]):
                self._add_starter(gid, starter)
                return gid
            gid = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{content}"
            while gid in self._groups:  # same second, same content, previous one finished
                gid += "x"
            keys = []
            for c in cfgs:
                cfg = c.replace(extra={**c.extra, "group": gid, "kind": kind})
                keys.append(self._add(cfg, gid, kind).key)
            self._groups[gid] = list(dict.fromkeys(keys))
            self._group_kind[gid] = kind
            self._active_groups[content] = gid
            self._add_starter(gid, starter)
            self._lock.notify_all()
            return gid

    def _add_starter(self, gid: str, starter: Starter | None) -> None:
        if starter is None:
            return
        # a session that starts the group again moves to the end, with its new time
        known = [s for s in self._starters.get(gid, []) if s.session != starter.session]
        self._starters[gid] = known + [starter]

    def submit(self, cfg: TrainConfig, group: str = "", kind: str = "single", *,
               data: Any = None, runs_root: str | Path | None = None,
               run_id: str | None = None, starter: Starter | None = None) -> Job:
        """Queue one run (or return the identical queued/running job). Returns a copy.

        ``data``: a ready data set to train on (e.g. the user's images) instead of the draw
        ``cfg`` describes; ``runs_root`` / ``run_id``: where its folder goes and its name
        (an experiment's ``runs/`` and content-hash id) instead of the registry's root and a
        new id; ``starter``: the browser session that asked, added to the group's
        :meth:`starters`.
        """
        cfg.validate()
        place = dict(data=data, runs_root=None if runs_root is None else Path(runs_root),
                     run_id=run_id)
        with self._lock:
            job = self._add(cfg, group, kind, **place)
            if group:
                self._groups.setdefault(group, [])
                if job.key not in self._groups[group]:
                    self._groups[group].append(job.key)
                self._group_kind.setdefault(group, kind)
                self._add_starter(group, starter)
            self._lock.notify_all()
            return _copy(job)

    def _add(self, cfg: TrainConfig, group: str, kind: str, **place: Any) -> Job:
        key = config_key(cfg)
        old = self._jobs.get(key)
        if old is not None and old.active:
            return old
        job = Job(key=key, group=group, kind=kind, cfg=cfg, **place)
        self._jobs.pop(key, None)  # a finished job with the same key is replaced (re-run)
        self._jobs[key] = job
        self._queue.append(key)
        return job

    # ------------------------------------------------------------------ experiment locks
    def hold(self, group: str, lock: Any) -> None:
        """Keep ``lock`` (an experiment's :class:`~iaead_core.experiments.store.DriverLock`,
        or anything with ``release()``) while some job of ``group`` is queued or running,
        and release it when the last one ends or is stopped (at once if none is active)."""
        with self._lock:
            old = self._holds.get(group)
            if old is not None and old is not lock:
                old.release()
            self._holds[group] = lock
            self._release_idle_holds()

    def held(self, group: str) -> Any:
        """The lock :meth:`hold` keeps for ``group``, or None."""
        with self._lock:
            return self._holds.get(group)

    def _release_idle_holds(self) -> None:
        """Release the locks of groups with no queued or running job (caller holds the
        registry's lock)."""
        for group, lock in list(self._holds.items()):
            if not any(self._jobs[k].active for k in self._groups.get(group, []) if k in self._jobs):
                del self._holds[group]
                try:
                    lock.release()
                except Exception:  # a lock file on a vanished disk: nothing left to free
                    log.warning("releasing the lock of %s failed:\n%s", group,
                                traceback.format_exc())

    # ------------------------------------------------------------------ reading
    def jobs(self, group: str | None = None) -> list[Job]:
        """Copies of the jobs (of one group, in its order), safe to read without locks."""
        with self._lock:
            keys = self._groups.get(group, []) if group is not None else list(self._jobs)
            return [_copy(self._jobs[k]) for k in keys if k in self._jobs]

    def job(self, key: str) -> Job | None:
        """A copy of one job, or None."""
        with self._lock:
            j = self._jobs.get(key)
            return None if j is None else _copy(j)

    def queue(self) -> list[Job]:
        """Copies of the waiting jobs, next first."""
        with self._lock:
            return [_copy(self._jobs[k]) for k in self._queue]

    def running(self) -> list[Job]:
        """Copies of the running jobs."""
        with self._lock:
            return [_copy(j) for j in self._jobs.values() if j.status == "running"]

    def groups(self, kind: str | None = None) -> list[str]:
        """Group ids, newest first (optionally of one kind)."""
        with self._lock:
            return [g for g in reversed(self._groups) if kind is None or self._group_kind[g] == kind]

    def starters(self, group: str) -> list[Starter]:
        """The browser sessions that asked for a group, the most recent request last (a session
        that asks again moves there with its new time); empty for a group submitted without
        one, or one only on disk."""
        with self._lock:
            return list(self._starters.get(group, []))

    def last_stop(self, group: str) -> Starter | None:
        """The browser session that last stopped a group (``at``: when), or None."""
        with self._lock:
            return self._stops.get(group)

    def group_active(self, group: str) -> bool:
        """Whether any job of the group is queued or running."""
        with self._lock:
            return any(self._jobs[k].active for k in self._groups.get(group, []) if k in self._jobs)

    def busy(self) -> bool:
        """Whether any job is queued or running."""
        with self._lock:
            return any(j.active for j in self._jobs.values())

    def is_running_dir(self, run_dir: str | Path) -> bool:
        """Whether a run folder belongs to a job that is still running (not to be deleted)."""
        p = Path(run_dir).resolve()
        with self._lock:
            return any(j.active and j.run_dir is not None and Path(j.run_dir).resolve() == p
                       for j in self._jobs.values())

    # ------------------------------------------------------------------ stopping
    def stop(self, key: str) -> None:
        """Stop one job: a queued job is dropped from the queue, a running one stops after its
        current batch and keeps its completed epochs (status ``stopped``)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or not job.active:
                return
            job.stop_event.set()
            if job.status == "queued":
                self._queue.remove(key)
                job.status, job.finished = "stopped", time.time()
                self._release_idle_holds()

    def stop_group(self, group: str, by: Starter | None = None) -> None:
        """Stop every job of a group (queued ones first, so none starts meanwhile). ``by``: the
        browser session that pressed Stop, with the time (:meth:`last_stop`), so the tab that
        started the group can be told."""
        with self._lock:
            keys = list(self._groups.get(group, []))
            if by is not None:
                self._stops[group] = by
        for k in sorted(keys, key=lambda k: self._jobs[k].status != "queued"):
            self.stop(k)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job and end the worker threads (tests; the server just exits)."""
        with self._lock:
            self._closed = True
            keys = list(self._jobs)
        for k in keys:
            self.stop(k)
        with self._lock:
            self._lock.notify_all()
        for t in self._workers:
            t.join(timeout)

    # ------------------------------------------------------------------ workers
    def _work(self, slot: int) -> None:
        if slot == 0 and self._warmup is not None:
            try:
                self._warmup()
            except Exception:  # a failed warm-up only costs time later
                log.warning("warm-up failed:\n%s", traceback.format_exc())
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._jobs[self._queue.pop(0)]
                job.status, job.started = "running", time.time()
                mates = self._stack_candidates(job)
            mates = self._claim_mates(job, mates) if mates else []
            if mates:
                self._run_stack([job] + mates)
            else:
                self._run(job)

    def _stack_candidates(self, job: Job) -> list[Job]:
        """Queued jobs of ``job``'s experiment (the λ page's and the Experiments page's runs)
        that can share a stack with it (caller holds the lock): same folder root, no data set
        of their own, configurations that :func:`~iaead_core.training.stacked.stack_groups` puts with
        ``job``'s."""
        if not self.stack or job.data is not None or job.kind != "experiment":
            return []
        from iaead_core.training.stacked import stack_groups

        queued = [self._jobs[k] for k in self._queue]
        others = [j for j in queued if j.group == job.group and j.data is None
                  and j.runs_root == job.runs_root and not j.stop_event.is_set()]
        if not others:
            return []
        group = next(g for g in stack_groups([job.cfg] + [j.cfg for j in others]) if 0 in g)
        return [others[i - 1] for i in group if i != 0]

    def _claim_mates(self, job: Job, mates: list[Job]) -> list[Job]:
        """Take ``mates`` out of the queue to train stacked with ``job`` if stacking pays on
        its device (measured once per process, outside the lock); else none."""
        from iaead_core.training.stacked import stacking_pays

        try:
            pays = stacking_pays(job.cfg.device, len(mates) + 1, job.cfg)
        except Exception:  # a failed measurement only means: train one after another
            log.warning("stacking measurement failed:\n%s", traceback.format_exc())
            return []
        if not pays:
            return []
        with self._lock:
            taken = [j for j in mates if j.key in self._queue and j.status == "queued"]
            if not taken:
                return []
            for j in taken:
                self._queue.remove(j.key)
                j.status, j.started = "running", time.time()
            for j in (job, *taken):
                j.stack = len(taken) + 1
            return taken

    def _dataset(self, cfg: TrainConfig) -> ContaminatedSet:
        key = (cfg.dataset, str(cfg.normal_class), cfg.rho, cfg.seed, cfg.max_samples,
               cfg.data_root, cfg.download)
        with self._data_lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            data = make_contaminated(cfg.dataset, cfg.normal_class, cfg.rho, seed=cfg.seed,
                                     data_root=cfg.data_root, max_samples=cfg.max_samples,
                                     download=cfg.download)
            self._data[key] = data
            while len(self._data) > self._data_cache_size:
                self._data.popitem(last=False)
            return data

    def _run(self, job: Job) -> None:
        try:
            if job.stop_event.is_set():
                raise _Stopped
            data = job.data if job.data is not None else self._dataset(job.cfg)
            trainer = Trainer(job.cfg, data=data, runs_root=job.runs_root or self.runs_root,
                              stop_event=job.stop_event, run_id=job.run_id)
            with self._lock:
                job.run_id, job.run_dir = trainer.run_id, trainer.run_dir
            for record in trainer.epochs():
                with self._lock:
                    job.records.append(record)
                    job.progressed = time.time()
            outcome = trainer.status, None, None
        except Exception as e:  # a crash must end the job, never the worker thread
            outcome = _failure(job, e)
        self._end([job], [outcome])

    def _run_stack(self, jobs: list[Job]) -> None:
        """Train ``jobs`` (one data draw, stackable configs) as one stacked network."""
        from iaead_core.training.stacked import StackedTrainer

        try:
            data = self._dataset(jobs[0].cfg)
            stack = StackedTrainer([j.cfg for j in jobs], data=data,
                                   runs_root=jobs[0].runs_root or self.runs_root,
                                   stop_event=[j.stop_event for j in jobs],
                                   run_ids=[j.run_id for j in jobs])
            with self._lock:
                for j, t in zip(jobs, stack.trainers):
                    j.run_id, j.run_dir = t.run_id, t.run_dir
            for k, record in stack.epochs():
                with self._lock:
                    jobs[k].records.append(record)
                    jobs[k].progressed = time.time()
            outcomes = [(r.status, str(r.error), "diverged") if r.error is not None else
                        (r.status, None, None) for r in stack.results or []]
            outcomes += [("stopped", None, None)] * (len(jobs) - len(outcomes))
        except Exception as e:
            outcomes = [_failure(j, e) for j in jobs]
        self._end(jobs, outcomes)

    def _end(self, jobs: list[Job], outcomes: list[tuple[str, str | None, str | None]]) -> None:
        with self._lock:
            for job, (status, error, kind) in zip(jobs, outcomes):
                job.status, job.error, job.error_kind = status, error, kind
                job.finished = time.time()
                job.data = None  # a user's image set can be large; its run folder lists the files
            self._release_idle_holds()
            self._lock.notify_all()


def _failure(job: Job, e: Exception) -> tuple[str, str | None, str | None]:
    """``(status, error, error_kind)`` of a job that raised ``e``."""
    if isinstance(e, _Stopped):
        return "stopped", None, None
    if isinstance(e, NonFiniteLossError):
        return "failed", str(e), "diverged"
    if isinstance(e, DatasetUnavailableError):
        return "failed", str(e), "data"
    if isinstance(e, StorageError):
        return "failed", str(e), "storage"
    if isinstance(e, ValueError):
        return "failed", str(e), "config"
    log.error("job %s crashed:\n%s", job.key, traceback.format_exc())
    return "failed", f"{type(e).__name__}: {e}", "crash"


class _Stopped(Exception):
    """A job stopped before its trainer was built."""


def _copy(job: Job) -> Job:
    return replace(job, records=list(job.records))
