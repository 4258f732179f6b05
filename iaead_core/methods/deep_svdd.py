"""The Deep SVDD baseline (Ruff et al., ICML 2018; docs/method.md §8)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.methods.base import Method, StepLosses, distance_to
from iaead_core.methods.nets import DeepSVDDNet
from iaead_core.methods.svdd import (batch_radius, fix_centre, one_class_loss, soft_boundary_loss,
                                     squared_distances)
__all__ = ["DeepSVDD"]


class DeepSVDD(Method):
    """Deep SVDD with autoencoder pre-training.

    1. Pre-training (``cfg.warmup_epochs`` epochs): the bias-free LeNet-type autoencoder
       (:class:`~iaead_core.methods.nets.DeepSVDDNet`) minimises the mean squared reconstruction error.
    2. ``c`` = eval-mode mean of the pre-trained encoder's codes with the ±0.1 fix; the
       optimiser is rebuilt and the encoder alone minimises the one-class loss
       ``mean ||z − c||²`` or the soft-boundary loss (eq. 4/7) with R set after every step to
       the (1 − ν)-quantile of the batch distances.

    Adam (lr ``cfg.svdd_lr``, weight decay ``cfg.svdd_weight_decay``, which stands in for the
    λ/2·Σ||W||² term of eq. 4) with the lr ×0.1 after ``cfg.lr_step`` epochs of each phase, as
    in the released code.

    Scores: ``svdd`` — ``||z − c||²`` (one-class) or ``||z − c||² − R²`` (soft-boundary), Ruff
    et al.'s score; ``latent_mean`` — eq. (9) on the same codes, for comparison;
    ``reconstruction`` — during pre-training only.

    With ``cfg.svdd_bias=True`` (biases, affine BatchNorm) or no pre-training, the encoder can
    map everything to c: the feature collapse the app shows.
    """

    name = "deep-svdd"
    title, description = METHOD_CATALOG['deep-svdd']
    primary_score = "svdd"
    score_rules = ("svdd", "latent_mean", "reconstruction")

    def __init__(self, cfg, in_channels, device):
        super().__init__(cfg, in_channels, device)
        self.nu = cfg.resolved_nu
        self._dist2: torch.Tensor | None = None

    def build_model(self, in_channels: int) -> DeepSVDDNet:
        return DeepSVDDNet(in_channels, bias=self.cfg.svdd_bias)

    def phase(self, epoch: int) -> str:
        return "pretrain" if epoch < self.cfg.warmup_epochs else "svdd"

    def start(self, X: torch.Tensor) -> None:
        if self.cfg.warmup_epochs == 0:
            self.c = fix_centre(self.mean_latent(X, self.cfg.eval_batch_size))

    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        if self.c is None:
            _, x_hat = self.model(x)
            rec = F.mse_loss(x_hat, x)
            return StepLosses(total=rec, reconstruction=rec)
        dist2 = squared_distances(self.model.encode(x), self.c)
        self._dist2 = dist2.detach()
        if self.cfg.objective == "soft-boundary":
            svdd = soft_boundary_loss(dist2, self.current_R(), self.nu)
        else:
            svdd = one_class_loss(dist2)
        return StepLosses(total=svdd, svdd=svdd)

    def after_step(self) -> None:
        if self._dist2 is not None and self.cfg.objective == "soft-boundary":
            self._R_live = batch_radius(self._dist2, self.nu)

    def end_epoch(self, epoch: int, X: torch.Tensor) -> bool:
        if self.c is None and epoch + 1 >= self.cfg.warmup_epochs:
            self.c = fix_centre(self.mean_latent(X, self.cfg.eval_batch_size))
            return True
        return False

    def make_optimizer(self, epoch: int):
        params = self.model.parameters() if self.c is None else self.model.encoder.parameters()
        opt = torch.optim.Adam(params, lr=self.cfg.svdd_lr, weight_decay=self.cfg.svdd_weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.cfg.lr_step, gamma=0.1)
        return opt, sched

    def wants_reconstruction(self, epoch: int) -> bool:
        return self.c is None

    def score(self, z: np.ndarray, rec_err: np.ndarray | None, epoch: int) -> dict[str, np.ndarray]:
        scores = {"latent_mean": distance_to(z, z.astype(np.float64).mean(0))}
        if self.c is not None:
            dist2 = distance_to(z, self.c.double().cpu().numpy()) ** 2
            scores["svdd"] = dist2 - self.R**2 if self.cfg.objective == "soft-boundary" else dist2
        if rec_err is not None:
            scores["reconstruction"] = rec_err
        return scores
