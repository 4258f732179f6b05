"""Deep SVDD pieces shared by IAEAD and the Deep SVDD baseline.

Sources: the IAEAD paper eq. (4), (5), (7); Ruff et al. (2018) for the centre fix and the
radius line search (``get_radius``: the (1 − ν)-quantile of the distances).
"""

from __future__ import annotations

import torch

__all__ = ["squared_distances", "soft_boundary_loss", "one_class_loss", "radius_quantile",
           "batch_radius", "fix_centre"]


def squared_distances(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``||z_i − c||²`` for each row: ``z`` ``(N, d)``, ``c`` ``(d,)`` → ``(N,)`` float."""
    return ((z - c) ** 2).sum(dim=1)


def soft_boundary_loss(dist2: torch.Tensor, R: float | torch.Tensor, nu: float) -> torch.Tensor:
    """Soft-boundary Deep SVDD loss, eq. (7), averaged over the mini-batch.

    ``L_svdd = R² + 1/ν · mean_i max(0, ||z_i − c||² − R²)``.

    Parameters
    ----------
    dist2 : Tensor ``(N,)``
        Squared latent distances to the centre ``c``.
    R : float or Tensor ``()`` float64
        Current radius (not a trained parameter: set by :func:`radius_quantile`).
    nu : float
        ν in (0, 1]. With ν = 1 and R the batch minimum distance the hinge is active for every
        sample and the loss equals ``mean ||z − c||²`` exactly (docs/method.md §2).

    Returns
    -------
    Tensor, scalar.

    Raises
    ------
    ValueError
        If ``nu`` is outside (0, 1].
    """
    if not 0.0 < nu <= 1.0:
        raise ValueError(f"nu must be in (0, 1], got {nu}")
    R2 = R * R
    if isinstance(R2, torch.Tensor):  # a radius left on the device: the same float32 value
        R2 = R2.to(dist2.dtype)       # that a python float R would give, with no host read
    return R2 + torch.clamp(dist2 - R2, min=0.0).mean() / nu


def one_class_loss(dist2: torch.Tensor) -> torch.Tensor:
    """One-class Deep SVDD loss (Ruff et al., eq. 4 of their paper): ``mean ||z − c||²``."""
    return dist2.mean()


def batch_radius(dist2: torch.Tensor, nu: float) -> torch.Tensor:
    """Deep SVDD's line search for R: the (1 − ν)-quantile of the distances ``||z − c||``.

    ``dist2`` ``(N,)`` are *squared* distances (detached); the quantile is taken of their
    square roots, as in Ruff et al. Returns a 0-d float64 tensor on ``dist2``'s device, so the
    training loop can use it in the next step without waiting for the device. ν = 1 gives the
    minimum distance.
    """
    d = dist2.detach().clamp_min(0).sqrt().double()
    return torch.quantile(d, 1.0 - nu)


def radius_quantile(dist2: torch.Tensor, nu: float) -> float:
    """:func:`batch_radius` as a python float (a host read)."""
    return float(batch_radius(dist2, nu))


def fix_centre(c: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Push near-zero coordinates of the centre away from 0 (Ruff et al.; docs/method.md §4).

    Coordinates with ``|c_j| < eps`` become ``−eps`` if negative and ``+eps`` otherwise (an
    exact zero goes to ``+eps``), so a network cannot reach c trivially with zero weights.
    ``c`` ``(d,)`` → new tensor ``(d,)``.
    """
    small = c.abs() < eps
    return torch.where(small, torch.where(c < 0, -eps, eps).to(c.dtype), c)
