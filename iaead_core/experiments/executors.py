"""Executors: where an experiment's runs train.

* :class:`LocalExecutor` — this machine, the existing engine. On a CPU, one run at a time
  with all of torch's threads; on a GPU, several runs at once (threads sharing the device)
  when their estimated memory fits in what the GPU has free. With one run at a time and
  ``stack`` asked for, compatible runs that share a data draw (an IAEAD λ grid, CAE beside
  it) train as one stacked network (:mod:`iaead_core.training.stacked`).
* :class:`RayExecutor` — a Ray cluster (or ``ray.init()`` on this machine). One Ray task per
  run, with ``num_gpus`` requested when the cluster has GPUs. Each worker trains with the
  engine into a private temporary folder and sends the run folder back (records, final
  arrays, weights) as one in-memory archive; the driver moves it into the experiment's
  ``runs/`` in one rename. The data reach the workers through the data root (a shared file
  system, or the same path on every node).

Either way a run that fails — an exception, a diverged loss, a worker process that dies — is
recorded as ``failed`` with its error and the experiment goes on with the others.
"""

from __future__ import annotations

import inspect
import io
import os
import tarfile
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from iaead_core.config import TrainConfig
from iaead_core.data import DATASETS, ENV_DATA_ROOT, make_contaminated
from iaead_core.experiments.estimate import set_size
from iaead_core.experiments.spec import PlannedRun
from iaead_core.runs import RunError, RunWriter
__all__ = ["RunOutcome", "Executor", "LocalExecutor", "RayExecutor", "make_executor",
           "train_plan", "write_failed_run", "EXECUTORS", "TEST_CRASH_ENV", "gpu_slots",
           "run_memory_bytes"]

#: Names accepted by :func:`make_executor` (and ``--executor``).
EXECUTORS = ("local", "ray")

#: Test-only hook: ``FIELD=VALUE`` (e.g. ``normal_class=1``) makes a *Ray worker* training a
#: run whose config has that value end its own process with ``os._exit`` after the first epoch,
#: as a crashed worker would. Never set it outside the tests.
TEST_CRASH_ENV = "IAEAD_TEST_CRASH_WORKER"

#: Most runs one GPU trains at once in the local executor.
MAX_GPU_SLOTS = 8


@dataclass
class RunOutcome:
    """How one run ended.

    Attributes
    ----------
    run_id : str
    status : {"completed", "stopped", "failed"}
    error : str or None
    seconds : float
        Wall time of the attempt.
    metrics : dict
        Final metrics per scoring rule (empty for a run without records).
    primary_score : str or None
    """

    run_id: str
    status: str
    error: str | None = None
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    primary_score: str | None = None


OnDone = Callable[[PlannedRun, RunOutcome], None]


# --------------------------------------------------------------------- one run, anywhere

def write_failed_run(runs_root: str | os.PathLike, plan: PlannedRun, error: str) -> None:
    """Write a run folder whose status is ``failed`` with ``error``, for a run that failed
    before the engine could write one (bad data, a dead worker). Replaces nothing: an existing
    folder is left as it is."""

    meta = {"run_id": plan.run_id, "config": plan.config.to_dict(), "seed": plan.config.seed,
            "data": {}, "created": time.time(), "point": plan.point}
    kwargs = {"heartbeat_period": 0} if "heartbeat_period" in inspect.signature(RunWriter).parameters else {}
    try:
        writer = RunWriter(runs_root, plan.run_id, meta, **kwargs)
    except RunError:
        return
    try:
        writer.set_status("failed", error, epochs_done=0)
    finally:
        writer.close()


