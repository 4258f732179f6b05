"""Which settings of a configuration its method uses (what a table may show beside a result).

A method class may answer for itself with a classmethod ``ignored_config_fields(cfg)``;
otherwise the rules below, from the methods' definitions (docs/method.md §4, docs/baselines.md),
apply: the CAE ignores λ, ν and the objective; IAEAD ignores the objective, and ν at λ = 0;
Deep SVDD ignores λ and the initialisation, and ν under the one-class objective.
"""

from __future__ import annotations

from iaead_core.config import TrainConfig
from iaead_core.methods import METHODS
__all__ = ["ignored_fields", "used_nu"]


def used_nu(cfg: TrainConfig) -> float | None:
    """ν as a result should be read against: ``cfg.resolved_nu``, or None where the method
    ignores ν (:func:`ignored_fields`: the CAE, IAEAD at λ = 0, one-class Deep SVDD), so that
    no table shows a ν that changed nothing."""
    return None if "nu" in ignored_fields(cfg) else cfg.resolved_nu


def ignored_fields(cfg: TrainConfig) -> set[str]:
    """The settings of ``cfg`` that its method ignores (see the module docstring).

    A method class may answer for itself with a classmethod ``ignored_config_fields(cfg)``.
    Otherwise: λ is ignored when ``cfg.effective_lam`` does not follow ``cfg.lam``; the
    known rules of IAEAD, CAE and Deep SVDD apply; any other method uses everything.
    """
    hook = getattr(METHODS.get(cfg.method), "ignored_config_fields", None)
    if callable(hook):
        return set(hook(cfg))
    out: set[str] = set()
    if cfg.replace(lam=1.0).effective_lam != 1.0:
        out.add("lam")
    if cfg.method == "iaead":
        out.add("objective")
        if cfg.lam == 0:  # L = L_rec: ν only sets R, which neither trains nor scores
            out.add("nu")
    elif cfg.method == "cae":
        out |= {"lam", "nu", "objective"}
    elif cfg.method == "deep-svdd":
        out |= {"lam", "init"}  # its bias-free LeNet has its own initialisation
        if cfg.objective == "one-class":
            out.add("nu")
    return out
