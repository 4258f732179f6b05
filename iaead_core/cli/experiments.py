"""Command line of experiments: ``python -m iaead_core experiment {run,status,report,list}``.

``run SPEC`` expands a spec (a built-in name — table2, fig2-rho, fig4-lambda, ablation — or a
TOML file), skips every run that already finished, trains the rest on this machine
(``--executor local``) or a Ray cluster (``--executor ray [--address ...]``), prints one
progress line per finished run (done/total, failures, ETA) and writes the report.
``--dry-run`` prints the expansion and its estimated time instead. ``status`` counts the runs
by state and lists the failures; ``report`` (re)writes the report.

The narrowing options (``--preset``, ``--seeds``, ``--dataset``, ``--classes``,
``--methods``) replace those axes of the spec. ``status`` and ``report`` without them use the
spec last run in the experiment's folder. SPEC may be an experiment folder anywhere (one that
holds a ``spec.json``): every command then reads and writes that folder, not one under
``--out`` / ``$IAEAD_EXPERIMENTS_DIR``.

The main parser hooks this in with :func:`add_experiment_parser` and
:func:`run_experiment_command`; ``python -m iaead_core.cli.experiments ...`` runs it alone.
Nothing heavy (torch, pandas, Ray) is imported before the arguments are parsed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from iaead_core.data import resolve_data_root

__all__ = ["add_experiment_parser", "run_experiment_command"]

_BUILTINS = ("table2", "fig2-rho", "fig4-lambda", "ablation")
_NARROWING = ("preset", "seeds", "dataset", "classes", "methods")
#: Most runs at once on this machine (``--slots``), torch threads (``--threads``), and CPUs or
#: GPUs per Ray run.
MAX_SLOTS = 64
MAX_THREADS = 1024


def _seeds_arg(text: str) -> list[int]:
    """``3`` → seeds 0, 1, 2; ``0,4,7`` → those seeds (at most the spec's maximum, checked
    before any list is built)."""
    from iaead_core.experiments.spec import check_seeds  # lazy: the spec module loads pandas

    try:
        parts = [t.strip() for t in text.split(",") if t.strip()]
        if not parts:
            raise ValueError
        values = [int(t) for t in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds {text[:40]!r}: give a count (3 → seeds 0, 1, 2) or a list such as "
            f"0,4,7") from None
    try:
        return check_seeds(values[0] if "," not in text else values, "--seeds")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _count_arg(name: str, low: int, high: int):
    """An argparse type: a whole number in [low, high], else the option's own message."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number from {low} to "
                                             f"{high:,}; got {text!r}")
        return value
    return parse


