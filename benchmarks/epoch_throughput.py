"""Training throughput and the distance to the hardware limit, for the quick and paper nets.

For each network this prints, measured side by side in one process:

* **engine vs reference** — images/s of the engine's training epoch against a plain
  DataLoader loop. Both train the same network (same initial weights), batch size and SGD on
  the same contaminated MNIST set, reconstruction loss only (the warm-up phase), so the work
  per batch is identical. The reference is the usual tutorial code: a ``DataLoader`` over a
  CPU ``TensorDataset`` with shuffling and a per-batch ``.to(device)``; the engine keeps the
  whole set on the device and shuffles with ``randperm``. Epochs alternate (engine,
  reference, ...) after one untimed epoch each; the median of ``--repeats`` is reported.
* **achieved vs peak FLOP/s** — FLOPs per image of a training step counted from the network
  (``benchmarks/common.py``: forward + backward ≈ 3 × forward) times the engine's images/s,
  against the device's measured float32 matrix-product rate (and TF32's on CUDA, since cuDNN
  runs float32 convolutions in TF32 by default).
* **where an epoch goes** — a real engine run (``--share-epochs`` epochs, warm-up 1 so the
  SVDD phase is included, run folder written) timed around the engine's calls: the training
  pass (``Trainer._train_epoch``), the evaluation pass (``Method.evaluate`` and the centre's
  ``Method.mean_latent``), the record (``Trainer._record``: metrics and latent diagnostics)
  and the rest (scheduler, state copy, run-folder writes). Epoch 1 (set-up) is left out.

    python benchmarks/epoch_throughput.py --data-root ../shared/data [--preset quick paper]
        [--device cuda] [--max-samples N] [--repeats 3] [--share-epochs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import tempfile
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

try:
    from benchmarks.common import (fmt_flops, flops_per_image, machine_description, matmul_peak,
                                   sync)
except ImportError:  # run as a file: python benchmarks/epoch_throughput.py
    from common import fmt_flops, flops_per_image, machine_description, matmul_peak, sync

from iaead_core import Trainer, make_contaminated, preset_config  # noqa: E402
from iaead_core.methods import METHODS, build_method  # noqa: E402


def reference_epoch(model, opt, images_cpu, batch_size, device) -> None:
    """One epoch of the plain loop: DataLoader, per-batch transfer, MSE, SGD step."""
    model.train()
    for (x,) in DataLoader(TensorDataset(images_cpu), batch_size=batch_size, shuffle=True):
        x = x.to(device)
        _, x_hat = model(x)
        loss = F.mse_loss(x_hat, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _config(preset: str, device: str, data_root: str | None, max_samples: int | None, **kw):
    return preset_config(preset, "iaead", device=device, data_root=data_root,
                         max_samples=max_samples, **kw)


def throughput(preset: str = "quick", device: str = "auto", data_root: str | None = None,
               max_samples: int | None = None, repeats: int = 3,
               peaks: dict[str, float] | None = None, peak_seconds: float = 1.0
               ) -> dict[str, Any]:
    """Engine and reference images/s, FLOPs per image and the achieved share of the peak.

    Returns a dict: ``preset, n, batch_size, width, latent_dim, device, engine_ips,
    reference_ips, ratio, forward_flops, step_flops, achieved, peak_fp32`` (FLOP/s) and on
    CUDA ``peak_tf32``. ``peaks`` caches measured peaks between calls; each peak is measured
    for about ``peak_seconds``.
    """
    cfg = _config(preset, device, data_root, max_samples, epochs=1000, warmup_epochs=1000)
    data = make_contaminated(cfg.dataset, cfg.normal_class, cfg.rho, seed=0,
                             data_root=cfg.data_root, max_samples=cfg.max_samples)
    trainer = Trainer(cfg, data=data, runs_root=False)
    dev = trainer.device
    torch.manual_seed(0)
    method = build_method(trainer.cfg, data.images.shape[1], dev)
    X = data.images.to(dev)
    opt, _ = method.make_optimizer(0)
    ref_model = copy.deepcopy(method.model)
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(0)
    images_cpu = data.images.clone()

    engine_t, ref_t = [], []
    trainer._train_epoch(method, opt, X, gen, 0)  # untimed: allocator and kernel warm-up
    reference_epoch(ref_model, ref_opt, images_cpu, cfg.batch_size, dev)
    for r in range(repeats):
        sync(dev)
        t = time.perf_counter()
        trainer._train_epoch(method, opt, X, gen, r + 1)
        sync(dev)
        engine_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        reference_epoch(ref_model, ref_opt, images_cpu, cfg.batch_size, dev)
        sync(dev)
        ref_t.append(time.perf_counter() - t)

    n = len(data)
    e, rf = n / statistics.median(engine_t), n / statistics.median(ref_t)
    flops = flops_per_image(copy.deepcopy(method.model), data.images.shape[1])
    peaks = {} if peaks is None else peaks
    key = str(dev)
    if key not in peaks:
        peaks[key] = matmul_peak(dev, seconds=peak_seconds)
        if dev.type == "cuda":
            peaks[key + ":tf32"] = matmul_peak(dev, tf32=True, seconds=peak_seconds)
    out = {"preset": preset, "n": n, "batch_size": cfg.batch_size, "width": cfg.width,
           "latent_dim": cfg.latent_dim, "device": str(dev), "engine_ips": e,
           "reference_ips": rf, "ratio": e / rf, "forward_flops": flops["forward"],
           "step_flops": flops["train_step"], "achieved": flops["train_step"] * e,
           "peak_fp32": peaks[key], "repeats": repeats}
    if dev.type == "cuda":
        out["peak_tf32"] = peaks[key + ":tf32"]
    return out


@contextlib.contextmanager
def _timed(owner: Any, name: str, bucket: list[float]):
    """Temporarily wrap ``owner.name`` (a class or an instance) to add its call times to
    ``bucket``; restores the original afterwards."""
    had = name in vars(owner)
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - t)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        if had:
            setattr(owner, name, original)
        else:
            delattr(owner, name)


def epoch_shares(preset: str = "quick", device: str = "auto", data_root: str | None = None,
                 max_samples: int | None = None, epochs: int = 3) -> dict[str, float]:
    """Shares of an engine epoch: ``train``, ``evaluation``, ``record`` (the bookkeeping:
    metrics, latent diagnostics and run-folder writes, measured in the training thread, i.e.
    without the GPU's overlap) and ``other`` (scheduler, state copy), as fractions of the wall
    time of epochs 2 … ``epochs``; plus ``epoch_s`` (mean seconds per epoch).

    Raises
    ------
    ValueError
        If ``epochs < 2``.
    """
    if epochs < 2:
        raise ValueError("epoch_shares needs at least 2 epochs (epoch 1 carries the set-up)")
    cfg = _config(preset, device, data_root, max_samples, epochs=epochs, warmup_epochs=1)
    data = make_contaminated(cfg.dataset, cfg.normal_class, cfg.rho, seed=0,
                             data_root=cfg.data_root, max_samples=cfg.max_samples)
    cls = METHODS[cfg.method]
    train_t: list[float] = []
    eval_t: list[float] = []
    record_t: list[float] = []
    epoch_t: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, data=data, runs_root=tmp, overlap=False)
        dev = trainer.device
        with (_timed(trainer, "_train_epoch", train_t), _timed(trainer, "_keep_books", record_t),
              _timed(cls, "evaluate", eval_t), _timed(cls, "mean_latent", eval_t)):
            it = trainer.epochs()
            marks = []
            t = time.perf_counter()
            for _ in it:
                sync(dev)
                now = time.perf_counter()
                epoch_t.append(now - t)
                marks.append((len(train_t), len(eval_t), len(record_t)))
                t = time.perf_counter()
    # Sum each bucket over epochs 2.. (calls after the first epoch's mark).
    first = marks[0]
    total = sum(epoch_t[1:])
    tr, ev, rc = sum(train_t[first[0]:]), sum(eval_t[first[1]:]), sum(record_t[first[2]:])
    return {"train": tr / total, "evaluation": ev / total, "record": rc / total,
            "other": max(0.0, total - tr - ev - rc) / total, "epoch_s": total / (len(epoch_t) - 1),
            "n": len(data), "epochs": len(epoch_t)}


def print_throughput(r: dict[str, Any]) -> None:
    tag = f"[{r['preset']}]"
    print(f"network {tag}: width {r['width']}, latent {r['latent_dim']}, batch {r['batch_size']}, "
          f"{r['n']} images, device {r['device']}, median of {r['repeats']} epochs")
    print(f"engine vs reference {tag}: engine {r['engine_ips']:.0f} images/s, reference "
          f"{r['reference_ips']:.0f} images/s, ratio {r['ratio']:.2f}x")
    print(f"FLOPs per image {tag}: forward {fmt_flops(r['forward_flops'])}, training step "
          f"{fmt_flops(r['step_flops'])} (forward + backward, counted by FlopCounterMode)")
    line = (f"achieved vs peak {tag}: {fmt_flops(r['achieved'])}/s achieved, fp32 matmul peak "
            f"{fmt_flops(r['peak_fp32'])}/s ({100 * r['achieved'] / r['peak_fp32']:.1f}% of it)")
    if "peak_tf32" in r:
        line += (f", TF32 matmul peak {fmt_flops(r['peak_tf32'])}/s "
                 f"({100 * r['achieved'] / r['peak_tf32']:.1f}%)")
    print(line)


def print_shares(preset: str, s: dict[str, float]) -> None:
    print(f"epoch shares [{preset}]: training {100 * s['train']:.0f}%, evaluation "
          f"{100 * s['evaluation']:.0f}%, bookkeeping (metrics, diagnostics, writes; not "
          f"overlapped) {100 * s['record']:.0f}%, other (scheduler, state copy) "
          f"{100 * s['other']:.0f}%; "
          f"{s['epoch_s']:.2f} s per epoch of {s['n']} images (epochs 2-{s['epochs']})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--preset", nargs="+", default=["quick", "paper"], choices=("quick", "paper"))
    p.add_argument("--device", default="auto")
    p.add_argument("--max-samples", type=int, default=None, help="default: the preset's")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--share-epochs", type=int, default=3, help="0 skips the epoch shares")
    args = p.parse_args(argv)

    from iaead_core.training.engine import select_device

    print(machine_description(select_device(args.device)))
    peaks: dict[str, float] = {}
    for preset in args.preset:
        print_throughput(throughput(preset, args.device, args.data_root, args.max_samples,
                                    args.repeats, peaks))
        if args.share_epochs:
            print_shares(preset, epoch_shares(preset, args.device, args.data_root,
                                              args.max_samples, args.share_epochs))
    print("peak source: median FLOP/s of large float32 matrix products on this device "
          "(torch.mm); FLOPs count 2 per multiply-add of conv/linear layers only")


if __name__ == "__main__":
    main()
