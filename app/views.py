"""What the pages show, assembled from live jobs and saved run folders (no Streamlit here).

A page never reads the registry and the run folders separately: :func:`group_items` merges
them into :class:`RunItem` rows, so a comparison looks the same while it trains, after it
finished, and after the server restarted (when only the folders are left).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iaead_core.analysis import METHOD_TITLES, format_lambda, run_row
from iaead_core.runs import Run, RunError, load_run

from .jobs import Job, JobRegistry

__all__ = ["RunItem", "RunIndex", "group_items", "item_label", "known_groups", "fmt_seconds"]


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

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ("queued", "running")

    @property
    def epochs(self) -> int:
        """Planned epochs."""
        return int(self.config.get("epochs", 0))


def item_label(config: dict[str, Any], kind: str | None) -> str:
    """Label of a run inside its group: the method for a comparison, λ/class/seed for a sweep."""
    method = METHOD_TITLES.get(config.get("method", ""), config.get("method", "?"))
    if config.get("method") == "deep-svdd" and config.get("svdd_bias"):
        method += " (unregularised)"
    if kind == "sweep":
        return f"λ={format_lambda(float(config.get('lam', 0)))} · class {config.get('normal_class')} · seed {config.get('seed')}"
    return method


class RunIndex:
    """Saved runs under a runs root, re-read only when a folder changed (its metrics or status
    file grew or was rewritten), so pages can poll it every second. Thread-safe."""

    def __init__(self, runs_root: str | os.PathLike) -> None:
        self.root = Path(runs_root)
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple, Run]] = {}

    @staticmethod
    def _signature(d: Path) -> tuple:
        sig = []
        for name in ("status.json", "metrics.jsonl", "config.json"):
            try:
                st = (d / name).stat()
                sig.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                sig.append(None)
        return tuple(sig)

    def runs(self) -> list[Run]:
        """Every readable run, oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        with self._lock:
            seen = set()
            for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
                sig = self._signature(d)
                if sig[2] is None:
                    continue  # not a run folder (or one being created)
                seen.add(d)
                hit = self._cache.get(d)
                if hit is None or hit[0] != sig:
                    try:
                        hit = (sig, load_run(d))
                    except RunError:
                        continue
                    self._cache[d] = hit
                out.append(hit[1])
            for d in set(self._cache) - seen:
                del self._cache[d]
        return out

    def rows(self) -> list[dict[str, Any]]:
        """:func:`iaead_core.analysis.run_row` of every run, plus ``dir``."""
        return [{**run_row(r.run_id, r.meta, r.status, r.records), "dir": str(r.dir)}
                for r in self.runs()]


def _group_of(run: Run) -> tuple[str | None, str | None]:
    extra = run.config.get("extra") or {}
    return extra.get("group"), extra.get("kind")


def known_groups(registry: JobRegistry, index: RunIndex, kind: str) -> list[str]:
    """Group ids of one kind, live ones and saved ones, newest first (ids start with a time
    stamp, so they sort by time)."""
    groups = set(registry.groups(kind))
    for run in index.runs():
        g, k = _group_of(run)
        if g and k == kind:
            groups.add(g)
    return sorted(groups, key=lambda g: g.split("-", 1)[1], reverse=True)


def _from_job(job: Job, queue_pos: int | None) -> RunItem:
    return RunItem(label=item_label(job.cfg.to_dict(), job.kind), method=job.cfg.method,
                   config=job.cfg.to_dict(), status=job.status, records=job.records,
                   error=job.error, error_kind=job.error_kind, run_id=job.run_id,
                   run_dir=job.run_dir, job_key=job.key, queue_pos=queue_pos)


def _from_run(run: Run, kind: str | None) -> RunItem:
    status = run.status.get("status", "unknown")
    if status == "running":
        status = "interrupted"  # on disk as running but no live job: the server stopped mid-run
    return RunItem(label=item_label(run.config, kind), method=run.config.get("method", ""),
                   config=run.config, status=status, records=run.records,
                   error=run.status.get("error"), run_id=run.run_id, run_dir=run.dir)


def group_items(registry: JobRegistry, index: RunIndex, group: str) -> list[RunItem]:
    """The runs of a group: live jobs first (in submission order, with queue places), then
    saved runs of the group that no live job covers (after a restart: all of them)."""
    queue = {j.key: i + 1 for i, j in enumerate(registry.queue())}
    items = [_from_job(j, queue.get(j.key)) for j in registry.jobs(group)]
    live = {i.run_id for i in items if i.run_id}
    for run in index.runs():
        g, kind = _group_of(run)
        if g == group and run.run_id not in live:
            items.append(_from_run(run, kind))
    return items


def fmt_seconds(s: float | None) -> str:
    """``75`` → ``"1 min 15 s"``; None → ``"?"``."""
    if s is None:
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