def train_plan(plan: PlannedRun, runs_root: str | os.PathLike, stop_event: threading.Event | None = None,
               data: Any = None, callback: Callable[[dict], None] | None = None) -> RunOutcome:
    """Train one planned run with the engine, writing its folder ``runs_root/<run_id>``.

    Never raises for a failing run (KeyboardInterrupt excepted): the error is returned in the
    outcome and written to the run folder.

    Parameters
    ----------
    plan : PlannedRun
    runs_root : path
    stop_event : threading.Event, optional
        Set it to stop the run between batches (status ``stopped``).
    data : ContaminatedSet, optional
        The run's data draw, when already built (several runs share one).
    callback : callable, optional
        Called with every epoch record.
    """
    from iaead_core.training.engine import NonFiniteLossError, Trainer  # lazy: loads torch

    start = time.perf_counter()
    try:
        trainer = Trainer(plan.config, data=data, runs_root=runs_root, stop_event=stop_event,
                          run_id=plan.run_id)
    except Exception as e:  # bad data, device, config: no folder written yet
        error = f"{type(e).__name__}: {e}"
        write_failed_run(runs_root, plan, error)
        return RunOutcome(plan.run_id, "failed", error, time.perf_counter() - start)
    try:
        result = trainer.run(callback)
    except NonFiniteLossError as e:
        return RunOutcome(plan.run_id, "failed", str(e), time.perf_counter() - start,
                          _last_metrics(trainer))
    except Exception as e:  # the engine marked the folder failed with this message
        return RunOutcome(plan.run_id, "failed", f"{type(e).__name__}: {e}",
                          time.perf_counter() - start, _last_metrics(trainer))
    return RunOutcome(plan.run_id, result.status,
                      None if result.status == "completed" else "stopped before the last epoch",
                      time.perf_counter() - start, result.final_metrics,
                      result.records[-1]["primary_score"] if result.records else None)


def _last_metrics(trainer) -> dict[str, Any]:
    return trainer.records[-1]["metrics"] if trainer.records else {}


def _load_draw(cfg: TrainConfig):

    return make_contaminated(cfg.dataset, cfg.normal_class, cfg.rho, seed=cfg.seed,
                             data_root=cfg.data_root, max_samples=cfg.max_samples,
                             download=cfg.download)


# ------------------------------------------------------------------------------- executors

class Executor(ABC):
    """Runs a list of planned runs, reporting each one's end to ``on_done``."""

    name: str = ""

    @property
    def slots(self) -> int:
        """How many runs train at once (for the ETA); 1 until :meth:`run` knows better."""
        return getattr(self, "_slots", 1)

    @property
    def device_type(self) -> str:
        """Kind of device the runs train on (``cpu``, ``cuda``, ...), for time estimates."""
        return "cpu"

    @abstractmethod
    def run(self, plans: list[PlannedRun], runs_root: Path, on_done: OnDone,
            stop_event: threading.Event, install: Callable[[Path, str], None] | None = None) -> None:
        """Train ``plans``; call ``on_done(plan, outcome)`` as each ends (in the calling
        thread). Returns when all have ended or ``stop_event`` is set (then the running ones
        end as ``stopped`` and the others are not started).

        ``install(folder, run_id)`` moves a run folder built elsewhere into ``runs_root``
        (executors whose runs train in another process use it)."""


def run_memory_bytes(cfg: TrainConfig) -> int:
    """Rough GPU memory of one run: the data set on the device, the activations of the larger
    of a training and an evaluation batch (about 8 feature maps of ``width`` channels at
    32×32 per image, with gradients), and 256 MiB for the model, optimiser and allocator."""

    channels = DATASETS[cfg.dataset].channels if cfg.dataset in DATASETS else 3
    data = set_size(cfg) * channels * 32 * 32 * 4
    batch = max(cfg.batch_size, cfg.eval_batch_size)
    activations = batch * cfg.width * 32 * 32 * 4 * 8
    return int(data + activations + 256 * 2**20)


