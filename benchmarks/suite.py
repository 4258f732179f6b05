"""The GPU benchmark suite (``benchmarks/gpu_suite.sh`` runs it): every figure of issue 8 in one
process, one line each.

1. ``paper-protocol run`` — one IAEAD run of the paper protocol (MNIST digit 0, ρ = 0.1, the
   paper's network, 250 epochs, the full set), wall time and final AUROC;
2. ``engine vs reference`` / ``FLOPs per image`` / ``achieved vs peak`` / ``epoch shares`` for
   the quick and the paper networks (``epoch_throughput.py``);
3. ``stacked K=6 vs sequential`` and ``stacked K=24 vs sequential`` — λ sweeps (24 = six λ × four
   seeds on one draw) with the paper network, 2 epochs each (``stacked_vs_sequential.py``);
4. ``peak memory`` of each part.

Sized to finish in under 8 minutes on one recent GPU. ``--smoke`` runs the same code on a CPU
with tiny sizes (64 images, 2 epochs, K = 2 and 3, a width-8 net for the runs) in well under
a minute, for CI: its figures mean nothing, it only proves the suite works.

    python benchmarks/suite.py --data-root ../shared/data [--smoke] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time

try:
    from benchmarks import epoch_throughput as et
    from benchmarks import stacked_vs_sequential as svs
    from benchmarks.common import (fmt_bytes, machine_description, peak_memory,
                                   reset_peak_memory, sync)
except ImportError:  # run as a file
    import epoch_throughput as et
    import stacked_vs_sequential as svs
    from common import fmt_bytes, machine_description, peak_memory, reset_peak_memory, sync

from iaead_core import Trainer, make_contaminated, preset_config  # noqa: E402
from iaead_core.training.engine import select_device  # noqa: E402


def paper_run(device: str, data_root: str | None, smoke: bool) -> dict:
    """One paper-protocol run (MNIST digit 0), timed; folder written to a temporary dir."""
    if smoke:
        cfg = preset_config("quick", "iaead", device=device, data_root=data_root, epochs=2,
                            warmup_epochs=1, max_samples=64, width=8, latent_dim=16)
    else:
        cfg = preset_config("paper", "iaead", device=device, data_root=data_root)
    data = make_contaminated("mnist", 0, cfg.rho, seed=cfg.seed, data_root=cfg.data_root,
                             max_samples=cfg.max_samples)
    dev = select_device(device)
    reset_peak_memory(dev)
    with tempfile.TemporaryDirectory() as tmp:
        sync(dev)
        t = time.perf_counter()
        res = Trainer(cfg, data=data, runs_root=tmp).run()
        sync(dev)
        seconds = time.perf_counter() - t
    peak, kind = peak_memory(dev)
    m = res.final_metrics[res.records[-1]["primary_score"]]
    return {"seconds": seconds, "epochs": len(res.records), "n": len(data), "auroc": m["auroc"],
            "width": cfg.width, "device": str(dev), "peak": peak, "kind": kind}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default=None, help="default: auto (cpu with --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on a CPU, for CI")
    args = p.parse_args(argv)
    device = args.device or ("cpu" if args.smoke else "auto")
    dev = select_device(device)
    start = time.perf_counter()
    print(f"suite{' (smoke: tiny sizes, figures mean nothing)' if args.smoke else ''}: "
          f"{machine_description(dev)}", flush=True)
    peaks = []

    r = paper_run(device, args.data_root, args.smoke)
    what = ("smoke stand-in: width-8 net, 64 images, 2 epochs" if args.smoke
            else "paper network, 250 epochs")
    print(f"paper-protocol run (MNIST digit 0, {what}): {r['seconds']:.1f} s for {r['epochs']} "
          f"epochs of {r['n']} images ({r['seconds'] / r['epochs']:.2f} s/epoch), final AUROC "
          f"{r['auroc']:.3f}, {r['device']}", flush=True)
    peaks.append(("paper-protocol run", r["peak"], r["kind"]))

    max_samples = 64 if args.smoke else None
    repeats = 1 if args.smoke else 3
    share_epochs = 2 if args.smoke else 3
    flop_peaks: dict[str, float] = {}
    for preset in ("quick", "paper"):
        reset_peak_memory(dev)
        et.print_throughput(et.throughput(preset, device, args.data_root, max_samples, repeats,
                                          flop_peaks, peak_seconds=0.1 if args.smoke else 1.0))
        et.print_shares(preset, et.epoch_shares(preset, device, args.data_root, max_samples,
                                                share_epochs))
        peak, kind = peak_memory(dev)
        peaks.append((f"{preset} throughput", peak, kind))
    print(flush=True)

    stacks = (2, 3) if args.smoke else (6, 24)
    for K, full in zip(stacks, (6, 24)):
        if args.smoke:
            r = svs.compare(K, "quick", device, args.data_root, max_samples=64, epochs=2,
                            estimate_budget_s=0.0, width=8, latent_dim=16)
            note = f" (smoke stand-in for K={full})"
        else:
            r = svs.compare(K, "paper", device, args.data_root, epochs=2)
            note = ""
        svs.print_compare(r, note)
        peaks.append((f"stacked K={K}", r["peak_bytes"], r["peak_kind"]))
    print("peak memory: " + "; ".join(f"{name} {fmt_bytes(b)}" for name, b, _ in peaks)
          + f" ({peaks[-1][2]})")
    print(f"suite done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
