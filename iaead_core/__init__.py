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
from .engine import NonFiniteLossError, Trainer, TrainResult, select_device, train  # noqa: E402
from .methods import METHODS, SCORE_RULES, build_method  # noqa: E402
from .metrics import detection_metrics, latent_diagnostics  # noqa: E402
from .runs import Run, RunError, delete_run, list_runs, load_run  # noqa: E402

__all__ = [
    "__version__", "TrainConfig", "PRESETS", "preset_config", "DATASETS", "ContaminatedSet",
    "DatasetUnavailableError", "class_index", "make_contaminated", "Trainer", "TrainResult",
    "NonFiniteLossError", "select_device", "train", "METHODS", "SCORE_RULES", "build_method",
    "detection_metrics", "latent_diagnostics", "Run", "RunError", "delete_run", "list_runs",
    "load_run",
]
