"""A λ sweep stacked into one network against the same runs one after another.

K configurations (λ from the lab's default grid, cycled; beyond six, seed replicates on the
same data draw) train on one contaminated MNIST set, once as K engine runs in sequence and
once as one stacked run (``iaead_core.training.stacked``), in one process, one run each. Neither writes
run folders. Before timing, ``measure_stacking`` runs a few steps of both (allocation, kernel
selection), and its quick estimate is printed beside the real ratio. The figure is the
speed-up, sequential time / stacked time (above 1: stacking is faster here).

    python benchmarks/stacked_vs_sequential.py --data-root ../shared/data [--k 6]
        [--preset quick] [--epochs 3] [--device auto] [--max-samples N]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

try:
    from benchmarks.common import (fmt_bytes, machine_description, peak_memory,
                                   reset_peak_memory, sync)
except ImportError:  # run as a file
    from common import fmt_bytes, machine_description, peak_memory, reset_peak_memory, sync

from iaead_core import NonFiniteLossError, Trainer, make_contaminated, preset_config  # noqa: E402
from iaead_core.evaluation.analysis import DEFAULT_LAMBDA_GRID  # noqa: E402
from iaead_core.training.engine import select_device  # noqa: E402
from iaead_core.training.stacked import measure_stacking, train_stacked  # noqa: E402


def sweep_configs(K: int, preset: str = "quick", device: str = "auto",
                  data_root: str | None = None, max_samples: int | None = None,
                  epochs: int = 3, warmup_epochs: int = 1, **overrides):
    """K IAEAD configs: λ = ``DEFAULT_LAMBDA_GRID[k % 6]``, seed ``k // 6``."""
    grid = DEFAULT_LAMBDA_GRID
    return [preset_config(preset, "iaead", lam=grid[k % len(grid)], seed=k // len(grid),
                          device=device, data_root=data_root, max_samples=max_samples,
                          epochs=epochs, warmup_epochs=warmup_epochs, **overrides)
            for k in range(K)]


def compare(K: int = 6, preset: str = "quick", device: str = "auto",
            data_root: str | None = None, max_samples: int | None = None, epochs: int = 3,
            warmup_epochs: int = 1, estimate_budget_s: float = 1.0,
            **overrides) -> dict[str, Any]:
    """Time K sequential engine runs and one stacked run of the same configurations.

    Returns a dict: ``K, n, preset, device, sequential_s, stacked_s, speedup, estimate``
    (``measure_stacking``'s speed-up), ``peak_bytes`` / ``peak_kind`` of the stacked run,
    ``max_auroc_diff`` (largest |ΔAUROC| of the primary score between the two, final epoch;
    float32 rounding in chaotic runs moves it, see tests/test_stacked.py) and ``failed``
    (runs whose loss became non-finite, sequential / stacked).
    """
    cfgs = sweep_configs(K, preset, device, data_root, max_samples, epochs, warmup_epochs,
                         **overrides)
    c0 = cfgs[0]
    data = make_contaminated(c0.dataset, c0.normal_class, c0.rho, seed=0, data_root=c0.data_root,
                             max_samples=c0.max_samples)
    dev = select_device(device)
    estimate = measure_stacking(dev, K, c0, in_channels=data.images.shape[1],
                                budget_s=estimate_budget_s)

    sync(dev)
    t = time.perf_counter()
    seq, seq_failed = [], 0
    for c in cfgs:
        try:
            seq.append(Trainer(c, data=data, runs_root=False).run())
        except NonFiniteLossError:
            seq.append(None)
            seq_failed += 1
    sync(dev)
    sequential_s = time.perf_counter() - t

    reset_peak_memory(dev)
    t = time.perf_counter()
    stacked = train_stacked(cfgs, data=data, runs_root=False)
    sync(dev)
    stacked_s = time.perf_counter() - t
    peak, kind = peak_memory(dev)

    diffs = []
    for a, b in zip(stacked, seq):
        if b is None or not a.records:
            continue
        rule = b.records[-1]["primary_score"]
        diffs.append(abs(a.records[-1]["metrics"][rule]["auroc"]
                         - b.records[-1]["metrics"][rule]["auroc"]))
    return {"K": K, "n": len(data), "preset": preset, "device": str(dev), "epochs": epochs,
            "sequential_s": sequential_s, "stacked_s": stacked_s,
            "speedup": sequential_s / stacked_s, "estimate": estimate.speedup,
            "peak_bytes": peak, "peak_kind": kind,
            "max_auroc_diff": max(diffs) if diffs else float("nan"),
            "failed": (seq_failed, sum(r.status == "failed" for r in stacked))}


def print_compare(r: dict[str, Any], note: str = "") -> None:
    print(f"stacked K={r['K']} vs sequential{note}: sequential {r['sequential_s']:.1f} s, "
          f"stacked {r['stacked_s']:.1f} s, speed-up {r['speedup']:.2f}x "
          f"(quick estimate {r['estimate']:.2f}x); {r['preset']} net, {r['n']} images, "
          f"{r['epochs']} epochs, {r['device']}; {r['peak_kind']} {fmt_bytes(r['peak_bytes'])}; "
          f"max |ΔAUROC| {r['max_auroc_diff']:.3g}; diverged {r['failed'][0]}/{r['failed'][1]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--k", type=int, nargs="+", default=[6])
    p.add_argument("--preset", default="quick", choices=("quick", "paper"))
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max-samples", type=int, default=None, help="default: the preset's")
    args = p.parse_args(argv)
    print(machine_description(select_device(args.device)))
    for K in args.k:
        print_compare(compare(K, args.preset, args.device, args.data_root, args.max_samples,
                              args.epochs))


if __name__ == "__main__":
    main()
