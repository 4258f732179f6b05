"""DAGMM, the deep autoencoding Gaussian mixture model (Zong et al., ICLR 2018), as E3Outlier's
Keras code runs it (``models/dagmm.py``, ``_dagmm_experiment``; docs/baselines.md §4)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.methods.base import (EpochMean, Evaluation, Method, Option, StepLosses,
                                     constant_schedule)
from iaead_core.methods.baseline_nets import DAGMMNet
__all__ = ["DAGMM", "gmm_params", "gmm_energy", "covariance_penalty", "energy_cap",
           "cholesky_jitter"]

#: Keras' epsilon: E3Outlier adds it to Σ's diagonal, under the square root and to each term.
EPS = 1e-7


def gmm_params(f: torch.Tensor, gamma: torch.Tensor, eps: float = EPS
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixture parameters from memberships (Zong et al. eq. 5; E3Outlier's batch estimate).

    With ``N_k = Σ_i γ_ik``: ``φ_k = N_k / B``, ``μ_k = Σ_i γ_ik f_i / N_k``,
    ``Σ_k = Σ_i γ_ik (f_i − μ_k)(f_i − μ_k)ᵀ / N_k + eps·I`` (``N_k + 1e-12`` in the divisions
    so an empty component stays finite). Differentiable.

    Parameters
    ----------
    f : Tensor ``(B, p)`` — features.
    gamma : Tensor ``(B, K)`` — memberships, rows summing to 1.
    eps : float — added to the diagonal of every Σ_k.

    Returns
    -------
    ``phi (K,)``, ``mu (K, p)``, ``cov (K, p, p)`` in ``f``'s dtype.
    """
    Nk = gamma.sum(0)
    phi = Nk / len(f)
    mu = gamma.t() @ f / (Nk + 1e-12)[:, None]
    diff = f[:, None, :] - mu[None]
    cov = torch.einsum("bk,bki,bkj->kij", gamma, diff, diff) / (Nk + 1e-12)[:, None, None]
    return phi, mu, cov + eps * torch.eye(f.shape[1], dtype=f.dtype, device=f.device)


def cholesky_jitter(cov: torch.Tensor, start: float = EPS, tries: int = 12) -> torch.Tensor:
    """Lower Cholesky factors of ``cov`` ``(K, p, p)``; a component that is not positive
    definite (a collapsed code, an empty component) gets ``jitter·I`` added, starting at
    ``start`` and ×10 until it factors.

    Non-finite entries give NaN factors (so the energy, and the loss, become NaN and the
    engine stops with its usual message).

    Raises
    ------
    torch.linalg.LinAlgError
        If a finite component still fails after ``tries`` increases.
    """
    if not torch.isfinite(cov).all():
        return torch.full_like(cov, float("nan"))
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    L, info = torch.linalg.cholesky_ex(cov)
    jitter = start
    for _ in range(tries):
        bad = info > 0
        if not bad.any():
            return L
        cov = cov + (bad[:, None, None] * jitter) * eye
        L, info = torch.linalg.cholesky_ex(cov)
        jitter *= 10
    if (info > 0).any():
        raise torch.linalg.LinAlgError("a mixture covariance is not positive definite even "
                                       "with jitter (non-finite features?)")
    return L


def energy_cap(K: int, eps: float = EPS) -> float:
    """The largest energy E3Outlier's form can give: ``−log(K·eps)`` (≈ 15.02 for K = 3)."""
    return -math.log(K * eps)


