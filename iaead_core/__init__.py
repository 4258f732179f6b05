"""iaead_core: unsupervised image anomaly detection with IAEAD, CAE and Deep SVDD.

A UI-free library reproducing "Improved autoencoder for unsupervised anomaly detection"
(Wang et al., Int. J. Intell. Syst. 2021). Typical use::

    from iaead_core import make_contaminated, preset_config, train
    data = make_contaminated("mnist", 0, rho=0.1, data_root="../shared/data", max_samples=3000)
    result = train(preset_config("quick", method="iaead"), data=data)
    result.final_metrics["latent_mean"]["auroc"]

Layers, lowest first. A module imports only from its own layer's modules and the layers below
(``tests/test_project.py`` checks it, function-level imports included):

0. ``numbers``, ``catalog``, ``storage``, ``_version``: formatting, the methods' descriptions,
   files written atomically and read within bounds, the version
1. ``data/``: benchmark sets, the contaminated protocol, the user's image folders
2. ``config``: TrainConfig, its validation, the presets
3. ``methods/``: the networks (``nets``), the SVDD terms (``svdd``), one module per method
4. ``evaluation/``: metrics, diagnostics, health alerts, projections, the paper's numbers, tables
5. ``runs``: run folders in and out (storage; it builds no model)
6. ``training/``: the engine, stacked training, restoring a saved run
7. ``experiments/``: specs, executors, reports
8. ``detector/``: the estimator API and scoring new images
9. ``cli/``: the command line
"""

from iaead_core._version import __version__
from iaead_core.config import PRESETS, TrainConfig, preset_config  # noqa: E402
from iaead_core.data import (ContaminatedSet, DATASETS, DatasetUnavailableError,  # noqa: E402
                             class_index, make_contaminated)
# The names below load torch; they are imported on first use (PEP 562), so that
# `python -m iaead_core --help` and config/data helpers answer without loading torch.
_LAZY = {
    "training.engine": ("NonFiniteLossError", "Trainer", "TrainResult", "select_device", "train"),
    "training.restore": ("load_method", "restore_run"),
    "methods": ("METHODS", "SCORE_RULES", "build_method"),
    "evaluation.metrics": ("detection_metrics", "latent_diagnostics"),
    "runs": ("Run", "RunError", "delete_run", "list_runs", "load_run"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    import importlib
    import importlib.util

    module = _LAZY_NAMES.get(name)
    if module is None:
        # a sub-package or module (`iaead_core.evaluation`) without importing it first
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module 'iaead_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY_NAMES))


__all__ = [
    "__version__", "TrainConfig", "PRESETS", "preset_config", "DATASETS", "ContaminatedSet",
    "DatasetUnavailableError", "class_index", "make_contaminated", "Trainer", "TrainResult",
    "NonFiniteLossError", "select_device", "train", "METHODS", "SCORE_RULES", "build_method",
    "detection_metrics", "latent_diagnostics", "Run", "RunError", "delete_run", "list_runs",
    "load_run", "load_method", "restore_run",
]
