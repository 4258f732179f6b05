"""A PyOD / scikit-learn style detector (issue 10): :class:`Detector`.

:class:`Detector` wraps the engine in PyOD's contract: ``fit``, ``decision_function``,
``predict`` and the fitted ``decision_scores_``, ``threshold_``, ``labels_``. It trains any
method on an array, a folder or zip of images, or an :class:`~iaead_core.data.image_set.ImageSet`,
or loads a saved run (:meth:`Detector.from_run`). New images are scored inductively by the
method's primary rule, the reference of eq. (9) being the training set's mean latent code
(:mod:`iaead_core.detector.scoring`); thresholds come from the training scores
(:mod:`iaead_core.detector.thresholds`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from iaead_core.config import PRESETS, TrainConfig, preset_config
from iaead_core.data import DATASETS
from iaead_core.data.image_files import load_image_folder
from iaead_core.data.image_set import (ImageSet, array_to_model_input, image_set_from_array,
                                       infer_input_range)
from iaead_core.detector.scoring import resolve_run, score_images, write_ranking
from iaead_core.detector.thresholds import RADIUS_RULES, Threshold, choose_threshold, flag
from iaead_core.evaluation.metrics import is_degenerate, score_scale
from iaead_core.methods.base import Method
from iaead_core.runs import Run, RunError, read_manifest
from iaead_core.training.engine import Trainer, select_device
from iaead_core.training.restore import load_method
__all__ = ["Detector"]

_STANDARD_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0), (0.0, 65535.0))


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
        c = float(contamination) if isinstance(contamination, (int, float, np.number)) else np.nan
        if not 0.0 < c < 0.5:
            raise ValueError(f"contamination (the guessed fraction of anomalies) must lie in "
                             f"the open interval (0, 0.5), e.g. 0.05 or 0.1; got {contamination!r}.")
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
        done = len(run.records)
        checkpoint = run.status.get("checkpoint")  # a killed run: the weights' own epoch
        if isinstance(checkpoint, int) and 1 <= checkpoint < done:
            done = checkpoint
        det._set_fitted(method, final[key], final["z"], done - 1, channels,
                        data.get("fit", "pad"), data.get("input_range"))
        det.run_id_, det.run_dir_, det.records_ = run.run_id, run.dir, run.records
        det.train_paths_ = read_manifest(run.dir)[0] if data.get("manifest") else None
        det.final_ = final
        return det

    def __repr__(self) -> str:
        fitted = f", run_id={self.run_id_!r}" if hasattr(self, "run_id_") else ""
        return (f"Detector(method={self.method!r}, preset={self.preset!r}, "
                f"contamination={self.contamination:g}{fitted})")
