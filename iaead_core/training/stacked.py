"""Stacked training: K IAEAD / CAE configurations that share a data draw train as one network.

A λ sweep or a set of seed replicates trains K small networks on the same images. Alone, each
one leaves a GPU mostly idle; stacked, every layer of the K models runs as one grouped layer
(issue 8, item 3):

* ``Conv2d`` / ``ConvTranspose2d`` → one convolution with ``groups=K`` whose weight is the K
  models' weights concatenated along the output (conv) or input (transposed conv) channels;
  the activations are ``(B, K·channels, H, W)``, model k owning the k-th block of channels.
  When every model sees the same batch, the first convolution is a plain one with ``K·w``
  output channels instead (the same arithmetic, without copying the input K times).
* ``BatchNorm`` → one BatchNorm over ``K·channels``: its statistics are per channel, so each
  model gets exactly its own batch statistics; the running statistics live in one buffer of
  which each model's BatchNorm holds a *view*.
* ``Linear`` → a batched matrix product (``baddbmm``) with the weights stacked as
  ``(K, out, in)``.
* The loss of each model is computed separately (its own ``c``, ``R``, ``λ``, ``ν``); the
  network back-propagates their sum, whose gradient with respect to model k's weights is the
  gradient of model k's loss alone (the models share no weight).

**Per-model learning rate.** A grouped weight cannot be split into per-model optimiser
parameters (views of one tensor cannot be separate leaves), so the weights stay where the
single runs keep them: each model's own ``CAE`` module holds its own leaf parameters, and the
stacked forward *concatenates* them per layer at every step (one copy of the weights per step,
small next to the convolutions). Each model is therefore optimised by its method's own
optimiser and scheduler (``Method.make_optimizer``): the learning rate, its schedule and the
update rule are those of a single run by construction.

**Equivalence.** Model k is built with the engine's seeding (same initial weights), each model
shuffles with its own seed's generator as the engine does (same mini-batches), and the epoch
loop, the centre, the radius line search, the records and the run folders follow
:class:`iaead_core.training.engine.Trainer`. Results match K separate runs up to float32 rounding:
grouped kernels add the same products in a different order (relative differences of order
1e-7 per operation), which SGD carries on from step to step. How far it carries them is a
property of the run: with the released initialisation at lr 0.1 (the presets), one such
difference that flips a ReLU unit sitting within ~1e-8 of zero grows to a few 1e-3 of the
first epoch's loss, the size of the single run's own difference between 1 and 2 CPU threads.
In float64 (default dtype float64, float64 images) the stack reproduces the single runs to
about 1e-16 (tests/test_stacked.py). So that one setting shows one number, stacking is
opt-in (``experiment run --stack on``); nothing stacks by default.

Sources: IAEAD eq. (6)–(9) and docs/method.md §2–4 for the objective; PyTorch's grouped
convolution (``groups``) for the layer arithmetic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iaead_core.config import PRESETS, TrainConfig
from iaead_core.data import ContaminatedSet, make_contaminated
from iaead_core.methods import Evaluation, build_method
from iaead_core.methods.nets import CAE
from iaead_core.runs import RunWriter
from iaead_core.training.engine import (NonFiniteLossError, TrainResult, Trainer, _INIT_LOCK,
                                        _detached_copy, environment_info, seed_everything,
                                        select_device)
__all__ = ["STACKABLE_METHODS", "SHARED_FIELDS", "StackedCAE", "StackedTrainer",
           "StackedResult", "StackingMeasurement", "train_stacked", "stack_groups",
           "measure_stacking", "stacking_pays", "train_many", "batch_bounds", "row_quantiles"]

#: Methods a stack can hold: the paper's CAE trained with (IAEAD) or without (CAE) L_svdd.
STACKABLE_METHODS = ("iaead", "cae")

#: Config fields that must agree across a stack: the data draw, the architecture and the
#: epoch structure. Everything else may differ per model (method, λ, ν, lr, lr_step,
#: lr_gamma, and the seed when the data draw is passed in).
SHARED_FIELDS = ("dataset", "normal_class", "rho", "max_samples", "width", "latent_dim", "init",
                 "batch_size", "epochs", "warmup_epochs", "eval_batch_size", "device")

#: ``stacking_pays`` says yes only above this measured speed-up, so timing noise of a few
#: per cent never switches a sweep to the stacked path for nothing.
PAYS_MARGIN = 1.05


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Mini-batch ``[start, end)`` bounds of one epoch over ``n`` images, as the engine cuts
    them: consecutive slices of ``batch_size``, except that a last batch of one image joins
    the previous batch (BatchNorm cannot train on a single image)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))


def row_quantiles(d: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The ``q[i]``-quantile of row ``i`` of ``d``, as ``torch.quantile`` computes it (linear
    interpolation between order statistics; a row holding NaN gives NaN), but with one
    quantile per row and no host synchronisation.

    Parameters
    ----------
    d : Tensor ``(K, B)`` float; q : Tensor ``(K,)`` of the same dtype, in [0, 1].

    Returns
    -------
    Tensor ``(K,)``. Source: Deep SVDD's radius line search (the (1 − ν)-quantile of the
    distances, :func:`iaead_core.methods.svdd.radius_quantile`) for K models at once.
    """
    sorted_d = d.sort(dim=1).values
    last = d.shape[1] - 1
    ranks = q * last
    ranks = torch.where(sorted_d.isnan().any(dim=1), torch.full_like(ranks, last), ranks)
    below, above = ranks.long(), ranks.ceil().long()
    lo = sorted_d.gather(1, below.unsqueeze(1)).squeeze(1)
    hi = sorted_d.gather(1, above.unsqueeze(1)).squeeze(1)
    return lo.lerp(hi, ranks - below.to(ranks.dtype))