def gmm_energy(f: torch.Tensor, phi: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor,
               mode: str = "e3outlier", eps: float = EPS) -> torch.Tensor:
    """Sample energy, computed stably with log-sum-exp (docs/baselines.md §4).

    ``mode="e3outlier"`` reproduces E3Outlier exactly::

        E(f) = −log Σ_k [ φ_k exp(−½ m_k) / √(det(2πΣ_k) + eps) + eps ]
             = −logsumexp_k [log φ_k − ½ m_k − ½ log(det(2πΣ_k) + eps)] ∪ [log(K·eps)]

    with ``m_k = (f − μ_k)ᵀ Σ_k⁻¹ (f − μ_k)``; the extra term caps E at
    :func:`energy_cap`. ``mode="paper"`` drops both eps terms: ``E = −log Σ_k φ_k N(f; μ_k, Σ_k)``
    (Zong et al. eq. 6). ``log det`` comes from the Cholesky diagonal (:func:`cholesky_jitter`),
    never from ``det``.

    Parameters
    ----------
    f : Tensor ``(N, p)``; phi ``(K,)``; mu ``(K, p)``; cov ``(K, p, p)``.
    mode : {"e3outlier", "paper"}

    Returns
    -------
    Tensor ``(N,)`` in float64 (differentiable).

    Raises
    ------
    ValueError
        For an unknown ``mode``.
    """
    if mode not in ("e3outlier", "paper"):
        raise ValueError(f"mode must be 'e3outlier' or 'paper', got {mode!r}")
    f, phi, mu, cov = (t.double() for t in (f, phi, mu, cov))
    K, p = mu.shape
    L = cholesky_jitter(cov)
    diff = (f[:, None, :] - mu[None]).unsqueeze(-1)                      # (N, K, p, 1)
    sol = torch.linalg.solve_triangular(L.expand(len(f), K, p, p), diff, upper=False)
    m = (sol ** 2).sum((-1, -2))                                          # (N, K)
    logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) + p * math.log(2 * math.pi)
    log_phi = torch.log(phi.clamp_min(1e-300))
    if mode == "paper":
        return -torch.logsumexp(log_phi - 0.5 * m - 0.5 * logdet, dim=1)
    log_norm = 0.5 * torch.logaddexp(logdet, torch.tensor(math.log(eps), dtype=f.dtype))
    terms = torch.cat([log_phi - 0.5 * m - log_norm,
                       torch.full((len(f), 1), math.log(K * eps), dtype=f.dtype, device=f.device)], 1)
    return -torch.logsumexp(terms, dim=1)


def covariance_penalty(cov: torch.Tensor, floor: float | None = None) -> torch.Tensor:
    """``P(Σ) = Σ_k Σ_j 1 / (Σ_k)_jj`` (Zong et al. eq. 7, E3Outlier's diagonal form);
    ``floor`` clamps the diagonal from below (the paper variant, 1e-6) so it stays finite."""
    diag = torch.diagonal(cov, dim1=-2, dim2=-1)
    if floor is not None:
        diag = diag.clamp_min(floor)
    return (1.0 / diag).sum()


