"""RSRAE, the autoencoder with a robust subspace recovery layer (Lai, Zou & Lerman, ICLR 2020;
dmzou/RSRAE ``RSRAE/model.py``; docs/baselines.md §6), on the shared CAE (*reconstructed*)."""

from __future__ import annotations

import torch

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.methods.base import (EpochMean, Evaluation, Method, Option, StepLosses,
                                     constant_schedule, e3outlier_adam)
from iaead_core.methods.baseline_nets import RSRAENet
__all__ = ["RSRAE", "pca_loss", "projection_loss", "l21_reconstruction", "cosine_score"]


def l21_reconstruction(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """``L_AE = mean_t ||x_t − x̂_t||₂`` (ℓ2,1: the per-image norm is not squared).
    ``(B, ...)`` twice → scalar. torch takes the gradient of a norm at 0 as 0."""
    return (x - x_hat).flatten(1).norm(dim=1).mean()


def pca_loss(y: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``L_pca = mean_t ||y_t − AᵀA y_t||₂`` (non-squared): ``y`` ``(B, D)``, ``A`` ``(d, D)``
    → scalar. 0 when every ``y_t`` lies in the row space of an ``A`` with orthonormal rows."""
    return (y - (y @ A.t()) @ A).norm(dim=1).mean()


def projection_loss(A: torch.Tensor) -> torch.Tensor:
    """``L_proj`` = mean of the d² squared entries of ``AAᵀ − I_d`` (the official code's mean
    form of ``||AAᵀ − I||²_F``): ``(d, D)`` → scalar; 0 iff A's rows are orthonormal."""
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    return ((A @ A.t() - eye) ** 2).mean()


def cosine_score(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """RSRAE's anomaly score ``−cos(x, x̂)`` on flattened images, 1e-6 added to each norm
    (official): ``(B, ...)`` twice → ``(B,)`` in [−1, 1]; −1 for a perfect reconstruction."""
    a, b = x.flatten(1), x_hat.flatten(1)
    return -(a * b).sum(1) / ((a.norm(dim=1) + 1e-6) * (b.norm(dim=1) + 1e-6))


class RSRAE(Method):
    """RSRAE on the shared CAE (docs/baselines.md §6; *reconstructed*: no released code of the IAEAD
    authors fixes where the layer sits or the settings).

    The CAE's code ``y`` (``D = latent_dim``) is mapped by the RSR layer ``A`` ``(d × D)`` to
    ``z̃ = A y``, unit-normalised, and decoded. The layer is trained to span a robust subspace
    of the codes: ``L_pca`` penalises what ``AᵀA`` fails to keep of ``y`` and ``L_proj`` keeps
    A's rows orthonormal; anomalies, far from that subspace, reconstruct poorly.

    Training (official ``-q 1 -z 1``): per mini-batch, (1) one step on the ℓ2,1
    reconstruction loss L_AE over encoder, A and decoder, lr η = ``cfg.lr`` (2.5e-4);
    (2) one step on L_proj (A only), lr 10η; (3) one step on L_pca (encoder and A), lr 10η;
    three Adam optimisers (eps 1e-8, no weight decay). Steps 2–3 run in :meth:`after_step` on
    the batch kept by :meth:`loss` (the encoder's BatchNorm statistics see each batch twice).
    The engine reshuffles every epoch (the official code shuffles once).

    Options (``TrainConfig.extra``): ``rsrae_d`` (10), ``rsrae_renorm`` (True),
    ``rsrae_mode`` (``"alternating"``; ``"joint"`` is RSRAE+: one optimiser on
    ``L_AE + λ₁L_pca + λ₂L_proj``), ``rsrae_lam_pca`` / ``rsrae_lam_proj`` (0.1, joint mode
    only), ``rsrae_optim`` (``"official"``; ``"e3outlier"``: Adam eps 1e-7 with weight decay
    5e-4 — set ``lr=1e-3`` and ``epochs=250`` too for E3Outlier's template).

    Scores: ``cosine`` — ``−cos(x, x̂)`` (official); ``reconstruction`` — per-image MSE (same
    ranking as ``||x − x̂||₂``); ``latent_mean`` — eq. (9) on ``z̃``. The official pipeline also
    ℓ2-normalises every image; the IAEAD protocol does not, so neither do we.

    Diagnostics per epoch: ``L_pca`` and ``L_proj`` (means over the epoch's steps; L_proj
    starts near D² / d ≈ 10³ for N(0, 1) entries and the 10η steps pull it down).
    """

    name = "rsrae"
    title, description = METHOD_CATALOG['rsrae']
    primary_score = "cosine"
    score_rules = ("cosine", "reconstruction", "latent_mean")
    code_activation = "unit"
    options = {
        "rsrae_d": Option(10, "dimension d of the RSR code", low=1),
        "rsrae_renorm": Option(True, "unit-normalise the RSR code", choices=(True, False)),
        "rsrae_mode": Option("alternating", "three alternating optimiser steps per batch "
                             "(RSRAE) or one joint loss (RSRAE+)", choices=("alternating", "joint")),
        "rsrae_lam_pca": Option(0.1, "weight λ₁ of L_pca (joint mode)", low=0.0),
        "rsrae_lam_proj": Option(0.1, "weight λ₂ of L_proj (joint mode)", low=0.0),
        "rsrae_optim": Option("official", "Adam settings: official RSRAE (eps 1e-8, no decay) "
                              "or E3Outlier's template (eps 1e-7, weight decay 5e-4)",
                              choices=("official", "e3outlier")),
    }

    def __init__(self, cfg, in_channels, device):
        super().__init__(cfg, in_channels, device)
        self.joint = self.option("rsrae_mode") == "joint"
        self.lam_pca = float(self.option("rsrae_lam_pca"))
        self.lam_proj = float(self.option("rsrae_lam_proj"))
        self._x: torch.Tensor | None = None
        self._opt_proj = self._opt_pca = None
        self._pca, self._proj = EpochMean(), EpochMean()

    def build_model(self, in_channels: int) -> RSRAENet:
        return RSRAENet(in_channels, self.cfg.width, self.cfg.latent_dim,
                        int(self.option("rsrae_d")), bool(self.option("rsrae_renorm")),
                        init=self.cfg.init)

    def phase(self, epoch: int) -> str:
        return "train"

    def _adam(self, params, lr: float) -> torch.optim.Adam:
        if self.option("rsrae_optim") == "e3outlier":
            return e3outlier_adam(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, eps=1e-8)

    def make_optimizer(self, epoch: int):
        net: RSRAENet = self.model
        opt = self._adam(net.parameters(), self.cfg.lr)
        if not self.joint:
            self._opt_proj = self._adam([net.A], 10 * self.cfg.lr)
            self._opt_pca = self._adam(net.encoder_parameters(), 10 * self.cfg.lr)
        return opt, constant_schedule(opt)

    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        net: RSRAENet = self.model
        y = net.features(x)
        x_hat = net.decode(net.project(y))
        l_ae = l21_reconstruction(x, x_hat)
        if not self.joint:
            self._x = x
            return StepLosses(total=l_ae, reconstruction=l_ae)
        l_pca, l_proj = pca_loss(y, net.A), projection_loss(net.A)
        self._pca.add(l_pca)
        self._proj.add(l_proj)
        return StepLosses(total=l_ae + self.lam_pca * l_pca + self.lam_proj * l_proj,
                          reconstruction=l_ae)

    def after_step(self) -> None:
        """Steps (2) L_proj on A and (3) L_pca on encoder and A, on the batch of step (1)."""
        if self._x is None:
            return
        self.projection_step()
        self.pca_step(self._x)
        self._x = None

    def projection_step(self) -> torch.Tensor:
        """One Adam step (lr 10η) on ``L_proj``, changing only ``A``; returns the loss before
        it (0-d tensor, detached)."""
        net: RSRAENet = self.model
        l_proj = projection_loss(net.A)
        self._opt_proj.zero_grad(set_to_none=True)
        l_proj.backward()
        self._opt_proj.step()
        self._proj.add(l_proj)
        return l_proj.detach()

    def pca_step(self, x: torch.Tensor) -> torch.Tensor:
        """One Adam step (lr 10η) on ``L_pca`` of batch ``x``, changing the encoder and ``A``
        (never the decoder); returns the loss before it (0-d tensor, detached)."""
        net: RSRAENet = self.model
        l_pca = pca_loss(net.features(x), net.A)
        self._opt_pca.zero_grad(set_to_none=True)
        l_pca.backward()
        self._opt_pca.step()
        self._pca.add(l_pca)
        return l_pca.detach()

    def evaluate(self, X: torch.Tensor, epoch: int, batch_size: int = 1024) -> Evaluation:
        net: RSRAENet = self.model

        def batch(x: torch.Tensor) -> dict[str, torch.Tensor]:
            z = net.encode(x)
            x_hat = net.decode(z)
            return {"z": z, "rec": ((x - x_hat) ** 2).flatten(1).mean(1),
                    "cosine": cosine_score(x, x_hat)}

        out = self.eval_pass(X, batch_size, batch)
        scores = self.score(out["z"], out["rec"], epoch)
        scores["cosine"] = out["cosine"]
        return Evaluation(z=out["z"], scores=scores, centre=None)

    def epoch_diagnostics(self) -> dict[str, float]:
        pca, proj = self._pca.pop(), self._proj.pop()
        return {} if pca is None else {"L_pca": pca, "L_proj": proj}
