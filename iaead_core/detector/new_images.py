"""Scoring a folder of new images with a saved run: :func:`score_folder` and its
:class:`ScoreReport`.

The images are read with the run's channel count and fit; their scores (inductive, see
:mod:`iaead_core.detector.scoring`) and the training images' scores under the same rule and
threshold go to one CSV, in the run folder's ``scored/`` by default.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iaead_core.data.image_files import load_image_folder
from iaead_core.detector.estimator import Detector
from iaead_core.detector.scoring import _rows, score_images, write_scores_csv
from iaead_core.detector.thresholds import RADIUS_RULES, Threshold, choose_threshold, flag, rank
from iaead_core.evaluation.metrics import detection_metrics, is_degenerate, score_scale
from iaead_core.detector.scoring import resolve_run
from iaead_core.runs import Run, RunError, read_manifest
from iaead_core.storage import check_folder, check_target
__all__ = ["ScoreReport", "score_folder"]


# ---------------------------------------------------------------------------- score a folder

@dataclass
class ScoreReport:
    """What :func:`score_folder` produced.

    Attributes
    ----------
    run_id : str; csv_path : Path
    threshold : Threshold
    paths : list of str — the new images (sorted), ``scores`` / ``ranks`` / ``flagged``
        ``(N,)`` in the same order
    train_scores, train_flagged : ndarray — the training images' scores under the same rule
    data : dict — the new folder's :meth:`ImageSet.summary`
    metrics : dict or None — :func:`detection_metrics` of the new images when they carry both
        labels
    degenerate : bool — the training scores differ only by float noise
        (:func:`~iaead_core.evaluation.metrics.is_degenerate`): ranks and flags mean nothing
    """

    run_id: str
    csv_path: Path
    threshold: Threshold
    paths: list[str]
    scores: np.ndarray
    ranks: np.ndarray
    flagged: np.ndarray
    train_scores: np.ndarray
    train_flagged: np.ndarray
    data: dict[str, Any]
    metrics: dict[str, Any] | None = None
    skipped: list = field(default_factory=list)
    ignored: list = field(default_factory=list)
    degenerate: bool = False

    @property
    def n_flagged(self) -> int:
        """New images flagged."""
        return int(self.flagged.sum())


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "images"


def score_folder(run: Run | str | os.PathLike, images: str | os.PathLike, *,
                 threshold: str = "contamination", param: float | None = None,
                 labels: str | os.PathLike | None = None, csv_path: str | os.PathLike | None = None,
                 runs_root: str | os.PathLike | None = None, device: str = "cpu",
                 progress: Callable[[int, int], None] | None = None) -> ScoreReport:
    """Score a folder of new images with a saved run and write the CSV (inductive use).

    The images are read with the run's channel count and fit (any number ≥ 1). The CSV
    (:data:`CSV_COLUMNS`) holds the new images (``set`` = ``score``, most anomalous first), then
    the training images (``set`` = ``train``) under the same rule and threshold for reference;
    every row names the rule, the threshold value and how it was chosen (``threshold_by``).

    Parameters
    ----------
    run : Run, run id (or unique prefix) or run folder path
    images : path
        Folder or zip of new images.
    threshold : {"contamination", "quantile", "radius"}
    param : float or None
        ρ (default: the run's ρ) or q (required); unused for ``radius``.
    labels : path or None
        Optional CSV of labels for the new images (metrics in the report).
    csv_path : path or None
        Default ``<run folder>/scored/<time>-<folder name>.csv``.
    runs_root : path or None
        Where to look up a run id.
    device : str
        Where to run the model (``"auto"`` picks an accelerator).
    progress : callable or None
        ``progress(done, total)`` while decoding.

    Returns
    -------
    ScoreReport

    Raises
    ------
    RunError
        Unknown run, or its weights / final scores are missing or corrupt.
    ThresholdError
        See :func:`choose_threshold`.
    ImageFolderError, TooFewImagesError
        Unusable folder (no image at all).
    iaead_core.storage.StorageError
        ``csv_path`` is a folder, a device, a FIFO, a symbolic link or read-only, or its
        folder (default: the run's ``scored/``) cannot be written: refused before the model
        is loaded or any image read.
    """
    if csv_path is not None:  # refused before any work, not after scoring
        check_target(csv_path)
        check_folder(Path(csv_path).parent)
    run = resolve_run(run, runs_root)
    if csv_path is None:
        check_folder(run.dir / "scored")
    det = Detector.from_run(run, runs_root=runs_root, device=device)
    rule = RADIUS_RULES.get(det.method_.name, "") if threshold == "radius" else det.rule_
    if threshold == "radius":
        thr = det.threshold("radius")
    else:
        thr = choose_threshold(det.decision_scores_, threshold,
                               det.contamination if param is None and threshold ==
                               "contamination" else param, method=det.method_, rule=rule)
    if f"score_{rule}" not in det.final_:
        raise RunError(f"run {det.run_id_} saved no {rule!r} scores for its training images.")
    train_scores = np.asarray(det.final_[f"score_{rule}"], np.float64)
    data = load_image_folder(images, channels=det.channels_, fit=det.image_fit_, labels=labels,
                             rho=det.contamination, min_images=1, progress=progress)
    scores = score_images(det.method_, data.images, rule=rule, reference_latent=det.latent_mean_,
                          epoch=det.epoch_, batch_size=det.method_.cfg.eval_batch_size)
    train_paths = det.train_paths_ or [f"{det.config_.dataset}[{i}]"
                                       for i in range(len(train_scores))]
    _, train_labels = read_manifest(det.run_dir_) if det.train_paths_ else (None, None)
    rows = (_rows(data.paths, scores, data.labels, thr, "score")
            + _rows(train_paths, train_scores, train_labels, thr, "train"))
    if csv_path is None:
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(Path(data.root).stem)}"
        csv_path = Path(det.run_dir_) / "scored" / f"{stem}.csv"
        n = 1
        while csv_path.exists():  # two scorings within one second keep both files
            n += 1
            csv_path = csv_path.with_name(f"{stem}-{n}.csv")
    out = write_scores_csv(csv_path, rows)
    metrics = None if data.is_anomaly is None else detection_metrics(data.is_anomaly, scores)
    return ScoreReport(run_id=det.run_id_, csv_path=out, threshold=thr, paths=data.paths,
                       scores=scores, ranks=rank(scores), flagged=flag(scores, thr.value),
                       train_scores=train_scores, train_flagged=flag(train_scores, thr.value),
                       data=data.summary(), metrics=metrics, skipped=data.skipped,
                       ignored=data.ignored,
                       degenerate=is_degenerate(train_scores, score_scale(
                           rule, det.final_["z"], det.final_.get("centre"))))
