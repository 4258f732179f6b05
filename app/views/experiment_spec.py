"""An experiment's spec as the Experiments page edits it, without Streamlit: the experiments
folder and its saved specs, the built-in specs offered as starting points, the page's fields
(:data:`FIELDS`) parsed into a validated :class:`~iaead_core.experiments.ExperimentSpec`
(:func:`spec_from_fields`, with the ``[axes]`` / ``[config]`` TOML of its last field) and a
spec written back into fields (:func:`fields_from_spec`), and the spec a page starts from
(:func:`base_spec`).
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from iaead_core.config import QUICK_SEEDS
from iaead_core.evaluation.analysis import format_lambda
from iaead_core.experiments import (BUILTIN_SPECS, ExperimentFolder, ExperimentSpec, builtin_spec,
                                    resolve_experiments_root)
from iaead_core.experiments.spec import check_seeds

__all__ = ["experiments_root", "saved_experiments", "fields_from_spec", "spec_from_fields",
           "parse_floats", "parse_classes", "parse_seeds", "toml_text", "FIELDS", "BUILTINS",
           "base_spec", "base_description", "figure_missing_reason"]

#: Built-in specs offered as starting points (name → description).
BUILTINS = dict(BUILTIN_SPECS)
#: The page's fields (widget values) that describe a spec.
FIELDS = ("name", "kind", "preset", "datasets", "classes", "rho", "methods", "lam", "nu",
          "seeds", "rules", "epochs", "max_samples", "more")


def experiments_root() -> Path:
    """The experiments folder (``$IAEAD_EXPERIMENTS_DIR`` or ``./experiments``), absolute."""
    return resolve_experiments_root().resolve()


def saved_experiments(root: str | os.PathLike | None = None) -> list[str]:
    """Folder names under the experiments root that hold a saved spec, newest first."""
    base = Path(root) if root is not None else experiments_root()
    try:
        found = [d for d in base.iterdir() if (d / "spec.json").is_file()]
    except OSError:  # no experiments root yet
        return []
    return [d.name for d in sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)]


# ------------------------------------------------------------------------ spec ↔ fields

def parse_floats(text: str, name: str) -> list[float] | None:
    """``"0, 5e-5, 0.5"`` → ``[0.0, 5e-05, 0.5]``; blank → None (the method's default).

    Raises
    ------
    ValueError
        Naming the field and the entry that is not a number.
    """
    parts = [p for p in re.split(r"[,\s;]+", text or "") if p]
    if not parts:
        return None
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{name}: {p!r} is not a number (write e.g. 0, 5e-5, 0.5)") from None
        if not math.isfinite(v):
            raise ValueError(f"{name}: {p!r} is not a finite number")
        out.append(v)
    return out


def _class_items(text: str) -> str | list[Any]:
    text = text.strip()
    if text.lower() == "all":
        return "all"
    items = [p.strip() for p in re.split(r"[,\s]+", text) if p.strip()]
    if not items:
        raise ValueError("normal classes: give 'all' or a list such as 0, 2, 8")
    return [int(p) if p.isdigit() else p for p in items]


def parse_classes(text: str) -> str | list[Any] | dict[str, Any]:
    """Normal classes: ``all``; ``0, 2, 8`` (indices or names); or per data set,
    ``mnist: 0, 2, 8; fashion-mnist: all``.

    Raises
    ------
    ValueError
        For an empty entry or a data set written twice.
    """
    text = (text or "").strip()
    if ":" not in text:
        return _class_items(text)
    out: dict[str, Any] = {}
    for part in [p for p in text.split(";") if p.strip()]:
        if ":" not in part:
            raise ValueError(f"normal classes: {part.strip()!r} names no data set; write "
                             "e.g. 'mnist: 0, 2; fashion-mnist: all'")
        ds, items = part.split(":", 1)
        ds = ds.strip()
        if ds in out:
            raise ValueError(f"normal classes: {ds!r} is given twice")
        out[ds] = _class_items(items)
    return out


def parse_seeds(text: str) -> int | list[int]:
    """``3`` → 3 seeds (0, 1, 2); ``0, 4, 7`` → those seeds; at most
    :data:`~iaead_core.experiments.spec.MAX_SEEDS` (checked before any list of seeds is built).

    Raises
    ------
    ValueError
        For anything but whole numbers, a count over the maximum, or a seed out of range.
    """
    parts = [p for p in re.split(r"[,\s;]+", (text or "").strip()) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"seeds: give a count (3 → seeds 0, 1, 2) or a list such as 0, 4, 7; "
                         f"got {text[:40]!r}")
    seeds = int(parts[0]) if len(parts) == 1 else [int(p) for p in parts]
    check_seeds(seeds, "seeds")
    return seeds


def _classes_text(classes: Any) -> str:
    def items(c: Any) -> str:
        return "all" if c == "all" else ", ".join(str(k) for k in c)
    if isinstance(classes, dict):
        return "; ".join(f"{ds}: {items(c)}" for ds, c in classes.items())
    return items(classes)


def _seeds_text(seeds: list[int]) -> str:
    return str(len(seeds)) if list(seeds) == list(range(len(seeds))) else ", ".join(map(str, seeds))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, int) else repr(float(v))
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for these simple values
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {v!r} as a TOML value")


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    """``{"axes": {...}, "config": {...}}`` as TOML tables; a dict value under ``config`` is a
    method's own table (``[config.deep-svdd]``). None values are left out (TOML has none)."""
    out = []
    for name, table in tables.items():
        plain = {k: v for k, v in (table or {}).items() if v is not None and not isinstance(v, dict)}
        nested = {k: v for k, v in (table or {}).items() if isinstance(v, dict)}
        if plain:
            out.append(f"[{name}]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in plain.items()))
        for sub, values in nested.items():
            body = {k: v for k, v in values.items() if v is not None}
            out.append(f"[{name}.{sub}]\n" + "\n".join(f"{k} = {_toml_value(v)}" for k, v in body.items()))
    return "\n\n".join(out)


def fields_from_spec(spec: ExperimentSpec) -> dict[str, Any]:
    """The page's field values (:data:`FIELDS`) that give back ``spec``."""
    config = dict(spec.config)
    epochs = config.pop("epochs", None)
    max_samples = config.pop("max_samples", None)
    return {
        "name": spec.name, "kind": spec.kind, "preset": spec.preset,
        "datasets": list(spec.datasets), "classes": _classes_text(spec.classes),
        "rho": ", ".join(f"{v:g}" for v in spec.rho), "methods": spec.method_list(),
        "lam": "" if spec.lam is None else ", ".join(format_lambda(v) for v in spec.lam),
        "nu": "" if spec.nu is None else ", ".join(f"{v:g}" for v in spec.nu if v is not None),
        "seeds": _seeds_text(spec.seeds), "rules": list(spec.rules or []),
        "epochs": None if epochs is None else int(epochs),
        "max_samples": None if max_samples is None else int(max_samples),
        "more": toml_text({"axes": spec.axes, "config": config}),
    }


def spec_from_fields(f: dict[str, Any], description: str = "") -> ExperimentSpec:
    """A validated spec from the page's fields (:data:`FIELDS`).

    ``epochs`` / ``max_samples`` None keep the preset's; ``more`` is TOML with ``[axes]`` and
    ``[config]`` tables (any other TrainConfig field or method option).

    Raises
    ------
    ValueError
        Naming the field and what is wrong (an unknown data set, class, method, a value out of
        range, invalid TOML, ...).
    """
    if not f.get("methods"):
        raise ValueError("methods: choose at least one method")
    if not f.get("datasets"):
        raise ValueError("data sets: choose at least one data set")
    try:
        more = tomllib.loads(f.get("more") or "")
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"more axes and settings: not valid TOML ({e})") from None
    unknown = sorted(set(more) - {"axes", "config"})
    if unknown:
        raise ValueError(f"more axes and settings: only [axes] and [config] tables go here, "
                         f"not {', '.join(unknown)}")
    config = dict(more.get("config") or {})
    if f.get("epochs") is not None:
        config["epochs"] = int(f["epochs"])
    if f.get("max_samples") is not None:
        config["max_samples"] = int(f["max_samples"])
    d: dict[str, Any] = {
        "name": (f.get("name") or "").strip(), "kind": f.get("kind", "custom"),
        "preset": f.get("preset", "quick"), "datasets": list(f["datasets"]),
        "classes": parse_classes(f.get("classes", "all")),
        "rho": parse_floats(f.get("rho", ""), "ρ") or [],
        "methods": list(f["methods"]), "seeds": parse_seeds(f.get("seeds", "1")),
        "axes": dict(more.get("axes") or {}), "config": config, "description": description}
    for key, title in (("lam", "λ"), ("nu", "ν")):
        values = parse_floats(f.get(key, ""), title)
        if values is not None:
            d[key] = values
    if f.get("rules"):
        d["rules"] = list(f["rules"])
    if not d["rho"]:
        raise ValueError("ρ: give at least one anomaly ratio, e.g. 0.1")
    return ExperimentSpec.from_dict(d)


def base_spec(base: str, preset: str, root: str | os.PathLike | None = None) -> ExperimentSpec:
    """The spec a page starts from: a built-in at ``preset``, ``"custom"`` (IAEAD on MNIST
    class 0; :data:`~iaead_core.config.QUICK_SEEDS` seeds at quick scale, one at paper), or a saved experiment folder's spec (at its own preset).

    Raises
    ------
    ValueError
        An unknown built-in, or a saved spec that cannot be read.
    """
    if base in BUILTINS:
        return builtin_spec(base, preset)
    if base == "custom":
        return ExperimentSpec.from_dict({"name": "my-study", "preset": preset,
                                         "datasets": ["mnist"], "classes": [0], "rho": [0.1],
                                         "methods": ["iaead"],
                                         "seeds": QUICK_SEEDS if preset == "quick" else 1})
    folder = ExperimentFolder((Path(root) if root else experiments_root()) / base)
    spec = folder.saved_spec()
    if spec is None:
        raise ValueError(f"{folder.dir} holds no saved spec")
    return spec


_FIELD_TITLES = {"kind": "kind", "datasets": "data sets", "classes": "classes", "rho": "ρ",
                 "methods": "methods", "lam": "λ", "nu": "ν", "seeds": "seeds",
                 "rules": "scoring rules", "epochs": "epochs", "max_samples": "images per set",
                 "more": "more axes"}


def base_description(base: str, fields: dict[str, Any]) -> str:
    """The description of a spec started from ``base``: the built-in's own line while the
    page's ``fields`` are still the built-in's (at the chosen scale); once resized, the line
    says so and names what changed (a walk read "… ρ = 5 … 25 %" over an experiment resized
    to one ρ). ``""`` for a base that is not built in."""
    if base not in BUILTINS:
        return ""
    try:
        ref = fields_from_spec(builtin_spec(base, fields.get("preset") or "quick"))
    except (ValueError, KeyError):
        return BUILTINS[base]
    changed = [title for key, title in _FIELD_TITLES.items()
               if key in fields and _norm(fields.get(key)) != _norm(ref.get(key))]
    if not changed:
        return BUILTINS[base]
    return (f"Started from the built-in {base} ({BUILTINS[base].rstrip('.')}), then changed: "
            + ", ".join(changed) + ".")


def _norm(v: Any) -> Any:
    """A field value compared loosely: blank text and None alike, lists as lists."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, (list, tuple)):
        return list(v)
    return v.strip() if isinstance(v, str) else v


def figure_missing_reason(kind: str, n_rho: int, n_lam: int) -> str:
    """Why an experiment's page draws no figure although it has results (``""`` when its
    figure can be drawn): Fig. 2 needs two values of ρ, Fig. 4 two values of λ."""
    if kind in ("fig2-rho", "table2") and n_rho < 2:
        return ("No figure: the AUROC-against-ρ figure needs at least two values of ρ, and this "
                f"experiment has {n_rho}. The tables below hold its numbers.")
    if kind == "fig4-lambda" and n_lam < 2:
        return ("No figure: the AUROC-against-λ figure needs at least two values of λ, and this "
                f"experiment has {n_lam}. The tables below hold its numbers.")
    return ""
