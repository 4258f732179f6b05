"""Runs as the pages see them, assembled from live jobs and saved run folders (no Streamlit here).

A page never reads the registry and the run folders separately: :func:`group_items` merges
them into :class:`RunItem` rows, so a comparison looks the same while it trains, after it
finished, and after the server restarted (when only the folders are left). Run folders may
vanish (deleted from the Runs page or by hand) or be corrupt at any moment: everything here
reads them defensively and reports such folders instead of raising; a group's runs whose
folders were deleted are named in a note (:func:`deleted_items`, :func:`deleted_note`).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iaead_core.evaluation.analysis import METHOD_TITLES, format_lambda, run_row
from iaead_core.evaluation.stability import SeedSpread, completed_runs, expected_spread
from iaead_core.runs import Run, RunError, load_run
from ..jobs import Job, JobRegistry

__all__ = ["RunItem", "RunIndex", "Problem", "folder_signature", "group_items", "item_label", "known_groups",
           "run_status", "saved_item", "deleted_items", "deleted_name", "deleted_note",
           "remember", "metrics_heading", "group_status", "seed_spread", "SEEN_RUNS"]


@dataclass
class RunItem:
    """One run as a page shows it, live or saved.

    Attributes
    ----------
    label : short name ("IAEAD", "λ=5e-5 · 0 · seed 1", ...)
    method : str; config : dict (TrainConfig fields); status : str
    records : per-epoch records so far; error, error_kind : see :class:`~app.jobs.Job`
    run_id, run_dir : the folder (None while queued); job_key : registry key (None if only on disk)
    queue_pos : 1-based place in the queue while queued
    since : ``time.time()`` of the run's last progress while it runs (its start, then each
        epoch's end), so the time left counts down within an epoch; None otherwise
    """

    label: str
    method: str
    config: dict[str, Any]
    status: str
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    run_id: str | None = None
    run_dir: Path | None = None
    job_key: str | None = None
    queue_pos: int | None = None
    since: float | None = None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ("queued", "running")

    @property
    def epochs(self) -> int:
        """Planned epochs."""
        return int(self.config.get("epochs", 0) or 0)


def group_status(items: list[RunItem]) -> str:
    """One word or two for a comparison's state, for its picker label: ``"running"`` while a
    run is queued or running, ``"completed"`` when every run did, else the distinct statuses
    (``"stopped"``, ``"completed, failed"``); ``""`` for no runs."""
    if not items:
        return ""
    if any(i.active for i in items):
        return "running"
    return ", ".join(sorted({i.status for i in items}))


def metrics_heading(items: list[RunItem]) -> str:
    """The heading of a comparison's metrics table, as its runs' statuses allow: "Final
    metrics" only when every run shown completed; "Metrics at the latest epoch" while one is
    queued or running; else "Metrics at the last epoch reached" with each run that did not
    complete and where it stopped (a walk read "Final metrics" over a stopped run), e.g.
    ``"Metrics at the last epoch reached (IAEAD stopped after 3/15 epochs)"``."""
    shown = [i for i in items if i.records or i.status != "queued"]
    if any(i.active for i in shown):
        return "Metrics at the latest epoch"
    short = [i for i in shown if i.status != "completed"]
    if not short:
        return "Final metrics"
    return ("Metrics at the last epoch reached ("
            + "; ".join(f"{i.label} {i.status} after {len(i.records)}/{i.epochs} epochs"
                        for i in short) + ")")


def seed_spread(item: RunItem, index: "RunIndex") -> SeedSpread | None:
    """The expected spread across seeds of ``item``'s own AUROC (its last record's primary
    score), by the core's :func:`~iaead_core.evaluation.stability.expected_spread`: measured
    from the completed runs of ``index`` with the same setting and other seeds, else from the
    preset's stability table; None without records or when neither applies."""
    if not item.records:
        return None
    return expected_spread(item.config, item.records[-1].get("primary_score"),
                           completed_runs(index.runs()))


@dataclass(frozen=True)
class Problem:
    """A folder under the runs root that looks like a run but cannot be read.

    Attributes
    ----------
    run_id : folder name; dir : its path; reason : what is wrong, in words.
    """

    run_id: str
    dir: Path
    reason: str


