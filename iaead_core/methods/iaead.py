"""IAEAD (eq. 6–9) and its λ = 0 special case, the CAE baseline."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.methods.base import Method, StepLosses, distance_to
from iaead_core.methods.nets import CAE
from iaead_core.methods.svdd import batch_radius, fix_centre, soft_boundary_loss, squared_distances
__all__ = ["IAEAD", "CAEBaseline"]


class IAEAD(Method):
    """Improved autoencoder for anomaly detection: ``L = L_rec + λ · L_svdd`` (eq. 6, 8).

    * ``L_rec``: mean squared reconstruction error of the paper's CAE (eq. 2).
    * ``L_svdd``: soft-boundary Deep SVDD loss on the latent codes (eq. 7), off during the
      first ``warmup_epochs``; at the end of the warm-up ``c`` is fixed to the eval-mode mean
      latent of the whole training set with the ±0.1 fix; after every optimiser step in the
      SVDD phase R is the (1 − ν)-quantile of the batch distances (docs/method.md §4).
    * SGD without momentum, lr ``cfg.lr`` multiplied by ``cfg.lr_gamma`` every
      ``cfg.lr_step`` epochs (docs/method.md §4).

    Scores (higher = more anomalous):
    ``latent_mean`` — ``||z_i − mean_j z_j||`` over the scored set (eq. 9, the paper's score);
    ``latent_c`` — ``||z_i − c||`` (eq. 5, once c is fixed);
    ``reconstruction`` — per-image mean squared error (eq. 3).
    """

    name = "iaead"
    title, description = METHOD_CATALOG['iaead']
    primary_score = "latent_mean"
    score_rules = ("latent_mean", "latent_c", "reconstruction")
    code_activation = "tanh"

    def __init__(self, cfg, in_channels, device):
        super().__init__(cfg, in_channels, device)
        self.lam = cfg.effective_lam
        self.nu = cfg.resolved_nu
        self._dist2: torch.Tensor | None = None

    def build_model(self, in_channels: int) -> CAE:
        return CAE(in_channels, self.cfg.width, self.cfg.latent_dim, init=self.cfg.init)

    def uses_svdd(self) -> bool:
        return True

    def phase(self, epoch: int) -> str:
        if not self.uses_svdd():
            return "train"
        return "svdd" if epoch >= self.cfg.warmup_epochs else "warm-up"

    def start(self, X: torch.Tensor) -> None:
        if self.uses_svdd() and self.cfg.warmup_epochs == 0:
            self.set_centre(X)

    def set_centre(self, X: torch.Tensor) -> None:
        """Fix ``c``: eval-mode mean latent of ``X`` with the ±0.1 fix (docs/method.md §4)."""
        self.c = fix_centre(self.mean_latent(X, self.cfg.eval_batch_size))

    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        z, x_hat = self.model(x)
        rec = F.mse_loss(x_hat, x)
        if self.c is None:
            self._dist2 = None
            return StepLosses(total=rec, reconstruction=rec)
        dist2 = squared_distances(z, self.c)
        self._dist2 = dist2.detach()
        svdd = soft_boundary_loss(dist2, self.current_R(), self.nu)
        return StepLosses(total=rec + self.lam * svdd, reconstruction=rec, svdd=svdd)

    def after_step(self) -> None:
        if self._dist2 is not None:
            self._R_live = batch_radius(self._dist2, self.nu)

    def end_epoch(self, epoch: int, X: torch.Tensor) -> bool:
        if self.uses_svdd() and self.c is None and epoch + 1 >= self.cfg.warmup_epochs:
            self.set_centre(X)
        return False

    def make_optimizer(self, epoch: int):
        opt = torch.optim.SGD(self.model.parameters(), lr=self.cfg.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.cfg.lr_step, gamma=self.cfg.lr_gamma)
        return opt, sched

    def score(self, z: np.ndarray, rec_err: np.ndarray | None, epoch: int) -> dict[str, np.ndarray]:
        scores = {"latent_mean": distance_to(z, z.astype(np.float64).mean(0))}
        if self.c is not None:
            scores["latent_c"] = distance_to(z, self.c.double().cpu().numpy())
        if rec_err is not None:
            scores["reconstruction"] = rec_err
        return scores


class CAEBaseline(IAEAD):
    """The CAE baseline: the same network trained on ``L_rec`` alone (λ = 0, no centre), SGD
    as stated by the paper (docs/method.md §9: the released code silently used Adam).

    Judged by ``reconstruction`` (eq. 3); ``latent_mean`` (eq. 9) is reported too, which is
    what IAEAD at λ = 0 scores.
    """

    name = "cae"
    title, description = METHOD_CATALOG['cae']
    primary_score = "reconstruction"
    score_rules = ("latent_mean", "reconstruction")

    def uses_svdd(self) -> bool:
        return False
