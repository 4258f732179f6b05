"""Experiments: a whole study (the paper's tables and figures) as one resumable object.

* :mod:`.spec` — declarative specs (TOML or dict) of axes and their expansion into runs;
* :mod:`.run_ids` — run ids that are content hashes of the config;
* :mod:`.builtin_specs` — the built-in specs ``table2``, ``fig2-rho``, ``fig4-lambda`` and
  ``ablation``, and ``load_spec`` (a built-in name, a file, a folder or a dict);
* :mod:`.store` — the experiment folder (spec, run folders, log, lock);
* :mod:`.executors` — where runs train: this machine (:mod:`.local_executor`) or a Ray cluster
  (:mod:`.ray_executor`); what they share, and training one run, in :mod:`.executor_base`;
* :mod:`.runner` — plan, skip finished runs, run the rest with progress and ETA;
* :mod:`.tables` — tidy frames, the paper's Table 2 / 3 with its values beside ours, the
  ablation's numbers;
* :mod:`.figures` — plotly figures (Fig. 2, Fig. 4, the ablation's bars);
* :mod:`.report` — the report folder: CSV, Markdown and one HTML page of the two above;
* :mod:`.estimate` — time estimates.

Typical use::

    from iaead_core.experiments import builtin_spec, run_experiment, plan_experiment, write_report
    spec = builtin_spec("fig4-lambda", "quick").narrowed(seeds=[0, 1, 2], datasets=["mnist"], classes=[0])
    run_experiment(spec, data_root="../shared/data")
    write_report(plan_experiment(spec))
"""

from iaead_core.experiments.executor_base import Executor, RunOutcome  # noqa: F401
from iaead_core.experiments.executors import EXECUTORS, make_executor  # noqa: F401
from iaead_core.experiments.local_executor import LocalExecutor  # noqa: F401
from iaead_core.experiments.ray_executor import RayExecutor  # noqa: F401
from iaead_core.experiments.report import write_report  # noqa: F401
from iaead_core.experiments.runner import (ExperimentSummary, Plan, Progress,  # noqa: F401
                                           plan_experiment, run_experiment)
from iaead_core.experiments.builtin_specs import (BUILTIN_SPECS, FIG4_LAMBDA_GRID,  # noqa: F401
                                                  builtin_spec, load_spec)
from iaead_core.experiments.run_ids import config_hash, run_id_for  # noqa: F401
from iaead_core.experiments.spec import ExperimentSpec, KINDS, PlannedRun, expand  # noqa: F401
from iaead_core.experiments.store import (ExperimentBusyError, ExperimentFolder,  # noqa: F401
                                          RunInfo, resolve_experiments_root)
from iaead_core.experiments.tables import aggregate, results_frame  # noqa: F401
__all__ = ["ExperimentSpec", "PlannedRun", "KINDS", "BUILTIN_SPECS", "FIG4_LAMBDA_GRID",
           "builtin_spec", "load_spec", "expand", "config_hash", "run_id_for",
           "ExperimentFolder", "RunInfo", "ExperimentBusyError", "resolve_experiments_root",
           "Executor", "LocalExecutor", "RayExecutor", "RunOutcome", "make_executor", "EXECUTORS",
           "Plan", "Progress", "ExperimentSummary", "plan_experiment", "run_experiment",
           "aggregate", "results_frame", "write_report"]