def item_label(config: dict[str, Any], kind: str | None) -> str:
    """Label of a run inside its group: the method for a comparison, λ/class/seed for a sweep."""
    method = METHOD_TITLES.get(config.get("method", ""), config.get("method", "?"))
    if config.get("method") == "deep-svdd" and config.get("svdd_bias"):
        method += " (unregularised)"
    if kind == "sweep":
        return (f"λ={format_lambda(_float(config.get('lam')))} · class {config.get('normal_class')} "
                f"· seed {config.get('seed')}")
    return method


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _valid_record(r: Any) -> bool:
    """A per-epoch record the pages can draw (a hand-edited or foreign line is skipped)."""
    return (isinstance(r, dict) and isinstance(r.get("epoch"), int)
            and isinstance(r.get("metrics", {}), dict))


def _checked(run: Run) -> Run:
    """``run`` with unusable records dropped; RunError if its config does not describe a run."""
    if not isinstance(run.meta, dict) or not isinstance(run.meta.get("config"), dict):
        raise RunError(f"{run.dir / 'config.json'} does not describe an iaead run "
                       "(no 'config' object)")
    if not isinstance(run.status, dict):
        run.status = {"status": "unknown", "error": "status.json is not a JSON object"}
    run.records = [r for r in run.records if _valid_record(r)]
    return run


def run_status(run: Run) -> str:
    """The run's state for display: :attr:`Run.live_status` where the core provides it
    ("interrupted" for a run whose process is gone, "corrupt", ...), else the status file's
    word."""
    live = getattr(run, "live_status", None)
    if isinstance(live, str) and live:
        return live
    return str(run.status.get("status", "unknown"))


def folder_signature(d: Path) -> tuple:
    """What tells a run folder changed: ``(mtime_ns, size)`` of its status, metrics and config
    files (None for a missing one), so a cached read is redone only when one of them moved."""
    sig = []
    for name in ("status.json", "metrics.jsonl", "config.json"):
        try:
            st = (d / name).stat()
            sig.append((st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append(None)
    return tuple(sig)


class RunIndex:
    """Saved runs under a runs root, re-read only when a folder changed (its metrics or status
    file grew or was rewritten), so pages can poll it every second. Thread-safe.

    Folders that hold a ``config.json`` but cannot be read (corrupt JSON, a config that is
    not a run's) are not runs: :meth:`runs` leaves them out and :meth:`problems` lists them.
    """

    def __init__(self, runs_root: str | os.PathLike) -> None:
        self.root = Path(runs_root)
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple, Run | Problem]] = {}


    def _read(self, d: Path) -> Run | Problem:
        """A run (possibly with a corrupt status file: live status "corrupt", records kept),
        or the reason it cannot be read at all."""
        try:
            return _checked(load_run(d))
        except RunError as e:
            return Problem(d.name, d, str(e))
        except (OSError, ValueError, TypeError, AttributeError) as e:  # vanished mid-read, odd JSON
            return Problem(d.name, d, f"{type(e).__name__}: {e}")

    def _entries(self) -> list[Run | Problem]:
        try:
            dirs = sorted(p for p in self.root.iterdir() if p.is_dir())
        except OSError:  # no runs root (yet), or it vanished
            return []
        out = []
        with self._lock:
            seen = set()
            for d in dirs:
                sig = folder_signature(d)
                if sig[2] is None:
                    if _orphan(d):  # run files without config.json, not just being created
                        seen.add(d)
                        out.append(Problem(d.name, d, f"{d / 'config.json'} is missing"))
                    continue
                seen.add(d)
                hit = self._cache.get(d)
                if hit is None or hit[0] != sig:
                    hit = (sig, self._read(d))
                    self._cache[d] = hit
                out.append(hit[1])
            for d in set(self._cache) - seen:
                del self._cache[d]
        return out

    def runs(self) -> list[Run]:
        """Every readable run, oldest first."""
        return [e for e in self._entries() if isinstance(e, Run)]

    def problems(self) -> list[Problem]:
        """Folders with a ``config.json`` that cannot be read as a run, with the reason."""
        return [e for e in self._entries() if isinstance(e, Problem)]

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per folder: :func:`iaead_core.evaluation.analysis.run_row` of every run plus
        ``dir``, ``init``, ``degenerate``, ``auroc_raw`` and ``alerts`` (alert kinds of the last
        epoch), with ``status`` from :func:`run_status`; a corrupt folder is a row with
        status ``"corrupt"`` and the reason as ``error``."""
        out = []
        for e in self._entries():
            if isinstance(e, Problem):
                out.append({"run_id": e.run_id, "status": "corrupt", "error": e.reason,
                            "dir": str(e.dir), "created": _mtime(e.dir)})
                continue
            row = run_row(e.run_id, e.meta, e.status, e.records)
            problem = getattr(e, "problem", None)
            last = e.records[-1] if e.records else {}
            m = (last.get("metrics") or {}).get(row.get("primary_score")) or {}
            row.update(
                status=run_status(e), dir=str(e.dir), init=e.config.get("init"),
                degenerate=bool(m.get("degenerate", False)) if m else None,
                auroc_raw=(m.get("raw") or {}).get("auroc") if m.get("degenerate") else None,
                alerts=", ".join(dict.fromkeys(a.get("kind", "?") for a in last.get("alerts") or []
                                               if isinstance(a, dict))))
            if problem:
                row["error"] = str(problem)
            if row.get("created") is None:
                row["created"] = _mtime(e.dir)
            out.append(row)
        return out


_RUN_FILES = ("status.json", "metrics.jsonl", "snapshots", "model.pt", "final.npz")
_CREATION_GRACE_S = 10.0  # RunWriter makes the folder, then writes config.json


def _orphan(d: Path) -> bool:
    """A folder with files a run writes but no config.json, older than a run's set-up."""
    try:
        return (not d.name.startswith(".") and any((d / n).exists() for n in _RUN_FILES)
                and time.time() - d.stat().st_mtime >= _CREATION_GRACE_S)
    except OSError:
        return False


