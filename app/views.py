"""What the pages show, assembled from live jobs and saved run folders (no Streamlit here).

A page never reads the registry and the run folders separately: :func:`group_items` merges
them into :class:`RunItem` rows, so a comparison looks the same while it trains, after it
finished, and after the server restarted (when only the folders are left). Run folders may
vanish (deleted from the Runs page or by hand) or be corrupt at any moment: everything here
reads them defensively and reports such folders instead of raising.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from iaead_core.evaluation.analysis import (METHOD_TITLES, RULE_TITLES, format_lambda, run_row,
                                            time_left)
from iaead_core.evaluation.metrics import score_scale
from iaead_core.runs import Run, RunError, load_run
from .jobs import Job, JobRegistry

__all__ = ["RunItem", "RunIndex", "Problem", "group_items", "item_label", "known_groups",
           "fmt_seconds", "run_eta", "group_eta", "has_radius", "radius_series", "PanelDistance", "panel_distance",
           "coincide", "run_status", "saved_item", "deleted_items", "deleted_name",
           "deleted_note", "remember", "SEEN_RUNS"]


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

    @staticmethod
    def _signature(d: Path) -> tuple:
        sig = []
        for name in ("status.json", "metrics.jsonl", "config.json"):
            try:
                st = (d / name).stat()
                sig.append((st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append(None)
        return tuple(sig)

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
                sig = self._signature(d)
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
    return sorted(out.values(), key=lambda it: order.get(it.method, len(order)))


def deleted_name(item: RunItem) -> str:
    """``"IAEAD (λ = 50, ν = 1)"``: the label of a run, with λ and ν where they apply and the
    label does not already say them (a sweep's label starts with λ)."""
    from .explain import settings  # explain imports nothing of the app: no cycle

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


# ------------------------------------------------------------------------------- radius R

def has_radius(config: dict[str, Any]) -> bool:
    """Whether the run's method has a radius R at all: IAEAD (soft boundary, eq. 7) and Deep
    SVDD with the soft-boundary objective. CAE, one-class Deep SVDD and the reconstruction
    baselines have none."""
    method = config.get("method")
    if method == "iaead":
        return True
    return method == "deep-svdd" and config.get("objective") == "soft-boundary"


def radius_series(records: list[dict[str, Any]], config: dict[str, Any]) -> list[float]:
    """R per record, NaN where R is undefined: a method without R (every record), and the
    epochs without the SVDD term (IAEAD's warm-up, Deep SVDD's pre-training), where the
    engine leaves R at its initial 0."""
    out = []
    for r in records:
        R = _float(r.get("R"))
        svdd_on = (r.get("loss") or {}).get("svdd") is not None
        ok = has_radius(config) and svdd_on and R is not None and math.isfinite(R)
        out.append(R if ok else math.nan)
    return out


# ---------------------------------------------------------------------- hypersphere view

@dataclass
class PanelDistance:
    """The distance a Latent-page histogram shows, and how it relates to the panel's score.

    Attributes
    ----------
    values : ndarray ``(N,)`` float64 — one value per image: a latent distance (latent
        units), or the panel's own score where that is no latent distance.
    name : "distance to c", "distance to the mean latent code", or the score's title (e.g.
        "reconstruction error").
    to_c : whether ``values`` are distances to the centre c (so R may be marked).
    relation : one sentence relating it to the score named in the panel's headline.
    scale : the codes' RMS length (:func:`iaead_core.evaluation.metrics.score_scale`, the metrics' own
        scale): the yardstick for "all these distances are the same" (distances to the mean
        of collapsed codes are all ~1e-8).
    """

    values: np.ndarray
    name: str
    to_c: bool
    relation: str
    scale: float = 0.0


_TO_C, _TO_MEAN = "distance to c", "distance to the mean latent code"


def panel_distance(snap: dict[str, np.ndarray], rule: str | None, config: dict[str, Any],
                   want: str = "score") -> PanelDistance:
    """See :func:`_panel_distance`; adds :attr:`PanelDistance.scale`."""
    out = _panel_distance(snap, rule, config, want)
    if out.name not in (_TO_C, _TO_MEAN):  # a score that is no latent distance: its own size
        finite = out.values[np.isfinite(out.values)]
        out.scale = float(np.abs(finite).max()) if finite.size else 0.0
        return out
    # The metrics' scale for a latent distance (the codes' RMS length), so "all the same" on
    # the page is the metrics' "degenerate".
    out.scale = score_scale("latent_mean", np.asarray(snap["z"], np.float64)) or 0.0
    return out


def _panel_distance(snap: dict[str, np.ndarray], rule: str | None, config: dict[str, Any],
                    want: str = "score") -> PanelDistance:
    """Choose and compute the distance a panel's histogram shows.

    Parameters
    ----------
    snap : a latent snapshot (``z`` ``(N, d)``, ``score_<rule>`` ``(N,)``, ``centre``, ``R``).
    rule : the scoring rule named in the panel's headline (or None).
    config : the run's TrainConfig dict (Deep SVDD's objective decides how its score relates
        to the distance).
    want : ``"score"`` — the headline score itself (a latent distance, or any other score
        such as the reconstruction error, as saved); ``"c"`` — the distance to c where c is
        fixed, else to the mean code.

    Returns
    -------
    PanelDistance. Saved scores (computed in float64, stored as float32) are preferred to
    distances recomputed from the float16 codes of the snapshot.
    """
    title = RULE_TITLES.get(rule or "", rule or "no score")
    has_c = snap.get("centre") is not None and np.size(snap.get("centre")) > 0
    svdd = snap.get("score_svdd")
    if want == "score" and rule in ("latent_mean", "latent_c") and f"score_{rule}" in snap:
        return PanelDistance(np.asarray(snap[f"score_{rule}"], np.float64),
                             _TO_C if rule == "latent_c" else _TO_MEAN, rule == "latent_c",
                             "This is the panel's score.")
    if rule == "svdd" and svdd is not None and (want == "score" or has_c):
        s = np.asarray(svdd, np.float64)
        if config.get("objective") == "soft-boundary":
            s = s + float(snap.get("R", 0.0)) ** 2  # the score is ||z − c||² − R²
        return PanelDistance(np.sqrt(np.clip(s, 0.0, None)), _TO_C, True,
                             "The panel's score is the square of this distance"
                             + (" minus R²." if config.get("objective") == "soft-boundary" else "."))
    if want == "score" and rule and f"score_{rule}" in snap:  # any other score, as it is
        return PanelDistance(np.asarray(snap[f"score_{rule}"], np.float64), title, False,
                             "This is the panel's score.")
    if "score_latent_c" in snap:
        return PanelDistance(np.asarray(snap["score_latent_c"], np.float64), _TO_C, True,
                             f"Not the panel's score ({title}): the hypersphere view.")
    if has_c:
        z = np.asarray(snap["z"], np.float64)
        return PanelDistance(np.linalg.norm(z - np.asarray(snap["centre"], np.float64), axis=1),
                             _TO_C, True, f"Not the panel's score ({title}): the hypersphere view.")
    relation = (f"Not the panel's score ({title}, which is not this distance): c is not fixed "
                "in this run or at this epoch, so the distance is to the mean code.")
    if "score_latent_mean" in snap:
        return PanelDistance(np.asarray(snap["score_latent_mean"], np.float64), _TO_MEAN, False,
                             "This is the panel's score." if rule == "latent_mean" else relation)
    z = np.asarray(snap["z"], np.float64)
    return PanelDistance(np.linalg.norm(z - z.mean(0), axis=1), _TO_MEAN, False, relation)


# ----------------------------------------------------------------------------- curves

def coincide(a: list[tuple[int, float]], b: list[tuple[int, float]], tol: float) -> float | None:
    """The largest gap between two per-epoch curves over their common epochs, if every gap is
    at most ``tol`` and they share at least two epochs; else None. ``a``, ``b``: (epoch, value)."""
    da = {e: v for e, v in a if v is not None and math.isfinite(v)}
    gaps = [abs(da[e] - v) for e, v in b if e in da and v is not None and math.isfinite(v)]
    if len(gaps) < 2:
        return None
    worst = max(gaps)
    return worst if worst <= tol else None


def run_eta(item: RunItem, pace: float | None, now: float) -> float | None:
    """Seconds left for one run (≥ 0; 0 once it has ended; None when nothing tells yet).

    A running run: its epochs left × its own mean epoch time (:func:`analysis.time_left`), or
    ``pace`` × its epochs before its first epoch, less the seconds since its last progress
    (``item.since``), so the figure counts down within an epoch instead of standing still
    until the epoch ends. A queued run: ``pace`` (seconds per epoch) × its epochs.
    ``now``: ``time.time()``."""
    if item.status not in ("queued", "running"):
        return 0.0
    if item.status == "running" and item.records:
        left = time_left(item.records, item.epochs)
    else:
        left = None if pace is None else pace * item.epochs
    if left is None:
        return None
    if item.status == "running" and item.since is not None:
        left -= max(0.0, now - item.since)
    return max(0.0, left)


def group_eta(items: Sequence[RunItem], now: float | None = None, slots: int = 1) -> float | None:
    """Seconds left for a group: the sum of :func:`run_eta` over its runs, over ``slots``
    runs at once (the registry's training slots; 1 on a CPU). A run still to come (queued, or
    before its first epoch) is priced at the pace (seconds per epoch, first epoch included)
    of the group's runs of its method so far; for a method none of them has run yet, at the
    project's measured cost of that method
    (:func:`iaead_core.experiments.estimate.epoch_seconds`: Deep SVDD's pre-training makes it
    dearer than the CAE) scaled by how fast the group's runs have gone against their own
    estimates. None when nothing has a pace yet. ``now`` defaults to ``time.time()``."""
    from iaead_core.config import TrainConfig
    from iaead_core.experiments.estimate import epoch_seconds

    def estimated(it: RunItem) -> float | None:
        try:  # the CPU's table: only the methods' ratio matters, the scale is measured
            return epoch_seconds(TrainConfig.from_dict(it.config))
        except (TypeError, ValueError, KeyError):
            return None

    now = time.time() if now is None else now
    paces: dict[str, list[float]] = {}
    scale: list[float] = []  # observed pace / estimated pace
    for it in items:
        if it.records and it.records[-1].get("epoch"):
            pace = it.records[-1]["elapsed"] / it.records[-1]["epoch"]
            paces.setdefault(it.method, []).append(pace)
            est = estimated(it)
            if est:
                scale.append(pace / est)
    total = 0.0
    for it in items:
        same = paces.get(it.method)
        if same:
            pace = sum(same) / len(same)
        elif scale and (est := estimated(it)):
            pace = est * sum(scale) / len(scale)
        else:
            pace = None
        left = run_eta(it, pace, now)
        if left is None:
            return None
        total += left
    return total / max(1, min(slots, sum(it.active for it in items)))


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