def _share_arg(name: str, high: float):
    """An argparse type: a finite number in (0, high]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 < value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{name} must be a number in (0, {high:g}]; got "
                                             f"{text!r}")
        return value
    return parse


def _list_arg(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _classes_arg(text: str) -> Any:
    if text.strip() == "all":
        return "all"
    return [int(t) if t.isdigit() else t for t in _list_arg(text)]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help=f"a built-in experiment ({', '.join(_BUILTINS)}), a spec file "
                                "(.toml or .json) or an experiment folder")
    p.add_argument("--preset", default=None, choices=("quick", "paper"),
                   help="scale of the runs (default: the spec's; built-ins: quick)")
    p.add_argument("--seeds", type=_seeds_arg, default=None,
                   help="replace the seeds: a count (3 → 0, 1, 2) or a list (0,4,7); at most "
                        "1,000")
    p.add_argument("--dataset", type=_list_arg, default=None,
                   help="replace the data sets (comma-separated)")
    p.add_argument("--classes", type=_classes_arg, default=None,
                   help="replace the normal classes: 'all' or a comma-separated list of indices "
                        "or names")
    p.add_argument("--methods", type=_list_arg, default=None,
                   help="replace the methods (comma-separated registered names)")
    p.add_argument("--out", default=None,
                   help="experiments folder (default $IAEAD_EXPERIMENTS_DIR or ./experiments)")
    p.add_argument("--data-root", default=None,
                   help="data folder (default $IAEAD_DATA_ROOT or ./data); on a cluster, a path "
                        "every node can read")


def add_experiment_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``experiment`` command (with ``run``, ``status``, ``report``, ``list``) to
    the sub-parsers of the main parser; returns its parser."""
    e = subparsers.add_parser(
        "experiment", help="run a whole study (the paper's tables and figures), resumably",
        description="Experiments: many runs from one spec, resumable, on this machine or a Ray "
                    "cluster, reported beside the paper's values. Exit codes: 0 ok, 1 some runs "
                    "failed, 2 bad input or the experiment is being run by another process, "
                    "3 data set missing, 5 the experiment folder cannot be written (read-only "
                    "or full disk), 130 interrupted.")
    sub = e.add_subparsers(dest="experiment_command", required=True,
                           metavar="{run,status,report,list}")
    r = sub.add_parser("run", help="run every missing run of a spec, then write its report")
    _add_common(r)
    r.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local (default): this machine; ray: one Ray task per run")
    r.add_argument("--address", default=None,
                   help="Ray cluster address (from `ray start --head`; 'auto' finds a local "
                        "one); without it --executor ray starts Ray on this machine")
    r.add_argument("--dry-run", action="store_true",
                   help="print the expansion and its estimated time; run nothing")
    r.add_argument("--list", action="store_true", help="with --dry-run: print every run")
    r.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="device of the runs (default auto: cuda, then mps, then cpu)")
    r.add_argument("--download", action="store_true",
                   help="download missing data sets first (needs network access)")
    r.add_argument("--slots", type=_count_arg("--slots", 1, MAX_SLOTS), default=None,
                   help=f"local: runs at once, 1 to {MAX_SLOTS} (default 1 on a CPU; on a "
                        f"GPU as many as its free memory holds, at most 10)")
    r.add_argument("--workers", default="process", choices=("process", "thread"),
                   help="local, with several runs at once: each in a worker process "
                        "(default) or in a thread of this process with a CUDA stream of its own "
                        "(slower on one H200: the threads' host work serialises)")
    r.add_argument("--threads", type=_count_arg("--threads", 1, MAX_THREADS), default=None,
                   help=f"local: torch CPU threads, 1 to {MAX_THREADS} (default: all cores)")
    r.add_argument("--stack", default="off", choices=("auto", "on", "off"),
                   help="local: train compatible runs that share a data draw as one stacked "
                        "network (on; auto: where a quick measurement says it is faster here). "
                        "Off by default: a stacked run equals a single one only up to float32 "
                        "rounding, which training amplifies")
    r.add_argument("--cpus-per-run", type=_share_arg("--cpus-per-run", MAX_THREADS), default=1,
                   help="ray: CPUs (and torch threads) per run (default 1)")
    r.add_argument("--gpus-per-run", type=_share_arg("--gpus-per-run", MAX_SLOTS), default=None,
                   help="ray: GPU share per run when the cluster has GPUs (default 0.25)")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")

    s = sub.add_parser("status", help="count an experiment's runs by state; list failures")
    _add_common(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")

    rep = sub.add_parser("report", help="write the experiment's report (CSV, Markdown, HTML)")
    _add_common(rep)

    sub.add_parser("list", help="list the built-in experiments")
    return e


# --------------------------------------------------------------------------------- helpers

def _folder(args: argparse.Namespace) -> str | None:
    """The experiment folder SPEC names (a folder holding ``spec.json``), wherever it is; None
    for a built-in name or a spec file (their folder is ``<--out>/<name>-<preset>``)."""
    path = Path(args.spec)
    if args.spec not in _BUILTINS and path.is_dir() and (path / "spec.json").is_file():
        return str(path)
    return None


def _spec(args: argparse.Namespace, use_saved: bool):
    """The spec the command works on (see the module docstring)."""
    from iaead_core.experiments.builtin_specs import load_spec  # lazy: loads pandas
    from iaead_core.experiments.store import ExperimentFolder  # lazy: loads pandas

    spec = load_spec(args.spec, preset=args.preset)
    narrowing = {k: getattr(args, k) for k in _NARROWING if k != "preset"}
    if use_saved and all(v is None for v in narrowing.values()):
        folder = _folder(args)
        saved = (ExperimentFolder(folder) if folder else
                 ExperimentFolder.for_spec(spec, args.out)).saved_spec()
        if saved is not None:
            return saved
    return spec.narrowed(seeds=args.seeds, datasets=args.dataset, classes=args.classes,
                         methods=args.methods)


def _data_root(args: argparse.Namespace) -> str:

    return str(resolve_data_root(args.data_root).resolve())


def _axes_summary(spec, runs) -> str:
    from iaead_core.evaluation.analysis import format_lambda  # lazy: loads pandas, torch

    def distinct(key):
        return list(dict.fromkeys(p.point[key] for p in runs if p.point.get(key) is not None))
    parts = [f"{len(distinct('dataset'))} data set(s)",
             f"{len({(p.point['dataset'], p.point['normal_class']) for p in runs})} class(es)",
             "ρ " + ", ".join(f"{v:g}" for v in distinct("rho")),
             "methods " + ", ".join(distinct("method"))]
    if distinct("lam"):
        parts.append("λ " + ", ".join(format_lambda(v) for v in distinct("lam")))
    if distinct("nu"):
        parts.append("ν " + ", ".join(f"{v:g}" for v in distinct("nu")))
    for name in spec.axes:
        parts.append(f"{name} " + ", ".join(map(str, distinct(name))))
    parts.append(f"{len(spec.seeds)} seed(s)")
    return "; ".join(parts)


def _executor(args: argparse.Namespace):
    from iaead_core.experiments.executors import make_executor  # lazy: loads pandas

    if args.executor == "ray":
        return make_executor("ray", address=args.address, cpus_per_run=args.cpus_per_run,
                             gpus_per_run=args.gpus_per_run)
    stack = {"auto": "auto", "on": True, "off": False}[args.stack]
    return make_executor("local", device=args.device, slots=args.slots, threads=args.threads,
                         stack=stack, workers=args.workers)


def _dry_run(args, spec) -> int:
    from iaead_core.experiments.estimate import format_duration  # lazy: loads pandas
    from iaead_core.experiments.runner import describe_point, plan_experiment  # lazy: loads pandas

    device_type = "cpu"
    if args.executor == "local":
        from iaead_core.training.engine import select_device  # lazy: loads pandas, torch

        device_type = select_device(args.device).type
    plan = plan_experiment(spec, args.out, _data_root(args), args.device, device_type,
                           folder=_folder(args))
    todo = plan.todo
    print(f"{spec.folder_name}: {len(plan.runs)} runs — {_axes_summary(spec, plan.runs)}")
    counts = plan.counts()
    print("state: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; to run: {len(todo)}")
    slots = (args.slots or 1) if args.executor == "local" else 1
    at_once = f"{slots} run(s) at once"
    if args.executor == "local" and device_type == "cuda" and not args.slots:
        from iaead_core.experiments.local_executor import DEFAULT_GPU_SLOTS  # lazy: loads pandas

        at_once = (f"timed one run at a time; the GPU trains up to {DEFAULT_GPU_SLOTS} at "
                   f"once, in worker processes, which is faster")
    learned = any(i.state == "completed" for i in plan.infos.values())
    print(f"estimated time: {format_duration(plan.estimated_seconds(slots))} on {args.executor} "
          f"({device_type}, {at_once}; per-run times "
          f"{'from the finished runs where they apply, else ' if learned else ''}from the "
          f"2-core CPU table of iaead_core/experiments/estimate.py"
          f"{'' if args.executor == 'local' else '; a cluster runs many at once'})")
    print(f"folder: {plan.folder.dir}")
    if args.list or len(plan.runs) <= 40:
        for p in plan.runs:
            info = plan.infos[p.run_id]
            print(f"  {p.run_id:<48} {info.state:<11} ~{format_duration(plan.estimates[p.run_id]):>10}  "
                  f"{describe_point(p.point)}")
    else:
        print(f"  ({len(plan.runs)} runs; --list prints each one)")
    return 0


def _run(args) -> int:
    import threading

    from iaead_core.experiments.report import write_report  # lazy: loads pandas
    from iaead_core.experiments.runner import plan_experiment, run_experiment  # lazy: loads pandas

    spec = _spec(args, use_saved=False)
    if args.dry_run:
        return _dry_run(args, spec)
    stop = threading.Event()
    executor = _executor(args)
    say = lambda line, prog: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        summary = run_experiment(spec, executor, root=args.out, data_root=args.data_root,
                                 device=args.device, download=args.download, progress=say,
                                 stop_event=stop, folder=_folder(args),
                                 driver=f"the command line (experiment run, {args.executor} "
                                        "executor)")
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(f"{summary.total} runs: {summary.skipped} already completed, {summary.completed} "
          f"completed now, {summary.failed} failed, {summary.stopped} stopped "
          f"({summary.seconds:.0f} s)")
    if not args.no_report:
        plan = plan_experiment(spec, args.out, _data_root(args), args.device,
                               folder=_folder(args))
        paths = write_report(plan)
        print(f"report: {paths['report.html']}")
    if summary.failed:
        print(f"some runs failed: `experiment status {args.spec}` lists them; running the same "
              "command again retries them", file=sys.stderr)
        return 1
    return 0


def _status(args) -> int:
    from iaead_core.experiments.runner import describe_point, plan_experiment  # lazy: loads pandas

    spec = _spec(args, use_saved=True)
    plan = plan_experiment(spec, args.out, _data_root(args), folder=_folder(args))
    counts = plan.counts()
    by_method: dict[str, list[int]] = {}
    for p in plan.runs:
        c = by_method.setdefault(f"{p.point['dataset']} {p.point['method']}", [0, 0])
        c[1] += 1
        c[0] += plan.infos[p.run_id].state == "completed"
    problems = [(p, plan.infos[p.run_id]) for p in plan.runs
                if plan.infos[p.run_id].state in ("failed", "stopped", "interrupted", "corrupt")]
    if args.json:
        print(json.dumps({"experiment": spec.folder_name, "folder": str(plan.folder.dir),
                          "total": len(plan.runs), "counts": counts,
                          "driver_alive": plan.folder.driver_alive(),
                          "by_setting": {k: {"completed": v[0], "total": v[1]} for k, v in by_method.items()},
                          "problems": [{"run_id": p.run_id, "state": i.state, "error": i.error,
                                        "point": p.point} for p, i in problems]}))
        return 0
    driver = " (being run now)" if plan.folder.driver_alive() else ""
    others = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "completed")
    print(f"{spec.folder_name}{driver}: {counts.get('completed', 0)}/{len(plan.runs)} completed"
          + (f"; {others}" if others else ""))
    for k, (done, total) in by_method.items():
        print(f"  {k:<28}{done:>5}/{total}")
    for p, i in problems:
        print(f"  {i.state:<11} {p.run_id}  {describe_point(p.point)}: "
              f"{(i.error or '').splitlines()[0][:200] if i.error else ''}")
    return 0


