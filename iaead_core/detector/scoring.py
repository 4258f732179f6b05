"""Inductive scoring: a trained method scores *new* images, and the scores go to CSV files.

The benchmarks train and score one set (transductive, docs/method.md §5). Here a trained method
also scores *new* images:

* **Scores** are the method's primary rule (IAEAD: ``latent_mean``, eq. 9; CAE:
  ``reconstruction``, eq. 3; Deep SVDD: ``svdd``), higher = more anomalous. Eq. (9) measures
  the distance of a code to the mean code *of the scored set*; for new images the reference is
  the mean latent code of the **training** set (from the run's final evaluation), so a new image
  gets the score it would have had among the training images and one odd image cannot move the
  reference. Other rules are per image and need no reference.
* :func:`resolve_run` finds the saved run to score with (a run, its folder, its id or a
  unique prefix of one).
* **Output.** Score rows (columns :data:`CSV_COLUMNS`, most anomalous first) are written by
  :func:`write_scores_csv`; a folder run's training ranking by :func:`write_ranking`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iaead_core.detector.thresholds import Threshold, flag, rank
from iaead_core.methods.base import Method, distance_to
from iaead_core.runs import Run, RunError, load_run, resolve_runs_root
from iaead_core.storage import atomic_output
__all__ = ["score_images", "resolve_run", "write_scores_csv", "write_ranking", "RANKING",
           "CSV_COLUMNS"]

#: Columns of every score CSV, in order.
CSV_COLUMNS = ("path", "score", "rank", "flagged", "set", "label", "rule", "threshold",
               "threshold_by")
#: The training set's ranking, written into a folder run's directory.
RANKING = "ranking.csv"


@torch.inference_mode()
def score_images(method: Method, X: torch.Tensor, *, rule: str,
                 reference_latent: np.ndarray | None, epoch: int,
                 batch_size: int = 1024) -> np.ndarray:
    """Score images with a trained method, inductively (module docstring).

    Parameters
    ----------
    method : Method
        Trained, in eval mode (:meth:`Run.load_method` or a Trainer's result).
    X : torch.Tensor
        float32 ``(N, C, 32, 32)`` in [−1, 1], on any device (moved in chunks).
    rule : str
        Score rule, e.g. the method's ``primary_score``.
    reference_latent : ndarray (d,) or None
        Mean latent code of the training set; required for ``latent_mean`` (eq. 9), which is
        the distance to it.
    epoch : int
        0-based index of the method's last trained epoch (selects its phase's rules).
    batch_size : int
        Evaluation batch size.

    Returns
    -------
    ndarray (N,) float64, higher = more anomalous.

    Raises
    ------
    ValueError
        ``rule`` not reported by this method in this phase, or ``latent_mean`` without a
        reference.
    """
    if rule == "latent_mean" and reference_latent is None:
        raise ValueError("the latent_mean score of new images needs the training set's mean "
                         "latent code as reference.")
    parts = []
    chunk = max(batch_size, 8192)
    for i in range(0, len(X), chunk):
        ev = method.evaluate(X[i:i + chunk].to(method.device), epoch, batch_size)
        if rule == "latent_mean":
            parts.append(distance_to(ev.z, np.asarray(reference_latent, np.float64)))
        elif rule in ev.scores:
            parts.append(np.asarray(ev.scores[rule], np.float64))
        else:
            raise ValueError(f"{method.name} reports no {rule!r} score at this stage; it "
                             f"reports {', '.join(sorted(ev.scores))}.")
    return np.concatenate(parts) if parts else np.zeros(0, np.float64)


def resolve_run(run: Run | str | os.PathLike, runs_root: str | os.PathLike | None = None) -> Run:
    """A saved run from a :class:`Run`, a run folder path, a run id, or a unique prefix of
    one under ``runs_root`` (default ``$IAEAD_RUNS_DIR`` or ``./runs``).

    Raises
    ------
    RunError
        No such run, or a prefix that matches several (the message lists them).
    """
    if isinstance(run, Run):
        return run
    p = Path(run).expanduser()
    if (p / "config.json").is_file():
        return load_run(p)
    root = resolve_runs_root(runs_root)
    if (root / str(run) / "config.json").is_file():
        return load_run(root / str(run))
    # A prefix, compared as text: never a glob pattern ('2026*' names no run).
    matches = sorted(d.name for d in root.iterdir()
                     if d.name.startswith(str(run)) and (d / "config.json").is_file()) \
        if root.is_dir() and str(run) and "/" not in str(run) else []
    if len(matches) == 1:
        return load_run(root / matches[0])
    if matches:
        raise RunError(f"{run!r} matches {len(matches)} runs in {root}: "
                       f"{', '.join(matches[:10])}; give more of the id.")
    raise RunError(f"no run {str(run)!r} in {root} (give a run id, a unique start of one, or "
                   f"the path of a run folder; `python -m iaead_core runs` lists them).")


# ---------------------------------------------------------------------------------- output

def write_scores_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """Write score rows (dicts with the keys of :data:`CSV_COLUMNS`) as CSV; returns the
    path. The parent folder is created.

    The file is written through a uniquely named temporary file and one rename
    (:func:`iaead_core.storage.atomic_output`): a reader never sees half a file.

    Raises
    ------
    iaead_core.storage.StorageError
        ``path`` is a folder, a device, a FIFO, a symbolic link or a read-only file (refused
        before anything is written), or the disk refuses the write (full, read-only).
    """
    path = Path(path)
    with atomic_output(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    return path


def _rows(paths: list[str], scores: np.ndarray, labels: np.ndarray | None, threshold: Threshold,
          which: str) -> list[dict[str, Any]]:
    """Rows of one set, most anomalous first."""
    r, f = rank(scores), flag(scores, threshold.value)
    names = {0: "normal", 1: "anomaly"}
    out = []
    for i in np.argsort(r, kind="stable"):
        out.append({"path": paths[i], "score": float(scores[i]), "rank": int(r[i]),
                    "flagged": int(f[i]), "set": which,
                    "label": "" if labels is None else names.get(int(labels[i]), ""),
                    "rule": threshold.rule, "threshold": threshold.value,
                    "threshold_by": threshold.describe()})
    return out


def write_ranking(run_dir: str | os.PathLike, paths: list[str], scores: np.ndarray,
                  threshold: Threshold, labels: np.ndarray | None = None) -> Path:
    """Write the training set's ranking (:data:`RANKING`, columns :data:`CSV_COLUMNS`,
    ``set`` = ``train``, most anomalous first) into a run folder; returns its path."""
    return write_scores_csv(Path(run_dir) / RANKING,
                            _rows(list(paths), np.asarray(scores), labels, threshold, "train"))
