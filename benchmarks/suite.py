"""The GPU benchmark suite (``benchmarks/gpu_suite.sh`` runs it): every figure of issue 8 in one
process, one line each.

1. ``paper-protocol run`` — one IAEAD run of the paper protocol (MNIST digit 0, ρ = 0.1, the
   paper's network, 250 epochs, the full set), wall time and final AUROC;
2. ``engine vs reference`` / ``FLOPs per image`` / ``achieved vs peak`` / ``epoch shares`` for
   the quick and the paper networks (``epoch_throughput.py``);
3. ``stacked K=6 vs sequential`` and ``stacked K=24 vs sequential`` — λ sweeps (24 = six λ × four
   seeds on one draw) with the paper network, 2 epochs each (``stacked_vs_sequential.py``);
4. ``peak memory`` of each part;
5. ``CUDA graph vs eager`` — the same short IAEAD run with the training step replayed as a CUDA
   graph and eagerly (``IAEAD_CUDA_GRAPHS=0``): per-epoch loss and AUROC agreement, speed;
6. ``mini-study`` — IAEAD on MNIST's 10 classes (1 seed, the paper protocol) through
   ``python -m iaead_core experiment run --slots 10`` (a worker process per run), in runs per minute
   against one run at a time (10 × the paper-protocol run above), with each class's AUROC
   beside the paper's Table 3.

The GPU's busy share (``nvidia-smi``'s utilization) is printed with each timed run.
``--parts`` picks parts (``paper,graphs,study,throughput,stacked``; default all).

Sized to finish in under 8 minutes on one recent GPU. ``--smoke`` runs the same code on a CPU
with tiny sizes (64 images, 2 epochs, K = 2 and 3, a width-8 net for the runs) in well under
a minute, for CI: its figures mean nothing, it only proves the suite works.

    python benchmarks/suite.py --data-root ../shared/data [--smoke] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from benchmarks import epoch_throughput as et
    from benchmarks import stacked_vs_sequential as svs
    from benchmarks.common import (ROOT, GpuBusy, fmt_bytes, machine_description, peak_memory,
                                   reset_peak_memory, sync)
except ImportError:  # run as a file
    import epoch_throughput as et
    import stacked_vs_sequential as svs
    from common import (ROOT, GpuBusy, fmt_bytes, machine_description, peak_memory,
                        reset_peak_memory, sync)

from iaead_core import Trainer, make_contaminated, preset_config  # noqa: E402
from iaead_core.evaluation.paper import paper_auroc  # noqa: E402
from iaead_core.training.engine import select_device  # noqa: E402

PARTS = ("paper", "graphs", "study", "throughput", "stacked")


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
    with tempfile.TemporaryDirectory() as tmp, GpuBusy() as busy:
        sync(dev)
        t = time.perf_counter()
        res = Trainer(cfg, data=data, runs_root=tmp).run()
        sync(dev)
        seconds = time.perf_counter() - t
    peak, kind = peak_memory(dev)
    m = res.final_metrics[res.records[-1]["primary_score"]]
    return {"seconds": seconds, "epochs": len(res.records), "n": len(data), "auroc": m["auroc"],
            "width": cfg.width, "device": str(dev), "peak": peak, "kind": kind,
            "busy": busy.percent}


def _busy(percent: float | None) -> str:
    return "" if percent is None else f", GPU busy {percent:.0f} %"


def graphs_vs_eager(device: str, data_root: str | None, smoke: bool) -> dict:
    """The same short IAEAD run (paper network, 2,000 images, 6 epochs with a 2-epoch warm-up
    and an lr step, so the SVDD phase and a re-recording are exercised) with CUDA-graph steps
    and eagerly: the largest relative loss difference, the largest AUROC difference, and the
    two times."""
    size = dict(max_samples=64, width=8, latent_dim=16) if smoke else dict(max_samples=2000)
    cfg = preset_config("paper", "iaead", device=device, data_root=data_root, epochs=6,
                        warmup_epochs=2, lr_step=3, **size)
    data = make_contaminated("mnist", 0, cfg.rho, seed=cfg.seed, data_root=cfg.data_root,
                             max_samples=cfg.max_samples)
    dev = select_device(device)
    out: dict = {}
    for name, flag in (("eager", "0"), ("graphs", "1")):
        os.environ["IAEAD_CUDA_GRAPHS"] = flag
        try:
            sync(dev)
            t = time.perf_counter()
            res = Trainer(cfg, data=data, runs_root=False).run()
            sync(dev)
            out[name] = (time.perf_counter() - t, res.records)
        finally:
            os.environ.pop("IAEAD_CUDA_GRAPHS", None)
    (te, re), (tg, rg) = out["eager"], out["graphs"]
    loss = max(abs(a["loss"]["total"] - b["loss"]["total"]) / abs(a["loss"]["total"])
               for a, b in zip(re, rg))
    auroc = max(abs(a["metrics"]["latent_mean"]["auroc"] - b["metrics"]["latent_mean"]["auroc"])
                for a, b in zip(re, rg))
    return {"eager_s": te, "graphs_s": tg, "loss_rel": loss, "auroc_abs": auroc,
            "epochs": len(rg), "n": len(data)}


def mini_study(device: str, data_root: str | None, smoke: bool) -> dict:
    """IAEAD × MNIST's 10 classes, 1 seed, through the command line in a fresh process."""
    spec = {"name": "gpu-study", "kind": "custom", "datasets": ["mnist"],
            "classes": [0, 1] if smoke else list(range(10)), "rho": [0.1], "methods": ["iaead"],
            "seeds": 1}
    if smoke:
        spec["config"] = {"epochs": 2, "warmup_epochs": 1, "max_samples": 64, "width": 8,
                          "latent_dim": 16}
    with tempfile.TemporaryDirectory() as tmp, GpuBusy() as busy:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "iaead_core", "experiment", "run", str(path), "--preset",
               "quick" if smoke else "paper", "--device", device, "--out", str(Path(tmp) / "exp"),
               "--no-report"] + (["--data-root", data_root] if data_root else [])
        cmd += ["--slots", str(len(spec["classes"]))] + (["--threads", "1"] if smoke else [])
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"experiment run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        aurocs = {}
        for status in (Path(tmp) / "exp").glob("*/runs/*/config.json"):
            cfg = json.loads(status.read_text())["config"]
            records = (status.parent / "metrics.jsonl").read_text().splitlines()
            aurocs[int(cfg["normal_class"])] = json.loads(records[-1])["metrics"]["latent_mean"]["auroc"]
    return {"seconds": seconds, "runs": len(spec["classes"]), "aurocs": aurocs,
            "busy": busy.percent}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default=None, help="default: auto (cpu with --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on a CPU, for CI")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated parts to run (default all: {','.join(PARTS)})")
    args = p.parse_args(argv)
    parts = [x for x in args.parts.split(",") if x]
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    device = args.device or ("cpu" if args.smoke else "auto")
    dev = select_device(device)
    start = time.perf_counter()
    print(f"suite{' (smoke: tiny sizes, figures mean nothing)' if args.smoke else ''}: "
          f"{machine_description(dev)}", flush=True)
    peaks = []

    single = None
    if "paper" in parts or "study" in parts:
        r = paper_run(device, args.data_root, args.smoke)
        single = r["seconds"]
        what = ("smoke stand-in: width-8 net, 64 images, 2 epochs" if args.smoke
                else "paper network, 250 epochs")
        print(f"paper-protocol run (MNIST digit 0, {what}): {r['seconds']:.1f} s for "
              f"{r['epochs']} epochs of {r['n']} images ({r['seconds'] / r['epochs']:.3f} s/epoch), "
              f"final AUROC {r['auroc']:.4f} (paper {paper_auroc('mnist', 'iaead', 0.1, 0):.4f})"
              f"{_busy(r['busy'])}, {r['device']}", flush=True)
        peaks.append(("paper-protocol run", r["peak"], r["kind"]))

    if "graphs" in parts:
        g = graphs_vs_eager(device, args.data_root, args.smoke)
        print(f"CUDA graph vs eager steps ({g['epochs']} epochs of {g['n']} images, "
              f"{'smoke net' if args.smoke else 'paper net'}): "
              f"eager {g['eager_s']:.1f} s, graphs {g['graphs_s']:.1f} s "
              f"({g['eager_s'] / g['graphs_s']:.2f}x); largest relative loss difference "
              f"{g['loss_rel']:.1e}, largest AUROC difference {g['auroc_abs']:.4f}"
              + (" (a CPU: both eager)" if dev.type != "cuda" else ""), flush=True)

    if "study" in parts:
        s = mini_study(device, args.data_root, args.smoke)
        one_by_one = s["runs"] * single
        print(f"mini-study (IAEAD, MNIST, {s['runs']} classes, experiment run): "
              f"{s['seconds']:.1f} s = {60 * s['runs'] / s['seconds']:.1f} runs/min; one at a "
              f"time {one_by_one:.0f} s (= {s['runs']} × the run above); ratio "
              f"{s['seconds'] / one_by_one:.2f}{_busy(s['busy'])}", flush=True)
        deltas = []
        for k, v in sorted(s["aurocs"].items()):
            ref = paper_auroc("mnist", "iaead", 0.1, k)
            deltas.append(abs(100 * (v - ref)))
            print(f"  class {k}: AUROC {100 * v:.2f} (paper {100 * ref:.2f}, Δ {100 * (v - ref):+.2f})")
        if deltas:
            print(f"  reproduction: largest |Δ| {max(deltas):.2f} points, mean {sum(deltas) / len(deltas):.2f}"
                  + (" (smoke: not the protocol)" if args.smoke else ""), flush=True)

    if "throughput" in parts:
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

    if "stacked" in parts:
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
    if peaks:
        print("peak memory: " + "; ".join(f"{name} {fmt_bytes(b)}" for name, b, _ in peaks)
              + f" ({peaks[-1][2]})")
    print(f"suite done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
