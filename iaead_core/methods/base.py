"""The contract between the training engine and a method.

A method owns its torch model and its method state (centre ``c``, radius ``R``, RDAE's ``S``,
DAGMM's mixture); it gives the engine a loss per mini-batch and anomaly scores for the whole
set. The engine owns the loop, the device, the data tensor and the records, and knows nothing
of any specific method. Adding a method means one new module in this package and one registry
line.

Hooks with defaults (a method overrides only what it needs; the defaults leave IAEAD, CAE and
Deep SVDD exactly as before):

* :meth:`Method.training_set` — the tensor an epoch iterates over (RDAE trains on ``X − S``);
* :meth:`Method.after_step` — after each optimiser step; may take further steps with the
  method's own optimisers (RSRAE's L_proj and L_pca steps);
* :meth:`Method.end_epoch` — whole-set updates between epochs (Deep SVDD's centre, RDAE's
  proximal step on ``S``);
* :meth:`Method.epoch_diagnostics` — method-specific floats for the epoch record;
* :attr:`Method.options` — method settings read from ``TrainConfig.extra`` with defaults,
  checked by :meth:`Method.check_options`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

from iaead_core.config import TrainConfig
__all__ = ["Method", "Evaluation", "StepLosses", "Option", "e3outlier_adam", "constant_schedule",
           "sum_squared_error"]


@dataclass
class StepLosses:
    """Losses of one mini-batch: ``total`` (scalar tensor to back-propagate), and the parts
    ``reconstruction`` / ``svdd`` as tensors or ``None`` when not part of this phase."""

    total: torch.Tensor
    reconstruction: torch.Tensor | None = None
    svdd: torch.Tensor | None = None


@dataclass
class Evaluation:
    """One eval-mode pass over the scored set.

    Attributes
    ----------
    z : ndarray ``(N, d)`` float32 — latent codes.
    scores : dict rule → ndarray ``(N,)`` float64, higher = more anomalous.
    centre : ndarray ``(d,)`` or None — the hypersphere centre ``c`` if fixed.
    """

    z: np.ndarray
    scores: dict[str, np.ndarray]
    centre: np.ndarray | None


@dataclass(frozen=True)
class Option:
    """A method setting kept in ``TrainConfig.extra`` under its name.

    Attributes
    ----------
    default : the value when ``extra`` does not set it (the E3Outlier / official-code value).
    description : one sentence for help texts.
    choices : allowed values, or ``None`` for a number.
    low : inclusive lower bound of a number, or ``None``.
    """

    default: Any
    description: str
    choices: tuple | None = None
    low: float | None = None

    def check(self, name: str, value: Any) -> None:
        """Raise ``ValueError`` naming the allowed values if ``value`` does not fit."""
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"option {name}={value!r}; choose one of "
                                 f"{', '.join(map(repr, self.choices))}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"option {name} must be a number, got {value!r}")
        if isinstance(self.default, int) and not isinstance(value, int):
            raise ValueError(f"option {name} must be an integer, got {value!r}")
        if self.low is not None and value < self.low:
            raise ValueError(f"option {name} must be >= {self.low:g}, got {value!r}")


class Method(ABC):
    """Base class of a training strategy (see module docstring).

    Subclasses set ``name``, ``title`` (display name), ``description`` (one sentence for help
    texts and the lab), ``primary_score`` (the rule the method is judged by), ``score_rules``
    (every rule it can report; some only in some phases), ``code_activation`` and, if they
    have settings beyond :class:`~iaead_core.config.TrainConfig`'s fields, ``options``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    primary_score: ClassVar[str]
    score_rules: ClassVar[tuple[str, ...]]
    options: ClassVar[dict[str, Option]] = {}
    #: What bounds the latent code ``z`` of :meth:`evaluate`: ``"tanh"`` (in (−1, 1), so codes
    #: pinned near ±1 mean saturation), ``"unit"`` (unit-normalised), ``"relu"`` (≥ 0) or
    #: ``"linear"`` (unbounded). Health checks that assume Tanh codes apply only to ``"tanh"``.
    code_activation: ClassVar[str] = "linear"

    @classmethod
    def check_options(cls, extra: dict[str, Any]) -> None:
        """Check the values of this method's options in ``extra`` (other keys are ignored:
        ``extra`` may carry settings of other methods compared on the same draw).

        Raises
        ------
        ValueError
            Naming the option and its allowed values.
        """
        for key, opt in cls.options.items():
            if key in extra:
                opt.check(key, extra[key])

    def option(self, key: str) -> Any:
        """The value of option ``key``: ``cfg.extra[key]`` or its default."""
        return self.cfg.extra.get(key, self.options[key].default)

    def __init__(self, cfg: TrainConfig, in_channels: int, device: torch.device) -> None:
        self.check_options(cfg.extra)
        self.cfg = cfg
        self.device = device
        self.model: nn.Module = self.build_model(in_channels).to(device)
        self.c: torch.Tensor | None = None
        self.R: float = 0.0
        # R as the line search leaves it during an epoch: a 0-d tensor on the device, read
        # into ``R`` once, by :meth:`finish_epoch` (a read per batch would stall a GPU).
        self._R_live: torch.Tensor | None = None

    @abstractmethod
    def build_model(self, in_channels: int) -> nn.Module:
        """The torch model, with an ``encode``/``decode``/``forward -> (z, x_hat)`` interface."""

    @abstractmethod
    def phase(self, epoch: int) -> str:
        """Name of the training phase at 0-based ``epoch`` (e.g. "warm-up", "svdd")."""

    @abstractmethod
    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        """Loss of a mini-batch ``x`` ``(B, C, 32, 32)`` at 0-based ``epoch`` (train mode)."""

    def after_step(self) -> None:
        """Called after each optimiser step (e.g. R's line search). A method with several
        optimisers per batch (RSRAE) takes its further steps here, on the batch it kept in
        :meth:`loss`."""

    def current_R(self) -> float | torch.Tensor:
        """The radius for the next step: the device-side value of this epoch's line search,
        else :attr:`R` (a float)."""
        return self.R if self._R_live is None else self._R_live

    def finish_epoch(self) -> None:
        """Called by the engine after an epoch's last step: device-side state becomes host
        state (:attr:`R` as a float), in one read."""
        if self._R_live is not None:
            self.R = float(self._R_live)
            self._R_live = None

    def start(self, X: torch.Tensor) -> None:
        """Called once before the first epoch with the whole training tensor."""

    def training_set(self, X: torch.Tensor, epoch: int) -> torch.Tensor:
        """The tensor ``(N, C, 32, 32)`` that epoch ``epoch`` draws its mini-batches from, row
        for row aligned with ``X``. Default: ``X`` itself (RDAE trains on ``X − S``)."""
        return X

    def epoch_diagnostics(self) -> dict[str, float]:
        """Method-specific floats for the record of the epoch just evaluated (the engine
        stores them as ``record["method_diagnostics"]``); the method resets its per-epoch
        accumulators here. Default: none."""
        return {}

    def end_epoch(self, epoch: int, X: torch.Tensor) -> bool:
        """Called after each epoch's optimiser steps; returns True when the optimiser must be
        rebuilt because a new phase starts (e.g. Deep SVDD after pre-training)."""
        return False

    @abstractmethod
    def make_optimizer(self, epoch: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Optimiser and per-epoch scheduler for the phase starting at ``epoch``."""

    def score(self, z: np.ndarray, rec_err: np.ndarray | None, epoch: int) -> dict[str, np.ndarray]:
        """Scores from latents ``z`` ``(N, d)`` and reconstruction errors ``(N,)`` float64.

        The default, shared by the autoencoder baselines: ``latent_mean`` (eq. 9, distance of
        each code to the mean code) and, when decoded, ``reconstruction``. Methods with a
        centre or their own score override it.
        """
        scores = {"latent_mean": distance_to(z, z.astype(np.float64).mean(0))}
        if rec_err is not None:
            scores["reconstruction"] = rec_err
        return scores

    def wants_reconstruction(self, epoch: int) -> bool:
        """Whether the evaluation pass should decode (reconstruction error is a score)."""
        return True

    @torch.inference_mode()
    def evaluate(self, X: torch.Tensor, epoch: int, batch_size: int = 1024) -> Evaluation:
        """Eval-mode pass over ``X`` ``(N, C, 32, 32)`` in batches of ``batch_size``.

        Reconstruction error is the per-image mean of squared pixel errors (eq. 3 with the
        ℓ2 norm, squared and divided by the pixel count: same ranking).
        """
        self.model.eval()
        decode = self.wants_reconstruction(epoch)
        zs, errs = [], []
        for i in range(0, len(X), batch_size):
            x = X[i:i + batch_size]
            z = self.model.encode(x)
            zs.append(z.float())
            if decode:
                errs.append(((self.model.decode(z) - x) ** 2).flatten(1).mean(1).double())
        # One transfer each, after the last batch: a read per batch would make a GPU wait.
        z = torch.cat(zs).cpu().numpy()
        rec = torch.cat(errs).cpu().numpy() if decode else None
        centre = None if self.c is None else self.c.detach().float().cpu().numpy()
        return Evaluation(z=z, scores=self.score(z, rec, epoch), centre=centre)

    @torch.inference_mode()
    def mean_latent(self, X: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Eval-mode mean latent code of ``X``: ``(d,)`` on the method's device."""
        self.model.eval()
        total = None
        for i in range(0, len(X), batch_size):
            s = self.model.encode(X[i:i + batch_size]).double().sum(0)
            total = s if total is None else total + s
        return (total / len(X)).float()

    def state(self) -> dict:
        """Everything needed to restore the method: model weights, ``c``, ``R``, name."""
        return {"method": self.name, "model": self.model.state_dict(),
                "c": None if self.c is None else self.c.detach().cpu(), "R": float(self.R)}

    def load_state(self, state: dict) -> None:
        """Inverse of :meth:`state`.

        Raises
        ------
        ValueError
            If ``state`` belongs to another method.
        """
        if state.get("method") != self.name:
            raise ValueError(f"weights are for method {state.get('method')!r}, not {self.name!r}")
        self.model.load_state_dict(state["model"])
        self.c = None if state.get("c") is None else state["c"].to(self.device)
        self.R = float(state.get("R", 0.0))
        self._R_live = None


    @torch.inference_mode()
    def eval_pass(self, X: torch.Tensor, batch_size: int,
                  fn: Callable[..., dict[str, torch.Tensor]],
                  *aligned: torch.Tensor) -> dict[str, np.ndarray]:
        """Eval-mode pass over ``X`` in batches.

        ``fn(x, *a)`` gets a slice of ``X`` and the same rows of every tensor in ``aligned``
        and returns per-image tensors (first axis the batch); they are concatenated on the CPU
        (``z`` as float32, everything else as float64) and returned as numpy arrays.
        """
        self.model.eval()
        parts: dict[str, list[torch.Tensor]] = {}
        for i in range(0, len(X), batch_size):
            rows = slice(i, i + batch_size)
            for k, v in fn(X[rows], *(a[rows] for a in aligned)).items():
                parts.setdefault(k, []).append(v.float().cpu() if k == "z" else v.double().cpu())
        return {k: torch.cat(v).numpy() for k, v in parts.items()}


class EpochMean:
    """Running mean of per-step scalar tensors (a method's diagnostics), summed in float64 on
    their device and read once per epoch by :meth:`pop`, so a training step never waits for
    the host."""

    def __init__(self) -> None:
        self._sum: torch.Tensor | None = None
        self.n = 0

    def add(self, value: torch.Tensor) -> None:
        """Add one step's value: a 0-d tensor (any float dtype, any device)."""
        v = value.detach().double()
        self._sum = v if self._sum is None else self._sum + v
        self.n += 1

    def pop(self) -> float | None:
        """The mean since the last pop as a python float (None if nothing was added); resets."""
        n, total = self.n, self.pop_sum()
        return None if n == 0 else total / n

    def pop_sum(self) -> float:
        """The sum since the last pop as a python float (0.0 if nothing was added); resets."""
        total = 0.0 if self._sum is None else float(self._sum)
        self._sum, self.n = None, 0
        return total


def e3outlier_adam(params, lr: float = 1e-3, weight_decay: float = 5e-4) -> torch.optim.Adam:
    """E3Outlier's optimiser for its CAE-based baselines (docs/baselines.md §1): Adam with
    ``betas=(0.9, 0.999)``, ``eps=1e-7`` and *coupled* weight decay 5e-4 (added to the
    gradient, not AdamW)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7, weight_decay=weight_decay)


def constant_schedule(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler that never changes the learning rate (the baselines use none)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)


def sum_squared_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-image ``||x − x̂||²`` summed over all pixels: ``(B, C, H, W)`` twice → ``(B,)``
    (E3Outlier's reconstruction error)."""
    return ((x - x_hat) ** 2).flatten(1).sum(1)


def distance_to(z: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Euclidean distances ``||z_i − centre||``: ``(N, d)``, ``(d,)`` → ``(N,)`` float64."""
    return np.linalg.norm(z.astype(np.float64) - centre, axis=1)
