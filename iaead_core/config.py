"""Training configuration and presets.

One :class:`TrainConfig` describes a whole run (data draw, method, optimisation, seed); it is
saved with every result. Presets fill in the optimisation settings:

* ``paper`` — METHOD.md §3–4 exactly: the full network (width 64, latent 256), SGD lr 0.1
  halved every 50 epochs, batch 256, 250 epochs, 20 warm-up epochs, the full contaminated set.
  Deep SVDD follows its released code instead: 150 pre-training + 150 training epochs, Adam
  lr 1e-4 dropped ×0.1 after 50 epochs of each phase, weight decay 5e-7.
* ``quick`` — sized for a 2-core CPU (about a minute per run) while still showing the paper's
  effect. It departs from the paper in: a light network (width 16, latent 64 — *not* the
  paper's network), a 3,000-image subsample that keeps ρ, 30 epochs, batch 64, lr 0.1 halved
  every 10 epochs, 5 warm-up epochs. Deep SVDD: 15 + 15 epochs at Adam lr 1e-3.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig", "PRESETS", "preset_config", "METHOD_NAMES"]

METHOD_NAMES = ("iaead", "cae", "deep-svdd")
OBJECTIVES = ("one-class", "soft-boundary")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class TrainConfig:
    """Every setting of one run (saved as ``config.json`` in the run folder).

    Attributes
    ----------
    dataset, normal_class, rho, max_samples, data_root, download
        The contaminated one-vs-all set (METHOD.md §5); see :func:`iaead_core.data.make_contaminated`.
    method : {"iaead", "cae", "deep-svdd"}
    lam : float
        λ of eq. (6)/(8), ≥ 0 (paper's best 5e-5). Ignored by ``cae`` (always 0) and ``deep-svdd``.
    nu : float or None
        ν in (0, 1] of eq. (7); ``None`` means the method's default (IAEAD: 1, as in the paper;
        Deep SVDD: 0.1, as in Ruff et al.).
    objective : {"one-class", "soft-boundary"}
        Deep SVDD's objective (ignored by IAEAD, which is soft-boundary by eq. 7).
    epochs, warmup_epochs
        Total epochs; IAEAD's warm-up without the SVDD term (c is fixed at its end), or Deep
        SVDD's autoencoder pre-training epochs (included in ``epochs``).
    lr, lr_step, lr_gamma, batch_size
        SGD schedule (IAEAD/CAE): lr multiplied by ``lr_gamma`` every ``lr_step`` epochs.
    svdd_lr, svdd_weight_decay, svdd_bias
        Deep SVDD's Adam lr and weight decay; ``svdd_bias=True`` makes the *unregularised*
        net (biases, affine BatchNorm) that collapses.
    width, latent_dim, init
        CAE size (64 / 256 in the paper) and initialisation ("released" or "pytorch").
    seed : int
        Seeds the data draw, torch, numpy and random.
    device : {"auto", "cpu", "cuda", "mps"}
    eval_batch_size : int
        Batch size of the per-epoch evaluation pass.
    preset : str
        Name of the preset this config came from (informational).
    """

    dataset: str = "mnist"
    normal_class: int | str = 0
    rho: float = 0.1
    method: str = "iaead"
    lam: float = 5e-5
    nu: float | None = None
    objective: str = "one-class"
    epochs: int = 250
    warmup_epochs: int = 20
    lr: float = 0.1
    lr_step: int = 50
    lr_gamma: float = 0.5
    batch_size: int = 256
    svdd_lr: float = 1e-4
    svdd_weight_decay: float = 5e-7
    svdd_bias: bool = False
    width: int = 64
    latent_dim: int = 256
    init: str = "released"
    max_samples: int | None = None
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    download: bool = True
    eval_batch_size: int = 1024
    preset: str = "custom"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "TrainConfig":
        """Check ranges and names; returns ``self``.

        Raises
        ------
        ValueError
            With a message naming the allowed values (unknown method, objective or device; ρ
            outside (0, 0.5); ν outside (0, 1]; λ < 0; epochs < 1; warm-up ≥ epochs for Deep
            SVDD; non-positive sizes or learning rates).
        """
        if self.method not in METHOD_NAMES:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHOD_NAMES)}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if not 0.0 < self.rho < 0.5:
            raise ValueError(f"rho (anomaly ratio) must be in the open interval (0, 0.5), got {self.rho}")
        if self.nu is not None and not 0.0 < self.nu <= 1.0:
            raise ValueError(f"nu must be in (0, 1], got {self.nu}")
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")
        if self.epochs < 1 or self.warmup_epochs < 0:
            raise ValueError("epochs must be >= 1 and warmup_epochs >= 0")
        if self.method == "deep-svdd" and self.warmup_epochs >= self.epochs:
            raise ValueError("deep-svdd needs warmup_epochs (pre-training) < epochs")
        if min(self.batch_size, self.width, self.latent_dim, self.lr_step, self.eval_batch_size) < 1:
            raise ValueError("batch_size, width, latent_dim, lr_step and eval_batch_size must be >= 1")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max_samples must be a positive number of images (or 0 / None for "
                             f"the full set), got {self.max_samples}")
        if self.lr <= 0 or self.svdd_lr <= 0:
            raise ValueError("learning rates must be > 0")
        return self

    @property
    def resolved_nu(self) -> float:
        """ν actually used: the given value, or 0.1 for Deep SVDD and 1.0 for IAEAD/CAE."""
        if self.nu is not None:
            return self.nu
        return 0.1 if self.method == "deep-svdd" else 1.0

    @property
    def effective_lam(self) -> float | None:
        """λ actually used: 0 for ``cae`` (METHOD.md §2: λ = 0 is the CAE), ``None`` for
        ``deep-svdd``, which has no reconstruction term to weigh against."""
        return {"cae": 0.0, "deep-svdd": None}.get(self.method, self.lam)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored (older/newer run folders)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


#: Optimisation settings per preset; ``deep-svdd`` entries override for that method.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(epochs=250, warmup_epochs=20, lr=0.1, lr_step=50, lr_gamma=0.5, batch_size=256,
                  width=64, latent_dim=256, max_samples=None,
                  **{"deep-svdd": dict(epochs=300, warmup_epochs=150, svdd_lr=1e-4, lr_step=50)}),
    "quick": dict(epochs=30, warmup_epochs=5, lr=0.1, lr_step=10, lr_gamma=0.5, batch_size=64,
                  width=16, latent_dim=64, max_samples=3000,
                  **{"deep-svdd": dict(epochs=30, warmup_epochs=15, svdd_lr=1e-3, lr_step=10)}),
}


def preset_config(preset: str = "quick", method: str = "iaead", **overrides: Any) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from a preset, then apply ``overrides``.

    Parameters
    ----------
    preset : {"paper", "quick"}
    method : {"iaead", "cae", "deep-svdd"}
    **overrides
        Any :class:`TrainConfig` field; ``None`` values are ignored so CLI defaults can pass
        through, and ``max_samples=0`` means the full set.

    Raises
    ------
    ValueError
        For an unknown preset, an unknown field, or a value :meth:`TrainConfig.validate` rejects.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    settings = {k: v for k, v in PRESETS[preset].items() if k not in METHOD_NAMES}
    settings.update(PRESETS[preset].get(method, {}))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if settings.get("max_samples") == 0:  # 0 asks for the full set (None is taken as "unset")
        settings["max_samples"] = None
    return TrainConfig(method=method, preset=preset, **settings).validate()
