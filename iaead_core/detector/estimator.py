"""Inductive scoring, thresholds, and a PyOD / scikit-learn style detector (issue 10).

The benchmarks train and score one set (transductive, docs/method.md §5). Here a trained method
also scores *new* images:

* **Scores** are the method's primary rule (IAEAD: ``latent_mean``, eq. 9; CAE:
  ``reconstruction``, eq. 3; Deep SVDD: ``svdd``), higher = more anomalous. Eq. (9) measures
  the distance of a code to the mean code *of the scored set*; for new images the reference is
  the mean latent code of the **training** set (from the run's final evaluation), so a new image
  gets the score it would have had among the training images and one odd image cannot move the
  reference. Other rules are per image and need no reference.
* **Thresholds** turn scores into flags, ``flagged = score > threshold`` (a NaN score is
  flagged). Three choices, all taken from the training set so they mean the same for every
  new batch:

  - ``contamination`` ρ: the (1 − ρ)-quantile of the training scores, so the top ρ of the
    training images are flagged (the paper's protocol assumes a known ρ; PyOD's rule);
  - ``quantile`` q: the q-quantile of the training scores (``contamination`` 1 − q);
  - ``radius``: the learned radius R of the soft-boundary SVDD term (eq. 7) — IAEAD flags
    ``||z − c|| > R`` (rule ``latent_c``), Deep SVDD (soft-boundary objective) flags
    ``||z − c||² − R² > 0`` (rule ``svdd``). Only these two methods learn an R. With IAEAD's
    paper setting ν = 1, R is the smallest distance of the last batch, so nearly every image
    lies outside it; train with e.g. ν = 0.1 for a radius that holds about 90 % of the data.

  Quantiles use numpy's linear interpolation.
* :class:`Detector` wraps the engine in PyOD's contract: ``fit``, ``decision_function``,
  ``predict`` and the fitted ``decision_scores_``, ``threshold_``, ``labels_``.
"""

from __future__ import annotations

import csv
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from iaead_core.config import PRESETS, TrainConfig, preset_config
from iaead_core.data import DATASETS
from iaead_core.data.image_files import load_image_folder
from iaead_core.data.image_set import (ImageSet, array_to_model_input, image_set_from_array,
                                       infer_input_range)
from iaead_core.evaluation.metrics import detection_metrics, is_degenerate, score_scale
from iaead_core.methods.base import Method, distance_to
from iaead_core.runs import Run, RunError, load_run, read_manifest, resolve_runs_root
from iaead_core.training.engine import Trainer, select_device
from iaead_core.training.restore import load_method
__all__ = ["Detector", "Threshold", "ThresholdError", "ScoreReport", "THRESHOLD_KINDS",
           "RADIUS_RULES", "choose_threshold", "flag", "rank", "score_images", "score_folder",
           "resolve_run", "write_scores_csv", "write_ranking", "RANKING", "CSV_COLUMNS"]

#: How a threshold is chosen (module docstring).
THRESHOLD_KINDS = ("contamination", "quantile", "radius")
#: Methods that learn a radius R, and the score rule R is compared with.
RADIUS_RULES = {"iaead": "latent_c", "deep-svdd": "svdd"}
#: Columns of every score CSV, in order.
CSV_COLUMNS = ("path", "score", "rank", "flagged", "set", "label", "rule", "threshold",
               "threshold_by")
#: The training set's ranking, written into a folder run's directory.
RANKING = "ranking.csv"
_STANDARD_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0), (0.0, 65535.0))


class ThresholdError(ValueError):
    """A threshold that cannot be used (unknown kind, value out of range, no learned R)."""


@dataclass(frozen=True)
class Threshold:
    """A decision threshold on one score rule.

    Attributes
    ----------
    kind : {"contamination", "quantile", "radius"}
    param : float or None
        ρ for ``contamination``, q for ``quantile``, the radius R for ``radius``.
    value : float
        Flag when ``score > value`` (same units as the score).
    rule : str
        Score rule the value applies to (``latent_mean``, ``latent_c``, ``svdd``, ...).
    """

    kind: str
    param: float | None
    value: float
    rule: str

    def describe(self) -> str:
        """Short text for the CSV's ``threshold_by`` column, e.g. ``contamination 0.1``."""
        if self.kind == "radius":
            return f"radius R={self.param:.6g}"
        return f"{self.kind} {self.param:g}"


