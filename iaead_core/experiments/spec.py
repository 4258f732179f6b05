"""Experiment specs: the axes of a study, and their expansion into runs.

An experiment is a declarative spec (a TOML file or a Python dict) of *axes*: data sets,
normal classes, ρ values, methods, λ values, ν values, seeds, and any other
:class:`~iaead_core.config.TrainConfig` field or method option. It expands to one run per
combination (the cartesian product), each with a run id that is a hash of the run's full
resolved config (:mod:`iaead_core.experiments.run_ids`). The id names the run folder, so
re-running an experiment finds the runs that already finished and never trains the same config
twice. The built-in specs and :func:`~iaead_core.experiments.builtin_specs.load_spec` are in
:mod:`iaead_core.experiments.builtin_specs`.

TOML layout (every key but ``name`` is optional)::

    name = "my-study"               # folder name (with the preset appended)
    kind = "fig4-lambda"            # table2 | fig2-rho | fig4-lambda | ablation | custom
    preset = "quick"                # quick | paper (see iaead_core.config.PRESETS)
    description = "λ on two digits"
    datasets = ["mnist"]
    classes = [0, 1]                # "all", a list (indices or names), or per data set:
                                    # { mnist = [0, 2], fashion-mnist = "all" }
    rho = [0.1]
    methods = ["iaead", "cae"]      # or "all": every method in iaead_core.methods.METHODS
    lam = [0, 5e-5, 0.5]
    nu = [1.0]
    seeds = 3                       # 3 means seeds 0, 1, 2; or a list such as [0, 7]
    rules = ["latent_mean", "reconstruction"]   # scoring rules to report (default: each
                                                # method's own rule); not a training axis

    [axes]                          # any other TrainConfig field or method option, varied
    init = ["released", "pytorch"]

    [config]                        # fixed settings of every run
    epochs = 10
    max_samples = 1000

    [config.deep-svdd]              # fixed settings of one method's runs only
    warmup_epochs = 5

Settings a method ignores
-------------------------
An axis value that a method ignores does not multiply that method's runs: the CAE ignores λ
and ν, Deep SVDD ignores λ and ``init`` (and ν with its one-class objective), IAEAD ignores ν
when λ = 0 (the SVDD term has no weight, so ν changes neither the weights nor any score), and
only Deep SVDD reads ``objective``. Such a setting is reset to its TrainConfig default in the
run's config and shown as ``None`` in the run's *point* (its axis values), so e.g. a λ grid
with ``methods = ["iaead", "cae"]`` gives one CAE run per (data, seed), drawn as a flat
reference line. A method can declare its own ignored fields with a classmethod
``ignored_config_fields(cfg) -> set[str]``; a method that does neither is assumed to use
every setting (never merging two runs that differ).

Limits
------
A spec is checked before anything is built from it: ``seeds`` is a count of at most
:data:`MAX_SEEDS` (1,000) or a list of at most that many seeds, each in [0, 2**32 − 1]; every
axis must hold a value (``classes = []`` or ``methods = []`` is an error, not 0 runs); and the
number of combinations (the product of the axes' lengths, counted without building one) may be
at most :func:`max_runs` — 100,000, or the setting ``IAEAD_MAX_RUNS`` —, else the error gives
the count and the axes behind it.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from iaead_core.config import MAX_SEED, NUMERIC_RULES, PRESETS, TrainConfig, scaled_config
from iaead_core.data import DATASETS, class_index
from iaead_core.experiments.run_ids import _fields, _method_options, canonical_config, run_id_for
__all__ = ["ExperimentSpec", "PlannedRun", "KINDS", "expand", "method_names", "MAX_SEEDS",
           "MAX_RUNS", "ENV_MAX_RUNS", "max_runs", "check_seeds"]

#: Spec kinds; the kind chooses the report's main view (every report also has Table 2 and 3).
KINDS = ("table2", "fig2-rho", "fig4-lambda", "ablation", "custom")

#: Most seeds one spec may ask for (a count, or the length of a list).
MAX_SEEDS = 1_000
#: Most runs (combinations of the axes) one spec may expand to, unless ``IAEAD_MAX_RUNS`` says
#: otherwise: expanding 100,000 runs takes about half a minute on a 2-core CPU.
MAX_RUNS = 100_000
#: The environment variable that sets the run cap.
ENV_MAX_RUNS = "IAEAD_MAX_RUNS"

_LIST_AXES = ("datasets", "rho", "methods", "lam", "nu", "seeds")
_TOP_KEYS = ("name", "kind", "preset", "description", "classes", "rules", "axes", "config",
             *_LIST_AXES)
# Spec axis → TrainConfig field.
_AXIS_FIELD = {"datasets": "dataset", "rho": "rho", "methods": "method", "lam": "lam",
               "nu": "nu", "seeds": "seed", "classes": "normal_class"}


def method_names() -> list[str]:
    """Every registered method, in registry order (read at call time: the registry grows)."""
    from iaead_core.methods import METHODS  # lazy: loads torch

    return list(METHODS)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def max_runs() -> int:
    """The run cap of a spec: ``$IAEAD_MAX_RUNS`` when set, else :data:`MAX_RUNS`.

    Raises
    ------
    ValueError
        ``IAEAD_MAX_RUNS`` set to something other than a whole number ≥ 1.
    """
    text = os.environ.get(ENV_MAX_RUNS, "").strip().replace("_", "")
    if not text:
        return MAX_RUNS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"the setting {ENV_MAX_RUNS} must be a whole number ≥ 1 (e.g. "
                         f"{MAX_RUNS}); got {os.environ[ENV_MAX_RUNS]!r}. Fix or unset it.")
    return int(text)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_seeds(seeds: Any, field: str = "seeds") -> list[int]:
    """The seeds of a spec: a count ``n`` (→ ``0 … n − 1``) or a list; checked *before* a
    list is built, so ``seeds = 1000000000`` costs nothing.

    Parameters
    ----------
    seeds : int or list of int
    field : str
        How to name the field in an error (``"seeds"``, ``"--seeds"``, ``"Seeds"``).

    Returns
    -------
    list of int

    Raises
    ------
    ValueError
        A count outside 1 … :data:`MAX_SEEDS`, a list longer than that or empty, or a seed
        that is not a whole number in [0, 2**32 − 1].
    """
    if _whole(seeds):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"{field} = {seeds}: give a count from 1 to {MAX_SEEDS:,} (the most "
                             f"seeds a spec may ask for), or a list such as [0, 4, 7]")
        return list(range(seeds))
    values = _as_list(seeds)
    if not values:
        raise ValueError(f"{field} is empty: give a count (3 → seeds 0, 1, 2) or a list such as "
                         f"[0, 4, 7]")
    if len(values) > MAX_SEEDS:
        raise ValueError(f"{field} lists {len(values):,} seeds, more than the {MAX_SEEDS:,} a spec "
                         f"may ask for; give fewer")
    for v in values:
        if not _whole(v) or not 0 <= v <= MAX_SEED:
            raise ValueError(f"{field}: {v!r} is not a seed; each seed is a whole number in "
                             f"[0, {MAX_SEED}]")
    return values


def _check_setting(where: str, name: str, value: Any) -> None:
    """Check one spec value of TrainConfig field ``name`` (a method option passes: its method
    checks it). Raises ``ValueError`` ``"<where>: <the field's rule>"``."""
    rule = NUMERIC_RULES.get(name)
    if rule is None:
        return
    try:
        rule.check(name, value)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


@dataclass
class ExperimentSpec:
    """A study: axes whose cartesian product gives the runs (see the module docstring).

    Attributes
    ----------
    name : str
        Letters, digits, ``-``, ``_`` and ``.``; with the preset it names the experiment folder.
    kind : str
        One of :data:`KINDS`; chooses the report's main view.
    preset : str
        A key of :data:`iaead_core.config.PRESETS`.
    datasets : list of str
    classes : "all", list, or dict data set → ("all" or list)
        Normal classes, by index or name.
    rho, lam, nu : lists of float (``lam``/``nu`` ``None``: the method's default)
    methods : list of str, or "all"
    seeds : list of int
    axes : dict field → list
        Other TrainConfig fields or method options to vary.
    config : dict
        Fixed TrainConfig fields / method options; a value that is a dict under a method's
        name applies to that method only.
    rules : list of str or None
        Scoring rules the report shows (``None``: each method's primary rule).
    description : str
    """

    name: str
    kind: str = "custom"
    preset: str = "quick"
    datasets: list[str] = field(default_factory=lambda: ["mnist"])
    classes: Any = "all"
    rho: list[float] = field(default_factory=lambda: [0.1])
    methods: Any = field(default_factory=lambda: ["iaead"])
    lam: list[float] | None = None
    nu: list[float | None] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    axes: dict[str, list[Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    rules: list[str] | None = None
    description: str = ""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentSpec":
        """Build and validate a spec from a dict (a parsed TOML file or a literal).

        ``seeds`` may be a count (``3`` → ``[0, 1, 2]``); every list axis may be a single
        value. Raises ``ValueError`` naming the offending key and the allowed values.
        """
        if not isinstance(d, dict):
            raise ValueError(f"an experiment spec is a table (dict) of axes, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_TOP_KEYS))
        if unknown:
            raise ValueError(f"unknown spec key(s) {', '.join(unknown)}; allowed: "
                             f"{', '.join(_TOP_KEYS)} (other TrainConfig fields go under [axes] "
                             f"or [config])")
        if "name" not in d:
            raise ValueError("an experiment spec needs a name (it names the experiment folder)")
        for key in ("axes", "config"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise ValueError(f"[{key}] must be a table of settings (in JSON an object), not "
                                 f"{type(d[key]).__name__}")
        seeds = check_seeds(d.get("seeds", [0]))  # before anything is copied or built
        d = copy.deepcopy({k: v for k, v in d.items() if k != "seeds"})
        kw: dict[str, Any] = {"name": d["name"], "seeds": seeds}
        for key in ("kind", "preset", "description", "classes"):
            if key in d:
                kw[key] = d[key]
        for key in ("datasets", "rho", "lam", "nu"):
            if key in d and not (key in ("lam", "nu") and d[key] is None):
                kw[key] = _as_list(d[key])
        if "methods" in d:
            kw["methods"] = "all" if d["methods"] == "all" else _as_list(d["methods"])
        if "rules" in d:
            kw["rules"] = None if d["rules"] is None else _as_list(d["rules"])
        kw["axes"] = {k: _as_list(v) for k, v in (d.get("axes") or {}).items()}
        kw["config"] = dict(d.get("config") or {})
        return cls(**kw).validate()

    def validate(self) -> "ExperimentSpec":
        """Check names and values without touching data; returns ``self``.

        Raises
        ------
        ValueError
            For a bad name, kind, preset, data set, class, method, rule, axis field, seed, an
            empty axis, or more combinations than :func:`max_runs` (the message gives the count).
        """

        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ValueError(f"spec name {self.name!r}: use letters, digits, '-', '_' and '.' "
                             "(it names a folder)")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        for key in ("datasets", "rho", "seeds"):
            if not getattr(self, key):
                raise ValueError(f"axis {key!r} is empty: give at least one value")
        self.seeds = check_seeds(self.seeds)
        self._check_types()
        for ds in self.datasets:
            if ds not in DATASETS:
                raise ValueError(f"unknown data set {ds!r}; choose from {', '.join(DATASETS)}")
        for ds in self.datasets:
            raw = self._raw_classes(ds)
            if not raw:
                raise ValueError(f"classes is empty for data set {ds!r}: give \"all\" or a list "
                                 f"such as [0, 2] (an empty list would be 0 runs)")
            for k in raw:
                class_index(ds, k)  # its message lists the classes
        known = method_names()
        if not self.method_list():
            raise ValueError(f"axis 'methods' is empty: give \"all\" or a list such as "
                             f"[\"iaead\"] (registered: {', '.join(known)})")
        for m in self.method_list():
            if m not in known:
                raise ValueError(f"unknown method {m!r}; registered: {', '.join(known)}")
        if self.rules is not None:
            from iaead_core.methods import SCORE_RULES  # lazy: loads torch

            for r in self.rules:
                if r not in SCORE_RULES:
                    raise ValueError(f"unknown scoring rule {r!r}; choose from {', '.join(SCORE_RULES)}")
        for key in ("lam", "nu"):
            if getattr(self, key) is not None and not getattr(self, key):
                raise ValueError(f"axis {key!r} is empty (leave it out for the method's default)")
        options = {o for m in self.method_list() for o in _method_options(m)}
        fields = set(_fields())
        for name, values in self.axes.items():
            if name in _AXIS_FIELD.values() or name in ("dataset", "method"):
                raise ValueError(f"{name!r} is a top-level axis; set it outside [axes]")
            if name not in fields and name not in options:
                raise ValueError(f"[axes] {name!r} is neither a TrainConfig field nor an option "
                                 f"of the chosen methods")
            if not values:
                raise ValueError(f"[axes] {name!r} is empty")
        for name, value in self.config.items():
            if isinstance(value, dict):
                if name not in known:
                    raise ValueError(f"[config.{name}]: {name!r} is not a registered method")
                bad = set(value) - fields - set(_method_options(name))
            else:
                bad = {name} - fields - options
            if bad:
                raise ValueError(f"[config] {', '.join(sorted(bad))}: not a TrainConfig field or a "
                                 "method option")
        count, factors = self.count_runs()
        cap = max_runs()
        if count > cap:
            raise ValueError(f"experiment {self.name!r} expands to {count:,} runs ({factors}), "
                             f"more than the cap of {cap:,} runs per spec (setting "
                             f"{ENV_MAX_RUNS}); narrow an axis (fewer seeds, classes, methods or "
                             f"values) or split the study")
        return self

    def count_runs(self) -> tuple[int, str]:
        """How many combinations the spec's axes make, counted without building one: an upper
        bound of :func:`expand`'s runs (a method that ignores an axis merges some). Returns
        the count and its factors in words (e.g. ``"20 classes × 5 seeds × 8 methods"``).
        Call it on a validated spec (the class lists are read through the data sets)."""
        classes = sum(len({class_index(ds, k) for k in self._raw_classes(ds)})
                      for ds in self.datasets)
        factors = [(classes, "classes"), (len(self.rho), "ρ values"), (len(self.seeds), "seeds"),
                   (len(self.method_list()), "methods"),
                   (len(self.lam) if self.lam is not None else 1, "λ values"),
                   (len(self.nu) if self.nu is not None else 1, "ν values")]
        factors += [(len(v), f"{k} values") for k, v in self.axes.items()]
        count = math.prod(n for n, _ in factors)
        words = " × ".join(f"{n:,} {what}" for n, what in factors if n != 1 or what == "classes")
        return count, words


    def _check_types(self) -> None:
        """Type and range of every value a run's config takes from the spec, before any is
        used: the axes (``rho``, ``lam``, ``nu``, ``seeds``), ``[axes]`` and ``[config]``
        (a TrainConfig field by :data:`~iaead_core.config.NUMERIC_RULES`), so that
        ``epochs = "x"`` is refused with the field's rule instead of failing in arithmetic.

        Raises
        ------
        ValueError
            ``"[config] epochs: epochs must be a whole number ≥ 1; got 'x' (a str)"``.
        """
        for key in ("datasets", "rho", "seeds") + (("methods",) if self.methods != "all" else ()):
            if not isinstance(getattr(self, key), list):
                raise ValueError(f"axis {key!r} must be a list, not {type(getattr(self, key)).__name__}")
        for key in ("datasets", "methods"):
            values = self.datasets if key == "datasets" else (
                [] if self.methods == "all" else self.methods)
            for v in values:
                if not isinstance(v, str):
                    raise ValueError(f"axis {key!r}: {v!r} is not a name (a string)")
        for key, field_name in (("rho", "rho"), ("lam", "lam"), ("nu", "nu"), ("seeds", "seed")):
            for v in getattr(self, key) or []:
                if key == "nu" and v is None:
                    continue
                _check_setting(f"axis {key!r}", field_name, v)
        if not isinstance(self.axes, dict) or not isinstance(self.config, dict):
            raise ValueError("[axes] and [config] must be tables of settings")
        for name, values in self.axes.items():
            for v in values:
                _check_setting(f"[axes] {name}", name, v)
        for name, value in self.config.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    _check_setting(f"[config.{name}] {k}", k, v)
            else:
                _check_setting(f"[config] {name}", name, value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict that :meth:`from_dict` reads back to an equal spec."""
        return dataclasses.asdict(self)

    def method_list(self) -> list[str]:
        """The methods, with ``"all"`` resolved against the registry."""
        return method_names() if self.methods == "all" else list(self.methods)

    def _raw_classes(self, dataset: str) -> list[Any]:

        c = self.classes
        if isinstance(c, dict):
            if dataset not in c:
                raise ValueError(f"classes has no entry for data set {dataset!r} "
                                 f"(it lists {', '.join(c)})")
            c = c[dataset]
        if c == "all":
            return list(range(len(DATASETS[dataset].classes)))
        return _as_list(c)

    def classes_for(self, dataset: str) -> list[int]:
        """Normal class indices of ``dataset``, in spec order without repeats."""

        out: list[int] = []
        for k in self._raw_classes(dataset):
            i = class_index(dataset, k)
            if i not in out:
                out.append(i)
        return out

    def narrowed(self, preset: str | None = None, seeds: list[int] | None = None,
                 datasets: list[str] | None = None, classes: Any = None,
                 methods: list[str] | None = None) -> "ExperimentSpec":
        """A copy with some axes replaced (the command line's ``--preset``, ``--seeds``,
        ``--dataset``, ``--classes``, ``--methods``). ``None`` keeps an axis.

        A class list given with several data sets applies to each of them. Raises
        ``ValueError`` as :meth:`validate`.
        """
        s = copy.deepcopy(self)
        if preset is not None:
            s.preset = preset
        if seeds is not None:
            s.seeds = list(seeds)
        if datasets is not None:
            if isinstance(s.classes, dict):  # keep per-data-set classes where they exist
                s.classes = {ds: s.classes.get(ds, "all") for ds in datasets}
            s.datasets = list(datasets)
        if classes is not None:
            s.classes = classes
        if methods is not None:
            s.methods = list(methods)
        return s.validate()

    @property
    def folder_name(self) -> str:
        """``<name>-<preset>``: quick and paper runs of one spec live apart."""
        return f"{self.name}-{self.preset}"


# ------------------------------------------------------------------------------- expansion

@dataclass(frozen=True)
class PlannedRun:
    """One run of an expanded experiment.

    Attributes
    ----------
    run_id : str
        See :func:`run_id_for`.
    config : TrainConfig
        Canonical and validated, with the driver's data root and device filled in.
    point : dict
        The run's axis values: ``dataset, normal_class (int), class_name, rho, method, lam, nu,
        seed`` and every ``[axes]`` name; ``None`` where the method ignores that setting.
    """

    run_id: str
    config: TrainConfig
    point: dict[str, Any]

    @property
    def draw_key(self) -> tuple:
        """What fixes the data draw: runs with the same key train on the same images."""
        c = self.config
        return (c.dataset, c.normal_class, c.rho, c.seed, c.max_samples)


def _build_config(preset: str, method: str, settings: dict[str, Any]) -> TrainConfig:
    """TrainConfig from a preset and spec settings (fields and method options). When the
    spec changes ``epochs``, the warm-up and lr step scale with it unless given too."""

    fields = set(_fields())
    options = _method_options(method)
    direct = {k: v for k, v in settings.items() if k in fields}
    extra = dict(direct.pop("extra", None) or {})
    extra.update({k: v for k, v in settings.items() if k in options})
    if extra:
        direct["extra"] = extra
    epochs = direct.pop("epochs", None)
    if "max_samples" in direct and direct["max_samples"] is None:
        direct["max_samples"] = 0  # preset_config reads 0 as "the full set"
    cfg = scaled_config(preset, method, epochs=epochs, **direct)
    cls = None
    try:
        from iaead_core.methods import METHODS  # lazy: loads torch

        cls = METHODS.get(method)
    except ImportError:  # pragma: no cover
        pass
    if cls is not None and callable(getattr(cls, "check_options", None)):
        cls.check_options(cfg.extra or {})
    return cfg


def expand(spec: ExperimentSpec, data_root: str | None = None, device: str = "auto",
           download: bool = False) -> list[PlannedRun]:
    """Expand a spec into its runs: the cartesian product of its axes, one run per distinct
    canonical config.

    Order: data set, class, ρ, seed (so consecutive runs share a data draw), then method,
    λ, ν and the ``[axes]`` in spec order.

    Parameters
    ----------
    spec : ExperimentSpec
    data_root, device, download
        Written into every config (not hashed: the same run on another machine has the same
        id).

    Returns
    -------
    list of PlannedRun
        Unique run ids, in expansion order.

    Raises
    ------
    ValueError
        Naming the combination when a config is invalid (e.g. ``max_samples`` too small for a
        ρ, or a warm-up longer than the run).
    """
    spec.validate()
    axis_names = list(spec.axes)
    plans: dict[str, PlannedRun] = {}
    for ds in spec.datasets:
        combos = itertools.product(spec.classes_for(ds), spec.rho, spec.seeds, spec.method_list(),
                                   spec.lam if spec.lam is not None else [None],
                                   spec.nu if spec.nu is not None else [None],
                                   *spec.axes.values())
        for k, rho, seed, method, lam, nu, *others in combos:
            plan = _plan(spec, ds, k, rho, seed, method, lam, nu, dict(zip(axis_names, others)),
                         dict(data_root=data_root, device=device, download=download))
            plans.setdefault(plan.run_id, plan)  # a repeat: the method ignores that axis
    return list(plans.values())


def _plan(spec: ExperimentSpec, ds: str, k: int, rho: float, seed: int, method: str,
          lam: float | None, nu: float | None, axis_values: dict[str, Any],
          machine: dict[str, Any]) -> PlannedRun:
    """One combination of axis values → its canonical config, run id and point."""

    own = spec.config.get(method)
    settings = {key: v for key, v in spec.config.items() if not isinstance(v, dict)}
    settings.update(own if isinstance(own, dict) else {})
    settings.update(dataset=ds, normal_class=k, rho=rho, seed=seed, **axis_values)
    settings.update({key: v for key, v in (("lam", lam), ("nu", nu)) if v is not None})
    try:
        cfg, ignored = canonical_config(_build_config(spec.preset, method, settings))
        cfg = cfg.replace(**machine, extra={**(cfg.extra or {}), "experiment": spec.name}).validate()
    except (ValueError, TypeError) as e:  # TypeError: a method option of the wrong type
        where = ", ".join([f"{method} on {ds} class {k}", f"rho={rho}", f"seed={seed}"]
                          + [f"{n}={v}" for n, v in (("lam", lam), ("nu", nu)) if v is not None]
                          + [f"{n}={v}" for n, v in axis_values.items()])
        raise ValueError(f"invalid run in experiment {spec.name!r} ({where}): {e}") from None
    point = {"dataset": ds, "normal_class": k, "class_name": DATASETS[ds].classes[k],
             "rho": float(rho), "method": method,
             "lam": None if "lam" in ignored else float(cfg.lam),
             "nu": None if "nu" in ignored else float(cfg.resolved_nu), "seed": int(seed)}
    for name, value in axis_values.items():
        if name in ignored:
            point[name] = None
        else:
            point[name] = getattr(cfg, name) if name in _fields() else (cfg.extra or {}).get(name, value)
    return PlannedRun(run_id_for(cfg), cfg, point)
