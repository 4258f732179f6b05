"""The one training loop that drives every method.

The engine seeds everything, picks the device, keeps the whole contaminated set as one tensor
on that device, shuffles with ``randperm`` (no DataLoader workers), evaluates the whole set in
large batches under ``inference_mode`` after every epoch, and emits one plain-dict record per
epoch to a callback or an iterator (so a UI thread can consume it). It writes the run folder
as it goes (:mod:`iaead_core.runs`) and honours a stop request between batches.

The AUROC in the records uses the labels: it is *oracle monitoring* (docs/method.md §6) and is
never used to select a model; the final model is the last epoch's.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from iaead_core._version import __version__
from iaead_core.config import TrainConfig
from iaead_core.data import ContaminatedSet, make_contaminated
from iaead_core.evaluation.health import (ALERT_KINDS, code_bound, diverged_alert, epoch_alerts,
                                          summarize)
from iaead_core.evaluation.metrics import detection_metrics, latent_diagnostics, score_scale
from iaead_core.methods import Evaluation, Method, StepLosses, build_method
from iaead_core.runs import RunWriter, new_run_id, resolve_runs_root
from iaead_core.storage import StorageError, check_folder, storage_error
from iaead_core.training.accel import Accel, accel_from_env
from iaead_core.training.graphs import GRAPHED_METHODS, GraphedStep, graphs_enabled

__all__ = ["Trainer", "TrainResult", "NonFiniteLossError", "train", "select_device",
           "seed_everything", "environment_info"]


_INIT_LOCK = threading.Lock()
#: A running run writes a checkpoint (model.pt and final.npz of the epoch just trained) at
#: least this often, in seconds, besides every ``checkpoint_every`` epochs.
CHECKPOINT_PERIOD_S = 60.0
#: The most epochs between two checkpoints by default.
MAX_CHECKPOINT_EVERY = 10


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite. ``epoch`` (1-based), ``batch`` and ``part`` say where;
    the records of the completed epochs stay in the trainer and in the run folder.

    ``kind`` is ``"diverged"`` (:data:`iaead_core.evaluation.health.ALERT_KINDS`) and :attr:`alert` the
    alert that the run folder's ``status.json`` carries under ``alerts``."""

    kind = "diverged"

    def __init__(self, epoch: int, batch: int, part: str, value: float, lam: float | None) -> None:
        self.epoch, self.batch, self.part, self.value = epoch, batch, part, value
        hint = "try a smaller learning rate" if lam is None else f"λ = {lam:g}; try a smaller λ or learning rate"
        super().__init__(
            f"the {part} loss became {value} at epoch {epoch}, batch {batch}: training diverged "
            f"({hint}). The {epoch - 1} completed epoch(s) are kept.")

    @property
    def alert(self) -> dict[str, str]:
        """``{"kind": "diverged", "message": str(self)}``."""
        return diverged_alert(str(self))