def _finite(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ThresholdError("the training scores hold no finite value; no threshold exists.")
    return s


def choose_threshold(train_scores: np.ndarray, kind: str = "contamination",
                     param: float | None = None, *, method: Method | None = None,
                     rule: str = "") -> Threshold:
    """Pick a threshold from the training set's scores (module docstring).

    Parameters
    ----------
    train_scores : ndarray (N,) float
        Scores of the training images under ``rule`` (non-finite values are left out).
    kind : {"contamination", "quantile", "radius"}
    param : float or None
        ρ in (0, 0.5] for ``contamination``; q in (0, 1) for ``quantile``; unused for
        ``radius``.
    method : Method or None
        The trained method (needed for ``radius``: its name, ``c``, ``R`` and objective).
    rule : str
        Score rule of ``train_scores``; for ``radius`` it must be :data:`RADIUS_RULES`'s rule.

    Returns
    -------
    Threshold

    Raises
    ------
    ThresholdError
        Unknown kind, missing or out-of-range ``param``, or ``radius`` for a method without a
        learned R (not IAEAD / Deep SVDD, Deep SVDD's one-class objective, or R = 0, e.g. a run
        stopped before its SVDD phase).
    """
    if kind not in THRESHOLD_KINDS:
        raise ThresholdError(f"unknown threshold {kind!r}; choose one of "
                             f"{', '.join(THRESHOLD_KINDS)}.")
    if kind == "radius":
        return _radius_threshold(method, rule)
    if param is None:
        raise ThresholdError(f"the {kind} threshold needs a value (ρ in (0, 0.5] or q in "
                             f"(0, 1)).")
    p = float(param)
    if kind == "contamination":
        if not 0.0 < p <= 0.5:
            raise ThresholdError(f"contamination ρ (the fraction of training images to flag) "
                                 f"must lie in (0, 0.5]; got {p}.")
        q = 1.0 - p
    else:
        if not 0.0 < p < 1.0:
            raise ThresholdError(f"the quantile q must lie in the open interval (0, 1), e.g. "
                                 f"0.95; got {p}.")
        q = p
    return Threshold(kind, p, float(np.quantile(_finite(train_scores), q)), rule)


def _radius_threshold(method: Method | None, rule: str) -> Threshold:
    name = getattr(method, "name", None)
    if name not in RADIUS_RULES:
        raise ThresholdError(
            f"the radius threshold uses the learned radius R of the soft-boundary SVDD term, "
            f"which only {' and '.join(RADIUS_RULES)} learn; this run's method is {name!r}. "
            f"Use a contamination or quantile threshold.")
    if rule and rule != RADIUS_RULES[name]:
        raise ThresholdError(f"R is compared with the {RADIUS_RULES[name]!r} score, not {rule!r}.")
    R = float(method.R)
    if name == "deep-svdd" and method.cfg.objective != "soft-boundary":
        raise ThresholdError("this Deep SVDD run used the one-class objective, which learns no "
                             "radius R; train with the soft-boundary objective, or use a "
                             "contamination or quantile threshold.")
    if method.c is None or not R > 0.0:
        raise ThresholdError(f"this {name} run has no learned radius (R = {R:g}; the SVDD phase "
                             f"never ran). Use a contamination or quantile threshold.")
    # Deep SVDD's soft-boundary score is ||z − c||² − R², so R itself sits at 0.
    return Threshold("radius", R, R if name == "iaead" else 0.0, RADIUS_RULES[name])


def flag(scores: np.ndarray, threshold: float) -> np.ndarray:
    """``score > threshold`` as int64 0/1 ``(N,)``; a NaN score is flagged (1)."""
    s = np.asarray(scores, np.float64)
    return (~(s <= threshold)).astype(np.int64)


def rank(scores: np.ndarray) -> np.ndarray:
    """Ranks int64 ``(N,)``: 1 = most anomalous (highest score); NaN first, ties by position."""
    s = np.asarray(scores, np.float64)
    key = np.where(np.isnan(s), np.inf, s)
    order = np.argsort(-key, kind="stable")
    r = np.empty(len(s), np.int64)
    r[order] = np.arange(1, len(s) + 1)
    return r


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
    matches = sorted(d.name for d in root.glob(f"{run}*") if (d / "config.json").is_file()) \
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
    path. The parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)  # a reader never sees half a file
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


# -------------------------------------------------------------------------------- detector

