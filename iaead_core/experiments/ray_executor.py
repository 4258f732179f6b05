"""The Ray executor: an experiment's runs on a Ray cluster (or ``ray.init()`` on this machine).

One Ray task per run, with ``num_gpus`` requested when the cluster has GPUs. Each worker trains
with the engine into a private temporary folder (:func:`ray_train_task`) and sends the run
folder back (records, final arrays, weights) as one in-memory archive; the driver moves it into
the experiment's ``runs/`` in one rename. The data reach the workers through the data root (a
shared file system, or the same path on every node). A worker process that dies fails only its
run.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from iaead_core.config import TrainConfig
from iaead_core.data import ENV_DATA_ROOT
from iaead_core.experiments.executor_base import (TEST_CRASH_ENV, Executor, RunOutcome,
                                                  crash_callback, train_plan, write_failed_run)
from iaead_core.experiments.spec import PlannedRun
__all__ = ["RayExecutor", "ray_train_task", "TEST_CRASH_ENV"]



# ----------------------------------------------------------------------------------- Ray

def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(folder, arcname=folder.name)
    return buf.getvalue()


def _unpack(archive: bytes, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        tar.extractall(into, filter="data")
        name = tar.getnames()[0].split("/")[0]
    return into / name


def ray_train_task(cfg_dict: dict[str, Any], run_id: str, threads: int) -> dict[str, Any]:
    """Body of one Ray task: train a run in a temporary folder and return its outcome and the
    folder as an archive (``{"outcome": dict, "archive": bytes or None}``).

    The config's data root is used if it exists on the worker, else the worker's
    ``$IAEAD_DATA_ROOT``.
    """
    import torch

    torch.set_num_threads(max(1, int(threads)))
    cfg = TrainConfig.from_dict(cfg_dict)
    if cfg.data_root and not Path(cfg.data_root).exists() and os.environ.get(ENV_DATA_ROOT):
        cfg = cfg.replace(data_root=os.environ[ENV_DATA_ROOT])
    plan = PlannedRun(run_id, cfg, {})
    with tempfile.TemporaryDirectory(prefix="iaead-ray-") as tmp:
        outcome = train_plan(plan, tmp, callback=crash_callback(cfg))
        folder = Path(tmp) / run_id
        archive = _pack(folder) if folder.exists() else None
    return {"outcome": asdict(outcome), "archive": archive}


class RayExecutor(Executor):
    """A Ray cluster, one task per run (see the module docstring).

    Parameters
    ----------
    address : str, optional
        Cluster address (``ray start --head`` prints it; ``"auto"`` finds a local one). None
        starts a private Ray instance on this machine (``ray.init()``), unless Ray is already
        initialised in this process.
    cpus_per_run : float
        CPUs each task asks for (and torch threads it uses).
    gpus_per_run : float, optional
        GPUs each task asks for when the cluster has GPUs (default 0.25: four small runs share
        a GPU). Ignored on a cluster without GPUs.
    max_retries : int
        Ray's retries of a task whose worker died (default 0: the run is recorded as failed
        and rerun by the next ``experiment run``).
    init_kwargs : dict, optional
        Extra arguments of ``ray.init`` (e.g. ``num_cpus`` for a local instance).
    ship_code : bool, optional
        Send the ``iaead_core`` package to the workers (``runtime_env.py_modules``); default:
        only when connecting to a cluster by ``address``. On this machine the workers import
        it from the driver's path.

    Raises
    ------
    ImportError
        From :meth:`run` if Ray is not installed (``pip install ray``).
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_run: float = 1,
                 gpus_per_run: float | None = None, max_retries: int = 0,
                 init_kwargs: dict[str, Any] | None = None, ship_code: bool | None = None) -> None:
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})
        self.ship_code = (address is not None) if ship_code is None else ship_code
        self._device_type = "cpu"

    @property
    def device_type(self) -> str:
        return self._device_type

    def _runtime_env(self) -> dict[str, Any]:
        package = Path(__file__).resolve().parents[1]  # the iaead_core folder
        env_vars: dict[str, str] = {}
        if self.ship_code:
            env: dict[str, Any] = {"py_modules": [str(package)]}
        else:
            path = [str(package.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            env_vars["PYTHONPATH"] = os.pathsep.join(path)
            env = {}
        for name in (TEST_CRASH_ENV, "IAEAD_DATA_ROOT"):
            if os.environ.get(name):
                env_vars[name] = os.environ[name]
        if env_vars:
            env["env_vars"] = env_vars
        return env

    def _init(self):
        try:
            import ray
        except ImportError as e:
            raise ImportError("the ray executor needs Ray: pip install 'ray>=2.9'") from e
        started = False
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "logging_level": "WARNING",
                      **self.init_kwargs, "runtime_env": self._runtime_env()}
            if self.address:
                kwargs["address"] = self.address
            ray.init(**kwargs)
            started = True
        return ray, started

    def run(self, plans, runs_root, on_done, stop_event, install=None) -> None:
        ray, started = self._init()
        try:
            self._run(ray, plans, runs_root, on_done, stop_event, install)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, plans, runs_root, on_done, stop_event, install) -> None:
        resources = ray.cluster_resources()
        has_gpu = resources.get("GPU", 0) > 0
        self._device_type = "cuda" if has_gpu else "cpu"
        options: dict[str, Any] = {"num_cpus": self.cpus_per_run, "max_retries": self.max_retries}
        if has_gpu:
            options["num_gpus"] = self.gpus_per_run if self.gpus_per_run is not None else 0.25
        per_cpu = resources.get("CPU", 1) / max(self.cpus_per_run, 1e-9)
        per_gpu = resources.get("GPU", 0) / options["num_gpus"] if has_gpu else float("inf")
        self._slots = max(1, int(min(per_cpu, per_gpu)))
        task = ray.remote(ray_train_task).options(**options)
        threads = max(1, int(self.cpus_per_run))
        pending = {task.remote(p.config.to_dict(), p.run_id, threads): p for p in plans}
        runs_root.mkdir(parents=True, exist_ok=True)
        incoming = runs_root.parent / ".incoming"
        while pending:
            if stop_event.is_set():
                for ref in pending:
                    ray.cancel(ref, force=True)
                for plan in pending.values():
                    on_done(plan, RunOutcome(plan.run_id, "stopped", "the experiment was stopped"))
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                plan = pending.pop(ref)
                on_done(plan, self._collect(ray, ref, plan, runs_root, incoming, install))

    def _collect(self, ray, ref, plan: PlannedRun, runs_root: Path, incoming: Path,
                 install) -> RunOutcome:
        """The outcome of a finished task; its run folder written under ``runs_root``."""
        try:
            result = ray.get(ref)
        except Exception as e:  # the worker died (os._exit, OOM, node lost) or Ray failed
            kind = type(e).__name__
            first = (str(e).strip().splitlines() or [""])[0]
            error = f"the Ray worker training this run died ({kind}: {first})"
            write_failed_run(runs_root, plan, error)
            return RunOutcome(plan.run_id, "failed", error)
        outcome = RunOutcome(**result["outcome"])
        if result.get("archive"):
            folder = _unpack(result["archive"], incoming / f"{plan.run_id}-{os.getpid()}")
            if install is not None:
                install(folder, plan.run_id)
            else:
                target = runs_root / plan.run_id
                if target.exists():
                    import shutil

                    shutil.rmtree(target)
                os.replace(folder, target)
            try:
                folder.parent.rmdir()
            except OSError:
                pass
        elif outcome.status == "failed":
            write_failed_run(runs_root, plan, outcome.error or "failed")
        return outcome
