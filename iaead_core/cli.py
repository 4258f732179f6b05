"""Command line: ``python -m iaead_core {train,runs,datasets} ...``.

``train`` shows a progress bar with the live (oracle) AUROC and ends with a table of every
scoring rule's AUROC / AUPR-in / AUPR-out; with ``--json`` it prints one JSON object instead::

    {"run_id": ..., "seconds": ..., "metrics": {RULE: {"auroc": ..., "aupr_in": ..., "aupr_out": ...}}}

``runs`` lists saved runs with their final metrics; ``datasets`` lists the data sets with
their classes and whether they are on disk.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Sequence

from .config import METHOD_NAMES, PRESETS, preset_config
from .data import (DATASETS, OFFLINE_DEFAULT, DatasetUnavailableError, dataset_status,
                   resolve_data_root)
from .engine import NonFiniteLossError, Trainer
from .methods import SCORE_RULES
from .paper import paper_auroc
from .runs import list_runs, resolve_runs_root

__all__ = ["main", "build_parser"]


def _class_arg(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m iaead_core``."""
    p = argparse.ArgumentParser(prog="python -m iaead_core",
                                description="IAEAD: unsupervised image anomaly detection.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one method on a contaminated one-vs-all set",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--dataset", default=None, choices=sorted(DATASETS),
                   help=f"data set (default mnist; if MNIST cannot be found or downloaded, the "
                        f"offline default {OFFLINE_DEFAULT})")
    t.add_argument("--normal-class", type=_class_arg, default=0,
                   help="normal class, by index or name (e.g. 0, t-shirt, ship, trees)")
    t.add_argument("--rho", type=float, default=0.1, help="anomaly ratio ρ in (0, 0.5)")
    t.add_argument("--method", default="iaead", choices=METHOD_NAMES)
    t.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                   help="quick: light net, 3,000 images, ~1 min on CPU; paper: METHOD.md §3-4")
    t.add_argument("--lam", type=float, default=None, help="λ of eq. (6) (default 5e-5)")
    t.add_argument("--nu", type=float, default=None,
                   help="ν of eq. (7) (default: 1 for iaead, 0.1 for deep-svdd)")
    t.add_argument("--objective", default=None, choices=("one-class", "soft-boundary"),
                   help="Deep SVDD objective")
    t.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    t.add_argument("--warmup-epochs", type=int, default=None,
                   help="IAEAD warm-up / Deep SVDD pre-training epochs")
    t.add_argument("--max-samples", type=int, default=None,
                   help="subsample keeping ρ (0 = full set)")
    t.add_argument("--svdd-bias", action="store_true",
                   help="Deep SVDD with biases and affine BatchNorm (Ruff et al.'s precaution "
                        "against collapse off)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    t.add_argument("--data-root", default=None,
                   help="data folder (default $IAEAD_DATA_ROOT or ./data)")
    t.add_argument("--no-download", action="store_true", help="never download missing data")
    t.add_argument("--out", default=None, help="runs folder (default $IAEAD_RUNS_DIR or ./runs)")
    t.add_argument("--json", action="store_true", help="print one JSON object, no progress bar")

    r = sub.add_parser("runs", help="list saved runs with their final metrics")
    r.add_argument("--out", default=None, help="runs folder (default $IAEAD_RUNS_DIR or ./runs)")
    r.add_argument("--json", action="store_true", help="print a JSON list")

    d = sub.add_parser("datasets", help="list data sets, classes and availability")
    d.add_argument("--data-root", default=None)
    return p


def _train(args: argparse.Namespace) -> int:
    try:
        return _train_on(args, args.dataset or "mnist")
    except DatasetUnavailableError as e:
        if args.dataset is not None:  # asked for by name: say so rather than substitute
            raise
        spec = DATASETS[OFFLINE_DEFAULT]
        print(f"note: {e}\nnote: using the offline default {OFFLINE_DEFAULT!r} instead: "
              f"{spec.source}.", file=sys.stderr)
        return _train_on(args, OFFLINE_DEFAULT)


