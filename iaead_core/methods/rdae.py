"""RDAE, the robust deep autoencoder (Zhou & Paffenroth, KDD 2017), as E3Outlier runs it
(``train_robust_cae``, ``prox_l21``; docs/baselines.md §3), with the correct ℓ2,1 prox as an option."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.methods.base import (Evaluation, Method, Option, StepLosses, constant_schedule,
                                     e3outlier_adam)
from iaead_core.methods.nets import CAE
__all__ = ["RDAE", "prox_l21", "prox_e3outlier"]


def _row_norms(R: torch.Tensor) -> torch.Tensor:
    return R.flatten(1).norm(dim=1)


def _scale_rows(R: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    scale = scale.view(-1, *([1] * (R.dim() - 1)))
    return torch.where(scale != 0, R * scale, torch.zeros_like(R))  # a NaN row gives S_i = 0


def prox_l21(R: torch.Tensor, tau: float) -> torch.Tensor:
    """Proximal operator of ``τ Σ_i ||S_i||₂`` (group soft-thresholding, one group per row).

    ``S_i = max(0, 1 − τ/||R_i||) · R_i``: rows with ``||R_i|| ≤ τ`` become exactly 0, the
    others keep their direction and lose ``τ`` of their norm. It minimises
    ``½||S − R||² + τ Σ_i ||S_i||`` (Zhou & Paffenroth; zc8340311/RobustAutoencoder's
    ``l21shrink``).

    Parameters
    ----------
    R : Tensor ``(n, ...)`` — one row per image (any trailing shape).
    tau : float ≥ 0.

    Returns
    -------
    Tensor shaped like ``R``.
    """
    n = _row_norms(R)
    scale = torch.where(n > 0, (1 - tau / n.clamp_min(torch.finfo(n.dtype).tiny)).clamp_min(0),
                        torch.zeros_like(n))
    return _scale_rows(R, scale)


def prox_e3outlier(R: torch.Tensor, tau: float) -> torch.Tensor:
    """E3Outlier's ``prox_l21`` exactly, including its sign error (docs/baselines.md §3).

    ``S_i = min(0, 1 − τ/||R_i||) · R_i``: rows with ``||R_i|| ≥ τ`` become 0 and rows with
    ``||R_i|| < τ`` get norm ``τ − ||R_i||`` pointing against ``R_i``. A zero row, where the
    original gives 0·∞ = NaN, is mapped to 0 here. With image residual norms ≫ τ = 6.5e-4, S
    stays 0 and RDAE is a CAE trained for 20 Adam epochs.

    Parameters / Returns: as :func:`prox_l21`.
    """
    n = _row_norms(R)
    scale = torch.where(n > 0, (1 - tau / n.clamp_min(torch.finfo(n.dtype).tiny)).clamp_max(0),
                        torch.zeros_like(n))
    return _scale_rows(R, scale)


class RDAE(Method):
    """RDAE on the shared CAE (docs/baselines.md §3): ``X = L + S``, the CAE reconstructs ``L`` and
    the row-sparse ``S`` (a buffer, not a parameter) absorbs whole anomalous images.

    Alternation, one outer step every ``rdae_inner_epochs`` epochs (E3Outlier: 1, for 20 epochs
    in all, no re-initialisation, one Adam kept throughout): the engine trains the CAE with
    MSE on ``L = X − S`` (:meth:`training_set`); at the end of the outer step ``L̂ = CAE(X − S)``
    in eval mode and ``S = prox(X − L̂)`` (:meth:`end_epoch`). ``S`` starts at 0.

    Options (``TrainConfig.extra``): ``rdae_prox`` — ``"e3outlier"`` (default, the released
    formula with its sign error, τ = λ; in practice S stays 0) or ``"l21"`` (the correct prox of
    the paper, τ = λ·n as in Zhou & Paffenroth's experiment; λ must be tuned for [−1, 1]
    1024-pixel images and there is no label-free way to do it); ``rdae_lam`` — λ
    (E3Outlier 0.00065); ``rdae_inner_epochs``.

    Optimiser: E3Outlier's template (Adam lr ``cfg.lr``, eps 1e-7, weight decay 5e-4, no
    schedule); PyTorch's default initialisation in the presets.

    Scores (``S`` is the training set's, row for row; a set of another length is scored with
    ``S = 0``): ``reconstruction`` — per-image mean of ``(X − S − CAE(X − S))²`` (E3Outlier's,
    same ranking as its sum) in ``e3outlier`` mode, or ``(X − CAE(X − S))²`` in ``l21`` mode
    (the part of X the model does not explain; E3Outlier's form would reward rows whose anomaly
    moved into S); ``latent_mean`` — eq. (9) on the codes of ``X − S``.

    Diagnostics per epoch: ``S_nonzero`` — fraction of non-zero rows of ``S`` (expected 0 in
    ``e3outlier`` mode).
    """

    name = "rdae"
    title, description = METHOD_CATALOG['rdae']
    primary_score = "reconstruction"
    score_rules = ("reconstruction", "latent_mean")
    code_activation = "tanh"
    options = {
        "rdae_prox": Option("e3outlier", "proximal step on S: E3Outlier's formula (as the "
                            "paper's numbers) or the correct ℓ2,1 group shrinkage",
                            choices=("e3outlier", "l21")),
        "rdae_lam": Option(0.00065, "λ of λ||S||₂,₁ (τ = λ for e3outlier, λ·n for l21)", low=0.0),
        "rdae_inner_epochs": Option(1, "CAE epochs per outer step (update of S)", low=1),
    }

    def __init__(self, cfg, in_channels, device):
        super().__init__(cfg, in_channels, device)
        self.prox = self.option("rdae_prox")
        self.lam = float(self.option("rdae_lam"))
        self.inner = int(self.option("rdae_inner_epochs"))
        self.S: torch.Tensor | None = None

    def build_model(self, in_channels: int) -> CAE:
        return CAE(in_channels, self.cfg.width, self.cfg.latent_dim, init=self.cfg.init)

    def phase(self, epoch: int) -> str:
        return "train"

    def tau(self, n: int) -> float:
        """Threshold of the prox for ``n`` images."""
        return self.lam * n if self.prox == "l21" else self.lam

    def start(self, X: torch.Tensor) -> None:
        self.S = torch.zeros_like(X)

    def _S_for(self, X: torch.Tensor) -> torch.Tensor | None:
        return self.S if self.S is not None and self.S.shape == X.shape else None

    def training_set(self, X: torch.Tensor, epoch: int) -> torch.Tensor:
        S = self._S_for(X)
        return X if S is None else X - S

    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        _, x_hat = self.model(x)
        rec = F.mse_loss(x_hat, x)
        return StepLosses(total=rec, reconstruction=rec)

    @torch.no_grad()
    def end_epoch(self, epoch: int, X: torch.Tensor) -> bool:
        """End of an outer step (every ``rdae_inner_epochs`` epochs): ``S = prox(X − L̂)`` with
        ``L̂ = CAE(X − S)`` in eval mode."""
        if (epoch + 1) % self.inner == 0:
            self.model.eval()
            L, bs = self.training_set(X, epoch), self.cfg.eval_batch_size
            L_hat = torch.cat([self.model(L[i:i + bs])[1] for i in range(0, len(L), bs)])
            prox = prox_l21 if self.prox == "l21" else prox_e3outlier
            self.S = prox(X - L_hat, self.tau(len(X)))
        return False

    def make_optimizer(self, epoch: int):
        opt = e3outlier_adam(self.model.parameters(), lr=self.cfg.lr)
        return opt, constant_schedule(opt)

    def evaluate(self, X: torch.Tensor, epoch: int, batch_size: int = 1024) -> Evaluation:
        S = self._S_for(X)
        L = X if S is None else X - S

        def batch(l: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
            z = self.model.encode(l)
            l_hat = self.model.decode(z)
            target = x if self.prox == "l21" else l
            return {"z": z, "err": ((target - l_hat) ** 2).flatten(1).mean(1)}

        out = self.eval_pass(L, batch_size, batch, X)
        return Evaluation(z=out["z"], scores=self.score(out["z"], out["err"], epoch), centre=None)

    def nonzero_rows(self) -> float:
        """Fraction of rows (images) of ``S`` that are not exactly zero (0 before training)."""
        if self.S is None or len(self.S) == 0:
            return 0.0
        return float((self.S.flatten(1).abs().amax(1) > 0).double().mean())

    def epoch_diagnostics(self) -> dict[str, float]:
        return {"S_nonzero": self.nonzero_rows()}

    def state(self) -> dict:
        """Base state plus ``S``, stored sparsely: its shape, the indices of its non-zero rows
        and those rows (``S`` is all zero in ``e3outlier`` mode)."""
        state = super().state()
        if self.S is not None:
            idx = torch.nonzero(self.S.flatten(1).abs().amax(1) > 0).flatten()
            state.update(S_shape=torch.tensor(self.S.shape), S_index=idx.cpu(),
                         S_rows=self.S[idx].detach().cpu().clone())
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        if state.get("S_shape") is None:
            self.S = None
            return
        S = torch.zeros(tuple(int(v) for v in state["S_shape"]), device=self.device)
        S[state["S_index"].to(self.device)] = state["S_rows"].to(self.device)
        self.S = S
