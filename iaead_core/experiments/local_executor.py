"""The local executor: an experiment's runs on this machine, with the existing engine.

On a CPU, one run at a time with all of torch's threads; on a GPU, up to
:data:`DEFAULT_GPU_SLOTS` runs at once where their estimated memory (:func:`run_memory_bytes`)
fits in what the GPU has free (:func:`gpu_slots`), each in a worker process of its own
(:mod:`iaead_core.experiments.processes`). Threads of one process, each run on a CUDA stream of
its own, are the other choice (``workers="thread"``); on one H200 they were slower: ten runs as
threads went no faster than one at a time, their host work serialised on Python's lock. With one run at a time and ``stack`` asked
for, compatible runs that share a data draw (an IAEAD λ grid, CAE beside it) train as one
stacked network (:mod:`iaead_core.training.stacked`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from iaead_core.config import TrainConfig
from iaead_core.data import DATASETS, make_contaminated
from iaead_core.experiments.estimate import set_size
from iaead_core.experiments.executor_base import Executor, RunOutcome, train_plan, write_failed_run
from iaead_core.experiments.processes import run_in_processes
from iaead_core.experiments.spec import PlannedRun
__all__ = ["LocalExecutor", "gpu_slots", "slots_for", "run_memory_bytes", "MAX_GPU_SLOTS",
           "DEFAULT_GPU_SLOTS"]

#: Most runs one GPU trains at once in the local executor: each is a worker process with a CUDA
#: context of its own (about half a gigabyte), so memory rarely binds before this does.
MAX_GPU_SLOTS = 16
#: Runs at once on a GPU when ``slots`` is not given (where memory allows): the number
#: measured on one H200, where ten worker processes of paper-protocol runs trained about 1.8×
#: as many epochs per second as one run alone (benchmarks/results/, part ``study``).
DEFAULT_GPU_SLOTS = 10


def _load_draw(cfg: TrainConfig):

    return make_contaminated(cfg.dataset, cfg.normal_class, cfg.rho, seed=cfg.seed,
                             data_root=cfg.data_root, max_samples=cfg.max_samples,
                             download=cfg.download)


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


def slots_for(requested: int | str | None, device_type: str, plans: list[PlannedRun],
              free_bytes: int) -> int:
    """Runs at once: ``requested`` when it is a number; on a GPU by default as many as
    :func:`gpu_slots` says fit, at most :data:`DEFAULT_GPU_SLOTS` (``"auto"``: at most
    :data:`MAX_GPU_SLOTS`); 1 otherwise."""
    if requested not in (None, "auto"):
        return int(requested)
    if device_type != "cuda":
        return 1
    most = MAX_GPU_SLOTS if requested == "auto" else DEFAULT_GPU_SLOTS
    return min(most, gpu_slots(plans, free_bytes))


class LocalExecutor(Executor):
    """This machine (see the module docstring).

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "mps"}
    slots : int or "auto", optional
        Runs at once. Default: 1 on a CPU; on a GPU as many as :func:`gpu_slots` says fit, at
        most :data:`DEFAULT_GPU_SLOTS`. ``"auto"`` on a GPU: as many as fit, at most
        :data:`MAX_GPU_SLOTS`.
    threads : int, optional
        torch's CPU threads (default: torch's own choice, all cores).
    stack : {"auto", True, False}
        Stacked training (:mod:`iaead_core.training.stacked`) of compatible runs that share a data
        draw: ``"auto"`` when ``stacking_pays`` measures a speed-up on this device, True
        always, False (the default) never. Stacked runs match single runs only up to float32
        rounding, which the presets' learning rate amplifies to a few 1e-3 of the loss, as
        much as a change of the CPU thread count does; so nothing stacks unless asked.
    workers : {"process", "thread"}
        With several slots, each run in a worker process (the default) or in a thread of this
        process, on a GPU with a CUDA stream of its own (the engine draws initial weights under
        a lock, so seeds give the same weights as one at a time either way).
    """

    name = "local"

    def __init__(self, device: str = "auto", slots: int | None = None, threads: int | None = None,
                 stack: bool | str = False, workers: str = "process") -> None:
        if stack not in ("auto", True, False):
            raise ValueError(f"stack must be 'auto', True or False, got {stack!r}")
        if workers not in ("process", "thread"):
            raise ValueError(f"workers must be 'process' or 'thread', got {workers!r}")
        for name, value in (("slots", slots), ("threads", threads)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{name} must be a whole number ≥ 1, or None for the default; "
                                 f"got {value!r}")
        self.workers = workers
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
        free = torch.cuda.mem_get_info()[0] if dev == "cuda" else 0
        self._slots = slots_for(self.requested_slots, dev, plans, free)
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
        if self.workers == "process":  # several runs share the device: a process each
            per_run = self.threads or max(1, (os.cpu_count() or 1) // self._slots)
            run_in_processes(queue, self._slots, runs_root, on_done, stop_event, threads=per_run)
            return
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
