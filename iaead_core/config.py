"""Training configuration, presets, and the one place where settings are validated.

One :class:`TrainConfig` describes a whole run (data draw, method, optimisation, seed); it is
saved with every result. Presets fill in the optimisation settings:

* ``paper`` — docs/method.md §3–4 exactly: the full network (width 64, latent 256), SGD lr 0.1
  halved every 50 epochs, batch 256, 250 epochs, 20 warm-up epochs, the full contaminated set.
  Deep SVDD follows its released code instead: 150 pre-training + 150 training epochs, Adam
  lr 1e-4 dropped ×0.1 after 50 epochs of each phase, weight decay 5e-7.
* ``quick`` — sized for a 2-core CPU (about a minute per run) while still showing the paper's
  effect. It departs from the paper in: a light network (width 16, latent 64 — *not* the
  paper's network), a 3,000-image subsample that keeps ρ, 30 epochs, batch 64, lr 0.1 halved
  every 10 epochs, 5 warm-up epochs. Deep SVDD: 15 + 15 epochs at Adam lr 1e-3.

The five autoencoder baselines (DRAE, RDAE, DAGMM, MemAE, RSRAE; docs/baselines.md) have their own
entries. ``paper`` is the code behind the paper's numbers: E3Outlier's batch, epochs, Adam rate
and initialisation for DRAE (128, 250, 1e-3), RDAE (128, 20, 1e-3), DAGMM (1024, 200, 1e-4,
Keras init), and the reconstructed official settings of MemAE (256, 250, 1e-4) and RSRAE (128,
200, 2.5e-4). ``quick`` keeps each method's loss, optimiser and scores but departs in: the light
CAE (width 16, latent 64; MemAE's own small net is unchanged), 3,000 images, 30 epochs (RDAE
keeps its 20), batch 64 (DAGMM 128, since its mixture is estimated per batch), and Adam 1e-3
instead of 1e-4 for DAGMM and MemAE, so that the few steps a CPU run affords still train them.

This module imports neither torch nor the method modules, so the command line can build its
parser and check its arguments before anything heavy is loaded.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

from iaead_core.data import DATASETS, class_index, min_samples
__all__ = ["TrainConfig", "PRESETS", "preset_config", "METHOD_NAMES", "OBJECTIVES", "DEVICES",
           "INITS", "NumericRule", "NUMERIC_RULES", "MAX_SEED", "MAX_EPOCHS", "MAX_BATCH_SIZE",
           "MAX_EVAL_BATCH_SIZE", "MAX_WIDTH", "MAX_LATENT_DIM", "MAX_SAMPLES", "QUICK_SEEDS",
           "MAX_SEEDS", "default_seeds"]

#: Names of the registered methods, in display order. Kept here (not read from
#: ``iaead_core.methods.METHODS``) so that config and the command line's parser stay free of
#: torch; ``tests/test_config.py`` checks that this list and the registry name the same methods.
METHOD_NAMES = ("iaead", "cae", "deep-svdd", "drae", "rdae", "dagmm", "memae", "rsrae")
OBJECTIVES = ("one-class", "soft-boundary")
DEVICES = ("auto", "cpu", "cuda", "mps")
INITS = ("released", "pytorch", "keras")

#: numpy's legacy seeding (``np.random.seed``, used by the engine) takes 0 ≤ seed < 2**32.
MAX_SEED = _MAX_SEED = 2**32 - 1
#: Sane maxima of the counts (issue 18: a huge value must be refused at once, not exhaust the
#: machine): epochs (the paper trains 250), batch sizes, the network's width (the paper's 64)
#: and code size (256), images per set (the largest pool holds 99,289).
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 16_384
MAX_EVAL_BATCH_SIZE = 65_536
MAX_WIDTH = 512
MAX_LATENT_DIM = 4_096
MAX_SAMPLES = 1_000_000


@dataclass(frozen=True)
class NumericRule:
    """Type and range of one numeric :class:`TrainConfig` field.

    Attributes
    ----------
    kind : {int, float}
        ``int``: a whole number (bool refused); ``float``: any finite real number (int accepted).
    low, high : float or None
        Bounds (None: unbounded on that side); every value must also be finite.
    low_open, high_open : bool
        Whether the bound itself is excluded.
    none_ok : str
        If not empty, ``None`` is allowed and means this (e.g. "the method's default").
    names_ok : bool
        A string is allowed too (a class name; checked against the data set elsewhere).
    why : str
        Why the range is what it is, added to the error (e.g. BatchNorm's need of two images).
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none_ok: str = ""
    names_ok: bool = False
    why: str = ""

    def allowed(self) -> str:
        """The allowed values in words, e.g. ``"a finite number in (0, 0.5)"``."""
        what = "a whole number" if self.kind is int else "a finite number"
        num = lambda x: str(int(x)) if float(x).is_integer() else f"{x:g}"  # noqa: E731
        if self.low is not None and self.high is not None:
            rng = (f" in {'(' if self.low_open else '['}{num(self.low)}, {num(self.high)}"
                   f"{')' if self.high_open else ']'}")
        elif self.low is not None:
            rng = f" {'>' if self.low_open else '≥'} {num(self.low)}"
        elif self.high is not None:
            rng = f" {'<' if self.high_open else '≤'} {num(self.high)}"
        else:
            rng = ""
        text = what + rng
        if self.names_ok:
            text += ", or a class name"
        if self.none_ok:
            text += f", or None ({self.none_ok})"
        return text

    def check(self, name: str, value: Any) -> None:
        """Raise ``ValueError`` naming ``name`` and :meth:`allowed` unless ``value`` fits."""
        if value is None and self.none_ok:
            return
        if isinstance(value, str) and self.names_ok:
            return
        ok_type = (isinstance(value, numbers.Integral) if self.kind is int
                   else isinstance(value, numbers.Real)) and not isinstance(value, bool)
        if not ok_type:
            kind = type(value).__name__
            raise ValueError(f"{name} must be {self.allowed()}; got {value!r} (a {kind})")
        v = float(value)
        ok = math.isfinite(v)
        if ok and self.low is not None:
            ok = v > self.low if self.low_open else v >= self.low
        if ok and self.high is not None:
            ok = v < self.high if self.high_open else v <= self.high
        if not ok:
            raise ValueError(f"{name} must be {self.allowed()}; got {value!r}"
                             + (f" ({self.why})" if self.why else ""))


#: The rule of every numeric field of :class:`TrainConfig` (``TrainConfig.validate`` applies
#: them; a test fails for a numeric field that has none).
NUMERIC_RULES: dict[str, NumericRule] = {
    "normal_class": NumericRule(int, low=0, names_ok=True),
    "rho": NumericRule(float, low=0.0, high=0.5, low_open=True, high_open=True),
    "lam": NumericRule(float, low=0.0),
    "nu": NumericRule(float, low=0.0, high=1.0, low_open=True,
                      none_ok="the method's default: 1 for IAEAD, 0.1 for Deep SVDD"),
    "epochs": NumericRule(int, low=1, high=MAX_EPOCHS),
    "warmup_epochs": NumericRule(int, low=0, high=MAX_EPOCHS),
    "lr": NumericRule(float, low=0.0, low_open=True),
    "lr_step": NumericRule(int, low=1, high=MAX_EPOCHS),
    "lr_gamma": NumericRule(float, low=0.0, high=1.0, low_open=True),
    "batch_size": NumericRule(int, low=2, high=MAX_BATCH_SIZE,
                              why="BatchNorm normalises over a batch, so it needs 2 images or "
                                  "more"),
    "svdd_lr": NumericRule(float, low=0.0, low_open=True),
    "svdd_weight_decay": NumericRule(float, low=0.0),
    "width": NumericRule(int, low=1, high=MAX_WIDTH),
    "latent_dim": NumericRule(int, low=1, high=MAX_LATENT_DIM),
    "max_samples": NumericRule(int, low=1, high=MAX_SAMPLES, none_ok="the full set"),
    "seed": NumericRule(int, low=0, high=_MAX_SEED),
    "eval_batch_size": NumericRule(int, low=1, high=MAX_EVAL_BATCH_SIZE),
}

_CHOICES: dict[str, tuple[str, ...]] = {"method": METHOD_NAMES, "objective": OBJECTIVES,
                                        "device": DEVICES, "init": INITS}


@dataclass
class TrainConfig:
    """Every setting of one run (saved as ``config.json`` in the run folder).

    Attributes
    ----------
    dataset, normal_class, rho, max_samples, data_root, download
        The contaminated one-vs-all set (docs/method.md §5); see
        :func:`iaead_core.data.make_contaminated`. ``max_samples=None`` is the full set.
    method : str
        One of :data:`METHOD_NAMES`.
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
        SGD schedule (IAEAD/CAE): lr multiplied by ``lr_gamma`` every ``lr_step`` epochs. The
        five autoencoder baselines (drae, rdae, dagmm, memae, rsrae) use ``lr`` as their Adam
        learning rate, without a schedule.
    svdd_lr, svdd_weight_decay, svdd_bias
        Deep SVDD's Adam lr and weight decay; ``svdd_bias=True`` makes the *unregularised*
        net (biases, affine BatchNorm) that collapses.
    width, latent_dim, init
        CAE size (64 / 256 in the paper) and initialisation: "released" (the released code's:
        IAEAD's Xavier-0.02; for memae the official MemAE init), "pytorch" (torch's defaults,
        as E3Outlier's DRAE/RDAE) or "keras" (Glorot-uniform and Keras BatchNorm, E3Outlier's
        DAGMM). memae ignores width and latent_dim (its network is fixed).
    seed : int
        Seeds the data draw, torch, numpy and random; 0 ≤ seed < 2**32.
    device : {"auto", "cpu", "cuda", "mps"}
    eval_batch_size : int
        Batch size of the per-epoch evaluation pass.
    preset : str
        Name of the preset this config came from (informational).
    extra : dict
        Method options (e.g. ``rdae_prox``, ``dagmm_energy``), each checked by the method; see
        ``iaead_core.methods.method_info(name).options``.

    The allowed range of every numeric field is in :data:`NUMERIC_RULES`.
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
        """Check every field's type and range, and the rules that tie fields together.

        Runs before any data is read or any model built, so a bad value fails at once (not
        epochs later). Returns ``self``.

        Raises
        ------
        ValueError
            With a message naming the field, the allowed values or range, and the value given:
            a numeric field of the wrong type, non-finite (NaN, ±inf) or out of range
            (:data:`NUMERIC_RULES`); an unknown method, objective, device, init or data set;
            a class the data set does not have; warm-up ≥ epochs for Deep SVDD;
            ``max_samples`` too small to hold one anomaly at ρ.
        """
        for name, rule in NUMERIC_RULES.items():
            rule.check(name, getattr(self, name))
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        for name in ("svdd_bias", "download"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if not isinstance(self.preset, str) or not self.preset:
            raise ValueError(f"preset must be a preset name ({', '.join(PRESETS)} or 'custom'); "
                             f"got {self.preset!r}")
        if self.data_root is not None and not isinstance(self.data_root, (str, os.PathLike)):
            raise ValueError(f"data_root must be a folder path or None; got {self.data_root!r}")
        if not isinstance(self.extra, dict):
            raise ValueError(f"extra must be a dict; got {self.extra!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        try:
            class_index(self.dataset, self.normal_class)
        except ValueError as e:  # its message lists the classes; name the field first
            text = str(e)
            raise ValueError(f"normal_class: {text[:1].lower()}{text[1:]}") from None
        if self.method == "deep-svdd" and self.warmup_epochs >= self.epochs:
            raise ValueError(f"deep-svdd needs warmup_epochs (pre-training) < epochs; got "
                             f"warmup_epochs={self.warmup_epochs}, epochs={self.epochs}")
        if self.max_samples is not None and int(self.max_samples * self.rho) < 1:
            raise ValueError(f"max_samples={self.max_samples} is too small for rho={self.rho}: "
                             f"it would hold no anomaly; the minimum is {min_samples(self.rho)}")
        return self

    @property
    def resolved_nu(self) -> float:
        """ν actually used: the given value, or 0.1 for Deep SVDD and 1.0 for IAEAD/CAE."""
        if self.nu is not None:
            return self.nu
        return 0.1 if self.method == "deep-svdd" else 1.0

    @property
    def effective_lam(self) -> float | None:
        """λ actually used: 0 for ``cae`` (docs/method.md §2: λ = 0 is the CAE), ``None`` for
        ``deep-svdd`` and the other baselines, which have no λ of eq. (6) (their own weights
        are method options in ``extra``)."""
        if self.method == "cae":
            return 0.0
        return self.lam if self.method == "iaead" else None

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


#: Baselines' settings (docs/baselines.md §1–6): E3Outlier's code for DRAE, RDAE and DAGMM, the
#: reconstructed official settings for MemAE and RSRAE; each uses ``lr`` as its Adam rate.
_BASELINES_PAPER = {
    "drae": dict(epochs=250, warmup_epochs=0, batch_size=128, lr=1e-3, init="pytorch"),
    "rdae": dict(epochs=20, warmup_epochs=0, batch_size=128, lr=1e-3, init="pytorch"),
    "dagmm": dict(epochs=200, warmup_epochs=0, batch_size=1024, lr=1e-4, init="keras"),
    "memae": dict(epochs=250, warmup_epochs=0, batch_size=256, lr=1e-4, init="released"),
    "rsrae": dict(epochs=200, warmup_epochs=0, batch_size=128, lr=2.5e-4, init="pytorch"),
}
#: CPU-sized baselines (see the module docstring for how they depart from ``paper``).
_BASELINES_QUICK = {
    "drae": dict(epochs=30, warmup_epochs=0, batch_size=64, lr=1e-3, init="pytorch"),
    "rdae": dict(epochs=20, warmup_epochs=0, batch_size=64, lr=1e-3, init="pytorch"),
    "dagmm": dict(epochs=30, warmup_epochs=0, batch_size=128, lr=1e-3, init="keras"),
    "memae": dict(epochs=30, warmup_epochs=0, batch_size=64, lr=1e-3, init="released"),
    "rsrae": dict(epochs=30, warmup_epochs=0, batch_size=64, lr=2.5e-4, init="pytorch"),
}

#: Seeds a study at the ``quick`` preset averages by default (the lab's λ page, the
#: Experiments page's custom study and the quick ablation): one quick run's AUROC moves with
#: the seed and even with the CPU's thread count (docs/method.md, "Stability"), so a single
#: seed is not what a comparison should rest on.
QUICK_SEEDS = 3
#: The most seeds one ``train`` command or one Train-page comparison runs per method.
MAX_SEEDS = 10


def default_seeds(preset: str) -> int:
    """How many seeds a single setting is trained with by default: :data:`QUICK_SEEDS` at the
    ``quick`` preset (one quick run's AUROC moves by more than the differences it is read
    for, docs/method.md §11, so the command line and the lab's Train page report the mean ±
    std over seeds), one at ``paper`` (hours per run on a CPU). Any other name gives 1; never
    raises."""
    return QUICK_SEEDS if preset == "quick" else 1

#: Optimisation settings per preset; entries named after a method override for that method.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(epochs=250, warmup_epochs=20, lr=0.1, lr_step=50, lr_gamma=0.5, batch_size=256,
                  width=64, latent_dim=256, max_samples=None,
                  **{"deep-svdd": dict(epochs=300, warmup_epochs=150, svdd_lr=1e-4, lr_step=50)},
                  **_BASELINES_PAPER),
    "quick": dict(epochs=30, warmup_epochs=5, lr=0.1, lr_step=10, lr_gamma=0.5, batch_size=64,
                  width=16, latent_dim=64, max_samples=3000,
                  **{"deep-svdd": dict(epochs=30, warmup_epochs=15, svdd_lr=1e-3, lr_step=10)},
                  **_BASELINES_QUICK),
}


def preset_config(preset: str = "quick", method: str = "iaead", **overrides: Any) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from a preset, then apply ``overrides``.

    Parameters
    ----------
    preset : {"paper", "quick"}
    method : str
        One of :data:`METHOD_NAMES`.
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


def scaled_config(preset: str, method: str, epochs: int | None = None, **overrides: Any) -> TrainConfig:
    """:func:`~iaead_core.config.preset_config` with the number of epochs changed and the
    warm-up (IAEAD) / pre-training (Deep SVDD) scaled in proportion, so a shortened run keeps
    its phases (quick IAEAD: 5 of 30 warm-up epochs → 1 of 4). The warm-up stays ≥ 1 and,
    for Deep SVDD, < epochs.

    Raises ValueError as :func:`preset_config` (``epochs`` of the wrong type or out of range
    too, before anything is computed from it).
    """
    if epochs is None:
        return preset_config(preset, method, **overrides)
    NUMERIC_RULES["epochs"].check("epochs", epochs)
    base = preset_config(preset, method)
    warm = base.warmup_epochs * epochs / base.epochs
    warm = max(1, int(round(warm)))
    if method == "deep-svdd":
        warm = min(warm, epochs - 1)
        if epochs < 2:
            raise ValueError("Deep SVDD needs at least 2 epochs (pre-training, then training).")
    overrides.setdefault("warmup_epochs", warm)
    overrides.setdefault("lr_step", max(1, round(base.lr_step * epochs / base.epochs)))
    return preset_config(preset, method, epochs=epochs, **overrides)