def _mtime(d: Path) -> float | None:
    try:
        return d.stat().st_mtime
    except OSError:
        return None


def _group_of(run: Run) -> tuple[str | None, str | None]:
    extra = run.config.get("extra") or {}
    if not isinstance(extra, dict):
        return None, None
    return extra.get("group"), extra.get("kind")


def _folder_gone(job: Job) -> bool:
    """A finished job whose run folder has been deleted since (nothing left to show)."""
    return (not job.active and job.run_dir is not None
            and not (Path(job.run_dir) / "config.json").exists())


def known_groups(registry: JobRegistry, index: RunIndex, kind: str) -> list[str]:
    """Group ids of one kind that still have something to show (a live job, a failed job
    without a folder, or a saved run), newest first (ids start with a time stamp). A group
    whose every run folder was deleted is left out."""
    groups = {g for g in registry.groups(kind)
              if any(not _folder_gone(j) for j in registry.jobs(g))}
    for run in index.runs():
        g, k = _group_of(run)
        if g and k == kind:
            groups.add(g)
    return sorted(groups, key=lambda g: g.split("-", 1)[-1], reverse=True)


def _from_job(job: Job, queue_pos: int | None) -> RunItem:
    return RunItem(label=item_label(job.cfg.to_dict(), job.kind), method=job.cfg.method,
                   config=job.cfg.to_dict(), status=job.status, records=job.records,
                   error=job.error, error_kind=job.error_kind, run_id=job.run_id,
                   run_dir=job.run_dir, job_key=job.key, queue_pos=queue_pos,
                   since=(job.progressed or job.started) if job.status == "running" else None)


def _from_run(run: Run, kind: str | None) -> RunItem:
    status = run_status(run)
    if status == "running" and getattr(run, "live_status", None) is None:
        status = "interrupted"  # older core: on disk as running but no live job here
    return RunItem(label=item_label(run.config, kind), method=run.config.get("method", ""),
                   config=run.config, status=status, records=run.records,
                   error=run.status.get("error"), run_id=run.run_id, run_dir=run.dir)


def group_items(registry: JobRegistry, index: RunIndex, group: str) -> list[RunItem]:
    """The runs of a group: live jobs first (in submission order, with queue places), then
    saved runs of the group that no live job covers (after a restart: all of them). Finished
    jobs whose folder was deleted are left out."""
    queue = {j.key: i + 1 for i, j in enumerate(registry.queue())}
    items = [_from_job(j, queue.get(j.key)) for j in registry.jobs(group) if not _folder_gone(j)]
    live = {i.run_id for i in items if i.run_id}
    for run in index.runs():
        g, kind = _group_of(run)
        if g == group and run.run_id not in live:
            items.append(_from_run(run, kind))
    return _seed_labels(items)