def _report(args) -> int:
    from iaead_core.experiments.report import write_report  # lazy: loads pandas
    from iaead_core.experiments.runner import plan_experiment  # lazy: loads pandas

    spec = _spec(args, use_saved=True)
    plan = plan_experiment(spec, args.out, _data_root(args), folder=_folder(args))
    paths = write_report(plan)
    print((plan.folder.report_dir / "table2.md").read_text())
    for name, path in paths.items():
        print(f"{name:<12} {path}")
    return 0


def _list(args) -> int:
    from iaead_core.experiments.builtin_specs import BUILTIN_SPECS  # lazy: loads pandas

    for name, text in BUILTIN_SPECS.items():
        print(f"{name:<13}{text}")
    return 0


def run_experiment_command(args: argparse.Namespace) -> int:
    """Handle a parsed ``experiment`` command; returns the exit status (0 ok, 1 some runs
    failed, 130 interrupted). Bad input raises ``ValueError``, a missing data set
    ``DatasetUnavailableError`` and a folder that cannot be written ``StorageError``, which
    the main entry point turns into exit codes 2, 3 and 5; another process driving the same
    experiment gives exit code 2 with its message ("… is being run by …")."""
    from iaead_core.experiments.store import ExperimentBusyError  # lazy: loads pandas

    handler = {"run": _run, "status": _status, "report": _report, "list": _list}[args.experiment_command]
    try:
        return handler(args)
    except ExperimentBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
