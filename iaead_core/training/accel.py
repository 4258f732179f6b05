"""How a run uses a GPU's arithmetic: precision, memory layout and cuDNN's algorithm search.

Every setting here changes the floating-point path of a CUDA run (never a CPU run), so each
one is off by default and chosen through an environment variable, which the benchmark suite
sets to measure it (``benchmarks/suite.py``, part ``accel``). The settings in force are
recorded with every run (``environment.accel`` in ``config.json``).

* ``IAEAD_PRECISION=bf16`` — the training step's forward pass under ``torch.autocast`` in
  bfloat16 (the losses, BatchNorm and the optimiser stay float32, as autocast keeps them); the
  evaluation pass, and so every score and metric, stays float32.
* ``IAEAD_CHANNELS_LAST=1`` — the network and the images in channels-last memory order, which
  tensor-core convolutions prefer.
* ``IAEAD_CUDNN_BENCHMARK=1`` — cuDNN times the candidate algorithms of each convolution shape
  once and keeps the fastest (the engine otherwise turns that search off, so that a run's
  kernels do not depend on timing).

Convolutions already run in TF32 on CUDA by torch's default (``torch.backends.cudnn.allow_tf32``);
nothing here changes that.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass

import torch

__all__ = ["Accel", "accel_from_env", "ENV_PRECISION", "ENV_CHANNELS_LAST", "ENV_CUDNN_BENCHMARK",
           "PRECISIONS"]

ENV_PRECISION = "IAEAD_PRECISION"
ENV_CHANNELS_LAST = "IAEAD_CHANNELS_LAST"
ENV_CUDNN_BENCHMARK = "IAEAD_CUDNN_BENCHMARK"
#: Accepted values of ``IAEAD_PRECISION``.
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Accel:
    """The arithmetic settings of one run on one device (all off on a CPU).

    Attributes
    ----------
    precision : "fp32" | "bf16" — the training forward pass's autocast dtype.
    channels_last : bool — model and images in channels-last order.
    cudnn_benchmark : bool — cuDNN's per-shape algorithm search.
    """

    precision: str = "fp32"
    channels_last: bool = False
    cudnn_benchmark: bool = False

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context of a training forward pass: bf16 autocast, or nothing. The cast cache
        is off, as CUDA graph capture requires."""
        if self.precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) in the run's memory order (same values)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def prepare(self, model: torch.nn.Module) -> None:
        """Put ``model`` in the run's memory order and set cuDNN's algorithm search."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True

    def to_dict(self) -> dict:
        """``{"precision": str, "channels_last": bool, "cudnn_benchmark": bool}``, as recorded
        in a run's ``environment.accel``."""
        return asdict(self)


def _flag(name: str) -> bool:
    value = os.environ.get(name, "0").strip().lower()
    if value not in ("0", "1", "", "false", "true", "no", "yes", "off", "on"):
        raise ValueError(f"{name}={os.environ[name]!r}: use 1 or 0")
    return value in ("1", "true", "yes", "on")


def accel_from_env(device: torch.device) -> Accel:
    """The settings that ``IAEAD_PRECISION`` / ``IAEAD_CHANNELS_LAST`` / ``IAEAD_CUDNN_BENCHMARK``
    ask for, on a CUDA ``device``; the defaults (all off) elsewhere.

    Raises
    ------
    ValueError
        For a value these variables do not accept (the message names the variable).
    """
    precision = os.environ.get(ENV_PRECISION, "fp32").strip().lower() or "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"{ENV_PRECISION}={precision!r}: choose one of {', '.join(PRECISIONS)}")
    channels_last, benchmark = _flag(ENV_CHANNELS_LAST), _flag(ENV_CUDNN_BENCHMARK)
    if device.type != "cuda":
        return Accel()
    return Accel(precision, channels_last, benchmark)
