"""The contract between the training engine and a method.

A method owns its torch model and its method state (centre ``c``, radius ``R``); it gives the
engine a loss per mini-batch and anomaly scores for the whole set. The engine owns the loop,
the device, the data tensor and the records, and knows nothing of any specific method.
Adding a method (DRAE, MemAE, ...) means one new module in this package and one registry line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig

__all__ = ["Method", "Evaluation", "StepLosses"]


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


class Method(ABC):
    """Base class of a training strategy (see module docstring).

    Subclasses set ``name``, ``primary_score`` (the rule the method is judged by) and
    ``score_rules`` (every rule it can report; some only in some phases).
    """

    name: ClassVar[str]
    primary_score: ClassVar[str]
    score_rules: ClassVar[tuple[str, ...]]

    def __init__(self, cfg: TrainConfig, in_channels: int, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.model: nn.Module = self.build_model(in_channels).to(device)
        self.c: torch.Tensor | None = None
        self.R: float = 0.0

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
        """Called after each optimiser step (e.g. R's line search)."""

    def start(self, X: torch.Tensor) -> None:
        """Called once before the first epoch with the whole training tensor."""

    def end_epoch(self, epoch: int, X: torch.Tensor) -> bool:
        """Called after each epoch's optimiser steps; returns True when the optimiser must be
        rebuilt because a new phase starts (e.g. Deep SVDD after pre-training)."""
        return False

    @abstractmethod
    def make_optimizer(self, epoch: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Optimiser and per-epoch scheduler for the phase starting at ``epoch``."""

    @abstractmethod
    def score(self, z: np.ndarray, rec_err: np.ndarray | None, epoch: int) -> dict[str, np.ndarray]:
        """Scores from latents ``z`` ``(N, d)`` and reconstruction errors ``(N,)``."""

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
            zs.append(z.float().cpu())
            if decode:
                errs.append(((self.model.decode(z) - x) ** 2).flatten(1).mean(1).double().cpu())
        z = torch.cat(zs).numpy()
        rec = torch.cat(errs).numpy() if decode else None
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


def distance_to(z: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Euclidean distances ``||z_i − centre||``: ``(N, d)``, ``(d,)`` → ``(N,)`` float64."""
    return np.linalg.norm(z.astype(np.float64) - centre, axis=1)
