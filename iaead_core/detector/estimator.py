"""A scikit-learn / PyOD estimator for images (issues 10 and 20): :class:`Detector`.

:class:`Detector` is a scikit-learn estimator (:class:`sklearn.base.BaseEstimator`,
:class:`sklearn.base.OutlierMixin`): every constructor argument is stored unchanged under its
own name, so ``get_params`` / ``set_params`` / :func:`sklearn.base.clone` work, and everything
is validated and built in :meth:`Detector.fit`, so a parameter changed before ``fit`` takes
effect. Its outputs follow PyOD's contract (not scikit-learn's outlier convention):
``decision_function`` is higher for more anomalous images, ``predict`` gives 0 (normal) / 1
(anomaly), and ``fit`` leaves ``decision_scores_``, ``threshold_`` and ``labels_``.

It trains any method of the engine on an image array (``(N, C, H, W)``, ``(N, H, W)`` or flat
``(N, D)``), a folder or zip of images, or an :class:`~iaead_core.data.image_set.ImageSet`, or
loads a saved run (:meth:`Detector.from_run`). Arrays are prepared as the paper's protocol
prepares its benchmark images unless another ``image_fit`` is chosen
(:mod:`iaead_core.data.image_set`): on raw 28×28 digits it trains on the very tensor
:func:`~iaead_core.data.make_contaminated` gives the :class:`~iaead_core.training.engine.Trainer`,
and scores equal the Trainer's. New images are scored inductively by the method's primary
rule, the reference of eq. (9) being the training set's mean latent code
(:mod:`iaead_core.detector.scoring`); thresholds come from the training scores
(:mod:`iaead_core.detector.thresholds`).

``sklearn.utils.estimator_checks.check_estimator`` passes except for the checks listed in
:data:`EXPECTED_FAILED_CHECKS`, each with its reason (``tests/test_estimator.py``).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

import numpy as np
import torch
from scipy.special import erf
from scipy.stats import binom
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from iaead_core.config import PRESETS, TrainConfig, preset_config
from iaead_core.data import DATASETS
from iaead_core.data.image_files import load_image_folder
from iaead_core.data.image_set import (ACCEPTED_FORMS, ALL_FITS, MIN_IMAGES, PROTOCOL, ImageSet,
                                       array_to_model_input, as_image_batch, check_image_shape,
                                       image_set_from_array, infer_input_range,
                                       resolve_image_shape)
from iaead_core.detector.scoring import resolve_run, score_images, write_ranking
from iaead_core.detector.thresholds import RADIUS_RULES, Threshold, choose_threshold, flag
from iaead_core.evaluation.metrics import is_degenerate, score_scale
from iaead_core.methods.base import Method
from iaead_core.runs import Run, RunError, read_manifest
from iaead_core.training.engine import Trainer, select_device
from iaead_core.training.restore import load_method
__all__ = ["Detector", "EXPECTED_FAILED_CHECKS", "PROBA_METHODS"]

_STANDARD_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0), (0.0, 65535.0))
#: TrainConfig fields with a constructor parameter of their own (None: the preset's value).
_TRAINING_PARAMS = ("epochs", "warmup_epochs", "lr", "batch_size", "width", "latent_dim", "lam",
                    "nu", "objective")
#: TrainConfig fields set by other constructor parameters.
_OWNED = {"method": "method", "rho": "contamination", "seed": "seed", "device": "device",
          "preset": "preset"}
#: TrainConfig fields that describe a benchmark draw, not the images given to ``fit``.
_DRAW_FIELDS = ("dataset", "normal_class", "data_root", "download", "max_samples")
#: Ways :meth:`Detector.predict_proba` turns scores into probabilities (PyOD's).
PROBA_METHODS = ("linear", "unify")
#: Where the arrays are too few to learn anything, fit refuses (BatchNorm needs two images).
_MIN_ARRAY_IMAGES = 2

#: scikit-learn checks (``check_estimator``) this estimator does not pass, and why; every
#: other check of ``check_estimator(Detector(image_shape=(1, 1, -1), ...))`` passes (its random
#: tabular rows are read as one-pixel-high images), as ``tests/test_estimator.py`` runs them.
EXPECTED_FAILED_CHECKS = {
    "check_outliers_train":
        "PyOD's conventions, not scikit-learn's: predict gives 0 (normal) / 1 (anomaly), not "
        "+1 / -1, and decision_function is higher for anomalies, not lower.",
    "check_outliers_fit_predict":
        "PyOD's conventions: fit_predict gives 0 / 1 labels (1 = anomaly), not +1 / -1.",
    "check_methods_subset_invariance":
        "float32 networks: one image alone and the same image in a batch go through different "
        "matrix-product and convolution kernels, so their codes agree to float32 rounding "
        "(about 1e-7), and a distance between nearby codes (eq. 9) or predict_proba's min-max "
        "scaling magnifies that beyond the check's absolute tolerance of 1e-7.",
}


def _config_params(cfg: TrainConfig) -> dict[str, Any]:
    """The ``config`` parameter that reproduces ``cfg`` (every field but the draw's and those
    with a parameter of their own)."""
    skip = set(_OWNED) | set(_DRAW_FIELDS)
    return {f.name: getattr(cfg, f.name) for f in fields(TrainConfig) if f.name not in skip}


class Detector(OutlierMixin, BaseEstimator):
    """An anomaly detector for images: a scikit-learn estimator with PyOD's contract.

    Parameters
    ----------
    method : str, default "iaead"
        A method of :data:`iaead_core.methods.METHODS` (``"iaead"``, ``"cae"``, ``"deep-svdd"``,
        ...).
    preset : {"quick", "paper"}, default "quick"
        Optimisation settings (:data:`iaead_core.config.PRESETS`). The preset's ``max_samples``
        does not apply: every image given to :meth:`fit` is used.
    contamination : float, default 0.1
        Guessed fraction ρ of anomalies in the training images, in (0, 0.5): ``threshold_``
        flags the top ρ of the training scores. Also the run's ρ (recorded in its config).
    image_fit : {"protocol", "pad", "crop"}, default "protocol"
        How images become the network's 32×32 input (:mod:`iaead_core.data.image_set`).
        ``"protocol"``: as the paper's protocol (:func:`~iaead_core.data.to_model_input`):
        32×32 kept, 28×28 padded by 2 black pixels, other sizes as ``"pad"``. ``"pad"``: the
        longer side scaled to 32, black borders. ``"crop"``: the shorter side scaled to 32,
        centre cut. Recorded in the run (``data.fit``) and in ``image_fit_``.
    image_shape : (C, H, W) or None, default None
        Shape of one image of a flat ``(N, D)`` array (C·H·W = D; one entry may be −1, as in
        numpy's ``reshape``). None: a square D = H·H is read as one grey H×H image; any other
        D is refused with a message. Unused for other forms.
    channels : {"auto", 1, 3}, default "auto"
        For a folder (``"auto"``: 3 when any image is in colour); arrays keep their count.
    epochs, warmup_epochs, lr, batch_size, width, latent_dim, lam, nu, objective : default None
        The :class:`~iaead_core.config.TrainConfig` fields of the same name (IAEAD's λ of
        eq. 6–8, ν of eq. 7, ...); None keeps the preset's value.
    config : dict or None, default None
        Any other TrainConfig field (``lr_step``, ``lr_gamma``, ``svdd_lr``, ``init``,
        ``eval_batch_size``, ``extra`` for a method's options, ...). Fields of the draw
        (``dataset``, ``max_samples``, ...) and those with a parameter of their own are refused.
    seed : int, default 0
        Seeds torch, numpy and random for the training (0 ≤ seed < 2**32).
    device : {"auto", "cpu", "cuda", "mps"}, default "auto"
    runs_root : path, None or False, default False
        Where the run folder goes (None: ``$IAEAD_RUNS_DIR`` or ``./runs``); False writes
        nothing.

    Attributes
    ----------
    decision_scores_ : ndarray (N,) float64
        Primary scores of the training images (higher = more anomalous).
    threshold_ : float
        The (1 − contamination)-quantile of ``decision_scores_`` (numpy's linear rule).
    labels_ : ndarray (N,) int64
        ``decision_scores_ > threshold_`` as 0/1.
    rule_ : str
        Score rule used (the method's ``primary_score``).
    method_ : Method
        The trained method (model in eval mode).
    config_ : TrainConfig
        The run's configuration, as saved with it.
    latent_mean_ : ndarray (d,) float64
        Mean latent code of the training images (reference of ``latent_mean``, eq. 9).
    channels_ : int; image_fit_ : str; input_range_ : (low, high) or None
        How new images are brought to the network's input (``input_range_`` None for a
        folder or a benchmark run: 0..255).
    input_shape_ : (C, H, W) or None
        One training image's shape as given (None for a folder).
    n_features_in_ : int
        Values per training image, C·H·W (arrays only; a flat array must match it).
    feature_names_in_ : ndarray of str
        Column names, when ``fit`` got a DataFrame.
    run_id_, run_dir_, records_
        The run (``run_dir_`` None when nothing was written) and its per-epoch records.
    train_paths_ : list of str or None
        Training images' paths for a folder (order of ``decision_scores_``).
    degenerate_ : bool
        True when the training scores differ only by float noise
        (:func:`iaead_core.evaluation.metrics.is_degenerate`, e.g. a collapsed latent space):
        the ranking and the flags then carry no information.
    result_ : TrainResult
        The engine's result (after :meth:`fit`; :meth:`from_run` sets ``final_`` instead).

    Notes
    -----
    Arrays may hold any range: :meth:`fit` picks it by
    :func:`~iaead_core.data.image_set.infer_input_range` (uint8 → 0..255, floats in [0, 1] →
    0..1, ...) and maps it to [−1, 1]; new images are read in the training range (a
    ``UserWarning`` says so when their values plainly follow another convention). Fewer than
    :data:`~iaead_core.data.image_set.MIN_IMAGES` training images draw a ``UserWarning``;
    fewer than 2 are refused. A folder path (or zip) is read by
    :func:`~iaead_core.data.image_files.load_image_folder` (fewer than
    :data:`~iaead_core.data.image_set.MIN_IMAGES` readable images are refused);
    :meth:`decision_function` on a folder returns the scores in the order of its sorted
    readable files (use :func:`score_folder` for a CSV with the paths).

    Examples
    --------
    >>> det = Detector("iaead", contamination=0.1).fit(X_train)  # doctest: +SKIP
    >>> det.decision_scores_, det.labels_  # doctest: +SKIP
    >>> det.decision_function(X_test), det.predict(X_test)  # doctest: +SKIP
    """

    def __init__(self, method: str = "iaead", preset: str = "quick",
                 contamination: float = 0.1, *, image_fit: str = PROTOCOL,
                 image_shape: tuple[int, int, int] | None = None,
                 channels: int | str = "auto", epochs: int | None = None,
                 warmup_epochs: int | None = None, lr: float | None = None,
                 batch_size: int | None = None, width: int | None = None,
                 latent_dim: int | None = None, lam: float | None = None,
                 nu: float | None = None, objective: str | None = None,
                 config: dict[str, Any] | None = None, seed: int = 0, device: str = "auto",
                 runs_root: str | os.PathLike | None | bool = False) -> None:
        self.method = method
        self.preset = preset
        self.contamination = contamination
        self.image_fit = image_fit
        self.image_shape = image_shape
        self.channels = channels
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.width = width
        self.latent_dim = latent_dim
        self.lam = lam
        self.nu = nu
        self.objective = objective
        self.config = config
        self.seed = seed
        self.device = device
        self.runs_root = runs_root

    def __sklearn_tags__(self):
        """scikit-learn tags: an outlier detector (OutlierMixin) that needs no ``y``, accepts
        2-D and image-shaped (3-D, 4-D) arrays, and refuses NaN."""
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        return tags

    # -- the configuration, built at fit ----------------------------------------------------
    def build_config(self) -> TrainConfig:
        """The validated :class:`TrainConfig` that :meth:`fit` trains with, from the current
        parameters (nothing is stored).

        Raises
        ------
        ValueError
            A contamination outside (0, 0.5), an unknown ``image_fit`` or ``channels``, a
            malformed ``image_shape`` or ``config``, a field given twice or one the Detector
            does not use, an unknown method or preset, or any value
            :meth:`TrainConfig.validate` rejects (the message names the field and its range).
        """
        c = self.contamination
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 0.0 < float(c) < 0.5:
            raise ValueError(f"contamination (the guessed fraction of anomalies) must lie in "
                             f"the open interval (0, 0.5), e.g. 0.05 or 0.1; got {c!r}.")
        if self.image_fit not in ALL_FITS:
            raise ValueError(f"image_fit must be one of {', '.join(map(repr, ALL_FITS))}; got "
                             f"{self.image_fit!r}.")
        if isinstance(self.channels, bool) or self.channels not in ("auto", 1, 3):
            raise ValueError(f"channels must be 'auto', 1 or 3; got {self.channels!r}.")
        if self.image_shape is not None:
            check_image_shape(self.image_shape)
        if self.config is not None and not isinstance(self.config, Mapping):
            raise ValueError(f"config must be a dict of TrainConfig fields (e.g. "
                             f"{{'lr_step': 10}}) or None; got {self.config!r}.")
        extra = dict(self.config or {})
        for key in extra:
            if key in _OWNED:
                raise ValueError(f"config[{key!r}]: set it with the Detector's own parameter "
                                 f"{_OWNED[key]!r}.")
            if key in _DRAW_FIELDS:
                raise ValueError(f"config[{key!r}] describes a benchmark draw; the Detector "
                                 f"trains on the images given to fit.")
            if key in _TRAINING_PARAMS and getattr(self, key) is not None:
                raise ValueError(f"{key} is given twice: as a parameter ({getattr(self, key)!r}) "
                                 f"and in config ({extra[key]!r}).")
        overrides = {name: getattr(self, name) for name in _TRAINING_PARAMS}
        overrides.update(extra)
        return preset_config(self.preset, method=self.method, rho=float(c), seed=self.seed,
                             device=self.device, **overrides)

    @classmethod
    def from_config(cls, cfg: TrainConfig, *, channels: int | str = "auto",
                    image_fit: str = PROTOCOL,
                    runs_root: str | os.PathLike | None | bool = False) -> "Detector":
        """An unfitted detector whose :meth:`build_config` reproduces ``cfg`` (e.g. built by
        the CLI from every option): its method, ρ (``contamination``), seed, device and every
        optimisation field (in ``config``). The draw's fields (data set, class, ``max_samples``)
        are not used. Nothing is checked here: :meth:`fit` validates.
        """
        return cls(cfg.method, cfg.preset if cfg.preset in PRESETS else "quick", float(cfg.rho),
                   image_fit=image_fit, channels=channels, config=_config_params(cfg),
                   seed=cfg.seed, device=cfg.device, runs_root=runs_root)

    # -- input ------------------------------------------------------------------------------
    @staticmethod
    def _as_array(X: Any) -> Any:
        """A tensor as numpy; an object without ``ndim`` / ``shape`` (a list, an array-like)
        through ``np.asarray``; arrays, DataFrames and sparse matrices as they are (the
        validation reads their column names and refuses sparse input)."""
        if isinstance(X, torch.Tensor):
            return X.detach().cpu().numpy()
        return X if hasattr(X, "ndim") and hasattr(X, "shape") else np.asarray(X)

    def _validated(self, X: Any, reset: bool) -> np.ndarray:
        """``X`` checked by scikit-learn's validation (finite, numeric, not sparse, not empty)
        and brought to ``(N, C, H, W)``; ``reset`` records ``n_features_in_`` (and the
        column names of a DataFrame)."""
        X = self._as_array(X)
        nd = np.ndim(X)
        if not reset and nd == 2 and self._single_image(X):
            X, nd = np.asarray(X)[None], 3
        if nd == 2:
            a = validate_data(self, X, reset=reset, dtype="numeric")
            shape = getattr(self, "input_shape_", None)
            if reset or shape is None or math.prod(shape) != a.shape[1]:
                shape = resolve_image_shape(a.shape[1], self.image_shape)
            return as_image_batch(a, shape)
        if nd in (3, 4):
            a = check_array(X, allow_nd=True, dtype="numeric")
            if reset:
                self.n_features_in_ = int(math.prod(a.shape[1:]))
            return as_image_batch(a)
        raise ValueError(f"images must be {ACCEPTED_FORMS}, or a folder / zip path; got an "
                         f"array of shape {np.shape(X)}. Reshape your data: x.reshape(1, -1) "
                         f"for one flat image, x[None] for one H×W image.")

    def _single_image(self, X: Any) -> bool:
        """Whether a 2-D array is one (H, W) image of the fitted size (not N flat rows)."""
        shape = getattr(self, "input_shape_", None)
        return (shape is not None and shape[0] == 1 and tuple(np.shape(X)) == tuple(shape[1:])
                and np.shape(X)[1] != getattr(self, "n_features_in_", None))

    def _training_set(self, X: Any) -> ImageSet:
        if isinstance(X, ImageSet):  # already read (e.g. by the CLI, to report on it)
            return X
        if isinstance(X, (str, os.PathLike)):
            return load_image_folder(X, channels=self.channels, fit=self.image_fit,
                                     rho=float(self.contamination), seed=self.seed)
        a = self._validated(X, reset=True)
        if len(a) < MIN_IMAGES:
            warnings.warn(f"{len(a)} training images: fewer than {MIN_IMAGES}, too few to learn "
                          f"what is normal; the scores mean little.", UserWarning, stacklevel=3)
        return image_set_from_array(a, fit=self.image_fit, rho=float(self.contamination),
                                    seed=self.seed, min_images=_MIN_ARRAY_IMAGES)

    def _model_input(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "method_")
        if isinstance(X, (str, os.PathLike)):
            return load_image_folder(X, channels=self.channels_, fit=self.image_fit_,
                                     rho=float(self.contamination), min_images=1).images
        a = self._validated(X, reset=False)
        # New images keep the training images' range (as a fitted scaler would); one that
        # plainly follows another convention (0..1 after fitting on 0..255) is worth a word.
        rng_ = (0.0, 255.0) if self.input_range_ is None else self.input_range_
        own = infer_input_range(a)
        if own != rng_ and own in _STANDARD_RANGES and rng_ in _STANDARD_RANGES:
            warnings.warn(f"these images' values fit the range {own}, but the detector was fitted "
                          f"on images in {rng_}, which is the range they are read in; convert "
                          f"them to {rng_} if they follow another convention.", UserWarning,
                          stacklevel=4)
        x = array_to_model_input(a, rng_, fit=self.image_fit_)
        if x.shape[1] != self.channels_:
            raise ValueError(f"the detector was fitted on {self.channels_}-channel images; "
                             f"these have {x.shape[1]} channel(s).")
        return x

    def _reset(self) -> None:
        """Forget a previous fit (every attribute ending in ``_``)."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)

    # -- PyOD contract ----------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None,
            callback: Callable[[dict[str, Any]], None] | None = None) -> "Detector":
        """Train the method on ``X``, without labels.

        Parameters
        ----------
        X : array-like or tensor, a folder / zip path, or an ImageSet
            ``(N, C, H, W)`` with C ∈ {1, 3}, ``(N, H, W)``, or flat ``(N, D)`` (see
            ``image_shape``); any real dtype and range; at least 2 images (fewer than
            :data:`~iaead_core.data.image_set.MIN_IMAGES` draw a warning). A folder needs
            :data:`~iaead_core.data.image_set.MIN_IMAGES` readable images.
        y : ignored
            Present for scikit-learn compatibility (training is unsupervised).
        callback : callable or None
            Called with each epoch record (see :meth:`Trainer.epochs`).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            An invalid parameter (see :meth:`build_config`), or unusable input: another
            shape (the message names the accepted forms), NaN / infinite values, complex or
            non-numeric data, an empty array (scikit-learn's messages).
        TypeError
            A sparse matrix (images are dense).
        TooFewImagesError, ImageFolderError
            Too few images, or an unusable folder (both ``ValueError``).
        NonFiniteLossError
            The training diverged.
        """
        self._reset()
        cfg = self.build_config()
        data = self._training_set(X)
        result = Trainer(cfg, data=data, runs_root=self.runs_root).run(callback)
        if result.evaluation is None:
            raise RuntimeError("training ended before its first epoch; nothing to score with.")
        method = result.method
        method.model.eval()
        self._set_fitted(method, result.config, result.evaluation.scores[method.primary_score],
                         result.evaluation.z, len(result.records) - 1, data.channels, data.fit,
                         data.input_range, data.input_shape)
        self.run_id_ = result.run_id
        self.run_dir_ = result.run_dir
        self.records_ = result.records
        self.train_paths_ = data.paths
        self.result_ = result
        if result.run_dir is not None and data.paths is not None:
            write_ranking(result.run_dir, data.paths, self.decision_scores_, self.threshold(),
                          data.labels)
        return self

    def _set_fitted(self, method: Method, cfg: TrainConfig, scores: np.ndarray, z: np.ndarray,
                    epoch: int, channels: int, image_fit: str, input_range,
                    input_shape) -> None:
        self.method_ = method
        self.config_ = cfg
        self.rule_ = method.primary_score
        self.decision_scores_ = np.asarray(scores, np.float64)
        self.latent_mean_ = np.asarray(z, np.float64).mean(0)
        self.epoch_ = int(epoch)
        self.channels_, self.image_fit_ = int(channels), image_fit
        self.input_range_ = None if input_range is None else tuple(map(float, input_range))
        self.input_shape_ = None if input_shape is None else tuple(map(int, input_shape))
        if self.input_shape_ is not None and not hasattr(self, "n_features_in_"):
            self.n_features_in_ = int(math.prod(self.input_shape_))
        self.threshold_ = self.threshold().value
        self.labels_ = flag(self.decision_scores_, self.threshold_)
        centre = None if method.c is None else method.c.detach().double().cpu().numpy()
        # Noise is judged against the code length, as the engine's metrics do.
        self.degenerate_ = is_degenerate(self.decision_scores_,
                                         score_scale(self.rule_, np.asarray(z), centre))

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` and return ``labels_`` ``(N,)`` int64 (0 normal, 1 anomaly): the
        training images' flags, as PyOD's ``fit_predict`` (no second scoring pass).

        Raises as :meth:`fit`.
        """
        return self.fit(X, y, **kwargs).labels_

    def threshold(self, kind: str = "contamination", param: float | None = None) -> Threshold:
        """A threshold from the training scores: ``contamination`` (default ρ =
        ``self.contamination``) or ``quantile`` on the primary rule, or ``radius`` (see
        :func:`choose_threshold`; its rule differs, score with :meth:`rule_scores` then).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ThresholdError
            See :func:`choose_threshold`.
        """
        check_is_fitted(self, "method_")
        if kind == "contamination" and param is None:
            param = float(self.contamination)
        if kind == "radius":
            return choose_threshold(np.zeros(1), "radius", method=self.method_,
                                    rule=RADIUS_RULES.get(self.method_.name, ""))
        return choose_threshold(self.decision_scores_, kind, param, method=self.method_,
                                rule=self.rule_)

    def rule_scores(self, X: Any, rule: str | None = None) -> np.ndarray:
        """Scores ``(N,)`` float64 of ``X`` under a score ``rule`` of the method (default the
        primary rule, as :meth:`decision_function`), e.g. ``"latent_c"`` or
        ``"reconstruction"`` for IAEAD; higher = more anomalous.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            Unusable input (as :meth:`decision_function`) or a rule the method does not
            report.
        """
        X = self._model_input(X)
        return score_images(self.method_, X, rule=rule or self.rule_,
                            reference_latent=self.latent_mean_, epoch=self.epoch_,
                            batch_size=self.method_.cfg.eval_batch_size)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of (new) images, higher = more anomalous (module docstring).

        Parameters
        ----------
        X : array-like or tensor in a form ``fit`` accepts, one ``(H, W)`` image of the
            fitted size, or a folder / zip path
            Same channel count as the training images; a flat array has ``n_features_in_``
            values per image.

        Returns
        -------
        ndarray (N,) float64, on the scale of ``decision_scores_``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            Bad shape, another number of values per flat image or of channels, NaN, or an
            unusable folder.
        """
        return self.rule_scores(X)

    def predict(self, X: Any) -> np.ndarray:
        """0/1 labels ``(N,)`` int64: 1 when ``decision_function(X) > threshold_``.

        Raises as :meth:`decision_function`.
        """
        return flag(self.decision_function(X), self.threshold_)

    def _probability(self, scores: np.ndarray, method: str) -> np.ndarray:
        train = self.decision_scores_
        if method == "linear":
            lo, span = float(train.min()), float(train.max() - train.min())
            p = (scores - lo) / (span if span > 0 else 1.0)  # MinMaxScaler's zero-range rule
        elif method == "unify":
            mu, sigma = float(train.mean()), float(train.std())
            p = (erf((scores - mu) / (sigma * math.sqrt(2.0))) if sigma > 0
                 else (scores > mu).astype(np.float64))
        else:
            raise ValueError(f"method must be one of {', '.join(map(repr, PROBA_METHODS))}; "
                             f"got {method!r}.")
        return np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0)

    def _confidence(self, scores: np.ndarray) -> np.ndarray:
        train = np.sort(self.decision_scores_)
        n = len(train)
        below = np.searchsorted(train, scores, side="right")  # training scores ≤ each score
        posterior = (1.0 + below) / (2.0 + n)
        conf = 1.0 - binom.cdf(n - int(n * float(self.contamination)), n, posterior)
        return np.where(flag(scores, self.threshold_) == 1, conf, 1.0 - conf)

    def predict_proba(self, X: Any, method: str = "linear",
                      return_confidence: bool = False):
        """Probability of each image being normal / an anomaly, as PyOD's ``predict_proba``.

        Parameters
        ----------
        X : as :meth:`decision_function`
        method : {"linear", "unify"}, default "linear"
            ``"linear"``: min-max scaling of the score by the training scores' minimum and
            maximum, clipped to [0, 1] (PyOD's default). ``"unify"``: ``erf((s − μ) / (σ√2))``
            clipped to [0, 1], μ and σ the training scores' mean and standard deviation
            (Kriegel et al., "Interpreting and unifying outlier scores", SDM 2011).
        return_confidence : bool, default False
            Also return :meth:`predict_confidence`'s values.

        Returns
        -------
        ndarray (N, 2) float64
            Column 0: normal, column 1: anomaly; rows sum to 1. With ``return_confidence``, a
            tuple ``(proba, confidence (N,))``.

        Raises
        ------
        ValueError
            Another ``method``, or as :meth:`decision_function`.
        """
        if method not in PROBA_METHODS:
            raise ValueError(f"method must be one of {', '.join(map(repr, PROBA_METHODS))}; "
                             f"got {method!r}.")
        scores = self.decision_function(X)
        p = self._probability(scores, method)
        proba = np.column_stack([1.0 - p, p])
        return (proba, self._confidence(scores)) if return_confidence else proba

    def predict_confidence(self, X: Any) -> np.ndarray:
        """How surely each image would get the same label under a slightly different training
        set, in [0, 1] ``(N,)`` float64 (ExCeeD: Perini, Vercruyssen and Davis, ECML PKDD 2020;
        PyOD's ``predict_confidence``): with ``k`` of the ``n`` training scores at or below
        the image's score, the anomaly probability ``p = (1 + k) / (2 + n)`` and the
        confidence ``1 − BinomCDF(n − ⌊n·ρ⌋; n, p)`` for a flagged image, its complement for
        the others.

        Raises as :meth:`decision_function`.
        """
        return self._confidence(self.decision_function(X))

    # -- saved runs -------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run: Run | str | os.PathLike, *, runs_root: str | os.PathLike | None = None,
                 device: str = "cpu") -> "Detector":
        """A fitted detector from a saved run (no training, no training images needed).

        ``decision_scores_`` are the run's final scores, ``latent_mean_`` the mean of its
        final latent codes, ``contamination`` its ρ. Its parameters reproduce the run's
        configuration (a ``clone`` of it trains the same way); a benchmark run reads new images
        as the protocol prepared its own (``image_fit_ = "protocol"``).

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
        # Benchmark runs record no channels and no fit: their data set's count and the
        # protocol's preparation apply.
        channels = int(data.get("channels") or DATASETS[cfg.dataset].channels)
        image_fit = data.get("fit") or (PROTOCOL if cfg.dataset in DATASETS else "pad")
        det = cls.from_config(cfg, channels=channels, image_fit=image_fit,
                              runs_root=run.dir.parent)
        det.device = device
        done = len(run.records)
        checkpoint = run.status.get("checkpoint")  # a killed run: the weights' own epoch
        if isinstance(checkpoint, int) and not isinstance(checkpoint, bool) and 1 <= checkpoint < done:
            done = checkpoint
        det._set_fitted(method, cfg, final[key], final["z"], done - 1, channels,
                        image_fit, data.get("input_range"), data.get("input_shape"))
        det.run_id_, det.run_dir_, det.records_ = run.run_id, run.dir, run.records
        det.train_paths_ = read_manifest(run.dir)[0] if data.get("manifest") else None
        det.final_ = final
        return det