# ------------------------------------------------------------------------ the network

def _cae_layers(m: CAE) -> dict[str, Any]:
    """The layers of one CAE by role (raises ValueError for a CAE variant a stack cannot hold)."""
    enc, dfc, dec = list(m.encoder), list(m.decoder_fc), list(m.decoder)
    if getattr(m, "decoder_in", m.latent_dim) != m.latent_dim:
        raise ValueError("a stack needs CAEs whose decoder reads z (decoder_in == latent_dim)")
    tanh = len(enc) > 5 and isinstance(enc[5], nn.Tanh)
    bns = [enc[i][1] for i in range(3)] + [dfc[1]] + [dec[i][1] for i in range(2)]
    for bn in bns:
        if bn.momentum is None or not bn.affine or not bn.track_running_stats:
            raise ValueError("a stack needs BatchNorm layers with a momentum, affine weights "
                             "and running statistics (the CAE's defaults)")
    return {"enc_convs": [enc[i][0] for i in range(3)], "enc_fc": enc[4], "tanh": tanh,
            "dec_fc": dfc[0], "dec_convs": [dec[i][0] for i in range(3)], "bns": bns}


class StackedCAE(nn.Module):
    """K copies of the paper's :class:`~iaead_core.methods.nets.CAE` evaluated as one grouped network.

    The K models keep their own parameters (leaf tensors of each ``CAE``; see the module
    docstring for why); their BatchNorm running statistics are moved into one buffer per layer
    of which each model keeps a view, so the models stay usable on their own (evaluation,
    ``state_dict``) with the statistics the stack updates.

    Parameters
    ----------
    models : sequence of CAE
        Same ``in_channels``, ``width``, ``latent_dim``, code activation and BatchNorm
        settings, on one device.

    Raises
    ------
    ValueError
        For an empty sequence, a model that is not a CAE, or models that differ in shape.

    Shapes
    ------
    ``forward(x, shared=True)``: ``x`` float32 ``(B, C, 32, 32)`` (every model sees the same
    batch) or, with ``shared=False``, ``(B, K·C, 32, 32)`` (model k's batch in channels
    ``k·C … (k+1)·C − 1``) → ``z`` ``(K, B, latent_dim)`` and ``x_hat`` ``(B, K, C, 32, 32)``.
    """

    def __init__(self, models: Sequence[CAE]) -> None:
        super().__init__()
        if not models:
            raise ValueError("a stack needs at least one model")
        if not all(isinstance(m, CAE) for m in models):
            raise ValueError("a stack holds only CAE models (IAEAD / CAE methods)")
        m0 = models[0]
        shape = lambda m: (m.in_channels, m.width, m.latent_dim)  # noqa: E731
        if any(shape(m) != shape(m0) for m in models):
            raise ValueError("stacked models must share in_channels, width and latent_dim; got "
                             + ", ".join(str(shape(m)) for m in models))
        self.models = nn.ModuleList(models)
        self.K = len(models)
        self.in_channels, self.width, self.latent_dim = shape(m0)
        self._layers = [_cae_layers(m) for m in models]
        if any(lay["tanh"] != self._layers[0]["tanh"] for lay in self._layers):
            raise ValueError("stacked models must share the code activation")
        self.tanh = self._layers[0]["tanh"]
        self._bn_settings = []
        for j, bn0 in enumerate(self._layers[0]["bns"]):
            bns = [lay["bns"][j] for lay in self._layers]
            if any((bn.eps, bn.momentum) != (bn0.eps, bn0.momentum) for bn in bns):
                raise ValueError("stacked models must share BatchNorm eps and momentum")
            self._bn_settings.append((bn0.eps, bn0.momentum))
            c = bn0.num_features
            for name in ("running_mean", "running_var"):
                joint = torch.cat([getattr(bn, name).detach() for bn in bns]).clone()
                self.register_buffer(f"bn{j}_{name}", joint)
                for k, bn in enumerate(bns):  # each model keeps a view into the joint buffer
                    setattr(bn, name, joint[k * c:(k + 1) * c])

    def pack(self) -> dict[str, Any]:
        """The K models' weights concatenated per layer (part of the autograd graph).

        Returns a dict of tensors: ``enc{j}_w`` ``(K·cout, cin, 3, 3)``, ``dec{j}_w``
        ``(K·cin, cout, 3, 3)``, their biases ``(K·cout,)``, BatchNorm ``bn{j}_w`` / ``_b``
        ``(K·channels,)``, and the Linear layers as ``enc_fc_w`` ``(K, d, F)``, ``dec_fc_w``
        ``(K, F, d)`` with biases ``(K, out)``.
        """
        L = self._layers
        cat = lambda ts: ts[0] if len(ts) == 1 else torch.cat(ts)  # noqa: E731
        p: dict[str, Any] = {}
        for j in range(3):
            p[f"enc{j}_w"] = cat([lay["enc_convs"][j].weight for lay in L])
            p[f"enc{j}_b"] = cat([lay["enc_convs"][j].bias for lay in L])
            p[f"dec{j}_w"] = cat([lay["dec_convs"][j].weight for lay in L])
            p[f"dec{j}_b"] = cat([lay["dec_convs"][j].bias for lay in L])
        for j in range(len(L[0]["bns"])):
            p[f"bn{j}_w"] = cat([lay["bns"][j].weight for lay in L])
            p[f"bn{j}_b"] = cat([lay["bns"][j].bias for lay in L])
        for name in ("enc_fc", "dec_fc"):
            p[f"{name}_w"] = torch.stack([lay[name].weight for lay in L])
            p[f"{name}_b"] = torch.stack([lay[name].bias for lay in L])
        return p

    def _bn(self, h: torch.Tensor, j: int, p: dict[str, Any]) -> torch.Tensor:
        eps, momentum = self._bn_settings[j]
        return F.batch_norm(h, getattr(self, f"bn{j}_running_mean"),
                            getattr(self, f"bn{j}_running_var"), p[f"bn{j}_w"], p[f"bn{j}_b"],
                            training=self.training, momentum=momentum, eps=eps)

    def forward(self, x: torch.Tensor, shared: bool = True,
                packed: dict[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """See the class docstring; ``packed`` reuses :meth:`pack`'s output (evaluation)."""
        p = self.pack() if packed is None else packed
        K, w, B = self.K, self.width, x.shape[0]
        h = x
        for j in range(3):
            groups = 1 if (j == 0 and shared) else K
            h = F.conv2d(h, p[f"enc{j}_w"], p[f"enc{j}_b"], stride=2, padding=1, groups=groups)
            h = F.relu(self._bn(h, j, p))
        feat = 4 * w * 16
        h = h.reshape(B, K, feat).transpose(0, 1)                      # (K, B, F)
        z = torch.baddbmm(p["enc_fc_b"].unsqueeze(1), h, p["enc_fc_w"].transpose(1, 2))
        if self.tanh:
            z = torch.tanh(z)                                          # (K, B, d)
        g = torch.baddbmm(p["dec_fc_b"].unsqueeze(1), z, p["dec_fc_w"].transpose(1, 2))
        g = g.transpose(0, 1).reshape(B, K * feat)                     # (B, K·F)
        g = F.relu(self._bn(g, 3, p)).view(B, K * 4 * w, 4, 4)
        for j in range(3):
            g = F.conv_transpose2d(g, p[f"dec{j}_w"], p[f"dec{j}_b"], stride=2, padding=1,
                                   output_padding=1, groups=K)
            g = F.relu(self._bn(g, 4 + j, p)) if j < 2 else torch.tanh(g)
        return z, g.view(B, K, self.in_channels, *g.shape[-2:])

    def sync_batch_counters(self, steps: int, models: Sequence[int] | None = None) -> None:
        """Set the BatchNorm ``num_batches_tracked`` of the given models (default all) to
        ``steps``, as K single runs would have counted (the stack's functional BatchNorm does
        not count; with a fixed momentum the counter changes no result)."""
        for k in range(self.K) if models is None else models:
            for bn in self._layers[k]["bns"]:
                bn.num_batches_tracked.fill_(steps)


# ------------------------------------------------------------------------ the trainer

@dataclass
class StackedResult(TrainResult):
    """A :class:`~iaead_core.training.engine.TrainResult` of one model of a stack.

    ``status`` is ``"completed"``, ``"stopped"`` or ``"failed"`` (the model's loss became
    non-finite: ``error`` holds the :class:`~iaead_core.training.engine.NonFiniteLossError`, ``method``
    the weights of its last completed epoch; the other models of the stack train on,
    unaffected). ``stack_index`` is the model's position k; ``seconds`` is the wall time of the
    whole stack.
    """

    error: NonFiniteLossError | None = None
    stack_index: int = 0


def _check_stack(cfgs: Sequence[TrainConfig], shared_data: bool) -> None:
    if not cfgs:
        raise ValueError("nothing to stack: pass at least one configuration")
    for c in cfgs:
        c.validate()
        if c.method not in STACKABLE_METHODS:
            raise ValueError(f"method {c.method!r} cannot be stacked; stackable methods: "
                             f"{', '.join(STACKABLE_METHODS)}")
    fields = SHARED_FIELDS + (() if shared_data else ("seed", "data_root"))
    for f in fields:
        values = [getattr(c, f) for c in cfgs]
        if any(v != values[0] for v in values):
            hint = (" (each seed draws its own data set: pass data= to share one draw)"
                    if f == "seed" else "")
            raise ValueError(f"stacked configurations must share {f}; got "
                             f"{', '.join(map(repr, values))}{hint}")


def stack_groups(cfgs: Sequence[TrainConfig], shared_data: bool = False) -> list[list[int]]:
    """Partition configurations into groups that can train as one stack.

    Parameters
    ----------
    cfgs : sequence of TrainConfig
    shared_data : bool
        True when the caller passes one data draw for all of them (then seeds may differ).

    Returns
    -------
    list of lists of indices into ``cfgs``, in first-appearance order; a configuration of a
    method that cannot be stacked forms a group of its own.
    """
    fields = SHARED_FIELDS + (() if shared_data else ("seed", "data_root"))
    groups: dict[Any, list[int]] = {}
    for i, c in enumerate(cfgs):
        key = (tuple(repr(getattr(c, f)) for f in fields) if c.method in STACKABLE_METHODS
               else ("alone", i))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


class StackedTrainer:
    """Train K compatible IAEAD / CAE configurations as one stacked network.

    Each model gets its own run folder (through :class:`~iaead_core.runs.RunWriter`), records
    shaped exactly as :meth:`iaead_core.training.engine.Trainer.epochs` makes them, and a
    :class:`StackedResult`. ``config.extra`` of every run gains ``stacked`` (K),
    ``stack_id``, ``stack_index`` (k) and, unless the caller set one, ``group`` (the stack id).
    Time fields of the records (``seconds``, ``elapsed``) are those of the whole stack.

    Parameters
    ----------
    cfgs : sequence of TrainConfig
        Methods in :data:`STACKABLE_METHODS`, agreeing on :data:`SHARED_FIELDS` (and on the
        seed unless ``data`` is given: the seed draws the data set).
    data : ContaminatedSet, optional
        The shared draw; built from ``cfgs[0]`` when omitted.
    runs_root : path, None or False
        As for :class:`~iaead_core.training.engine.Trainer` (``False``: write nothing).
    stop_event : threading.Event or sequence of K events, optional
        One event stops the whole stack between batches; K events stop single models (a
        stopped model keeps its completed epochs; the others train on).
    run_ids : sequence of K str, optional
        Names of the run folders (default: new time-stamped ids); experiments pass the
        content hashes of the configs.

    Raises
    ------
    ValueError
        For incompatible configurations (the message names the field that differs), an
        unstackable method, or a bad config / data set.
    """

    def __init__(self, cfgs: Sequence[TrainConfig], data: ContaminatedSet | None = None,
                 runs_root: Any = None,
                 stop_event: threading.Event | Sequence[threading.Event] | None = None,
                 run_ids: Sequence[str] | None = None) -> None:
        cfgs = list(cfgs)
        if run_ids is not None and len(run_ids) != len(cfgs):
            raise ValueError(f"got {len(run_ids)} run ids for {len(cfgs)} configurations")
        _check_stack(cfgs, shared_data=data is not None)
        c0 = cfgs[0]
        if data is None:
            data = make_contaminated(c0.dataset, c0.normal_class, c0.rho, seed=c0.seed,
                                     data_root=c0.data_root, max_samples=c0.max_samples,
                                     download=c0.download)
        self.data, self.K = data, len(cfgs)
        self.stack_id = f"stack-{time.strftime('%Y%m%d-%H%M%S')}-{id(self) & 0xffff:04x}"
        stacked = [c.replace(extra={**c.extra, "stacked": self.K, "stack_id": self.stack_id,
                                    "stack_index": k, "group": c.extra.get("group", self.stack_id)})
                   for k, c in enumerate(cfgs)]
        if isinstance(stop_event, threading.Event) or stop_event is None:
            self.stop_event = stop_event or threading.Event()
            self.model_stop = [threading.Event() for _ in cfgs]
        else:
            self.stop_event, self.model_stop = threading.Event(), list(stop_event)
            if len(self.model_stop) != self.K:
                raise ValueError(f"got {len(self.model_stop)} stop events for {self.K} models")
        # One engine Trainer per model does the bookkeeping (config, run id, records, folder).
        self.trainers = [Trainer(c, data=data, runs_root=runs_root, stop_event=self.model_stop[k],
                                 run_id=None if run_ids is None else run_ids[k])
                         for k, c in enumerate(stacked)]
        self.device = self.trainers[0].device
        self.cfgs = [t.cfg for t in self.trainers]
        self.results: list[StackedResult] | None = None

    @property
    def run_ids(self) -> list[str]:
        """The K run ids, in stack order."""
        return [t.run_id for t in self.trainers]

    @property
    def run_dirs(self) -> list[Any]:
        """The K run folders (None when nothing is written)."""
        return [t.run_dir for t in self.trainers]

    def stop(self) -> None:
        """Stop the whole stack after the current batch (thread-safe)."""
        self.stop_event.set()

    # -------------------------------------------------------------- the loop
    def epochs(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Train, yielding ``(k, record)`` for every model k after every epoch.

        When the generator is exhausted, :attr:`results` holds the K :class:`StackedResult`.
        A model whose loss becomes non-finite is marked ``failed`` (its folder too, with the
        engine's message naming the first bad epoch and batch) and frozen; the others go on.
        """
        K, cfg0, dev = self.K, self.cfgs[0], self.device
        torch.set_grad_enabled(True)
        start = time.perf_counter()
        X = self.data.images.to(dev)
        methods = []
        for t in self.trainers:
            with _INIT_LOCK:  # the engine's seeding: same initial weights as a single run
                seed_everything(t.cfg.seed)
                methods.append(build_method(t.cfg, X.shape[1], dev))
            t.method = methods[-1]
        self.net = net = StackedCAE([m.model for m in methods])
        seeds = sorted({c.seed for c in self.cfgs})
        gens = {s: torch.Generator(device="cpu").manual_seed(s) for s in seeds}
        shared = len(seeds) == 1
        writers: list[RunWriter | None] = []
        try:
            for t, m in zip(self.trainers, methods):
                writers.append(self._writer(t, m))
        except BaseException as e:  # e.g. a folder that exists: close the ones opened
            for w in writers:
                if w is not None:
                    w.set_status("failed", f"{type(e).__name__}: {e}")
                    w.close()
            raise
        alive = list(range(K))
        self._status = ["running"] * K
        self._errors: list[NonFiniteLossError | None] = [None] * K
        evaluations: list[Evaluation | None] = [None] * K
        last_states: list[dict | None] = [None] * K
        for t in self.trainers:
            t.status = "running"
        try:
            for m in methods:
                m.start(X)
            optims = [list(m.make_optimizer(0)) for m in methods]
            steps = 0
            for epoch in range(cfg0.epochs):
                t0 = time.perf_counter()
                lrs = [o[0].param_groups[0]["lr"] for o in optims]
                phases = [m.phase(epoch) for m in methods]
                out = self._train_epoch(net, methods, optims, X, gens, shared, epoch, alive)
                if out is None:
                    break
                sums, bad, n_batches = out
                steps += n_batches
                for k in list(alive):
                    if bad[k] is not None:
                        self._fail(k, epoch, bad[k], writers[k], evaluations[k], last_states[k])
                        alive.remove(k)
                    elif self.model_stop[k].is_set():
                        alive.remove(k)
                if not alive:
                    break
                for k in alive:
                    optims[k][1].step()
                    if methods[k].end_epoch(epoch, X):
                        optims[k] = list(methods[k].make_optimizer(epoch + 1))
                evals = self._evaluate(net, methods, X, epoch, alive)
                net.sync_batch_counters(steps, alive)
                for k in alive:
                    t, m, ev = self.trainers[k], methods[k], evals[k]
                    evaluations[k] = ev
                    record = t._record(m, epoch, phases[k], lrs[k], sums[k], ev, t0, start)
                    last_states[k] = _detached_copy(m.state())
                    t.records.append(record)
                    if writers[k]:
                        writers[k].append_record(record)
                        if t._snapshot_due(epoch):
                            writers[k].save_snapshot(epoch + 1, ev.z, ev.scores, ev.centre, m.R)
                        if t._checkpoint_due(epoch):
                            writers[k].save_checkpoint(epoch + 1, last_states[k], ev.z,
                                                       ev.scores, self.data.is_anomaly,
                                                       self.data.labels, ev.centre, m.R)
                for k in list(alive):
                    yield k, self.trainers[k].records[-1]
                for k in list(alive):
                    if self.model_stop[k].is_set():
                        alive.remove(k)
                if self.stop_event.is_set() or not alive:
                    break
        except (GeneratorExit, KeyboardInterrupt) as e:
            for k in range(K):
                if self._status[k] == "running":
                    self._close(k, writers[k], evaluations[k], last_states[k], "stopped",
                                "interrupted" if isinstance(e, KeyboardInterrupt) else None)
            raise
        except BaseException as e:
            for k in range(K):
                if self._status[k] == "running":
                    self._close(k, writers[k], evaluations[k], last_states[k], "failed",
                                f"{type(e).__name__}: {e}")
            raise
        for k in range(K):
            if self._status[k] == "running":
                t = self.trainers[k]
                status = "completed" if len(t.records) == cfg0.epochs else "stopped"
                self._close(k, writers[k], evaluations[k],
                            last_states[k] or _detached_copy(methods[k].state()), status, None)
        for k in range(K):  # a diverged model goes back to its last good epoch's weights
            if self._status[k] == "failed" and last_states[k] is not None:
                methods[k].load_state(last_states[k])
        seconds = time.perf_counter() - start
        self.results = [StackedResult(
            run_id=t.run_id, run_dir=t.run_dir, status=self._status[k], config=t.cfg,
            data=self.data.summary(), records=t.records, evaluation=evaluations[k],
            is_anomaly=self.data.is_anomaly, labels=self.data.labels, seconds=seconds,
            method=methods[k], error=self._errors[k], stack_index=k)
            for k, t in enumerate(self.trainers)]

    def _writer(self, t: Trainer, method) -> RunWriter | None:
        """The run folder of one model, with the meta data the engine writes."""
        if t.runs_root is None:
            return None
        cfg = t.cfg
        meta = {"run_id": t.run_id, "config": cfg.to_dict(), "data": self.data.summary(),
                "seed": cfg.seed, "nu": cfg.resolved_nu, "lam": cfg.effective_lam,
                "environment": environment_info(self.device), "created": time.time(),
                "primary_score": method.primary_score}
        writer = RunWriter(t.runs_root, t.run_id, meta)
        if hasattr(self.data, "save_manifest"):
            self.data.save_manifest(writer.dir)
        return writer

    def _close(self, k: int, writer, ev, state, status: str, error: str | None,
               extra_alerts: Sequence[dict[str, str]] = ()) -> None:
        """End model k's run as the engine ends one (final arrays, weights, status.json)."""
        t = self.trainers[k]
        self._status[k] = t.status = status
        if writer is not None:
            problem = t._finish(writer, ev, state, status, error, list(extra_alerts))
            if problem is not None:  # a full or read-only disk: status.json says failed
                self._status[k] = t.status = "failed"

    def _fail(self, k: int, epoch: int, bad: tuple[int, str, float], writer, ev, state) -> None:
        batch, part, value = bad
        err = NonFiniteLossError(epoch + 1, batch, part, value, self.cfgs[k].effective_lam)
        self._errors[k] = err
        self._close(k, writer, ev, state, "failed", str(err), [err.alert])

    def _train_epoch(self, net: StackedCAE, methods, optims, X: torch.Tensor,
                     gens: dict[int, torch.Generator], shared: bool, epoch: int,
                     alive: list[int]):
        """One epoch of stacked optimiser steps.

        Returns ``(sums, bad, n_batches)`` — per model the loss means (as the engine's
        records hold them) and ``None`` or ``(first bad batch, part, value)`` — or None when
        the whole stack was asked to stop. Non-finite losses are detected on the device and
        read once at the end of the epoch (a diverged model's later steps in that epoch touch
        only its own weights, which are then discarded).
        """
        K, n, dev = self.K, len(X), X.device
        net.train()
        perms = {s: torch.randperm(n, generator=g).to(dev) for s, g in gens.items()}
        seed_of = [c.seed for c in self.cfgs]
        dtype = next(net.parameters()).dtype  # λ and ν in the models' precision, like a
        lam = torch.tensor([m.lam for m in methods], dtype=dtype, device=dev)  # Python float
        nu = torch.tensor([m.nu for m in methods], dtype=dtype, device=dev)    # in the engine
        svdd_idx = [k for k in range(K) if methods[k].c is not None]
        if svdd_idx:
            sel = torch.tensor(svdd_idx, device=dev)
            c = torch.stack([methods[k].c for k in svdd_idx])                     # (Ks, d)
            R = torch.tensor([methods[k].R for k in svdd_idx], dtype=torch.float64, device=dev)
            q = torch.tensor([1.0 - methods[k].nu for k in svdd_idx], dtype=torch.float64,
                             device=dev)
        f64 = dict(dtype=torch.float64, device=dev)
        tot_sum, rec_sum, svdd_sum = (torch.zeros(K, **f64) for _ in range(3))
        first_bad = torch.zeros(K, dtype=torch.long, device=dev)   # 1-based batch, 0 = none
        bad_value = torch.zeros(K, **f64)
        bad_svdd = torch.zeros(K, dtype=torch.bool, device=dev)
        live = torch.zeros(K, dtype=torch.bool, device=dev)
        live[alive] = True
        bounds = batch_bounds(n, self.cfgs[0].batch_size)
        for b, (i, j) in enumerate(bounds):
            if self.stop_event.is_set():
                return None
            if shared:
                x = X[perms[seed_of[0]][i:j]]
                target = x.unsqueeze(1)                                        # (B, 1, C, H, W)
            else:
                x = torch.cat([X[perms[s][i:j]] for s in seed_of], dim=1)      # (B, K·C, H, W)
                target = x.view(x.shape[0], K, -1, *x.shape[-2:])
            z, x_hat = net(x, shared=shared)
            rec = ((x_hat - target) ** 2).mean(dim=(0, 2, 3, 4))               # (K,)
            total = rec
            svdd_full = None
            if svdd_idx:
                dist2 = ((z[sel] - c.unsqueeze(1)) ** 2).sum(-1)                 # (Ks, B)
                R2 = (R * R).to(dtype).unsqueeze(1)
                svdd = R2.squeeze(1) + torch.clamp(dist2 - R2, min=0.0).mean(1) / nu[sel]
                svdd_full = torch.zeros(K, dtype=svdd.dtype, device=dev).index_copy(0, sel, svdd)
                total = rec.index_add(0, sel, lam[sel] * svdd)
            net.zero_grad(set_to_none=True)
            total.sum().backward()
            for k in alive:
                optims[k][0].step()
            if svdd_idx:  # R: the (1 − ν)-quantile of the batch distances (after the step)
                R = row_quantiles(dist2.detach().clamp_min(0).sqrt().double(), q)
            w = (j - i) / n
            td = total.detach()
            now_bad = ~torch.isfinite(td) & (first_bad == 0) & live
            if svdd_full is not None:
                bad_svdd |= now_bad & ~torch.isfinite(svdd_full.detach())
            first_bad = torch.where(now_bad, b + 1, first_bad)
            bad_value = torch.where(now_bad, td.double(), bad_value)
            tot_sum += td.double() * w
            rec_sum += rec.detach().double() * w
            if svdd_full is not None:
                svdd_sum += svdd_full.detach().double() * w
        for pos, k in enumerate(svdd_idx):
            methods[k].R = float(R[pos])
        first, values, svdd_bad = first_bad.tolist(), bad_value.tolist(), bad_svdd.tolist()
        tots, recs, svdds = tot_sum.tolist(), rec_sum.tolist(), svdd_sum.tolist()
        sums, bad = [], []
        for k in range(K):
            sums.append({"total": tots[k], "reconstruction": recs[k],
                         "svdd": svdds[k] if k in svdd_idx else None})
            bad.append(None if first[k] == 0 else
                       (first[k], "SVDD" if svdd_bad[k] else "total", values[k]))
        return sums, bad, len(bounds)

    @torch.inference_mode()
    def _evaluate(self, net: StackedCAE, methods, X: torch.Tensor, epoch: int,
                  alive: list[int]) -> dict[int, Evaluation]:
        """The engine's eval-mode pass (``Method.evaluate``), for all models at once."""
        net.eval()
        packed = net.pack()
        bs = self.cfgs[0].eval_batch_size
        zs, errs = [], []
        for i in range(0, len(X), bs):
            x = X[i:i + bs]
            z, x_hat = net(x, shared=True, packed=packed)
            zs.append(z.float().cpu())                                         # (K, b, d)
            errs.append(((x_hat - x.unsqueeze(1)) ** 2).flatten(2).mean(2).double().cpu())
        z_all, err_all = torch.cat(zs, dim=1).numpy(), torch.cat(errs).numpy()  # (K,N,d), (N,K)
        out = {}
        for k in alive:
            m = methods[k]
            z = np.ascontiguousarray(z_all[k])
            rec = np.ascontiguousarray(err_all[:, k]) if m.wants_reconstruction(epoch) else None
            centre = None if m.c is None else m.c.detach().float().cpu().numpy()
            out[k] = Evaluation(z=z, scores=m.score(z, rec, epoch), centre=centre)
        return out

    def run(self, callback: Callable[[int, dict[str, Any]], None] | None = None
            ) -> list[StackedResult]:
        """Train to the end, calling ``callback(k, record)`` for every model every epoch.

        Returns
        -------
        list of K :class:`StackedResult`, in the order of the configurations.
        """
        for k, record in self.epochs():
            if callback is not None:
                callback(k, record)
        assert self.results is not None
        return self.results


def train_stacked(cfgs: Sequence[TrainConfig], data: ContaminatedSet | None = None,
                  runs_root: Any = None,
                  stop_event: threading.Event | Sequence[threading.Event] | None = None,
                  callback: Callable[[int, dict[str, Any]], None] | None = None,
                  run_ids: Sequence[str] | None = None) -> list[StackedResult]:
    """Train K compatible configurations as one stacked network (see :class:`StackedTrainer`).

    Returns
    -------
    list of K :class:`StackedResult` (``TrainResult`` plus ``error`` and ``stack_index``).

    Raises
    ------
    ValueError
        For configurations that cannot share a stack (the message names the field).
    """
    return StackedTrainer(cfgs, data, runs_root=runs_root, stop_event=stop_event,
                          run_ids=run_ids).run(callback)


# ------------------------------------------------------------------ when stacking pays

@dataclass
class StackingMeasurement:
    """Timing of training steps, stacked against one after another (seconds per round of K
    model steps, medians). ``speedup`` = ``sequential_s / stacked_s``."""

    device: str
    K: int
    width: int
    latent_dim: int
    batch_size: int
    stacked_s: float
    sequential_s: float
    rounds: int
    speedup: float = field(init=False)

    def __post_init__(self) -> None:
        self.speedup = self.sequential_s / self.stacked_s if self.stacked_s > 0 else 0.0


def _sizes(preset: str | TrainConfig) -> tuple[int, int, int]:
    if isinstance(preset, TrainConfig):
        return preset.width, preset.latent_dim, preset.batch_size
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    return p["width"], p["latent_dim"], p["batch_size"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_stacking(device: str | torch.device, K: int, preset: str | TrainConfig = "quick",
                     in_channels: int = 1, budget_s: float = 3.0, min_rounds: int = 2
                     ) -> StackingMeasurement:
    """Time a few SGD steps of K CAEs stacked and one after another on ``device``.

    Both do the same work per round: a forward pass, the reconstruction loss, a backward pass
    and an SGD step for each of the K models on one random batch of the preset's size.
    One untimed round each comes first (allocation, kernel selection); then timed rounds
    alternate (stacked, sequential, ...) until ``budget_s`` is spent, at least ``min_rounds``
    each. The medians are reported.

    Parameters
    ----------
    device : str or torch.device ("cpu", "cuda", "auto", ...)
    K : int, ≥ 1
    preset : "quick", "paper" or a TrainConfig (its width, latent_dim, batch_size)

    Raises
    ------
    ValueError
        For K < 1 or an unknown preset.
    """
    if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    dev = select_device(device) if isinstance(device, str) else torch.device(device)
    width, latent, bs = _sizes(preset)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(bs, in_channels, 32, 32, generator=gen) * 2 - 1).to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        models = [CAE(in_channels, width, latent).to(dev) for _ in range(K)]
    opts = [torch.optim.SGD(m.parameters(), lr=1e-3) for m in models]
    net = StackedCAE(models).train()

    def stacked_round() -> None:
        _, x_hat = net(x)
        loss = ((x_hat - x.unsqueeze(1)) ** 2).mean(dim=(0, 2, 3, 4)).sum()
        net.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()

    def sequential_round() -> None:
        for m, o in zip(models, opts):
            _, x_hat = m(x)
            loss = F.mse_loss(x_hat, x)
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()

    def timed(fn) -> float:
        _sync(dev)
        t = time.perf_counter()
        fn()
        _sync(dev)
        return time.perf_counter() - t

    with torch.enable_grad():
        timed(stacked_round), timed(sequential_round)
        st, sq = [], []
        end = time.perf_counter() + budget_s
        while len(st) < min_rounds or time.perf_counter() < end:
            st.append(timed(stacked_round))
            sq.append(timed(sequential_round))
            if len(st) >= 50:
                break
    return StackingMeasurement(device=str(dev), K=K, width=width, latent_dim=latent,
                               batch_size=bs, stacked_s=float(np.median(st)),
                               sequential_s=float(np.median(sq)), rounds=len(st))


_PAYS: dict[tuple, StackingMeasurement] = {}
_PAYS_LOCK = threading.Lock()


def stacking_pays(device: str | torch.device, K: int, preset: str | TrainConfig = "quick") -> bool:
    """Whether K models of this size train faster stacked than one after another here.

    Decided by :func:`measure_stacking` on the device at hand (a few seconds, once per
    process and (device, K, sizes): the result is cached). True only when the measured
    speed-up exceeds :data:`PAYS_MARGIN`; False for K = 1, and when the stacked network does
    not fit in the device's memory.

    Raises
    ------
    ValueError
        For an unknown preset.
    """
    dev = select_device(device) if isinstance(device, str) else torch.device(device)
    if K < 2:
        return False
    key = (str(dev), K, _sizes(preset))
    with _PAYS_LOCK:
        if key not in _PAYS:
            try:
                _PAYS[key] = measure_stacking(dev, K, preset)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                return False
        return _PAYS[key].speedup > PAYS_MARGIN


def train_many(cfgs: Sequence[TrainConfig], data: ContaminatedSet | None = None,
               runs_root: Any = None, stop_event: threading.Event | None = None,
               callback: Callable[[int, dict[str, Any]], None] | None = None,
               stack: bool | str = "auto") -> list[TrainResult]:
    """Train several configurations, stacking the compatible ones where that is faster.

    Parameters
    ----------
    cfgs : sequence of TrainConfig
    data : ContaminatedSet, optional
        One shared draw for all (then seeds may differ inside a stack).
    runs_root, stop_event
        As for :class:`~iaead_core.training.engine.Trainer`.
    callback : callable ``(i, record)``, optional
        ``i`` indexes ``cfgs``.
    stack : "auto", True or False
        ``"auto"`` stacks a group only when :func:`stacking_pays` on its device; True always
        stacks compatible groups; False trains one after another.

    Returns
    -------
    list of TrainResult (StackedResult for stacked runs), in the order of ``cfgs``. A stacked
    model that diverged has status ``"failed"``; a single run that diverges raises
    :class:`~iaead_core.training.engine.NonFiniteLossError` as the engine does.
    """
    if stack not in ("auto", True, False):
        raise ValueError(f"stack must be 'auto', True or False, got {stack!r}")
    results: list[TrainResult | None] = [None] * len(cfgs)
    stop_event = stop_event or threading.Event()
    for group in stack_groups(cfgs, shared_data=data is not None):
        if stop_event.is_set():
            break
        members = [cfgs[i] for i in group]
        use = len(group) > 1 and (stack is True or (stack == "auto" and stacking_pays(
            members[0].device, len(group), members[0])))
        if use:
            cb = None if callback is None else (lambda k, r, g=group: callback(g[k], r))
            for i, res in zip(group, train_stacked(members, data, runs_root, stop_event, cb)):
                results[i] = res
        else:
            for i in group:
                cb = None if callback is None else (lambda r, i=i: callback(i, r))
                results[i] = Trainer(cfgs[i], data=data, runs_root=runs_root,
                                     stop_event=stop_event).run(cb)
    return [r for r in results if r is not None]
