"""The training step of the paper's methods (IAEAD, eq. 6–8, and the CAE) as a CUDA graph.

A step of the paper's CAE launches a few hundred small kernels; on a GPU the host's launch
overhead, not the arithmetic, then sets the pace. A CUDA graph records the whole step once
(forward, loss, backward, the SGD update and the next radius R) and replays it with one launch
per step. The replayed kernels are the recorded ones, so the numbers are those of the eager
step; only full mini-batches of the configured size are replayed (the epoch's last, smaller
batch runs eagerly).

What the recording bakes in is re-recorded when it changes: the learning rate (the StepLR
schedule), the optimiser, and the phase (the warm-up without L_svdd, then the SVDD phase with
the fixed centre c). R is not baked in: it lives in a device buffer that the step reads
(eq. 7) and then overwrites with the (1 − ν)-quantile of the batch's distances, as the eager
step's ``after_step`` does.

Off unless the device is CUDA; ``IAEAD_CUDA_GRAPHS=0`` turns it off there too. A recording
that fails (a driver or kernel that cannot be captured) turns it off for the rest of the run,
with a warning, and the step runs eagerly.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

from iaead_core.methods import Method, StepLosses
from iaead_core.methods.svdd import batch_radius, soft_boundary_loss, squared_distances
from iaead_core.training.accel import Accel

__all__ = ["GraphedStep", "graphs_enabled", "ENV_CUDA_GRAPHS", "WARMUP_STEPS"]

#: Set to ``0`` to train eagerly on a GPU as well.
ENV_CUDA_GRAPHS = "IAEAD_CUDA_GRAPHS"
#: Eager steps, on a side stream, before the first recording: they initialise cuBLAS, cuDNN and
#: autograd for the recording stream (CUDA's documented requirement). They are real training
#: steps, so the run's numbers do not change.
WARMUP_STEPS = 3
#: Methods whose step this module records (their loss is written out in :meth:`_record`).
GRAPHED_METHODS = ("iaead", "cae")
#: One recording at a time in a process: runs in threads (experiment slots) record their own
#: graphs, and a recording empties the allocator's cache, which must not happen while another
#: thread is recording.
_RECORD_LOCK = threading.Lock()


def graphs_enabled(method: Method, device: torch.device) -> bool:
    """Whether ``method``'s steps on ``device`` are replayed as a CUDA graph."""
    return (device.type == "cuda" and method.name in GRAPHED_METHODS
            and os.environ.get(ENV_CUDA_GRAPHS, "1") != "0")


class GraphedStep:
    """Replays a recorded training step of IAEAD or the CAE.

    Parameters
    ----------
    method : the IAEAD or CAE method (its model, c, ν, λ and R).
    batch_size : the mini-batch size that is recorded.
    eager : the engine's eager step ``eager(x, epoch) -> StepLosses`` (forward, backward,
        optimiser step, ``after_step``): used for the warm-up steps and as the fallback.
    accel : the run's arithmetic settings (:mod:`iaead_core.training.accel`): the recorded
        forward pass runs under its autocast, as the eager step does.
    """

    def __init__(self, method: Method, batch_size: int,
                 eager: Callable[[torch.Tensor, int], StepLosses],
                 accel: Accel | None = None) -> None:
        self.method, self.batch_size, self.eager = method, batch_size, eager
        self.accel = accel or Accel()
        self.enabled = True
        self.warm = 0
        self.replays = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._key: tuple | None = None
        self._x: torch.Tensor | None = None
        self._R = torch.zeros((), dtype=torch.float64, device=method.device)  # as batch_radius
        self._out: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self._side = torch.cuda.Stream(method.device)

    def step(self, X: torch.Tensor, rows: torch.Tensor, opt: torch.optim.Optimizer,
             epoch: int) -> StepLosses:
        """One training step on ``X[rows]`` ``(batch_size, C, 32, 32)``; the losses are
        0-d device tensors (the host never waits)."""
        if not self.enabled:
            return self.eager(X[rows], epoch)
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            self._side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self._side):
                losses = self.eager(X[rows], epoch)
            torch.cuda.current_stream().wait_stream(self._side)
            return losses
        key = (id(opt), tuple(g["lr"] for g in opt.param_groups), self.method.c is None)
        if key != self._key:
            try:
                self._record(X, opt)
            except Exception as e:  # a kernel that cannot be captured: run eagerly from now on
                warnings.warn(f"CUDA graph recording failed ({type(e).__name__}: {e}); "
                              f"training eagerly", RuntimeWarning, stacklevel=2)
                self.enabled, self._graph = False, None
                torch.cuda.synchronize(self.method.device)
                return self.eager(X[rows], epoch)
            self._key = key
        m = self.method
        if self.accel.channels_last:  # a copy keeps the recorded input's memory order
            self._x.copy_(X[rows])
        else:
            torch.index_select(X, 0, rows, out=self._x)
        if m.c is not None:  # the R this step reads: the last step's, or the epoch's start
            current = m.current_R()
            if isinstance(current, torch.Tensor):
                self._R.copy_(current)
            else:
                self._R.fill_(float(current))
        self._graph.replay()
        self.replays += 1
        total, rec, svdd = self._out
        if m.c is not None:
            m._R_live = self._R.clone()
        return StepLosses(total=total.clone(), reconstruction=rec.clone(),
                          svdd=None if svdd is None else svdd.clone())

    def _record(self, X: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """Record forward, loss (eq. 2 / eq. 6–8), backward, the optimiser step and the new R."""
        with _RECORD_LOCK:
            self._record_locked(X, opt)

    def _record_locked(self, X: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        m = self.method
        self._graph = None  # frees the previous recording's memory pool
        if self._x is None:  # same memory order as X (channels-last or not)
            self._x = torch.empty_like(X[:self.batch_size])
        self._x.copy_(X[:self.batch_size])
        torch.cuda.synchronize(m.device)
        m.model.train()
        opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        # thread_local: other runs' threads of this process (experiment slots) may keep
        # launching and synchronising their own streams while this one records.
        with torch.cuda.graph(graph, stream=self._side, capture_error_mode="thread_local"):
            with self.accel.autocast():
                z, x_hat = m.model(self._x)
                rec = F.mse_loss(x_hat, self._x)
                svdd = None
                total = rec
                if m.c is not None:
                    dist2 = squared_distances(z, m.c)
                    svdd = soft_boundary_loss(dist2, self._R, m.nu)
                    total = rec + m.lam * svdd
            total.backward()
            opt.step()
            if m.c is not None:
                self._R.copy_(batch_radius(dist2.detach(), m.nu))
        torch.cuda.synchronize(m.device)
        self._graph, self._out = graph, (total, rec, svdd)