class DAGMM(Method):
    """DAGMM on the shared CAE (docs/baselines.md §4).

    Loss per mini-batch: ``mean (x − x̂)² + λ₁·mean E(f) + λ₂·P(Σ)`` with λ₁ = 0.1,
    λ₂ = 0.005, where φ, μ, Σ are estimated from the batch's own memberships
    (:func:`gmm_params`); gradients flow through γ, ``z_c`` and both reconstruction features.
    Adam lr ``cfg.lr`` (1e-4), eps 1e-7, no weight decay, no schedule; Keras initialisation
    and BatchNorm defaults (``init="keras"`` in the presets).

    Options (``TrainConfig.extra``): ``dagmm_energy`` — ``"e3outlier"`` (default: the capped
    form) or ``"paper"``; ``dagmm_gmm_fit`` — ``"last-batch"`` (default: φ, μ, Σ of the last
    training step, dropout active, as E3Outlier scores) or ``"full"`` (re-estimated on the whole
    set in eval mode before scoring, as Zong et al.); ``dagmm_K``, ``dagmm_code_dim``,
    ``dagmm_lam_energy``, ``dagmm_lam_cov``.

    Scores: ``energy`` — E(f) per image (capped in e3outlier mode: ties at the cap count half
    in AUROC); ``reconstruction`` — per-image MSE; ``latent_mean`` — eq. (9) on ``z_c``.

    Diagnostics per epoch: ``energy`` and ``cov_penalty`` (means over the epoch's batches),
    ``n_capped`` and ``n_nonfinite`` (scored images whose energy is at the cap / not finite).
    """

    name = "dagmm"
    title, description = METHOD_CATALOG['dagmm']
    primary_score = "energy"
    score_rules = ("energy", "reconstruction", "latent_mean")
    options = {
        "dagmm_energy": Option("e3outlier", "energy formula: E3Outlier's (eps terms, capped at "
                               "−log(K·eps)) or the paper's", choices=("e3outlier", "paper")),
        "dagmm_gmm_fit": Option("last-batch", "mixture used for scoring: the last training "
                                "batch's (E3Outlier) or re-fitted on the whole set (paper)",
                                choices=("last-batch", "full")),
        "dagmm_K": Option(3, "number of mixture components", low=1),
        "dagmm_code_dim": Option(5, "size of the linear code z_c", low=1),
        "dagmm_lam_energy": Option(0.1, "weight λ₁ of the mean energy", low=0.0),
        "dagmm_lam_cov": Option(0.005, "weight λ₂ of the covariance-diagonal penalty", low=0.0),
    }

    def __init__(self, cfg, in_channels, device):
        super().__init__(cfg, in_channels, device)
        self.energy_mode = self.option("dagmm_energy")
        self.gmm_fit = self.option("dagmm_gmm_fit")
        self.lam_energy = float(self.option("dagmm_lam_energy"))
        self.lam_cov = float(self.option("dagmm_lam_cov"))
        self.K = int(self.option("dagmm_K"))
        self._energy, self._penalty = EpochMean(), EpochMean()
        self._scored = {"n_capped": 0.0, "n_nonfinite": 0.0}

    def build_model(self, in_channels: int) -> DAGMMNet:
        return DAGMMNet(in_channels, self.cfg.width, int(self.option("dagmm_code_dim")),
                        int(self.option("dagmm_K")), init=self.cfg.init)

    def phase(self, epoch: int) -> str:
        return "train"

    def _floor(self) -> float | None:
        return 1e-6 if self.energy_mode == "paper" else None

    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        net: DAGMMNet = self.model
        z, x_hat = net(x)
        f = net.features(x, x_hat, z)
        gamma = net.estimate(f)
        phi, mu, cov = gmm_params(f.double(), gamma.double())
        energy = gmm_energy(f, phi, mu, cov, self.energy_mode).mean().float()
        penalty = covariance_penalty(cov, self._floor()).float()
        rec = F.mse_loss(x_hat, x)
        with torch.no_grad():  # E3Outlier scores with the last training step's mixture
            net.phi.copy_(phi)
            net.mu.copy_(mu)
            net.cov.copy_(cov)
        self._energy.add(energy)
        self._penalty.add(penalty)
        return StepLosses(total=rec + self.lam_energy * energy + self.lam_cov * penalty,
                          reconstruction=rec)

    def make_optimizer(self, epoch: int):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr, eps=1e-7)
        return opt, constant_schedule(opt)

    def evaluate(self, X: torch.Tensor, epoch: int, batch_size: int = 1024) -> Evaluation:
        net: DAGMMNet = self.model

        def batch(x: torch.Tensor) -> dict[str, torch.Tensor]:
            z, x_hat = net(x)
            f = net.features(x, x_hat, z)
            return {"z": z, "f": f, "gamma": net.estimate(f),
                    "rec": ((x - x_hat) ** 2).flatten(1).mean(1)}

        out = self.eval_pass(X, batch_size, batch)
        f = torch.from_numpy(out["f"]).to(self.device)
        with torch.no_grad():
            if self.gmm_fit == "full":
                ok = torch.isfinite(f).all(1)  # a non-finite image is scored, not fitted
                gamma = torch.from_numpy(out["gamma"]).to(self.device)
                phi, mu, cov = gmm_params(f[ok], gamma[ok])
                net.phi.copy_(phi)
                net.mu.copy_(mu)
                net.cov.copy_(cov)
            energy = gmm_energy(f, net.phi, net.mu, net.cov, self.energy_mode).cpu().numpy()
        finite = np.isfinite(energy)
        cap = energy_cap(self.K)
        # at the cap to float32 precision: such images tie (AUROC counts ties as half)
        self._scored = {"n_capped": float((np.abs(energy - cap) <= 1e-6 * cap).sum())
                        if self.energy_mode == "e3outlier" else 0.0,
                        "n_nonfinite": float((~finite).sum())}
        scores = self.score(out["z"], out["rec"], epoch)
        scores["energy"] = energy
        return Evaluation(z=out["z"], scores=scores, centre=None)

    def epoch_diagnostics(self) -> dict[str, float]:
        return {"energy": self._energy.pop() or 0.0, "cov_penalty": self._penalty.pop() or 0.0,
                **self._scored}