def select_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda if available, then mps, then cpu; otherwise the named device.

    Raises
    ------
    ValueError
        If a named accelerator is not available here (the message lists what is).
    """
    available = ["cpu"]
    if torch.cuda.is_available():
        available.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        available.insert(0 if "cuda" not in available else 1, "mps")
    if name == "auto":
        return torch.device(available[0])
    if name not in available:
        raise ValueError(f"device {name!r} is not available here; available: {', '.join(available)}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy and torch (all devices) and turn cuDNN autotuning off, so runs
    repeat (docs/method.md §9: the released code seeded numpy only)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False


def environment_info(device: torch.device, accel: Accel | None = None) -> dict[str, Any]:
    """Versions and hardware recorded with every result, with the GPU arithmetic settings
    (:class:`~iaead_core.training.accel.Accel`) in force."""
    import sklearn
    import torchvision

    info = {"iaead": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__,
            "sklearn": sklearn.__version__, "platform": platform.platform(),
            "device": str(device), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if accel is not None:
        info["accel"] = accel.to_dict()
    return info


@dataclass
class TrainResult:
    """What a finished (or stopped) run leaves behind.

    Attributes
    ----------
    run_id : str; run_dir : Path or None (None when nothing was persisted)
    status : "completed" | "stopped"
    config : TrainConfig; data : dict (the data set summary)
    records : list of per-epoch record dicts (see :meth:`Trainer.epochs`)
    evaluation : Evaluation of the last completed epoch (``z`` (N, d), ``scores``)
    is_anomaly : ndarray (N,) bool; labels : ndarray (N,) int64
    seconds : float — wall time of the whole run
    method : Method — the trained method (model on its device, ``c``, ``R``)
    """

    run_id: str
    run_dir: Any
    status: str
    config: TrainConfig
    data: dict[str, Any]
    records: list[dict[str, Any]]
    evaluation: Evaluation | None
    is_anomaly: np.ndarray
    labels: np.ndarray
    seconds: float
    method: Method = field(repr=False)

    @property
    def final_metrics(self) -> dict[str, dict[str, float]]:
        """rule → {auroc, aupr_in, aupr_out} of the last completed epoch."""
        return self.records[-1]["metrics"] if self.records else {}


class Trainer:
    """Train one method on one contaminated set, epoch by epoch.

    Parameters
    ----------
    cfg : TrainConfig
        Validated on construction.
    data : ContaminatedSet, optional
        Built from ``cfg`` (:func:`~iaead_core.data.make_contaminated`) when omitted; pass one
        to train several methods on the same draw. Its dataset, class, ρ and ``max_samples``
        replace those of ``cfg`` in the saved config.
    runs_root : path, None or False
        Where the run folder goes (``None``: ``$IAEAD_RUNS_DIR`` or ``./runs``; ``False``:
        write nothing).
    stop_event : threading.Event, optional
        Set it (from any thread) to stop between batches; the run ends with status
        ``stopped`` and keeps every completed epoch.
    snapshot_every : int, optional
        Save the latent codes every this many epochs (default ``max(1, epochs // 10)``),
        plus the first epoch, the end of the warm-up and the last epoch.
    checkpoint_every : int, optional
        Write ``model.pt`` and ``final.npz`` of the epoch just trained every this many epochs
        (default: ``snapshot_every``, at most :data:`MAX_CHECKPOINT_EVERY`) and whenever
        :data:`CHECKPOINT_PERIOD_S` seconds have passed since the last checkpoint, each file
        atomically, so that a run killed at any moment (``kill -9``, a power cut) keeps a
        model of its last checkpoint that can be scored and restored (status.json's
        ``checkpoint`` names its epoch); the end of the run writes them again, of its last
        epoch.
    run_id : str, optional
        Name of the run folder (default: a new time-stamped id). Experiments pass the content
        hash of the config (:func:`iaead_core.experiments.run_ids.run_id_for`).
    overlap : bool, optional
        Do each epoch's bookkeeping (metrics, diagnostics, alerts, run-folder writes) on a host
        thread while the next epoch trains. Default: on a CUDA device, where the GPU would
        otherwise wait for it; off on a CPU, whose cores the training itself uses. The records
        are the same either way; with overlap an epoch's record may be yielded after the next
        epoch has started.

    Raises
    ------
    ValueError
        For an invalid config, data set, class or device.
    iaead_core.data.DatasetUnavailableError
        If the data set is missing and cannot be downloaded.
    iaead_core.storage.StorageError
        If the runs folder cannot be written (read-only, disk full, permission denied):
        checked before the data is loaded.
    """

    def __init__(self, cfg: TrainConfig, data: ContaminatedSet | None = None,
                 runs_root: Any = None, stop_event: threading.Event | None = None,
                 snapshot_every: int | None = None, run_id: str | None = None,
                 overlap: bool | None = None, checkpoint_every: int | None = None) -> None:
        cfg.validate()
        self.overlap = overlap
        self.runs_root = None if runs_root is False else resolve_runs_root(runs_root)
        if self.runs_root is not None:  # a read-only or full disk fails now, not after loading
            check_folder(self.runs_root)
        self.device = select_device(cfg.device)
        self.data = data if data is not None else make_contaminated(
            cfg.dataset, cfg.normal_class, cfg.rho, seed=cfg.seed, data_root=cfg.data_root,
            max_samples=cfg.max_samples, download=cfg.download)
        # The saved config describes the data actually used (class as its index).
        d = self.data
        self.cfg = cfg = cfg.replace(dataset=d.dataset, normal_class=d.normal_class, rho=d.rho,
                                     max_samples=d.max_samples,
                                     data_root=d.data_root or cfg.data_root)
        self.stop_event = stop_event or threading.Event()
        self.snapshot_every = snapshot_every or max(1, cfg.epochs // 10)
        self.checkpoint_every = checkpoint_every or min(self.snapshot_every, MAX_CHECKPOINT_EVERY)
        self._last_checkpoint = time.monotonic()
        self.records: list[dict[str, Any]] = []
        self._graph_step: GraphedStep | None = None  # made on a GPU's first step
        self._stream: torch.cuda.Stream | None = None  # the run's own stream on a GPU
        self.accel = Accel()
        self.status = "created"
        self.result: TrainResult | None = None
        self.run_id = run_id or new_run_id(cfg.method, self.data.dataset, self.data.normal_class,
                                           cfg.seed)
        self.run_dir = None if self.runs_root is None else self.runs_root / self.run_id

    def _on_stream(self) -> contextlib.AbstractContextManager:
        """Issue the device work of the enclosed block on the run's CUDA stream (a no-op on
        other devices)."""
        return contextlib.nullcontext() if self._stream is None else torch.cuda.stream(self._stream)

    def _host_state(self, state: dict[str, Any] | None) -> dict[str, Any] | None:
        """``state`` with its weights on the CPU (None stays None), read after the run's
        stream; weights already there are taken as they are, not copied again."""
        if state is None:
            return None
        with self._on_stream():
            out = dict(state)
            out["model"] = {k: v.detach().cpu() for k, v in state["model"].items()}
            return out

    def stop(self) -> None:
        """Ask the run to stop after the current batch (thread-safe)."""
        self.stop_event.set()

    def _snapshot_due(self, epoch: int) -> bool:
        e = epoch + 1
        return e == 1 or e == self.cfg.epochs or e == self.cfg.warmup_epochs or e % self.snapshot_every == 0

    def _checkpoint_due(self, epoch: int) -> bool:
        """Whether 0-based ``epoch`` ends with a checkpoint: every :attr:`checkpoint_every`
        epochs, or :data:`CHECKPOINT_PERIOD_S` after the last one (the last epoch's model and
        scores are written by the end of the run instead). Called once per epoch."""
        e = epoch + 1
        now = time.monotonic()
        due = e < self.cfg.epochs and (e % self.checkpoint_every == 0
                                       or now - self._last_checkpoint >= CHECKPOINT_PERIOD_S)
        if due:
            self._last_checkpoint = now
        return due

    def epochs(self) -> Iterator[dict[str, Any]]:
        """Run the training, yielding one record per completed epoch.

        Each record is a JSON-able dict::

            epoch (1-based), epochs, phase, lr, seconds (this epoch), elapsed,
            loss: {total, reconstruction, svdd}   (means over the epoch's batches; None if absent)
            R, metrics: {rule: {auroc, aupr_in, aupr_out, degenerate, raw, n_nonfinite}}
                (iaead_core.evaluation.metrics.detection_metrics; degenerate = the scores differ only by
                float noise, reported as AUROC 0.5 and AUPR at the base rates),
            diagnostics: {...} (iaead_core.evaluation.metrics.latent_diagnostics),
            alerts: [{kind, message}, ...]  (iaead_core.evaluation.health.epoch_alerts; [] when healthy)
            method_diagnostics: {name: float}   (Method.epoch_diagnostics: DRAE's k*/B, ...)
            primary_score, method

        When the generator is exhausted, :attr:`result` holds the :class:`TrainResult`.

        Raises
        ------
        NonFiniteLossError
            When a loss becomes NaN/inf; the run folder is marked ``failed`` with the message.
        """
        cfg = self.cfg
        torch.set_grad_enabled(True)
        start = time.perf_counter()
        accel = accel_from_env(self.device)
        if cfg.method not in GRAPHED_METHODS:  # bf16 is measured for the paper's network only
            accel = Accel("fp32", accel.channels_last, accel.cudnn_benchmark)
        self.accel = accel
        # On a GPU the run has its own CUDA stream, so that runs in threads of one process
        # (experiment slots) can overlap their kernels; every device operation of the run is
        # issued on it (never across a ``yield``, which hands the thread to the consumer).
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        with self._on_stream():
            X = accel.layout(self.data.images.to(self.device))
            with _INIT_LOCK:  # torch's global RNG draws the weights: one thread at a time
                seed_everything(cfg.seed)
                method = build_method(cfg, X.shape[1], self.device)
                accel.prepare(method.model)
        self.method = method
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        writer = None
        if self.runs_root is not None:
            meta = {"run_id": self.run_id, "config": cfg.to_dict(), "data": self.data.summary(),
                    "seed": cfg.seed, "nu": cfg.resolved_nu, "lam": cfg.effective_lam,
                    "environment": environment_info(self.device, accel), "created": time.time(),
                    "primary_score": method.primary_score}
            writer = RunWriter(self.runs_root, self.run_id, meta)
            if hasattr(self.data, "save_manifest"):  # image files: which ones, in order
                try:
                    self.data.save_manifest(writer.dir)
                except BaseException as e:
                    self.status = "failed"
                    self._finish(writer, None, None, "failed", str(e))
                    raise
        self.status = "running"
        evaluation: Evaluation | None = None
        last_state = None
        books = _Bookkeeper(self.device.type == "cuda" if self.overlap is None else self.overlap)
        try:
            with self._on_stream():
                method.start(X)
                opt, sched = method.make_optimizer(0)
            for epoch in range(cfg.epochs):
                t0 = time.perf_counter()
                lr = opt.param_groups[0]["lr"]
                phase = method.phase(epoch)
                with self._on_stream():
                    sums = self._train_epoch(method, opt, method.training_set(X, epoch), gen,
                                             epoch)
                    if sums is None:
                        break
                    sched.step()
                    if method.end_epoch(epoch, X):
                        opt, sched = method.make_optimizer(epoch + 1)
                    evaluation = method.evaluate(X, epoch, cfg.eval_batch_size)
                    # A copy on the device (no wait); to the host only for a checkpoint.
                    last_state = _detached_copy(method.state(), self.device)
                    checkpoint = (self._host_state(last_state) if self._checkpoint_due(epoch)
                                  else None)
                    # What the record needs from the method is read now, in this thread; the
                    # rest (metrics, diagnostics, alerts, files) may run beside the next epoch.
                    method_diagnostics = method.epoch_diagnostics()
                books.submit(functools.partial(
                    self._keep_books, writer, epoch, phase, lr, sums, evaluation, method.R,
                    method_diagnostics, method.primary_score, method.name,
                    code_bound(getattr(method, "code_activation", None)), t0,
                    time.perf_counter(), start, checkpoint=checkpoint))
                yield from books.done()
                if self.stop_event.is_set():
                    break
            yield from books.drain()
        except (GeneratorExit, KeyboardInterrupt) as e:  # same as a stop request
            self.status = "stopped"
            books.drain_quietly()
            last_state = self._host_state(last_state)
            if writer:
                self._finish(writer, evaluation, last_state, "stopped",
                             "interrupted" if isinstance(e, KeyboardInterrupt) else None)
            raise
        except BaseException as e:  # NonFiniteLossError's message already says what happened
            self.status = "failed"
            books.drain_quietly()
            last_state = self._host_state(last_state)
            if writer:
                error = (str(e) if isinstance(e, (NonFiniteLossError, StorageError))
                         else f"{type(e).__name__}: {e}")
                extra = [e.alert] if isinstance(e, NonFiniteLossError) else []
                self._finish(writer, evaluation, last_state, "failed", error, extra)
            raise
        finally:
            books.close()
            if self._stream is not None:  # callers use the model on their own stream next
                self._stream.synchronize()
        self.status = "stopped" if len(self.records) < cfg.epochs else "completed"
        if writer:
            problem = self._finish(writer, evaluation,
                                   self._host_state(last_state or method.state()), self.status,
                                   None)
            if problem is not None:  # status.json says "failed" with it, where it could
                self.status = "failed"
                raise problem
        self.result = TrainResult(
            run_id=self.run_id, run_dir=self.run_dir, status=self.status, config=cfg,
            data=self.data.summary(), records=self.records, evaluation=evaluation,
            is_anomaly=self.data.is_anomaly, labels=self.data.labels,
            seconds=time.perf_counter() - start, method=method)

    def _train_epoch(self, method: Method, opt, X: torch.Tensor, gen: torch.Generator,
                     epoch: int) -> dict[str, float] | None:
        """One pass over ``X`` in random mini-batches; loss sums, or None if stopped.

        The batch losses stay on the device and are read once, after the last step: a read
        per batch would make a GPU wait for the host at every step. A non-finite loss is
        found in that read, and :class:`NonFiniteLossError` names its epoch and batch; the
        steps taken after it are discarded with the epoch (the kept state is the previous
        epoch's). On a CPU the weights and the loss means are the same as with a read per
        batch: the same floats are summed in the same order.
        """
        method.model.train()
        n, bs = len(X), self.cfg.batch_size
        perm = torch.randperm(n, generator=gen).to(self.device)
        starts = list(range(0, n, bs))
        if len(starts) > 1 and n - starts[-1] == 1:  # BatchNorm cannot train on a batch of one
            starts.pop()                              # image: it joins the previous batch
        ends = starts[1:] + [n]
        # part -> [(batch index, 0-d loss tensor)]; a part can be absent from a batch
        batch_losses: dict[str, list[tuple[int, torch.Tensor]]] = {
            "total": [], "reconstruction": [], "svdd": []}
        def eager(x: torch.Tensor, epoch: int) -> StepLosses:
            with self.accel.autocast():
                losses = method.loss(x, epoch)
            opt.zero_grad(set_to_none=True)
            losses.total.backward()
            opt.step()
            method.after_step()
            return losses

        graphed = self._graphed_step(method, eager)
        try:
            for b, (i, j) in enumerate(zip(starts, ends)):
                if self.stop_event.is_set():
                    return None
                if graphed is not None and j - i == bs:
                    losses = graphed.step(X, perm[i:j], opt, epoch)
                else:
                    losses = eager(X[perm[i:j]], epoch)
                for k, v in batch_losses.items():
                    part = getattr(losses, k)
                    if part is not None:
                        v.append((b, part.detach()))
        except Exception:
            self._check_finite(batch_losses, epoch)  # a NaN that broke the method names itself
            raise
        finally:
            method.finish_epoch()
        values = self._check_finite(batch_losses, epoch)
        weights = [(j - i) / n for i, j in zip(starts, ends)]
        return {k: None if not v else sum(x * weights[b] for b, x in v.items())
                for k, v in values.items()}

    def _graphed_step(self, method: Method, eager) -> GraphedStep | None:
        """The run's CUDA-graph step (:mod:`iaead_core.training.graphs`), made on first use
        and kept across epochs (its eager fallback is this epoch's); None where steps run
        eagerly (a CPU, another method, ``IAEAD_CUDA_GRAPHS=0``)."""
        if not graphs_enabled(method, self.device):
            return None
        if self._graph_step is None:
            self._graph_step = GraphedStep(method, self.cfg.batch_size, eager, self.accel)
        self._graph_step.eager = eager
        return self._graph_step

    def _check_finite(self, batch_losses: dict[str, list[tuple[int, torch.Tensor]]],
                      epoch: int) -> dict[str, dict[int, float]]:
        """Read the epoch's batch losses (one transfer per part): part → {batch: float}.

        Raises
        ------
        NonFiniteLossError
            At the first batch whose total loss is NaN or infinite.
        """
        values = {k: dict(zip((b for b, _ in v), torch.stack([t for _, t in v]).tolist()))
                  if v else {} for k, v in batch_losses.items()}
        svdd = values["svdd"]
        for b, total in values["total"].items():
            if not np.isfinite(total):
                part = "SVDD" if not np.isfinite(svdd.get(b, 0.0)) else "total"
                raise NonFiniteLossError(epoch + 1, b + 1, part, total, self.cfg.effective_lam)
        return values

    def _record(self, method: Method, epoch: int, phase: str, lr: float, loss: dict,
                ev: Evaluation, t0: float, start: float) -> dict[str, Any]:
        """The record of an epoch just evaluated (see :meth:`epochs`), read from ``method``."""
        return self._make_record(epoch, phase, lr, loss, ev, method.R, method.epoch_diagnostics(),
                                 method.primary_score, method.name,
                                 code_bound(getattr(method, "code_activation", None)), t0,
                                 time.perf_counter(), start)

    def _make_record(self, epoch: int, phase: str, lr: float, loss: dict, ev: Evaluation,
                     R: float, method_diagnostics: dict[str, float], primary_score: str,
                     name: str, bound: float | None, t0: float, now: float,
                     start: float) -> dict[str, Any]:
        y = self.data.is_anomaly
        diagnostics = latent_diagnostics(ev.z, ev.centre, bound=bound)
        losses = [r["loss"]["total"] for r in self.records] + [loss["total"]]
        return {
            "epoch": epoch + 1, "epochs": self.cfg.epochs, "phase": phase, "lr": lr,
            "seconds": now - t0, "elapsed": now - start, "loss": loss, "R": R,
            # A set without labels (a folder of the user's images) has rankings, no metrics.
            "metrics": {} if y is None else {
                rule: detection_metrics(y, s, scale=score_scale(rule, ev.z, ev.centre))
                for rule, s in ev.scores.items()},
            "diagnostics": diagnostics,
            "alerts": epoch_alerts(diagnostics, losses),
            "method_diagnostics": method_diagnostics,
            "primary_score": primary_score, "method": name,
        }

    def _keep_books(self, writer: RunWriter | None, epoch: int, phase: str, lr: float,
                    loss: dict, ev: Evaluation, R: float, method_diagnostics: dict[str, float],
                    primary_score: str, name: str, bound: float | None, t0: float, now: float,
                    start: float, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
        """An epoch's bookkeeping, in epoch order: its record (metrics, diagnostics, alerts),
        kept in :attr:`records` and written to the run folder with its snapshot if one is due
        and, given ``checkpoint`` (the method state after this epoch, a CPU copy), with
        ``model.pt`` and ``final.npz`` of this epoch. ``seconds`` counts the epoch's training
        and evaluation (up to ``now``), not this bookkeeping."""
        record = self._make_record(epoch, phase, lr, loss, ev, R, method_diagnostics,
                                   primary_score, name, bound, t0, now, start)
        self.records.append(record)
        if writer:
            writer.append_record(record)
            if self._snapshot_due(epoch):
                writer.save_snapshot(epoch + 1, ev.z, ev.scores, ev.centre, R)
            if checkpoint is not None:
                writer.save_checkpoint(epoch + 1, checkpoint, ev.z, ev.scores,
                                       self.data.is_anomaly, self.data.labels, ev.centre, R)
        return record

    def _finish(self, writer: RunWriter, ev: Evaluation | None, state, status: str,
                error: str | None, extra_alerts: list[dict[str, str]] = ()) -> StorageError | None:
        """Save the final codes, scores and weights, and write ``status.json`` with the
        summary of the run's alerts (:func:`iaead_core.evaluation.health.summarize`) plus
        ``extra_alerts`` (the ``diverged`` alert of a failed run).

        Never raises for the disk: a file that cannot be written (disk full, read-only) is
        returned as a :class:`~iaead_core.storage.StorageError`, and status.json then says
        ``failed`` with its message (where status.json itself can still be written); the
        files of the last checkpoint stay, and no partial file is left. Any other error while
        saving is raised after status.json has said ``failed`` with it."""
        problem: StorageError | None = None
        other: Exception | None = None
        try:
            try:
                if ev is not None and state is not None:
                    writer.save_checkpoint(len(self.records), state, ev.z, ev.scores,
                                           self.data.is_anomaly, self.data.labels, ev.centre,
                                           self.method.R)
                elif ev is not None:
                    writer.save_final(ev.z, ev.scores, self.data.is_anomaly, self.data.labels,
                                      ev.centre, self.method.R)
                elif state is not None:
                    writer.save_weights(state)
            except Exception as e:  # a full disk (StorageError), or anything else: say it
                if isinstance(e, OSError):
                    problem = storage_error(e, writer.dir / "final.npz")
                    words = str(problem)
                else:
                    other, words = e, f"the final files could not be written ({type(e).__name__}: {e})"
                status = "failed"
                error = words if not error else error if words in error else f"{error}; {words}"
            failed_at = len(self.records) + 1  # the epoch that did not complete
            alerts = summarize(self.records) + [
                {**a, "title": ALERT_KINDS[a["kind"]]["title"], "first_epoch": failed_at,
                 "last_epoch": failed_at, "epochs": 1} for a in extra_alerts]
            try:
                writer.set_status(status, error, epochs_done=len(self.records), alerts=alerts)
            except OSError as e:
                problem = problem or storage_error(e, writer.dir / "status.json")
        finally:
            writer.close()
        if other is not None:
            raise other
        return problem

    def run(self, callback: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
        """Train to the end (or to a stop request), calling ``callback(record)`` every epoch.

        Returns
        -------
        TrainResult

        Raises
        ------
        NonFiniteLossError
            See :meth:`epochs`.
        """
        for record in self.epochs():
            if callback is not None:
                callback(record)
        assert self.result is not None
        return self.result


class _Bookkeeper:
    """Runs the epochs' bookkeeping jobs in epoch order: at once in the calling thread, or,
    with ``overlap``, on one host worker thread beside the next epoch's training. Results come
    back in submission order; a job's exception is raised when its result is taken."""

    def __init__(self, overlap: bool) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="iaead-books") if overlap else None
        self._pending: deque[Future] = deque()

    def submit(self, job: Callable[[], dict[str, Any]]) -> None:
        if self._pool is not None:
            self._pending.append(self._pool.submit(job))
            return
        done: Future = Future()
        done.set_result(job())  # an exception propagates at once, as without a worker
        self._pending.append(done)

    def done(self) -> Iterator[dict[str, Any]]:
        """The results ready now, oldest first (never waits)."""
        while self._pending and self._pending[0].done():
            yield self._pending.popleft().result()

    def drain(self) -> Iterator[dict[str, Any]]:
        """Every result still pending, waiting for each in turn."""
        while self._pending:
            yield self._pending.popleft().result()

    def drain_quietly(self) -> None:
        """Finish the pending jobs (their records are kept and written), ignoring their
        errors: used while another error or a stop ends the run."""
        while self._pending:
            try:
                self._pending.popleft().result()
            except Exception:  # the run already fails or stops for another reason
                pass

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _detached_copy(state: dict[str, Any], device: torch.device | str = "cpu") -> dict[str, Any]:
    """A copy of a method state on ``device`` (default the CPU), so that later optimiser steps
    do not change it. A copy on the GPU it already lives on costs no wait for the host."""
    out = dict(state)
    out["model"] = {k: v.detach().to(device, copy=True) for k, v in state["model"].items()}
    return out


def train(cfg: TrainConfig, data: ContaminatedSet | None = None, runs_root: Any = None,
          callback: Callable[[dict[str, Any]], None] | None = None,
          stop_event: threading.Event | None = None) -> TrainResult:
    """Convenience wrapper: ``Trainer(cfg, data, runs_root, stop_event).run(callback)``."""
    return Trainer(cfg, data, runs_root=runs_root, stop_event=stop_event).run(callback)
