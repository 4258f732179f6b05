"""Experiments: a whole study (the paper's tables and figures) as one resumable object.

* :mod:`.spec` — declarative specs (TOML or dict) of axes, their expansion into runs, run ids
  that are content hashes of the config, and the built-in specs ``table2``, ``fig2-rho``,
  ``fig4-lambda`` and ``ablation``;
* :mod:`.store` — the experiment folder (spec, run folders, log, lock);
* :mod:`.executors` — where runs train: this machine (``local``) or a Ray cluster (``ray``);
* :mod:`.runner` — plan, skip finished runs, run the rest with progress and ETA;
* :mod:`.report` — CSV, the paper's Table 2 / 3 with its values beside ours, plotly figures;
* :mod:`.estimate` — time estimates.

Typical use::

    from iaead_core.experiments import builtin_spec, run_experiment, plan_experiment, write_report
    spec = builtin_spec("fig4-lambda", "quick").narrowed(seeds=[0, 1, 2], datasets=["mnist"], classes=[0])
    run_experiment(spec, data_root="../shared/data")
    write_report(plan_experiment(spec))
"""

from .executors import (EXECUTORS, Executor, LocalExecutor, RayExecutor, RunOutcome,  # noqa: F401
                        make_executor)
from .report import aggregate, results_frame, write_report  # noqa: F401
from .runner import (ExperimentSummary, Plan, Progress, plan_experiment,  # noqa: F401
                     run_experiment)
from .spec import (BUILTIN_SPECS, FIG4_LAMBDA_GRID, KINDS, ExperimentSpec,  # noqa: F401
                   PlannedRun, builtin_spec, config_hash, expand, load_spec, run_id_for)
from .store import (ExperimentBusyError, ExperimentFolder, RunInfo,  # noqa: F401
                    resolve_experiments_root)

__all__ = ["ExperimentSpec", "PlannedRun", "KINDS", "BUILTIN_SPECS", "FIG4_LAMBDA_GRID",
           "builtin_spec", "load_spec", "expand", "config_hash", "run_id_for",
           "ExperimentFolder", "RunInfo", "ExperimentBusyError", "resolve_experiments_root",
           "Executor", "LocalExecutor", "RayExecutor", "RunOutcome", "make_executor", "EXECUTORS",
           "Plan", "Progress", "ExperimentSummary", "plan_experiment", "run_experiment",
           "aggregate", "results_frame", "write_report"]