def gpu_slots(plans: list[PlannedRun], free_bytes: int) -> int:
    """How many of ``plans`` one GPU with ``free_bytes`` free trains at once: 80 % of the free
    memory over the largest run's :func:`run_memory_bytes`, between 1 and
    :data:`MAX_GPU_SLOTS`."""
    if not plans:
        return 1
    need = max(run_memory_bytes(p.config) for p in plans)
    return max(1, min(MAX_GPU_SLOTS, int(0.8 * free_bytes // need)))


class LocalExecutor(Executor):
    """This machine (see the module docstring).

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "mps"}
    slots : int, optional
        Runs at once; default 1 on a CPU or MPS, :func:`gpu_slots` on a GPU.
    threads : int, optional
        torch's CPU threads (default: torch's own choice, all cores).
    stack : {"auto", True, False}
        Stacked training (:mod:`iaead_core.training.stacked`) of compatible runs that share a data
        draw: ``"auto"`` when ``stacking_pays`` measures a speed-up on this device, True
        always, False (the default) never. Stacked runs match single runs only up to float32
        rounding, which the presets' learning rate amplifies to a few 1e-3 of the loss, as
        much as a change of the CPU thread count does; so nothing stacks unless asked.
    """

    name = "local"

    def __init__(self, device: str = "auto", slots: int | None = None, threads: int | None = None,
                 stack: bool | str = False) -> None:
        if stack not in ("auto", True, False):
            raise ValueError(f"stack must be 'auto', True or False, got {stack!r}")
        self.device = device
        self.requested_slots = slots
        self.threads = threads
        self.stack = stack
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def device_type(self) -> str:
        from iaead_core.training.engine import select_device  # lazy: loads torch

        return select_device(self.device).type

    def _data(self, plan: PlannedRun):
        """The run's data draw, shared by consecutive runs on the same draw (small LRU)."""
        key = plan.draw_key + (plan.config.data_root,)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = _load_draw(plan.config)
        with self._cache_lock:
            self._cache[key] = data
            while len(self._cache) > self.slots + 1:
                self._cache.popitem(last=False)
        return data

    def _one(self, plan: PlannedRun, runs_root: Path, stop_event: threading.Event) -> RunOutcome:
        start = time.perf_counter()
        try:
            data = self._data(plan)
        except Exception as e:  # missing files, bad class...: this run fails, others go on
            error = f"{type(e).__name__}: {e}"
            write_failed_run(runs_root, plan, error)
            return RunOutcome(plan.run_id, "failed", error, time.perf_counter() - start)
        return train_plan(plan, runs_root, stop_event, data=data)

    def run(self, plans, runs_root, on_done, stop_event, install=None) -> None:
        import torch

        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            self._run(plans, runs_root, on_done, stop_event)
        finally:
            torch.set_num_threads(threads)  # leave the process as it was

    def _run(self, plans, runs_root, on_done, stop_event) -> None:
        import torch

        dev = self.device_type
        if self.requested_slots:
            self._slots = int(self.requested_slots)
        elif dev == "cuda":
            free, _ = torch.cuda.mem_get_info()
            self._slots = gpu_slots(plans, free)
        else:
            self._slots = 1
        runs_root.mkdir(parents=True, exist_ok=True)
        queue = list(plans)
        stacked = _stacked_module() if self.stack is not False else None
        if self._slots == 1:
            while queue and not stop_event.is_set():
                group = _take_draw_group(queue)
                for members in _stacks(stacked, group):
                    if stop_event.is_set():
                        break
                    if len(members) > 1 and (self.stack is True
                                             or _stacking_pays(stacked, dev, members)):
                        for plan, outcome in self._stacked(stacked, members, runs_root, stop_event):
                            on_done(plan, outcome)
                        continue
                    for plan in members:
                        if stop_event.is_set():
                            break
                        on_done(plan, self._one(plan, runs_root, stop_event))
            return
        # Several runs share the GPU: threads, each with its own Trainer (the engine draws
        # initial weights under a lock, so seeds give the same weights as one at a time).
        with ThreadPoolExecutor(max_workers=self._slots, thread_name_prefix="iaead-run") as pool:
            try:
                self._run_threads(pool, queue, runs_root, on_done, stop_event)
            except BaseException:  # Ctrl-C: the running threads stop at their next batch
                stop_event.set()
                raise

    def _run_threads(self, pool, queue, runs_root, on_done, stop_event) -> None:
        """Keep ``self._slots`` runs going in ``pool`` until the queue is empty."""
        running: dict[Any, PlannedRun] = {}
        while queue or running:
            while queue and len(running) < self._slots and not stop_event.is_set():
                plan = queue.pop(0)
                running[pool.submit(self._one, plan, runs_root, stop_event)] = plan
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                plan = running.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as e:  # an error outside the engine's own handling
                    outcome = RunOutcome(plan.run_id, "failed", f"{type(e).__name__}: {e}")
                on_done(plan, outcome)

    def _stacked(self, stacked, members: list[PlannedRun], runs_root: Path,
                 stop_event: threading.Event):
        """Train ``members`` (one data draw) as one stack; yield ``(plan, outcome)`` each.

        If the stack cannot be built or breaks (anything but a model's own divergence, which
        fails that model only), the members train one at a time instead, so a run's result
        never depends on stacking being available."""
        start = time.perf_counter()
        try:
            data = self._data(members[0])
            results = stacked.train_stacked([p.config for p in members], data=data,
                                            runs_root=runs_root, stop_event=stop_event,
                                            run_ids=[p.run_id for p in members])
        except Exception:
            for p in members:
                _remove_unfinished(runs_root / p.run_id)
            for p in members:
                if stop_event.is_set():
                    return
                yield p, self._one(p, runs_root, stop_event)
            return
        share = (time.perf_counter() - start) / len(members)
        for p, res in zip(members, results):
            error = getattr(res, "error", None)
            yield p, RunOutcome(
                p.run_id, res.status,
                None if error is None and res.status == "completed" else
                (str(error) if error is not None else "stopped before the last epoch"),
                share, res.final_metrics,
                res.records[-1]["primary_score"] if res.records else None)


# ---------------------------------------------------------------------- stacked training

def _stacked_module():
    """The stacked-training module (:mod:`iaead_core.training.stacked`)."""
    from iaead_core.training import stacked  # lazy: loads torch

    return stacked


def _stacks(stacked, group: list[PlannedRun]) -> list[list[PlannedRun]]:
    """Split a data-draw group into stackable sub-groups (single runs where nothing stacks)."""
    if stacked is None or len(group) < 2:
        return [[p] for p in group]
    parts = stacked.stack_groups([p.config for p in group], shared_data=True)
    return [[group[i] for i in idx] for idx in parts]


def _remove_unfinished(folder: Path) -> None:
    """Delete a run folder unless its status says completed."""
    import json
    import shutil

    if not folder.exists():
        return
    try:
        if json.loads((folder / "status.json").read_text()).get("status") == "completed":
            return
    except (OSError, ValueError):
        pass
    shutil.rmtree(folder, ignore_errors=True)


def _take_draw_group(queue: list[PlannedRun]) -> list[PlannedRun]:
    """Pop the leading runs that share the first run's data draw (expansion keeps them
    together)."""
    key = queue[0].draw_key
    n = 1
    while n < len(queue) and queue[n].draw_key == key:
        n += 1
    group, queue[:] = queue[:n], queue[n:]
    return group


def _stacking_pays(stacked, device_type: str, group: list[PlannedRun]) -> bool:
    """``stacked.stacking_pays`` for this group (measured once per process and size)."""
    if len(group) < 2:
        return False
    try:
        return bool(stacked.stacking_pays(device_type, len(group), group[0].config))
    except Exception:
        return False


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


def _crash_callback(cfg: TrainConfig) -> Callable[[dict], None] | None:
    """The test-only hook of :data:`TEST_CRASH_ENV`."""
    spec = os.environ.get(TEST_CRASH_ENV)
    if not spec or "=" not in spec:
        return None
    name, value = spec.split("=", 1)
    if str(getattr(cfg, name, None)) != value:
        return None

    def die(record: dict) -> None:
        os._exit(17)
    return die


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
        outcome = train_plan(plan, tmp, callback=_crash_callback(cfg))
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
