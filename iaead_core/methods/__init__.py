"""Method registry: one module per method, one line here.

Each method implements :class:`~iaead_core.methods.base.Method`; the engine looks them up by
the names in :data:`METHODS`. Titles, one-sentence descriptions, scoring rules and options come
from the classes themselves (:func:`method_info`), so the CLI help and the lab show the same
text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from iaead_core.config import TrainConfig
from iaead_core.methods.base import Evaluation, Method, Option, StepLosses
from iaead_core.methods.dagmm import DAGMM
from iaead_core.methods.deep_svdd import DeepSVDD
from iaead_core.methods.drae import DRAE
from iaead_core.methods.iaead import CAEBaseline, IAEAD
from iaead_core.methods.memae import MemAE
from iaead_core.methods.rdae import RDAE
from iaead_core.methods.rsrae import RSRAE
#: The project's first three methods, then the paper's other baselines in its table order.
METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (IAEAD, CAEBaseline, DeepSVDD, DRAE, RDAE, DAGMM, MemAE, RSRAE)
}

#: Every scoring rule a method can report, with a human description (for tables and charts).
SCORE_RULES: dict[str, str] = {
    "latent_mean": "distance to the mean latent (eq. 9)",
    "latent_c": "distance to the centre c (eq. 5)",
    "reconstruction": "reconstruction error (eq. 3)",
    "svdd": "Deep SVDD score ||z − c||² (− R²)",
    "energy": "DAGMM sample energy: negative log-density under the fitted mixture",
    "residual_norm": "MemAE test error: mean over pixels of the residual's norm",
    "cosine": "RSRAE score: minus the cosine similarity of image and reconstruction",
}


@dataclass(frozen=True)
class MethodInfo:
    """What a user needs to know about a method, without building it.

    Attributes
    ----------
    name : registry key (``--method`` value); title : display name; description : one sentence;
    primary_score : the rule the method is judged by; score_rules : every rule it reports;
    options : ``TrainConfig.extra`` keys → :class:`~iaead_core.methods.base.Option`;
    code_activation : what bounds the latent code (see :class:`~iaead_core.methods.base.Method`).
    """

    name: str
    title: str
    description: str
    primary_score: str
    score_rules: tuple[str, ...]
    options: dict[str, Option]
    code_activation: str


def method_info(name: str | None = None) -> MethodInfo | list[MethodInfo]:
    """Description of one method, or of every method in registry order when ``name`` is None.

    Raises
    ------
    ValueError
        For an unknown method name (the message lists the known ones).
    """
    if name is None:
        return [method_info(n) for n in METHODS]
    try:
        cls = METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None
    return MethodInfo(cls.name, cls.title, cls.description, cls.primary_score,
                      tuple(cls.score_rules), dict(cls.options), cls.code_activation)


def build_method(cfg: TrainConfig, in_channels: int, device: torch.device | str = "cpu") -> Method:
    """Instantiate the method named by ``cfg.method`` with a freshly initialised model.

    Raises
    ------
    ValueError
        For an unknown method name (the message lists the known ones) or a bad method option.
    """
    try:
        cls = METHODS[cfg.method]
    except KeyError:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {', '.join(METHODS)}") from None
    return cls(cfg, in_channels, torch.device(device))


__all__ = ["METHODS", "SCORE_RULES", "MethodInfo", "method_info", "build_method", "Method",
           "Evaluation", "StepLosses", "Option", "IAEAD", "CAEBaseline", "DeepSVDD", "DRAE",
           "RDAE", "DAGMM", "MemAE", "RSRAE"]
