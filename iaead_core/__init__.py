"""iaead_core: unsupervised image anomaly detection with IAEAD, CAE and Deep SVDD.

A UI-free library reproducing "Improved autoencoder for unsupervised anomaly detection"
(Wang et al., Int. J. Intell. Syst. 2021). Typical use::

    from iaead_core import make_contaminated, preset_config, train
    data = make_contaminated("mnist", 0, rho=0.1, data_root="../shared/data", max_samples=3000)
    result = train(preset_config("quick", method="iaead"), data=data)
    result.final_metrics["latent_mean"]["auroc"]
"""

__version__ = "0.1.0"

from .config import PRESETS, TrainConfig, preset_config  # noqa: E402
from .data import (DATASETS, ContaminatedSet, DatasetUnavailableError, class_index,  # noqa: E402
                   make_contaminated)

# The names below load torch; they are imported on first use (PEP 562), so that
# `python -m iaead_core --help` and config/data helpers answer without loading torch.
_LAZY = {
    "engine": ("NonFiniteLossError", "Trainer", "TrainResult", "select_device", "train"),
    "methods": ("METHODS", "SCORE_RULES", "build_method"),
    "metrics": ("detection_metrics", "latent_diagnostics"),
    "runs": ("Run", "RunError", "delete_run", "list_runs", "load_run"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    import importlib
    import importlib.util

    module = _LAZY_NAMES.get(name)
    if module is None:
        # `iaead_core.metrics` without importing it first, as when every module was eager.
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
    "load_run",
]