class Detector:
    """An anomaly detector for images with PyOD's contract, on this project's engine.

    Parameters
    ----------
    method : str
        A method of :data:`iaead_core.methods.METHODS` (``"iaead"``, ``"cae"``, ``"deep-svdd"``,
        ...).
    preset : {"quick", "paper"}
        Optimisation settings (:data:`iaead_core.config.PRESETS`). The preset's ``max_samples``
        does not apply: every image given to :meth:`fit` is used.
    contamination : float
        Guessed fraction ρ of anomalies in the training images, in (0, 0.5): ``threshold_``
        flags the top ρ of the training scores. Also recorded as the config's ρ.
    channels : {"auto", 1, 3}
        For a folder; arrays keep their channel count.
    fit : {"pad", "crop"}
        How images of another size become 32×32 (see :mod:`iaead_core.data.image_files`).
    runs_root : path, None or False
        Where the run folder goes (None: ``$IAEAD_RUNS_DIR`` or ``./runs``); False (default)
        writes nothing.
    device : {"auto", "cpu", "cuda", "mps"}
    seed : int
        Seeds torch, numpy and random for the training.
    **config_overrides
        Any other :class:`~iaead_core.config.TrainConfig` field (``epochs``, ``lam``, ``nu``,
        ``warmup_epochs``, ``objective``, ...).

    Attributes
    ----------
    decision_scores_ : ndarray (N,) float64
        Primary scores of the training images (higher = more anomalous).
    threshold_ : float
        The (1 − contamination)-quantile of ``decision_scores_``.
    labels_ : ndarray (N,) int64
        ``decision_scores_ > threshold_`` as 0/1.
    rule_ : str
        Score rule used (the method's ``primary_score``).
    method_ : Method
        The trained method (model in eval mode).
    latent_mean_ : ndarray (d,) float64
        Mean latent code of the training images (reference of ``latent_mean``).
    channels_, fit_, input_range_
        How new images are brought to the network's input (``input_range_`` None for a
        folder).
    run_id_, run_dir_, records_
        The run (``run_dir_`` None when nothing was written) and its per-epoch records.
    train_paths_ : list of str or None
        Training images' paths for a folder (order of ``decision_scores_``).
    degenerate_ : bool
        True when the training scores differ only by float noise
        (:func:`iaead_core.evaluation.metrics.is_degenerate`, e.g. a collapsed latent space): the ranking
        and the flags then carry no information.

    Raises
    ------
    ValueError
        On construction, for an unknown method or preset, a contamination outside (0, 0.5), or
        a config value :meth:`TrainConfig.validate` rejects.

    Notes
    -----
    Arrays ``(N, C, H, W)`` or ``(N, H, W)`` may hold any range: :meth:`fit` picks the range
    by :func:`~iaead_core.data.image_set.infer_input_range` (uint8 → 0..255, floats in [0, 1] → 0..1,
    ...) and maps it to [−1, 1]; new images are read in the training range (a ``UserWarning``
    says so when their values plainly follow another convention). A folder path (or zip)
    is read by :func:`~iaead_core.data.image_files.load_image_folder`; :meth:`decision_function` on a
    folder returns the scores in the order of its sorted readable files (use
    :func:`score_folder` for a CSV with the paths).

    Examples
    --------
    >>> det = Detector("iaead", preset="quick", contamination=0.1).fit(images)  # doctest: +SKIP
    >>> det.decision_function(new_images)  # doctest: +SKIP
    """

    def __init__(self, method: str = "iaead", preset: str = "quick",
                 contamination: float = 0.1, *, channels: int | str = "auto", fit: str = "pad",
                 runs_root: str | os.PathLike | None | bool = False, device: str = "auto",
                 seed: int = 0, **config_overrides: Any) -> None:
        c = float(contamination)
        if not 0.0 < c < 0.5:
            raise ValueError(f"contamination (the guessed fraction of anomalies) must lie in "
                             f"the open interval (0, 0.5), e.g. 0.05 or 0.1; got {contamination}.")
        if channels not in ("auto", 1, 3):
            raise ValueError(f"channels must be 'auto', 1 or 3; got {channels!r}.")
        if fit not in ("pad", "crop"):
            raise ValueError(f"fit must be 'pad' or 'crop'; got {fit!r}.")
        self.method, self.preset, self.contamination = method, preset, c
        self.channels, self.fit_mode, self.runs_root = channels, fit, runs_root
        self.device, self.seed = device, int(seed)
        self.config_overrides = dict(config_overrides)
        self.config: TrainConfig = preset_config(preset, method=method, rho=c, seed=int(seed),
                                                 device=device, **config_overrides)

    @classmethod
    def from_config(cls, cfg: TrainConfig, *, channels: int | str = "auto", fit: str = "pad",
                    runs_root: str | os.PathLike | None | bool = False) -> "Detector":
        """A detector that trains with exactly ``cfg`` (e.g. built by the CLI from every
        option); ``contamination`` is ``cfg.rho``.

        Raises
        ------
        ValueError
            As the constructor.
        """
        det = cls(cfg.method, cfg.preset if cfg.preset in PRESETS else "quick", cfg.rho,
                  channels=channels, fit=fit, runs_root=runs_root, device=cfg.device,
                  seed=cfg.seed)
        det.config = cfg.validate()
        return det

    # -- input ------------------------------------------------------------------------------
    def _training_set(self, images: Any) -> ImageSet:
        if isinstance(images, ImageSet):  # already read (e.g. by the CLI, to report on it)
            return images
        if isinstance(images, (str, os.PathLike)):
            return load_image_folder(images, channels=self.channels, fit=self.fit_mode,
                                     rho=self.contamination, seed=self.seed)
        return image_set_from_array(images, fit=self.fit_mode, rho=self.contamination,
                                    seed=self.seed)

    def _model_input(self, images: Any) -> torch.Tensor:
        self._check_fitted()
        if isinstance(images, (str, os.PathLike)):
            return load_image_folder(images, channels=self.channels_, fit=self.fit_,
                                     rho=self.contamination, min_images=1).images
        # New images keep the training images' range (as a fitted scaler would); one that
        # plainly follows another convention (0..1 after fitting on 0..255) is worth a word.
        rng_ = (0.0, 255.0) if self.input_range_ is None else self.input_range_
        own = infer_input_range(images)
        if own != rng_ and own in _STANDARD_RANGES and rng_ in _STANDARD_RANGES:
            warnings.warn(f"these images' values fit the range {own}, but the detector was fitted "
                          f"on images in {rng_}, which is the range they are read in; convert "
                          f"them to {rng_} if they follow another convention.", UserWarning,
                          stacklevel=3)
        x = array_to_model_input(images, rng_, fit=self.fit_)
        if x.shape[1] != self.channels_:
            raise ValueError(f"the detector was fitted on {self.channels_}-channel images; "
                             f"these have {x.shape[1]} channel(s).")
        return x

    def _check_fitted(self) -> None:
        if not hasattr(self, "method_"):
            raise NotFittedError("this Detector is not fitted yet; call fit(images) first, or "
                                 "load a saved run with Detector.from_run(run_id).")

    # -- PyOD contract ----------------------------------------------------------------------
    def fit(self, images: Any, y: Any = None,
            callback: Callable[[dict[str, Any]], None] | None = None) -> "Detector":
        """Train the method on ``images``, without labels.

        Parameters
        ----------
        images : array or tensor (N, C, H, W) / (N, H, W), a folder / zip path, or an ImageSet
            At least :data:`~iaead_core.data.image_set.MIN_IMAGES` images.
        y : ignored
            Present for scikit-learn compatibility (training is unsupervised).
        callback : callable or None
            Called with each epoch record (see :meth:`Trainer.epochs`).

        Returns
        -------
        self

        Raises
        ------
        TooFewImagesError, ImageFolderError, ValueError
            Unusable input (see :func:`load_image_folder` / :func:`image_set_from_array`).
        NonFiniteLossError
            The training diverged.
        """
        data = self._training_set(images)
        result = Trainer(self.config, data=data, runs_root=self.runs_root).run(callback)
        if result.evaluation is None:
            raise RuntimeError("training ended before its first epoch; nothing to score with.")
        method = result.method
        method.model.eval()
        self._set_fitted(method, result.evaluation.scores[method.primary_score],
                         result.evaluation.z, len(result.records) - 1, data.channels, data.fit,
                         data.input_range)
        self.run_id_ = result.run_id
        self.run_dir_ = result.run_dir
        self.records_ = result.records
        self.train_paths_ = data.paths
        self.result_ = result
        if result.run_dir is not None and data.paths is not None:
            write_ranking(result.run_dir, data.paths, self.decision_scores_, self.threshold(),
                          data.labels)
        return self

    def _set_fitted(self, method: Method, scores: np.ndarray, z: np.ndarray, epoch: int,
                    channels: int, fit: str, input_range) -> None:
        self.method_ = method
        self.rule_ = method.primary_score
        self.decision_scores_ = np.asarray(scores, np.float64)
        self.latent_mean_ = np.asarray(z, np.float64).mean(0)
        self.epoch_ = int(epoch)
        self.channels_, self.fit_ = int(channels), fit
        self.input_range_ = None if input_range is None else tuple(map(float, input_range))
        self.threshold_ = self.threshold().value
        self.labels_ = flag(self.decision_scores_, self.threshold_)
        centre = None if method.c is None else method.c.detach().double().cpu().numpy()
        # Noise is judged against the code length, as the engine's metrics do.
        self.degenerate_ = is_degenerate(self.decision_scores_,
                                         score_scale(self.rule_, np.asarray(z), centre))

    def threshold(self, kind: str = "contamination", param: float | None = None) -> Threshold:
        """A threshold from the training scores: ``contamination`` (default ρ =
        ``self.contamination``) or ``quantile`` on the primary rule, or ``radius`` (see
        :func:`choose_threshold`; its rule differs, score with :meth:`score` then).

        Raises
        ------
        ThresholdError
            See :func:`choose_threshold`.
        """
        self._check_fitted()
        if kind == "contamination" and param is None:
            param = self.contamination
        if kind == "radius":
            return choose_threshold(np.zeros(1), "radius", method=self.method_,
                                    rule=RADIUS_RULES.get(self.method_.name, ""))
        return choose_threshold(self.decision_scores_, kind, param, method=self.method_,
                                rule=self.rule_)

    def score(self, images: Any, rule: str | None = None) -> np.ndarray:
        """Scores ``(N,)`` float64 of ``images`` under ``rule`` (default the primary rule)."""
        X = self._model_input(images)
        return score_images(self.method_, X, rule=rule or self.rule_,
                            reference_latent=self.latent_mean_, epoch=self.epoch_,
                            batch_size=self.method_.cfg.eval_batch_size)

    def decision_function(self, images: Any) -> np.ndarray:
        """Anomaly scores of (new) images, higher = more anomalous (module docstring).

        Parameters
        ----------
        images : array or tensor (N, C, H, W) / (N, H, W), or a folder / zip path
            Same channel count as the training images.

        Returns
        -------
        ndarray (N,) float64, on the scale of ``decision_scores_``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            Bad shape, another channel count, or an unusable folder.
        """
        return self.score(images)

    def predict(self, images: Any) -> np.ndarray:
        """0/1 labels ``(N,)`` int64: 1 when ``decision_function(images) > threshold_``."""
        return flag(self.decision_function(images), self.threshold_)

    # -- saved runs -------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run: Run | str | os.PathLike, *, runs_root: str | os.PathLike | None = None,
                 device: str = "cpu") -> "Detector":
        """A fitted detector from a saved run (no training, no training images needed).

        ``decision_scores_`` are the run's final scores, ``latent_mean_`` the mean of its
        final latent codes, ``contamination`` its ρ.

        Raises
        ------
        RunError
            No such run, no completed epoch, or missing / corrupt weights or final scores.
        """
        run = resolve_run(run, runs_root)
        if not run.records:
            raise RunError(f"run {run.run_id} has no completed epoch to score with.")
        method = load_method(run, select_device(device))
        final = run.load_final()
        cfg = TrainConfig.from_dict(run.config)
        data = run.meta.get("data", {})
        key = f"score_{method.primary_score}"
        if key not in final:
            raise RunError(f"{run.dir / 'final.npz'} holds no {method.primary_score!r} scores.")
        # Benchmark runs record no channels: their data set's count applies.
        channels = int(data.get("channels") or DATASETS[cfg.dataset].channels)
        det = cls.__new__(cls)  # no config to validate: the run's is used as saved
        det.method, det.preset, det.contamination = cfg.method, cfg.preset, float(cfg.rho)
        det.channels, det.fit_mode, det.runs_root = channels, data.get("fit", "pad"), run.dir.parent
        det.device, det.seed, det.config_overrides, det.config = device, cfg.seed, {}, cfg
        det._set_fitted(method, final[key], final["z"], len(run.records) - 1, channels,
                        data.get("fit", "pad"), data.get("input_range"))
        det.run_id_, det.run_dir_, det.records_ = run.run_id, run.dir, run.records
        det.train_paths_ = read_manifest(run.dir)[0] if data.get("manifest") else None
        det.final_ = final
        return det

    def __repr__(self) -> str:
        fitted = f", run_id={self.run_id_!r}" if hasattr(self, "run_id_") else ""
        return (f"Detector(method={self.method!r}, preset={self.preset!r}, "
                f"contamination={self.contamination:g}{fitted})")


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
    """
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
    data = load_image_folder(images, channels=det.channels_, fit=det.fit_, labels=labels,
                             rho=det.contamination, min_images=1, progress=progress)
    scores = score_images(det.method_, data.images, rule=rule, reference_latent=det.latent_mean_,
                          epoch=det.epoch_, batch_size=det.method_.cfg.eval_batch_size)
    train_paths = det.train_paths_ or [f"{det.config.dataset}[{i}]"
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
