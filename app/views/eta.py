"""Time left, as the pages say it (no Streamlit here): for one run (:func:`run_eta`, counting
down within an epoch), for a group of runs over the registry's training slots
(:func:`group_eta`, pricing runs still to come at their method's pace), and in words
(:func:`fmt_seconds`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from iaead_core.evaluation.analysis import time_left
from .runs import RunItem

__all__ = ["fmt_seconds", "run_eta", "group_eta", "observe_items"]


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


def observe_items(meter, items: Sequence[RunItem], device: str = "cpu") -> None:
    """Feed ``meter`` (:class:`iaead_core.experiments.estimate.PaceMeter`) the epochs of the
    runs this process trains (those with a registry job), each epoch once."""
    from iaead_core.config import TrainConfig

    for it in items:
        if it.job_key is None or not it.run_id or not it.records:
            continue
        try:
            cfg = TrainConfig.from_dict(it.config)
        except (TypeError, ValueError):
            continue
        for r in it.records:
            if r.get("epoch"):
                meter.observe(cfg, it.run_id, r["epoch"], r.get("seconds"), device=device)


def group_eta(items: Sequence[RunItem], now: float | None = None, slots: int = 1,
              rates: dict | None = None) -> float | None:
    """Seconds left for a group: the sum of :func:`run_eta` over its runs, over ``slots``
    runs at once (the registry's training slots; 1 on a CPU). A run still to come (queued, or
    before its first epoch) is priced at the pace (seconds per epoch, first epoch included)
    of the group's runs of its method so far; for a method none of them has run yet, at the
    project's measured cost of that method
    (:func:`iaead_core.experiments.estimate.epoch_seconds`: Deep SVDD's pre-training makes it
    dearer than the CAE) scaled by how fast the group's runs have gone against their own
    estimates. ``rates``: seconds per 1,000 image-epochs measured in this process at the load
    now (:meth:`iaead_core.experiments.estimate.PaceMeter.rates`), used before the table for a
    method the group has not run yet. None when nothing has a pace yet. ``now`` defaults to
    ``time.time()``."""
    from iaead_core.config import TrainConfig
    from iaead_core.experiments.estimate import epoch_seconds, rate_key

    def here(it: RunItem) -> float | None:
        """Seconds per epoch of this run's kind measured in this process, at the load now."""
        try:
            cfg = TrainConfig.from_dict(it.config)
        except (TypeError, ValueError, KeyError):
            return None
        return epoch_seconds(cfg, learned=rates) if rates and rate_key(cfg) in rates else None

    def estimated(it: RunItem) -> float | None:
        try:  # the CPU's table: only the methods' ratio matters, the scale is measured
            return epoch_seconds(TrainConfig.from_dict(it.config), learned=rates)
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
        measured = here(it)
        if measured is not None and it.status in ("queued", "running"):
            # the pace measured in this process, scaled to the load now (a run's first
            # epochs may have gone at another load: a walk saw 57 s announced for 520 s)
            left = measured * max(0, it.epochs - len(it.records))
            if it.status == "running" and it.since is not None:
                left -= max(0.0, now - it.since) if it.records else 0.0
            total += max(0.0, left)
            continue
        if same:
            pace = sum(same) / len(same)
        elif scale and (est := estimated(it)):
            pace = est * sum(scale) / len(scale)
        elif rates and any(k[0] == it.method for k in rates) and (est := estimated(it)):
            pace = est  # measured in this process (another group's runs), at the load now
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