def _train_on(args: argparse.Namespace, dataset: str) -> int:
    cfg = preset_config(
        args.preset, method=args.method, dataset=dataset, normal_class=args.normal_class,
        rho=args.rho, lam=args.lam, nu=args.nu, objective=args.objective, epochs=args.epochs,
        warmup_epochs=args.warmup_epochs, max_samples=args.max_samples,
        svdd_bias=args.svdd_bias or None, seed=args.seed, device=args.device,
        data_root=str(resolve_data_root(args.data_root).resolve()), download=not args.no_download)
    if cfg.method == "iaead" and cfg.warmup_epochs >= cfg.epochs:
        print(f"warning: warm-up ({cfg.warmup_epochs} epochs) >= epochs ({cfg.epochs}): the SVDD "
              "term never switches on, so this run is a plain CAE scored in latent space",
              file=sys.stderr)
    trainer = Trainer(cfg, runs_root=args.out)
    if args.json:
        result = trainer.run()
    else:
        from tqdm import tqdm

        d = trainer.data
        print(f"{d.dataset} class {d.normal_class} ({d.class_name}): {d.n_normal} normal + "
              f"{d.n_anomalies} anomalies, ρ = {d.rho:g}; {cfg.method}, preset {cfg.preset}, "
              f"device {trainer.device}; run {trainer.run_id}", file=sys.stderr)
        with tqdm(total=cfg.epochs, unit="epoch", file=sys.stderr) as bar:
            def show(rec):
                m = rec["metrics"].get(rec["primary_score"]) or next(iter(rec["metrics"].values()))
                bar.set_postfix_str(f"{rec['phase']} AUROC({rec['primary_score']})={m['auroc']:.3f}"
                                    f" loss={rec['loss']['total']:.4g}")
                bar.update(1)
            result = trainer.run(show)
    out = {"run_id": result.run_id, "seconds": round(result.seconds, 2),
           "status": result.status, "run_dir": str(result.run_dir), "data": result.data,
           "metrics": result.final_metrics}
    if args.json:
        print(json.dumps(out))
    else:
        _print_table(result.records[-1] if result.records else {}, result.config)
        print(f"\n{result.status} in {result.seconds:.1f} s; saved to {result.run_dir}")
        diag = result.records[-1]["diagnostics"] if result.records else {}
        if diag.get("collapsed"):
            print("warning: the latent space has collapsed (see diagnostics.collapse_ratio)")
    return 0


def _print_table(record: dict, cfg) -> None:
    """Last epoch's metrics per rule; the paper's AUROC beside the method's own rule."""
    print("\nOracle monitoring: labels are used only to compute these metrics.")
    print(f"{'rule':<16}{'AUROC':>8}{'AUPR-in':>9}{'AUPR-out':>10}{'paper':>8}  description")
    paper = paper_auroc(cfg.dataset, cfg.method, cfg.rho, cfg.normal_class)
    for rule, m in record.get("metrics", {}).items():
        ref = paper if rule == record.get("primary_score") else None
        ref_s = f"{ref:.3f}" if ref is not None else "-"
        print(f"{rule:<16}{m['auroc']:>8.3f}{m['aupr_in']:>9.3f}{m['aupr_out']:>10.3f}{ref_s:>8}  "
              f"{SCORE_RULES.get(rule, '')}")


def _runs(args: argparse.Namespace) -> int:
    runs = list_runs(args.out)
    if args.json:
        print(json.dumps([{"run_id": r.run_id, "status": r.status.get("status"),
                           "config": r.config, "epochs_done": len(r.records),
                           "metrics": r.final_metrics} for r in runs]))
        return 0
    if not runs:
        print(f"no runs in {resolve_runs_root(args.out)}")
        return 0
    print(f"{'run_id':<52}{'status':<10}{'epochs':>7}  AUROC by rule")
    for r in runs:
        aurocs = " ".join(f"{k}={v['auroc']:.3f}" for k, v in r.final_metrics.items())
        print(f"{r.run_id:<52}{r.status.get('status', '?'):<10}{len(r.records):>7}  {aurocs}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    for spec in DATASETS.values():
        status = dataset_status(spec.name, args.data_root)
        print(f"{spec.name:<14}{status:<13}{spec.title}: {', '.join(spec.classes)}")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 3 data missing, 4 diverged)."""
    args = build_parser().parse_args(argv)
    # `kill` (SIGTERM) ends a run like Ctrl-C: the run folder is closed as "stopped".
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return {"train": _train, "runs": _runs, "datasets": _datasets}[args.command](args)
    except DatasetUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the completed epochs are kept in the run folder", file=sys.stderr)
        return 130
