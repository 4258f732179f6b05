"""Content-hash run ids: a run's canonical config, its SHA-256, and the run folder's name.

Two configs that train the same model get the same id, so re-running an experiment finds the
runs that already finished and never trains the same config twice. :func:`canonical_config`
resets the settings a method ignores to their TrainConfig default (see
:mod:`iaead_core.experiments.spec`), writes the class as its index and resolves ν.

Run ids
-------
``<method>-<dataset>-<class>-s<seed>-<12 hex>``, the hex being the start of a SHA-256 of the
canonical config: every TrainConfig field except those that do not change the result
(``device``, ``data_root``, ``download``, ``eval_batch_size``, ``preset``) plus the method's
options from ``extra``. Fields added to TrainConfig after this scheme was written, and method
options, enter the hash only when they differ from their default, so adding a setting to the
code (whose default keeps the old behaviour) does not orphan finished runs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
from typing import Any

from iaead_core.config import TrainConfig
from iaead_core.data import class_index
__all__ = ["canonical_config", "config_hash", "run_id_for"]

# Fields that never change a run's result: left out of the hash.
_NOT_HASHED = frozenset({"device", "data_root", "download", "eval_batch_size", "preset", "extra"})
# The TrainConfig fields when this hash scheme was written: always hashed. Fields added later
# are hashed only when they differ from their default (see the module docstring).
_HASHED_V1 = frozenset({
    "dataset", "normal_class", "rho", "method", "lam", "nu", "objective", "epochs",
    "warmup_epochs", "lr", "lr_step", "lr_gamma", "batch_size", "svdd_lr", "svdd_weight_decay",
    "svdd_bias", "width", "latent_dim", "init", "max_samples", "seed"})
_HASH_SCHEME = 1


@functools.lru_cache(maxsize=1)
def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _default(name: str) -> Any:
    f = _fields()[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def _method_options(method: str) -> dict[str, Any]:
    """The method's options (``extra`` keys) → their :class:`Option` objects (empty if none)."""
    from iaead_core.methods import METHODS  # lazy: loads torch

    return dict(getattr(METHODS.get(method), "options", None) or {})


# -------------------------------------------------------------------------- ignored settings

def canonical_config(cfg: TrainConfig) -> tuple[TrainConfig, set[str]]:
    """``cfg`` with every ignored setting reset to its TrainConfig default, the class as its
    index, and ν resolved to the method's default where it is used.

    Returns
    -------
    (TrainConfig, set of str)
        The config to run and hash, and the names of the ignored settings.
    """

    from iaead_core.methods.fields import ignored_fields  # lazy: the methods load torch

    ignored = ignored_fields(cfg)
    changes: dict[str, Any] = {name: _default(name) for name in ignored if name in _fields()}
    if "nu" not in ignored:
        changes["nu"] = float(cfg.resolved_nu)
    changes["normal_class"] = class_index(cfg.dataset, cfg.normal_class)
    return cfg.replace(**changes), ignored


@functools.lru_cache(maxsize=None)
def _hint_kinds(name: str) -> tuple[type, ...]:
    hint = typing.get_type_hints(TrainConfig).get(name)
    args = typing.get_args(hint) or (hint,)
    return tuple(a for a in args if isinstance(a, type))


def _normalise(name: str, value: Any) -> Any:
    """Same value, same JSON: ints in float fields become floats (``nu = 1`` ≡ ``1.0``)."""
    if isinstance(value, int) and not isinstance(value, bool) and float in _hint_kinds(name):
        return float(value)
    return value


def _hash_payload(cfg: TrainConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _fields():
        if name in _NOT_HASHED:
            continue
        value = _normalise(name, getattr(cfg, name))
        if name in _HASHED_V1 or value != _normalise(name, _default(name)):
            out[name] = value
    options = _method_options(cfg.method)
    extra = cfg.extra or {}
    opts = {k: extra[k] for k, o in options.items() if k in extra and extra[k] != o.default}
    if opts:
        out["options"] = opts
    return out


def config_hash(cfg: TrainConfig) -> str:
    """SHA-256 (hex) of the canonical config (see the module docstring).

    Stable across processes, machines and data roots; the same for ``nu=None`` and the
    method's default ν, for ``normal_class`` given by name or index, and for ``1`` and ``1.0``.
    """
    canon, _ = canonical_config(cfg)
    payload = {"scheme": _HASH_SCHEME, "config": _hash_payload(canon)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def run_id_for(cfg: TrainConfig) -> str:
    """Folder name of ``cfg``'s run: ``<method>-<dataset>-<class>-s<seed>-<12 hex>``."""

    k = class_index(cfg.dataset, cfg.normal_class)
    return f"{cfg.method}-{cfg.dataset}-{k}-s{cfg.seed}-{config_hash(cfg)[:12]}"
