"""Executors: where an experiment's runs train.

* :class:`LocalExecutor` — this machine, the existing engine. On a CPU, one run at a time
  with all of torch's threads; on a GPU, several runs at once (a worker process each) when
  their estimated memory fits in what the GPU has free. With one run at a time,
  compatible runs that share a data draw (an IAEAD λ grid, CAE beside it) train as one stacked
  network (:mod:`iaead_core.training.stacked`) where ``stacking_pays`` measures a speed-up.
* :class:`RayExecutor` — a Ray cluster (or ``ray.init()`` on this machine). One Ray task per
  run, with ``num_gpus`` requested when the cluster has GPUs. Each worker trains with the
  engine into a private temporary folder and sends the run folder back (records, final
  arrays, weights) as one in-memory archive; the driver moves it into the experiment's
  ``runs/`` in one rename. The data reach the workers through the data root (a shared file
  system, or the same path on every node).

Either way a run that fails — an exception, a diverged loss, a worker process that dies — is
recorded as ``failed`` with its error and the experiment goes on with the others.

The executors are :mod:`iaead_core.experiments.local_executor` and
:mod:`iaead_core.experiments.ray_executor`; what they share (the :class:`Executor` contract,
:class:`RunOutcome`, training one run) is :mod:`iaead_core.experiments.executor_base`. This
module picks one by name (:func:`make_executor`).
"""

from __future__ import annotations

from typing import Any

from iaead_core.experiments.executor_base import Executor
from iaead_core.experiments.local_executor import LocalExecutor
from iaead_core.experiments.ray_executor import RayExecutor
__all__ = ["EXECUTORS", "make_executor"]

#: Names accepted by :func:`make_executor` (and ``--executor``).
EXECUTORS = ("local", "ray")


def make_executor(name: str = "local", **kwargs: Any) -> Executor:
    """An executor by name (``local`` or ``ray``); ``kwargs`` go to its constructor.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name == "local":
        return LocalExecutor(**kwargs)
    if name == "ray":
        return RayExecutor(**kwargs)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
