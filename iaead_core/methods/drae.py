"""DRAE, the discriminative reconstruction autoencoder (Xia et al., ICCV 2015), as E3Outlier
implements it (``models/drae_loss.py``; docs/baselines.md §2)."""

from __future__ import annotations

import numpy as np
import torch

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.methods.base import (Method, Option, StepLosses, constant_schedule, e3outlier_adam,
                                     sum_squared_error)
from iaead_core.methods.nets import CAE
__all__ = ["DRAE", "otsu_criterion", "drae_split", "drae_loss"]

#: Total scatter below this fraction of Σ e² counts as "all errors equal" (no split exists).
_FLAT = 1e-12


def otsu_criterion(e: torch.Tensor) -> torch.Tensor:
    """Otsu's criterion ``h(k) = S_w(k) / S_t`` for every split of the sorted errors.

    ``I_k`` are the ``k`` smallest errors and ``O_k`` the rest; ``S_w(k)`` is their summed
    within-group scatter and ``S_t`` the total scatter (docs/baselines.md §2). Computed without a
    loop from prefix sums ``P1(k) = Σ_{j≤k} e_(j)``, ``P2(k) = Σ_{j≤k} e_(j)²``::

        S_w(k) = [P2(k) − P1(k)²/k] + [(P2(B) − P2(k)) − (P1(B) − P1(k))²/(B − k)]

    in float64 on mean-centred errors (both scatters are shift-invariant), which limits the
    cancellation in the differences.

    Parameters
    ----------
    e : Tensor ``(B,)``
        Per-image errors, any order, B ≥ 2 (no gradient is taken).

    Returns
    -------
    Tensor ``(B − 1,)`` float64: ``h(k)`` for ``k = 1 … B − 1``, in [0, 1]; NaN everywhere if
    all errors are equal (``S_t`` = 0 to float precision, see :func:`drae_split`).

    Raises
    ------
    ValueError
        If ``e`` is not 1-D with at least two entries.
    """
    if e.dim() != 1 or len(e) < 2:
        raise ValueError(f"otsu_criterion needs a 1-D tensor of at least 2 errors, got {tuple(e.shape)}")
    s = e.detach().double().sort().values
    scale = float((s * s).sum())
    s = s - s.mean()
    B = len(s)
    P1, P2 = s.cumsum(0), (s * s).cumsum(0)
    k = torch.arange(1, B, dtype=torch.float64, device=s.device)
    inner = P2[:-1] - P1[:-1] ** 2 / k
    outer = (P2[-1] - P2[:-1]) - (P1[-1] - P1[:-1]) ** 2 / (B - k)
    total = P2[-1] - P1[-1] ** 2 / B
    if not total > _FLAT * scale:
        return torch.full((B - 1,), float("nan"), dtype=torch.float64, device=s.device)
    return ((inner.clamp_min(0) + outer.clamp_min(0)) / total).clamp(0.0, 1.0)


def drae_split(e: torch.Tensor) -> tuple[int, float] | None:
    """The threshold of DRAE: ``k* = argmin_k h(k)`` (first minimum, as E3Outlier's strict
    improvement from 1e6) and ``h(k*)``.

    Returns ``None`` when no split exists: a batch of one image, or all errors equal (E3Outlier
    crashes on both; docs/baselines.md §2 pitfalls).
    """
    if len(e) < 2:
        return None
    h = otsu_criterion(e)
    if torch.isnan(h).any():
        return None
    k = int(torch.argmin(h)) + 1
    return k, float(h[k - 1])


def drae_loss(e: torch.Tensor, lam: float = 0.1) -> tuple[torch.Tensor, int | None, float | None]:
    """DRAE's mini-batch loss ``(1/k*) Σ_{i≤k*} e_(i) + λ·h(k*)`` (E3Outlier ``DRAELossAutograd``).

    The split ``k*`` is chosen without gradient; gradients flow through both terms via the
    error values (also through the outlier group inside ``h``).

    Parameters
    ----------
    e : Tensor ``(B,)``
        Per-image summed squared errors ``||x − x̂||²`` (with gradient).
    lam : float
        λ ≥ 0 (0.1 in E3Outlier).

    Returns
    -------
    (loss, k*, h(k*)) — scalar tensor; ``k*`` and ``h`` are ``None`` when no split exists, in
    which case the loss is the mean error (a guard: E3Outlier crashes there).
    """
    split = drae_split(e)
    if split is None:
        return e.mean(), None, None
    k, _ = split
    s = e.sort().values
    inl, out = s[:k], s[k:]
    within = ((inl - inl.mean()) ** 2).sum() + ((out - out.mean()) ** 2).sum()
    h = within / ((e - e.mean()) ** 2).sum()
    return inl.mean() + lam * h, k, float(h.detach())


class DRAE(Method):
    """DRAE on the shared CAE (docs/baselines.md §2).

    Every mini-batch is split by Otsu's criterion on its per-image errors
    ``e_i = ||x_i − x̂_i||²`` (summed over pixels); the loss is the mean error of the ``k*``
    best-reconstructed images plus λ·h(k*) (:func:`drae_loss`), so the network is pushed to
    reconstruct the inlier group well and to separate it from the rest. The threshold is
    re-found on every mini-batch, E3Outlier's reading of the paper's alternation.

    E3Outlier's template: Adam lr ``cfg.lr`` (1e-3), eps 1e-7, coupled weight decay 5e-4, no
    schedule (``cfg.lr_step`` / ``lr_gamma`` are ignored); PyTorch's default initialisation
    (``init="pytorch"`` in the presets). Raw pixels, not the CNN features of Xia et al.

    Scores: ``reconstruction`` — per-image mean squared error (same ranking as E3Outlier's
    summed error); ``latent_mean`` — eq. (9) on the CAE code, which plays no part in training.

    Diagnostics per epoch: ``k_frac`` (mean k*/B) and ``h`` (mean h(k*)) over the batches that
    had a split (absent if none had), and ``no_split`` (batches without one: a single image or
    equal errors).
    """

    name = "drae"
    title, description = METHOD_CATALOG['drae']
    primary_score = "reconstruction"
    score_rules = ("reconstruction", "latent_mean")
    code_activation = "tanh"
    options = {"drae_lam": Option(0.1, "weight λ of the scatter ratio h(k*) in the DRAE loss",
                                  low=0.0)}

    def __init__(self, cfg, in_channels, device):
        super().__init__(cfg, in_channels, device)
        self.lam = float(self.option("drae_lam"))
        self._k: list[float] = []
        self._h: list[float] = []
        self._no_split = 0

    def build_model(self, in_channels: int) -> CAE:
        return CAE(in_channels, self.cfg.width, self.cfg.latent_dim, init=self.cfg.init)

    def phase(self, epoch: int) -> str:
        return "train"

    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        _, x_hat = self.model(x)
        total, k, h = drae_loss(sum_squared_error(x, x_hat), self.lam)
        if k is None:
            self._no_split += 1
        else:
            self._k.append(k / len(x))
            self._h.append(h)
        return StepLosses(total=total, reconstruction=total if k is None else total - self.lam * h)

    def make_optimizer(self, epoch: int):
        opt = e3outlier_adam(self.model.parameters(), lr=self.cfg.lr)
        return opt, constant_schedule(opt)

    def epoch_diagnostics(self) -> dict[str, float]:
        out = {"no_split": float(self._no_split)}
        if self._k:  # absent when no batch of the epoch had a split
            out.update(k_frac=float(np.mean(self._k)), h=float(np.mean(self._h)))
        self._k, self._h, self._no_split = [], [], 0
        return out
