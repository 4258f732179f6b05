"""Shared pieces of the benchmarks: FLOPs of a network, the machine's practical peak, timing.

FLOPs count multiply-adds of convolutions, transposed convolutions and matrix products as two
floating-point operations each (the usual convention); BatchNorm, activations and the loss
(a few operations per element, memory-bound) are not counted. A training step's FLOPs are
counted by ``torch.utils.flop_counter.FlopCounterMode`` over a forward and backward pass: the
backward pass costs twice the forward (gradients with respect to the inputs and to the
weights) except at the first layer, whose input needs no gradient, so a step is
``3 × forward − first layer``.

The *peak* is measured, not taken from a data sheet: the FLOP/s of a large float32 matrix
product on the same device (torch's BLAS on a CPU, cuBLAS on a GPU), which is the practical
ceiling for dense float32 work there. On CUDA the TF32 matrix product is measured too,
because cuDNN runs float32 convolutions in TF32 by default
(``torch.backends.cudnn.allow_tf32``).
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["ROOT", "sync", "layer_macs", "flops_per_image", "matmul_peak", "machine_description",
           "peak_memory", "reset_peak_memory", "fmt_flops", "fmt_bytes", "GpuBusy"]


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on a CPU), so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def layer_macs(model: nn.Module, in_channels: int = 1, size: int = 32) -> dict[str, int]:
    """Multiply-accumulates per image of each Conv2d / ConvTranspose2d / Linear layer.

    Counted analytically from the shapes seen in one forward pass (batch of 2, train mode):
    a convolution does ``out_pixels · out_channels · (in_channels / groups) · k_h · k_w``, a
    transposed convolution ``in_pixels · in_channels · (out_channels / groups) · k_h · k_w``,
    a Linear ``in_features · out_features``.

    Returns
    -------
    dict layer name → MACs (int), in forward order.
    """
    macs: dict[str, int] = {}
    hooks = []

    def hook(name):
        def fn(m, inputs, out):
            x = inputs[0]
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1]
                macs[name] = out[0].numel() * (m.in_channels // m.groups) * k
            elif isinstance(m, nn.ConvTranspose2d):
                k = m.kernel_size[0] * m.kernel_size[1]
                macs[name] = x[0].numel() * (m.out_channels // m.groups) * k
            else:
                macs[name] = m.in_features * m.out_features
        return fn

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook(name)))
    was_training = model.training
    try:
        model.train()
        with torch.no_grad():
            model(torch.zeros(2, in_channels, size, size, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return macs


def flops_per_image(model: nn.Module, in_channels: int = 1, size: int = 32) -> dict[str, float]:
    """FLOPs per image of a forward pass and of a training step (forward + backward of the
    reconstruction loss), counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Returns
    -------
    ``{"forward": float, "train_step": float}`` — FLOPs per image (2 per multiply-add).
    """
    from torch.utils.flop_counter import FlopCounterMode

    dev = next(model.parameters()).device
    x = torch.zeros(2, in_channels, size, size, device=dev)
    was_training = model.training
    model.train()
    try:
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(x)
        forward = fc.get_total_flops() / 2
        with FlopCounterMode(display=False) as fc:
            F.mse_loss(model(x)[1], x).backward()
        step = fc.get_total_flops() / 2
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {"forward": float(forward), "train_step": float(step)}


def matmul_peak(device: torch.device, n: int | None = None, tf32: bool = False,
                seconds: float = 1.0) -> float:
    """Practical float32 peak of ``device`` in FLOP/s: the median rate of ``n × n`` matrix
    products (``2 n³`` FLOPs each) over about ``seconds``, after one untimed product.

    ``n`` defaults to 2048 on a CPU and 8192 on a GPU. ``tf32=True`` (CUDA only) allows
    TF32 tensor cores for the product, as cuDNN does for convolutions by default.
    """
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        torch.mm(a, b)
        sync(device)
        rates, end = [], time.perf_counter() + seconds
        while len(rates) < 3 or time.perf_counter() < end:
            t = time.perf_counter()
            torch.mm(a, b)
            sync(device)
            rates.append(2 * n**3 / (time.perf_counter() - t))
            if len(rates) >= 200:
                break
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return statistics.median(rates)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device) -> str:
    """One line: the CPU model, its logical cores and torch's threads; on CUDA also the
    GPU's name, multiprocessor count and memory."""
    cpu = (f"CPU {_cpu_model()}, {os.cpu_count()} logical cores, "
           f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    if device.type != "cuda":
        return cpu
    p = torch.cuda.get_device_properties(device)
    return (f"GPU {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB, "
            f"capability {p.major}.{p.minor}; {cpu}")


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA; a CPU's peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak memory in bytes and what it measures: CUDA's peak allocated tensor memory since
    the last :func:`reset_peak_memory`, or on a CPU the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "peak GPU memory allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss * (1 if sys.platform == "darwin" else 1024), "peak process RSS (CPU)"


def fmt_flops(x: float) -> str:
    """``1.23e12`` → ``"1.23 TFLOP/s"`` style (no unit suffix beyond FLOP)."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if abs(x) >= scale:
            return f"{x / scale:.2f} {unit}FLOP"
    return f"{x:.0f} FLOP"


def fmt_bytes(n: float) -> str:
    """Bytes → ``"1.5 GiB"`` / ``"512 MiB"``."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class GpuBusy:
    """The share of time the GPU was executing kernels while the ``with`` block ran, sampled
    every ``every`` seconds from ``nvidia-smi``'s ``utilization.gpu`` (the same counter as
    ``nvidia-smi dmon``'s ``sm`` column). :attr:`percent` is None where nvidia-smi is missing
    or nothing was sampled (a CPU)."""

    def __init__(self, every: float = 0.25) -> None:
        self.every, self.samples = every, []
        self.percent: float | None = None

    def _poll(self) -> None:
        import subprocess

        while not self._done.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                      "--format=csv,noheader,nounits", "-i", "0"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return
            self._done.wait(self.every)

    def __enter__(self) -> "GpuBusy":
        import threading

        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        self.percent = statistics.fmean(self.samples) if self.samples else None

