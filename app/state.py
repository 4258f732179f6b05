"""Process-wide objects shared by every session (browser tab) through ``st.cache_resource``.

The job registry, the background task runner and the run index live once per server process,
keyed by the runs root, so every tab sees the same jobs and a rerun never builds a second one.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from iaead_core.experiments.estimate import PaceMeter
from iaead_core.config import TrainConfig
from iaead_core.data import ContaminatedSet, make_contaminated, resolve_data_root
from iaead_core.runs import resolve_runs_root
from .jobs import JobRegistry
from .tasks import BackgroundTasks
from .views.experiment_progress import ExperimentWatch
from .views.runs import RunIndex

__all__ = ["runs_root", "data_root", "registry", "tasks", "run_index", "contaminated"]


def runs_root() -> Path:
    """The runs folder (``$IAEAD_RUNS_DIR`` or ``./runs``), absolute."""
    return resolve_runs_root().resolve()


def data_root() -> Path:
    """The data folder (``$IAEAD_DATA_ROOT`` or ``./data``), absolute."""
    return resolve_data_root().resolve()


def _warm_up() -> None:
    """Read MNIST (when on disk) and run one tiny training step, so the first real job does
    not pay for reading 70,000 images and for torch's first-call set-up (seconds on a CPU)."""
    from iaead_core.config import preset_config
    from iaead_core.data import dataset_status, load_pool
    from iaead_core.training.engine import Trainer

    if dataset_status("mnist", data_root()) == "on disk":
        load_pool("mnist", data_root())
    cfg = preset_config("quick", "iaead", dataset="digits", epochs=1, warmup_epochs=1,
                        max_samples=100, device="cpu")
    Trainer(cfg, runs_root=False).run()


@st.cache_resource(show_spinner=False)
def _registry(root: str) -> JobRegistry:
    return JobRegistry(root, warmup=_warm_up)


@st.cache_resource(show_spinner=False)
def _index(root: str) -> RunIndex:
    return RunIndex(root)


def registry() -> JobRegistry:
    """The server's one job registry for the current runs root."""
    return _registry(str(runs_root()))


def run_index() -> RunIndex:
    """The server's index of saved runs for the current runs root."""
    return _index(str(runs_root()))


@st.cache_resource(show_spinner=False)
def tasks() -> BackgroundTasks:
    """The server's background task runner (UMAP projections)."""
    return BackgroundTasks()


@st.cache_resource(show_spinner=False, max_entries=6)
def _contaminated(dataset: str, normal_class: str, rho: float, seed: int,
                  max_samples: int | None, data_root: str | None) -> ContaminatedSet:
    return make_contaminated(dataset, normal_class, rho, seed=seed, data_root=data_root,
                             max_samples=max_samples, download=False)


def contaminated(config: dict) -> ContaminatedSet:
    """The exact data draw of a saved run (same images, same order as its latent codes).

    Raises DatasetUnavailableError / ValueError as :func:`make_contaminated`.
    """
    cfg = TrainConfig.from_dict(config)
    return _contaminated(cfg.dataset, str(cfg.normal_class), float(cfg.rho), int(cfg.seed),
                         cfg.max_samples, cfg.data_root)


@st.cache_resource(show_spinner=False)
def experiment_watch() -> ExperimentWatch:
    """The server's one :class:`~app.views.experiment_progress.ExperimentWatch`, shared by the
    Experiments and λ sensitivity pages (they often show the same experiment folder)."""
    return ExperimentWatch()


@st.cache_resource(show_spinner=False)
def _pace_meter(root: str):
    return PaceMeter()


def pace_meter():
    """The server's :class:`~iaead_core.experiments.estimate.PaceMeter` for the current runs
    root: the epochs its registry's jobs took in this process, for every page's time left."""
    return _pace_meter(str(runs_root()))