def _seed_labels(items: list[RunItem]) -> list[RunItem]:
    """Name the seed in the label of every run that shares its label with another (a
    comparison trained with several seeds per method: ``"IAEAD · seed 1"``)."""
    counts: dict[str, int] = {}
    for it in items:
        counts[it.label] = counts.get(it.label, 0) + 1
    for it in items:
        if counts[it.label] > 1 and "seed" not in it.label:
            it.label = f"{it.label} · seed {it.config.get('seed')}"
    return items


# --------------------------------------------------------------------------- deleted runs

#: Session State key (shared by the pages of one browser session) of the runs shown or
#: deleted in this session: run id → :class:`RunItem` without records, so a page can name a run
#: of a group after its folder is gone (:func:`deleted_items`).
SEEN_RUNS = "_runs_seen_this_session"


def remember(seen: dict, items: Any) -> None:
    """Add the items that have a folder to ``seen`` (run id → item without its records)."""
    for it in items:
        if it.run_id and it.run_dir is not None:
            seen[it.run_id] = RunItem(label=it.label, method=it.method, config=it.config,
                                      status=it.status, run_id=it.run_id, run_dir=it.run_dir)


def saved_item(run: Run) -> RunItem:
    """A saved run as a :class:`RunItem` of its group (to remember it before deleting it)."""
    return _from_run(run, _group_of(run)[1])


def deleted_items(registry: JobRegistry, group: str,
                  remembered: Any = ()) -> list[RunItem]:
    """The runs of a group whose folder has been deleted since (on the Runs page, in another
    tab or by hand), status ``"deleted"``, without records: the registry's finished jobs of
    the group whose folder is gone, then the ``remembered`` items (runs a page of this
    browser session has shown or deleted) of the group whose folder is gone. After a server
    restart a run deleted before it was ever shown cannot be known, so it is not listed.
    Methods in the order a comparison lists them."""
    out: dict[str, RunItem] = {}
    found = [_from_job(j, None) for j in registry.jobs(group) if _folder_gone(j)]
    for it in remembered:
        extra = it.config.get("extra") if isinstance(it.config, dict) else None
        if (isinstance(extra, dict) and extra.get("group") == group and it.run_dir is not None
                and not (Path(it.run_dir) / "config.json").exists()):
            found.append(it)
    for it in found:
        if it.run_id and it.run_id not in out:
            out[it.run_id] = RunItem(label=it.label, method=it.method, config=it.config,
                                     status="deleted", run_id=it.run_id, run_dir=it.run_dir)
    order = {m: i for i, m in enumerate(METHOD_TITLES)}  # as a comparison lists its methods
    return _seed_labels(sorted(out.values(), key=lambda it: order.get(it.method, len(order))))


def deleted_name(item: RunItem) -> str:
    """``"IAEAD (λ = 50, ν = 1)"``: the label of a run, with λ and ν where they apply and the
    label does not already say them (a sweep's label starts with λ)."""
    from ..explain import settings  # explain imports nothing of the app: no cycle

    if item.method != "iaead" or "λ" in item.label:
        return item.label
    s = settings(item.config)
    return f"{item.label} (λ = {s['λ']}, ν = {s['ν']})"


def deleted_note(items: list[RunItem], what: str = "comparison") -> str:
    """One sentence saying which runs of a group are no longer shown because their folders
    were deleted, e.g. "**IAEAD (λ = 50, ν = 1)** of this comparison is no longer shown: its
    run folder `…` was deleted (on the Runs page, in another tab or by hand)." """
    names = [f"**{deleted_name(it)}**" for it in items]
    ids = ", ".join(f"`{it.run_id}`" for it in items)
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if len(items) == 1:
        return (f"{listed} of this {what} is no longer shown: its run folder {ids} was deleted "
                "(on the Runs page, in another tab or by hand).")
    return (f"{listed} of this {what} are no longer shown: their run folders ({ids}) were "
            "deleted (on the Runs page, in another tab or by hand).")
