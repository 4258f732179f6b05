"""The built-in experiments (the paper's Table 2 / 3, Fig. 2, Fig. 4, and an ablation), and
:func:`load_spec`, which reads a spec from a built-in name, a TOML / JSON file, an experiment
folder or a dict.

Each built-in comes at ``quick`` (CPU) or ``paper`` scale (:func:`builtin_spec`); the spec
class and the TOML layout are in :mod:`iaead_core.experiments.spec`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iaead_core.config import PRESETS, QUICK_SEEDS
from iaead_core.experiments.spec import ExperimentSpec
__all__ = ["BUILTIN_SPECS", "FIG4_LAMBDA_GRID", "builtin_spec", "load_spec"]

#: Largest spec file read (a spec is a few lines; this bounds what a path can make us read).
MAX_SPEC_BYTES = 2**20

#: The λ grid of Fig. 4: λ = 0 (the CAE objective) and half-decades 5e-8 … 50.
FIG4_LAMBDA_GRID: tuple[float, ...] = (0.0, 5e-8, 5e-7, 5e-6, 5e-5, 5e-4, 5e-3, 5e-2, 0.5, 5.0,
                                       50.0)


# --------------------------------------------------------------------------------- builtins

def _table2(preset: str) -> dict[str, Any]:
    datasets = (["mnist", "fashion-mnist", "svhn", "cifar10", "cifar100"] if preset == "paper"
                else ["mnist", "fashion-mnist"])
    return dict(kind="table2", datasets=datasets, classes="all", rho=[0.1, 0.2], methods="all",
                seeds=5, description="Table 2/3: every method, every class, ρ = 10 % and 20 %, "
                                     "5 seeds.")


def _fig2(preset: str) -> dict[str, Any]:
    return dict(kind="fig2-rho", datasets=["mnist", "fashion-mnist"], classes="all",
                rho=[0.05, 0.1, 0.15, 0.2, 0.25], methods="all", seeds=5,
                description="Fig. 2: class-averaged AUROC of every method against ρ = 5 … 25 %.")


def _fig4(preset: str) -> dict[str, Any]:
    return dict(kind="fig4-lambda", datasets=["mnist", "fashion-mnist"], classes="all",
                rho=[0.1], methods=["iaead"], lam=list(FIG4_LAMBDA_GRID), seeds=5,
                description="Fig. 4: IAEAD's AUROC against λ (0 and 5e-8 … 50) at ρ = 10 %.")


def _ablation(preset: str) -> dict[str, Any]:
    return dict(kind="ablation", datasets=["mnist", "fashion-mnist"],
                classes={"mnist": [0, 2, 8], "fashion-mnist": [0, 6]}, rho=[0.1],
                methods=["iaead"], lam=[0.0, 5e-5], nu=[0.1, 1.0],
                axes={"init": ["released", "pytorch"]},
                rules=["latent_mean", "latent_c", "reconstruction"],
                seeds=5 if preset == "paper" else QUICK_SEEDS,
                description="What drives IAEAD's gain over the CAE: the loss (λ, ν), the scoring "
                            "rule or the initialisation. λ = 0 with the reconstruction rule and "
                            "the released init is the CAE.")


_BUILDERS = {"table2": _table2, "fig2-rho": _fig2, "fig4-lambda": _fig4, "ablation": _ablation}

#: Built-in specs: name → one-line description (build one with :func:`builtin_spec`).
BUILTIN_SPECS: dict[str, str] = {name: b("quick")["description"] for name, b in _BUILDERS.items()}


def builtin_spec(name: str, preset: str = "quick") -> ExperimentSpec:
    """A built-in spec at ``quick`` (CPU) or ``paper`` scale.

    * ``table2``: every registered method, every class, ρ 10 % and 20 %, 5 seeds; MNIST and
      Fashion-MNIST (quick) or also SVHN, CIFAR-10 and CIFAR-100 (paper).
    * ``fig2-rho``: every method, ρ = 5, 10, 15, 20, 25 %, MNIST and Fashion-MNIST, 5 seeds.
    * ``fig4-lambda``: IAEAD on :data:`FIG4_LAMBDA_GRID`, MNIST and Fashion-MNIST, 5 seeds.
    * ``ablation``: IAEAD, init released/pytorch × λ ∈ {0, 5e-5} × ν ∈ {0.1, 1}, reported
      under three scoring rules; MNIST 0, 2, 8 and Fashion-MNIST 0, 6; 3 seeds
      (:data:`~iaead_core.config.QUICK_SEEDS`, quick) or 5.

    Narrow any of them with :meth:`ExperimentSpec.narrowed`.

    Raises
    ------
    ValueError
        For an unknown name or preset.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown built-in experiment {name!r}; choose one of {', '.join(_BUILDERS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return ExperimentSpec.from_dict({"name": name, "preset": preset, **_BUILDERS[name](preset)})


def load_spec(source: str | Path | dict[str, Any], preset: str | None = None) -> ExperimentSpec:
    """A spec from a built-in name, a ``.toml`` / ``.json`` file, an experiment folder (its
    saved ``spec.json``) or a dict.

    ``preset`` picks the built-in's scale (default quick) and overrides a file's preset.

    Raises
    ------
    ValueError
        For an unknown name, a missing or unreadable file, a file over :data:`MAX_SPEC_BYTES`,
        invalid TOML or JSON, a file that is not a table of axes, or an invalid spec.
    """
    if isinstance(source, dict):
        spec = ExperimentSpec.from_dict(source)
    elif str(source) in _BUILDERS:
        return builtin_spec(str(source), preset or "quick")
    else:
        path = Path(source)
        if path.is_dir():
            path = path / "spec.json"
        if not path.is_file():
            raise ValueError(f"{source!r} is neither a built-in experiment "
                             f"({', '.join(_BUILDERS)}) nor a spec file or experiment folder")
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise ValueError(f"{path} is {size:,} bytes, more than the {MAX_SPEC_BYTES:,} a spec "
                             f"file may hold; a spec lists its axes in a few lines")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} cannot be read as a UTF-8 spec file "
                             f"({type(e).__name__})") from None
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                import tomllib

                data = tomllib.loads(text)
        except RecursionError:
            raise ValueError(f"{path} is not a valid spec file: nested too deeply") from None
        except (ValueError, json.JSONDecodeError) as e:  # tomllib.TOMLDecodeError is a ValueError
            raise ValueError(f"{path} is not a valid spec file: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a spec: it holds a {type(data).__name__}, not a table "
                             f"of axes (name, datasets, classes, ...)")
        data.setdefault("name", path.stem if path.name != "spec.json" else path.parent.name)
        spec = ExperimentSpec.from_dict(data)
    if preset is not None:
        spec = spec.narrowed(preset=preset)
    return spec
