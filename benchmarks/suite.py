"""The GPU benchmark suite (``benchmarks/gpu_suite.sh`` runs it): the GPU figures in one
process, one line each. Parts, in the order they run:

1. ``accel`` — the GPU arithmetic settings (:mod:`iaead_core.training.accel`: channels-last,
   cuDNN's algorithm search, bf16 autocast) side by side on a short paper-network run, in
   seconds per epoch, with the epoch's split into training, evaluation and bookkeeping; the
   fastest is then used by ``paper`` (beside the default), ``study`` and ``repro``;
2. ``paper`` — one IAEAD run of the paper protocol (MNIST digit 0, ρ = 0.1, the paper's
   network, 250 epochs, the full set): wall time, final AUROC and the GPU's busy share;
3. ``graphs`` — the same short IAEAD run with the training step replayed as a CUDA graph and
   eagerly (``IAEAD_CUDA_GRAPHS=0``): per-epoch loss and AUROC agreement, speed;
4. ``study`` — IAEAD on MNIST's 10 classes (1 seed, the paper protocol) through
   ``python -m iaead_core experiment run --slots 10``, once with thread and once with process
   workers, in runs per minute against one run at a time (10 × the paper-protocol run); a
   study stopped at ``--study-timeout`` reports the epochs it trained and the rate they
   project. Each class's AUROC beside the paper's Table 3;
5. ``repro`` — the reproduction check: IAEAD at the paper protocol on Fashion-MNIST 0, 2, 4, 6
   and 9 (with the faster workers), with the study's MNIST 0, 1, 2, 5, 8 and 9: eleven classes
   against Table 3 (±1.5 points);
6. ``throughput`` — ``engine vs reference`` / ``FLOPs per image`` / ``achieved vs peak`` /
   ``epoch shares`` for the quick and the paper networks (``epoch_throughput.py``);
7. ``stacked`` — ``stacked K=6 vs sequential`` and ``stacked K=24 vs sequential``: λ sweeps
   (24 = six λ × four seeds on one draw) with the paper network, 2 epochs each
   (``stacked_vs_sequential.py``);

and the ``peak memory`` of each part. The GPU's busy share is ``nvidia-smi``'s utilization.
``--parts`` picks parts (default all). On one H200, ``--parts accel,paper,study,repro`` with
``--study-timeout 130`` took 480 s (``results/``). ``--smoke`` runs the same code on a CPU
with tiny sizes (64 images, 2 epochs, K = 2 and 3, a width-8 net for the runs) in under a
minute, for CI: its figures mean nothing, it only proves the suite works.

    python benchmarks/suite.py --data-root ../shared/data [--smoke] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
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

PARTS = ("accel", "paper", "graphs", "study", "repro", "throughput", "stacked")
#: The arithmetic settings that part ``accel`` compares: name → environment variables.
ACCEL_VARIANTS = {
    "default": {},
    "channels-last": {"IAEAD_CHANNELS_LAST": "1"},
    "cudnn-benchmark": {"IAEAD_CUDNN_BENCHMARK": "1"},
    "bf16": {"IAEAD_PRECISION": "bf16", "IAEAD_CHANNELS_LAST": "1"},
    "bf16+benchmark": {"IAEAD_PRECISION": "bf16", "IAEAD_CHANNELS_LAST": "1",
                       "IAEAD_CUDNN_BENCHMARK": "1"},
}
#: The eleven classes of the reproduction check (Table 3, ρ = 10 %).
REPRO_CLASSES = {"mnist": (0, 1, 2, 5, 8, 9), "fashion-mnist": (0, 2, 4, 6, 9)}
REPRO_TOLERANCE = 1.5


@contextlib.contextmanager
def _env(variables: dict[str, str]):
    """Set environment variables for the block (the engine reads the accel ones per run)."""
    old = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def accel_compare(device: str, data_root: str | None, smoke: bool) -> dict:
    """Each of :data:`ACCEL_VARIANTS` on the same short paper-network run (MNIST 0, the full set,
    12 epochs with a 2-epoch warm-up): mean seconds per epoch over epochs 3 … 12 (the first
    ones record CUDA graphs and search cuDNN's algorithms) and the last epoch's AUROC."""
    size = dict(max_samples=64, width=8, latent_dim=16) if smoke else {}
    epochs = 3 if smoke else 12
    cfg = preset_config("paper", "iaead", device=device, data_root=data_root, epochs=epochs,
                        warmup_epochs=1 if smoke else 2, **size)
    data = make_contaminated("mnist", 0, cfg.rho, seed=cfg.seed, data_root=cfg.data_root,
                             max_samples=cfg.max_samples)
    dev = select_device(device)
    out = {}
    for name, variables in ACCEL_VARIANTS.items():
        times = []
        with _env(variables), tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(cfg, data=data, runs_root=tmp)
            sync(dev)
            t = time.perf_counter()
            for _ in trainer.epochs():
                sync(dev)
                now = time.perf_counter()
                times.append(now - t)
                t = now
        skip = 1 if smoke else 2
        out[name] = {"epoch_s": sum(times[skip:]) / len(times[skip:]),
                     "auroc": trainer.records[-1]["metrics"]["latent_mean"]["auroc"],
                     "accel": trainer.accel.to_dict()}
    return {"variants": out, "epochs": epochs, "n": len(data)}


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


def mini_study(device: str, data_root: str | None, smoke: bool, workers: str = "process",
               dataset: str = "mnist", classes: list[int] | None = None,
               timeout_s: float | None = None) -> dict:
    """IAEAD × ``classes`` of ``dataset`` (default MNIST's 10), 1 seed, through the command line
    in a fresh process, all at once (``--slots`` = the number of classes) in worker processes
    or threads (``workers``). After ``timeout_s`` the experiment is killed: ``seconds`` is
    then None and ``aurocs`` holds the runs that completed."""
    if classes is None:
        classes = [0, 1] if smoke else list(range(10))
    spec = {"name": "gpu-study", "kind": "custom", "datasets": [dataset],
            "classes": list(classes), "rho": [0.1], "methods": ["iaead"], "seeds": 1}
    if smoke:
        spec["config"] = {"epochs": 2, "warmup_epochs": 1, "max_samples": 64, "width": 8,
                          "latent_dim": 16}
    with tempfile.TemporaryDirectory() as tmp, GpuBusy() as busy:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "iaead_core", "experiment", "run", str(path), "--preset",
               "quick" if smoke else "paper", "--device", device, "--out", str(Path(tmp) / "exp"),
               "--no-report"] + (["--data-root", data_root] if data_root else [])
        cmd += ["--slots", str(len(spec["classes"])), "--workers", workers]
        cmd += ["--threads", "1"] if smoke else []
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                  timeout=timeout_s)
            seconds = time.perf_counter() - t
        except subprocess.TimeoutExpired:
            proc, seconds = None, None
            time.sleep(3)  # worker processes check their driver every second, then stop
        if proc is not None and proc.returncode != 0:
            raise RuntimeError(f"experiment run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        aurocs = {}
        epochs_done = sum(len(m.read_text().splitlines())
                          for m in (Path(tmp) / "exp").glob("*/runs/*/metrics.jsonl"))
        for config in (Path(tmp) / "exp").glob("*/runs/*/config.json"):
            status = config.parent / "status.json"
            if not status.exists() or json.loads(status.read_text()).get("status") != "completed":
                continue
            cfg = json.loads(config.read_text())["config"]
            records = (config.parent / "metrics.jsonl").read_text().splitlines()
            aurocs[int(cfg["normal_class"])] = json.loads(records[-1])["metrics"]["latent_mean"]["auroc"]
    return {"seconds": seconds, "runs": len(spec["classes"]), "aurocs": aurocs,
            "busy": busy.percent, "workers": workers, "dataset": dataset,
            "epochs_done": epochs_done, "elapsed": time.perf_counter() - t}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default=None, help="default: auto (cpu with --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on a CPU, for CI")
    p.add_argument("--study-timeout", type=float, default=600.0,
                   help="seconds after which a study is stopped and reported unfinished")
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

    best = "default"
    if "accel" in parts:
        a = accel_compare(device, args.data_root, args.smoke)
        base = a["variants"]["default"]["epoch_s"]
        for name, v in a["variants"].items():
            print(f"accel {name}: {v['epoch_s']:.3f} s/epoch ({base / v['epoch_s']:.2f}x the "
                  f"default), AUROC after {a['epochs']} epochs {v['auroc']:.4f}"
                  + ("" if dev.type == "cuda" else " (a CPU: every setting is the default)"),
                  flush=True)
        best = min(a["variants"], key=lambda k: a["variants"][k]["epoch_s"])
        print(f"accel: fastest {best} ({ACCEL_VARIANTS[best] or 'no variables'}), used below",
              flush=True)
        et.print_shares("paper", et.epoch_shares("paper", device, args.data_root,
                                                 64 if args.smoke else None, 2 if args.smoke else 4))
    variables = ACCEL_VARIANTS[best]

    single = None
    if "paper" in parts or "study" in parts:
        names = ["default"] + ([best] if best != "default" else [])
        for name in names:
            with _env(ACCEL_VARIANTS[name]):
                r = paper_run(device, args.data_root, args.smoke)
            single = r["seconds"]  # the last: the fastest setting's
            what = ("smoke stand-in: width-8 net, 64 images, 2 epochs" if args.smoke
                    else "paper network, 250 epochs")
            print(f"paper-protocol run (MNIST digit 0, {what}, accel {name}): {r['seconds']:.1f} s "
                  f"for {r['epochs']} epochs of {r['n']} images ({r['seconds'] / r['epochs']:.3f} "
                  f"s/epoch), final AUROC {r['auroc']:.4f} (paper "
                  f"{paper_auroc('mnist', 'iaead', 0.1, 0):.4f}){_busy(r['busy'])}, {r['device']}",
                  flush=True)
            peaks.append((f"paper-protocol run ({name})", r["peak"], r["kind"]))

    if "graphs" in parts:
        g = graphs_vs_eager(device, args.data_root, args.smoke)
        print(f"CUDA graph vs eager steps ({g['epochs']} epochs of {g['n']} images, "
              f"{'smoke net' if args.smoke else 'paper net'}): "
              f"eager {g['eager_s']:.1f} s, graphs {g['graphs_s']:.1f} s "
              f"({g['eager_s'] / g['graphs_s']:.2f}x); largest relative loss difference "
              f"{g['loss_rel']:.1e}, largest AUROC difference {g['auroc_abs']:.4f}"
              + (" (a CPU: both eager)" if dev.type != "cuda" else ""), flush=True)

    reproduced: dict[tuple[str, int], float] = {}
    fastest_workers = "process"
    if "study" in parts:
        studies = []
        for workers in ("thread", "process"):
            with _env(variables):
                s = mini_study(device, args.data_root, args.smoke, workers,
                               timeout_s=args.study_timeout)
            one_by_one = s["runs"] * single
            if s["seconds"] is None:
                total = s["runs"] * (2 if args.smoke else 250)
                rate = s["epochs_done"] / s["elapsed"]
                projected = total / rate if rate else float("inf")
                print(f"mini-study (IAEAD, MNIST, {s['runs']} classes, experiment run, {workers} "
                      f"workers, accel {best}): not finished after {args.study_timeout:.0f} s: "
                      f"{len(s['aurocs'])} run(s) completed, {s['epochs_done']} of {total} "
                      f"epochs, at that rate {projected:.0f} s in all against {one_by_one:.0f} s "
                      f"one at a time (ratio {projected / one_by_one:.2f}){_busy(s['busy'])}",
                      flush=True)
                continue
            studies.append(s)
            print(f"mini-study (IAEAD, MNIST, {s['runs']} classes, experiment run, {workers} "
                  f"workers, accel {best}): {s['seconds']:.1f} s = "
                  f"{60 * s['runs'] / s['seconds']:.1f} runs/min; one at a time "
                  f"{one_by_one:.0f} s (= {s['runs']} × the run above); ratio "
                  f"{s['seconds'] / one_by_one:.2f}{_busy(s['busy'])}", flush=True)
        fastest = min(studies, key=lambda s: s["seconds"]) if studies else {"aurocs": {}}
        fastest_workers = fastest.get("workers", "process")
        for k, v in sorted(fastest["aurocs"].items()):
            ref = paper_auroc("mnist", "iaead", 0.1, k)
            print(f"  class {k}: AUROC {100 * v:.2f} (paper {100 * ref:.2f}, "
                  f"Δ {100 * (v - ref):+.2f})")
            reproduced[("mnist", k)] = v
        deltas = [abs(100 * (v - paper_auroc("mnist", "iaead", 0.1, k)))
                  for k, v in fastest["aurocs"].items()]
        if deltas:
            print(f"  MNIST: largest |Δ| {max(deltas):.2f} points, mean "
                  f"{sum(deltas) / len(deltas):.2f}" + (" (smoke: not the protocol)"
                                                        if args.smoke else ""), flush=True)

    if "repro" in parts:
        classes = [0] if args.smoke else list(REPRO_CLASSES["fashion-mnist"])
        with _env(variables):
            s = mini_study(device, args.data_root, args.smoke, fastest_workers,
                           dataset="fashion-mnist", classes=classes, timeout_s=args.study_timeout)
        for k, v in s["aurocs"].items():
            reproduced[("fashion-mnist", k)] = v
        rows = [(d, k, v, paper_auroc(d, "iaead", 0.1, k)) for (d, k), v in sorted(reproduced.items())
                if k in REPRO_CLASSES[d]]
        for d, k, v, ref in rows:
            if d == "fashion-mnist":
                print(f"  {d} class {k}: AUROC {100 * v:.2f} (paper {100 * ref:.2f}, "
                      f"Δ {100 * (v - ref):+.2f})")
        deltas = [abs(100 * (v - ref)) for _, _, v, ref in rows] or [float("nan")]
        within = sum(d <= REPRO_TOLERANCE for d in deltas)
        print(f"reproduction (IAEAD, paper protocol, accel {best}, {len(rows)} classes of Table 3): "
              f"{within}/{len(rows)} within ±{REPRO_TOLERANCE} points, largest |Δ| "
              f"{max(deltas):.2f}, mean {sum(deltas) / len(deltas):.2f}"
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
