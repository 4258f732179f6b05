"""Method registry: one module per method, one line here.

Each method implements :class:`~iaead_core.methods.base.Method`; the engine looks them up by
the names in :data:`METHODS`.
"""

from __future__ import annotations

import torch

from ..config import TrainConfig
from .base import Evaluation, Method, StepLosses
from .deep_svdd import DeepSVDD
from .iaead import IAEAD, CAEBaseline

METHODS: dict[str, type[Method]] = {"iaead": IAEAD, "cae": CAEBaseline, "deep-svdd": DeepSVDD}

#: Every scoring rule a method can report, with a human description (for tables and charts).
SCORE_RULES: dict[str, str] = {
    "latent_mean": "distance to the mean latent (eq. 9)",
    "latent_c": "distance to the centre c (eq. 5)",
    "reconstruction": "reconstruction error (eq. 3)",
    "svdd": "Deep SVDD score ||z − c||² (− R²)",
}


def build_method(cfg: TrainConfig, in_channels: int, device: torch.device | str = "cpu") -> Method:
    """Instantiate the method named by ``cfg.method`` with a freshly initialised model.

    Raises
    ------
    ValueError
        For an unknown method name (the message lists the known ones).
    """
    try:
        cls = METHODS[cfg.method]
    except KeyError:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {', '.join(METHODS)}") from None
    return cls(cfg, in_channels, torch.device(device))


__all__ = ["METHODS", "SCORE_RULES", "build_method", "Method", "Evaluation", "StepLosses",
           "IAEAD", "CAEBaseline", "DeepSVDD"]
