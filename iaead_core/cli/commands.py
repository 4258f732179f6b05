"""The ``train`` (on a benchmark set), ``runs``, ``datasets`` and ``methods`` commands.

``train`` shows a progress bar with the live (oracle) AUROC and ends with a table of every
scoring rule's AUROC / AUPR-in / AUPR-out under a header that names the run's settings (λ, ν,
preset, init), with the paper's value where :func:`iaead_core.evaluation.paper.paper_reference` allows
one, and one warning line per kind of training-health alert. With ``--json`` it prints one
JSON object instead::

    {"run_id", "seconds", "status", "run_dir", "data", "settings": {...},
     "metrics": {RULE: {"auroc", "aupr_in", "aupr_out", "degenerate", ...}},
     "paper": {"value", "label"}, "alerts": [{"kind", "message", "first_epoch", "last_epoch"}],
     "spread": {"rule", "std", "spread", "n", "source", "detail"} or null}

At the quick preset ``train`` runs three seeds by default (``--seed``, +1, +2; ``--seeds N``
changes the count, ``--seeds 1`` gives one run): one quick run's AUROC moves with the seed and
even with the CPU's thread count by more than the differences it is read for (docs/method.md
§11). The table then gives every rule's mean ± std over the seeds and the own rule's AUROC per
seed; ``--json`` prints::

    {"seeds", "seconds" (wall), "status": "completed" | "incomplete" | "interrupted" | "failed",
     "unfinished": {"seed", "why": "interrupted" | "failed"} or null,
     "data" (no seed), "settings" (no seed),
     "metrics": {RULE: {"auroc", "auroc_std", "aupr_in", "aupr_in_std", "aupr_out",
                        "aupr_out_std", "n", "n_degenerate"}},
     "paper", "spread" (measured from these seeds), "runs": [one object per seed, as above]}

When a later seed is interrupted (Ctrl-C) or fails (a diverged loss), the seeds that completed
are still reported, with that seed under ``unfinished``, before the command exits as that
error makes it (130, or the error's code); the unfinished run keeps its epochs in its folder.

Beside a single run's own AUROC stands its expected spread across seeds
(:func:`iaead_core.evaluation.stability.expected_spread`): measured from the runs of the same
setting with other seeds in the runs folder, else from the preset's stability table.

``runs`` lists saved runs with their live status (running, completed, stopped, failed,
interrupted, corrupt), settings, final metrics and the expected spread of each run's own
AUROC across seeds; ``datasets`` lists the data sets with their
classes and whether their files are on disk and sound; ``methods`` describes each method.
``train --images`` (a folder of the user's own images) is handed to
:func:`~iaead_core.cli.images.train_images`. Torch is loaded only when a command needs it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from iaead_core.cli.common import _short, config_from_args
from iaead_core.cli.images import train_images
from iaead_core.config import MAX_SEED, MAX_SEEDS, METHOD_NAMES, TrainConfig, default_seeds
from iaead_core.data import (DATASETS, DatasetUnavailableError, OFFLINE_DEFAULT, dataset_problems,
                             dataset_status, resolve_data_root)
from iaead_core.evaluation.paper import paper_reference, protocol_differences
from iaead_core.evaluation.stability import (SeedSpread, completed_runs, expected_spread,
                                              measured_spread, seed_summary, spread_text)
from iaead_core.runs import list_runs, resolve_runs_root
from iaead_core.storage import check_folder
__all__: list[str] = []  # main dispatches to the handlers _train, _runs, _datasets, _methods


# ------------------------------------------------------------------------------------- train

def _train(args: argparse.Namespace) -> int:
    if getattr(args, "images", None) is not None:  # the user's own images, not a benchmark
        if args.seeds not in (None, 1):
            raise ValueError("--seeds: training on your own images (--images) is one run; "
                             "repeat the command with other --seed values to compare seeds")
        return train_images(args)
    # Checked in full before torch is loaded: a bad value answers at once.
    cfg = config_from_args(args)
    args._cfg = cfg
    seeds = _seeds(args, cfg)
    check_folder(resolve_runs_root(args.out))  # a read-only runs folder: exit 5 before loading
    if args.options:  # a typo in a method setting must not be ignored silently
        from iaead_core.methods import METHODS  # lazy: loads torch

        known = getattr(METHODS[cfg.method], "options", None) or {}
        for key, _ in args.options:
            if key not in known:
                raise ValueError(f"--option {key}: {cfg.method} has no setting {key!r}; its "
                                 f"settings: {', '.join(known) or 'none'} "
                                 f"(`python -m iaead_core methods` describes them)")
    try:
        return _train_seeds(args, cfg, seeds)
    except DatasetUnavailableError as e:
        if args.dataset is not None:  # asked for by name: say so rather than substitute
            raise
        spec = DATASETS[OFFLINE_DEFAULT]
        print(f"note: {e}\nnote: using the offline default {OFFLINE_DEFAULT!r} instead: "
              f"{spec.source}.", file=sys.stderr)
        return _train_seeds(args, cfg.replace(dataset=OFFLINE_DEFAULT), seeds)


def _seeds(args: argparse.Namespace, cfg: TrainConfig) -> list[int]:
    """The seeds ``train`` runs: ``--seed``, ``--seed`` + 1, … (``--seeds`` of them, by default
    :func:`~iaead_core.config.default_seeds` of the preset). Raises ValueError outside
    1 … :data:`~iaead_core.config.MAX_SEEDS` or past :data:`~iaead_core.config.MAX_SEED`."""
    n = default_seeds(cfg.preset) if args.seeds is None else args.seeds
    if not 1 <= n <= MAX_SEEDS:
        raise ValueError(f"--seeds {n}: must be 1 to {MAX_SEEDS}")
    if cfg.seed + n - 1 > MAX_SEED:
        raise ValueError(f"--seeds {n}: the last seed, {cfg.seed + n - 1}, is above "
                         f"{MAX_SEED}; give a smaller --seed")
    return [cfg.seed + i for i in range(n)]


def _train_seeds(args: argparse.Namespace, cfg: TrainConfig, seeds: list[int]) -> int:
    """Train ``cfg`` once per seed, one after another (each run saved as it goes), then report
    the single run, or the mean ± std over the seeds with every run's own result."""
    if cfg.method == "iaead" and cfg.warmup_epochs >= cfg.epochs:
        print(f"warning: warm-up ({cfg.warmup_epochs} epochs) >= epochs ({cfg.epochs}): the SVDD "
              "term never switches on, so this run is a plain CAE scored in latent space",
              file=sys.stderr)
    results, t0 = [], time.perf_counter()
    for i, seed in enumerate(seeds):
        label = f"seed {seed} ({i + 1} of {len(seeds)})" if len(seeds) > 1 else ""
        try:
            results.append(_one_run(args, cfg.replace(seed=seed), label))
        except BaseException as e:
            if results:  # the seeds that completed are reported, then the error goes on
                why = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
                print(f"seed {seed} {why}: reporting the {len(results)} seed(s) that "
                      "completed", file=sys.stderr)
                _report(args, results, time.perf_counter() - t0, (seed, why))
            raise
    _report(args, results, time.perf_counter() - t0)
    return 0


def _report(args: argparse.Namespace, results: list, wall: float,
            unfinished: tuple[int, str] | None = None) -> None:
    if len(results) == 1 and unfinished is None:
        _report_run(args, results[0])
    else:
        _report_seeds(args, results, wall, unfinished)


def _one_run(args: argparse.Namespace, cfg: TrainConfig, label: str):
    """One training of ``cfg``: a progress bar (or nothing with ``--json``) → TrainResult."""
    from iaead_core.training.engine import Trainer  # lazy: loads pandas, torch

    trainer = Trainer(cfg, runs_root=args.out)
    if args.json:
        return trainer.run()
    from tqdm import tqdm

    d = trainer.data
    print(f"{d.dataset} class {d.normal_class} ({d.class_name}): {d.n_normal} normal + "
          f"{d.n_anomalies} anomalies, ρ = {d.rho:g}; {cfg.method}, preset {cfg.preset}, "
          f"device {trainer.device}; run {trainer.run_id}" + (f"; {label}" if label else ""),
          file=sys.stderr)
    with tqdm(total=cfg.epochs, unit="epoch", file=sys.stderr) as bar:
        def show(rec):
            m = rec["metrics"].get(rec["primary_score"]) or next(iter(rec["metrics"].values()))
            bar.set_postfix_str(f"{rec['phase']} AUROC({rec['primary_score']})={m['auroc']:.3f}"
                                f"{' degenerate' if m.get('degenerate') else ''}"
                                f" loss={rec['loss']['total']:.4g}")
            bar.update(1)
        return trainer.run(show)


def _run_json(result, spread: SeedSpread | None) -> dict[str, Any]:
    """One run as ``train --json`` prints it (module docstring), with its expected spread."""
    from iaead_core.evaluation.health import summarize  # lazy: loads pandas

    last = result.records[-1] if result.records else {}
    paper = paper_reference(result.config.to_dict())
    return {"run_id": result.run_id, "seconds": round(result.seconds, 2), "status": result.status,
            "run_dir": str(result.run_dir), "data": result.data,
            "settings": _settings(result.config),
            "metrics": {rule: {**m, "degenerate": bool(m.get("degenerate", False))}
                        for rule, m in result.final_metrics.items()},
            "paper": {"value": paper.value, "label": paper.label,
                      "rule": last.get("primary_score")},
            "alerts": summarize(result.records),
            "spread": _spread_json(spread, last.get("primary_score"))}


def _report_run(args: argparse.Namespace, result) -> None:
    """A single run's result: its JSON object, or its table, status and alert lines."""
    last = result.records[-1] if result.records else {}
    spread = expected_spread(result.config.to_dict(), last.get("primary_score"),
                             completed_runs(list_runs(args.out)))
    out = _run_json(result, spread)
    if args.json:
        print(json.dumps(out, default=_json_default))
        return
    _print_table(last, result.config, paper_reference(result.config.to_dict()), spread)
    print(f"\n{result.status} in {result.seconds:.1f} s; saved to {result.run_dir}")
    for line in _alert_lines(out["alerts"], last):
        print(line)


def _report_seeds(args: argparse.Namespace, results: list, wall: float,
                  unfinished: tuple[int, str] | None = None) -> None:
    """Several seeds of one setting: the mean ± std of every rule's final metrics
    (:func:`~iaead_core.evaluation.stability.seed_summary`), each seed's own AUROC, and each
    run as a single run reports it (``--json``: under ``"runs"``). ``wall``: seconds of the
    whole command; ``unfinished``: (seed, "interrupted" or "failed") of the run that ended the
    command early (the status says which; only the completed seeds are summarised)."""
    cfg = results[0].config
    rule = (results[0].records[-1] if results[0].records else {}).get("primary_score")
    saved = completed_runs(list_runs(args.out))  # the runs folder is read once
    runs = [_run_json(r, expected_spread(r.config.to_dict(), rule, saved)) for r in results]
    summary = seed_summary([r.final_metrics for r in results])
    spread = measured_spread([(r.final_metrics.get(rule) or {}).get("auroc") for r in results],
                             f"the {len(results)} seeds of this command")
    paper = paper_reference(cfg.to_dict())
    status = (unfinished[1] if unfinished is not None
              else "completed" if all(r.status == "completed" for r in results)
              else "incomplete")
    if args.json:
        settings = {k: v for k, v in runs[0]["settings"].items() if k != "seed"}
        print(json.dumps({
            "seeds": [r.config.seed for r in results], "seconds": round(wall, 2),
            "status": status,
            "unfinished": None if unfinished is None else dict(zip(("seed", "why"), unfinished)),
            "data": {k: v for k, v in runs[0]["data"].items() if k != "seed"},
            "settings": settings,
            "metrics": {rl: {**{k: v.mean for k, v in row.items()},
                             **{f"{k}_std": v.std for k, v in row.items()},
                             "n": max(v.n for v in row.values()),
                             "n_degenerate": max(v.degenerate for v in row.values())}
                        for rl, row in summary.items()},
            "paper": runs[0]["paper"], "spread": _spread_json(spread, rule),
            "runs": runs}, default=_json_default))
        return
    from iaead_core.methods import SCORE_RULES  # lazy: loads torch
    from iaead_core.methods.fields import used_nu  # lazy: loads torch

    seeds = [r.config.seed for r in results]
    print(f"\n{_method_title(cfg.method)} on {cfg.dataset} class {cfg.normal_class}, "
          f"ρ = {cfg.rho:g}: "
          + _settings_line(cfg.method, cfg.effective_lam, used_nu(cfg), cfg.preset, cfg.init,
                           ", ".join(map(str, seeds))))
    print(f"Mean ± sample std over {len(seeds)} seed{'s' if len(seeds) > 1 else ''} (one quick "
          "run's AUROC moves with the seed and the CPU's thread count: docs/method.md §11; "
          "--seeds 1 for one run).")
    print("Oracle monitoring: labels are used only to compute these metrics.")
    print(f"{'rule':<18}{'AUROC':<16}{'AUPR-in':<16}{'AUPR-out':<16}{'paper':>6}  description")
    for rl, row in summary.items():
        ref = f"{paper.value:.3f}" if rl == rule and paper.value is not None else "-"
        cells = ["-" if k not in row else f"{row[k].mean:.3f}" if row[k].n < 2
                 else f"{row[k].mean:.3f} ± {row[k].std:.3f}"
                 for k in ("auroc", "aupr_in", "aupr_out")]
        mark = " *" if rl == rule else ""
        print(f"{rl + mark:<18}{cells[0]:<16}{cells[1]:<16}{cells[2]:<16}{ref:>6}  "
              f"{SCORE_RULES.get(rl, '')}")
    print("* the method's own rule; its AUROC per seed: "
          + ", ".join(f"seed {r.config.seed} {_auroc_cell(r.final_metrics[rule])}"
                      for r in results if rule in r.final_metrics)
          + (f" (range {spread.spread:.3f})" if spread else ""))
    if any(row.get("auroc") and row["auroc"].degenerate for row in summary.values()):
        print("degenerate: a rule whose scores differ only by float noise enters at chance "
              "(AUROC 0.5); the counts are in --json")
    print(_paper_line(paper, cfg))
    print(f"\n{status}: {len(results)} run{'s' if len(results) > 1 else ''} in {wall:.1f} s"
          + (f" (seed {unfinished[0]} {unfinished[1]})" if unfinished is not None else "")
          + "; saved to " + ", ".join(str(r.run_dir) for r in results))
    for r, out in zip(results, runs):
        for line in _alert_lines(out["alerts"], r.records[-1] if r.records else {}):
            print(f"seed {r.config.seed}: {line}")


def _spread_json(spread: SeedSpread | None, rule: str | None) -> dict[str, Any] | None:
    return None if spread is None else {"rule": rule, **spread._asdict()}


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _settings(cfg: TrainConfig) -> dict[str, Any]:
    """The settings a result is read against (contract: shown with every result)."""
    from iaead_core.methods.fields import used_nu  # lazy: loads torch

    return {"method": cfg.method, "lam": cfg.effective_lam, "nu": used_nu(cfg),
            "preset": cfg.preset, "init": cfg.init, "seed": cfg.seed, "epochs": cfg.epochs,
            "max_samples": cfg.max_samples}


def _settings_line(method: str, lam: float | None, nu: float | None, preset: Any, init: Any,
                   seed: Any) -> str:
    from iaead_core.evaluation.analysis import format_lambda  # lazy: loads pandas, torch

    nu_s = "—" if nu is None else _short(float(nu))
    return (f"λ = {format_lambda(lam)} · ν = {nu_s} · preset {preset} · init {init} · "
            f"seed {seed}")


def _method_title(name: str) -> str:
    from iaead_core.methods import METHODS  # lazy: loads torch

    cls = METHODS.get(name)
    return getattr(cls, "title", None) or name


def _auroc_cell(m: dict[str, Any]) -> str:
    return f"{m['auroc']:.3f}" + (" (degenerate)" if m.get("degenerate") else "")


def _print_table(record: dict, cfg: TrainConfig, paper, spread: SeedSpread | None = None) -> None:
    """Last epoch's metrics per rule under a header with the run's settings; the paper's AUROC
    beside the method's own rule where :func:`paper_reference` gives one, and beside that
    rule's AUROC its expected spread across seeds (``± std``, then a line that says where it
    comes from) when ``spread`` is given."""
    from iaead_core.methods.fields import used_nu  # lazy: loads torch
    from iaead_core.methods import SCORE_RULES  # lazy: loads torch

    print(f"\n{_method_title(cfg.method)} on {cfg.dataset} class {cfg.normal_class}, "
          f"ρ = {cfg.rho:g}: "
          + _settings_line(cfg.method, cfg.effective_lam, used_nu(cfg), cfg.preset, cfg.init,
                           cfg.seed))
    print("Oracle monitoring: labels are used only to compute these metrics.")
    metrics = record.get("metrics", {})
    print(f"{'rule':<16}{'AUROC':<20}{'AUPR-in':>8}{'AUPR-out':>10}{'paper':>8}  description")
    primary = record.get("primary_score")
    for rule, m in metrics.items():
        ref = paper.value if rule == primary else None
        ref_s = f"{ref:.3f}" if ref is not None else "-"
        cell = _auroc_cell(m)
        if rule == primary and spread is not None and not m.get("degenerate"):
            cell += " " + spread_text(spread, short=True)
        print(f"{rule:<16}{cell:<20}{m['aupr_in']:>8.3f}{m['aupr_out']:>10.3f}"
              f"{ref_s:>8}  {SCORE_RULES.get(rule, '')}")
    if spread is not None and primary in metrics:
        print(f"expected spread of the {primary} AUROC: {spread_text(spread)}")
    print(_paper_line(paper, cfg))
    if any(m.get("degenerate") for m in metrics.values()):
        print("degenerate: the rule's scores differ only by float noise, so they carry no "
              "information; its AUROC is reported as 0.5 and its AUPRs as the base rates "
              "(the raw values are in --json and the run folder)")


def _paper_line(paper, cfg: TrainConfig) -> str:
    """The line under a result table that says where the paper's AUROC comes from, and in
    what the run's protocol differs from the paper's when it does."""
    if paper.value is None:
        return f"paper: {paper.label}"
    line = f"paper: {paper.label}, the paper's AUROC for this class at ρ = 0.1 (Table 3)"
    if paper.label != "paper":
        line += "; this run differs in " + "; ".join(protocol_differences(cfg.to_dict()))
    return line


def _alert_lines(alerts: list[dict[str, Any]], last: dict[str, Any]) -> list[str]:
    lines = []
    for a in alerts:
        span = (f"epoch {a['first_epoch']}" if a["first_epoch"] == a["last_epoch"]
                else f"epochs {a['first_epoch']}-{a['last_epoch']}")
        lines.append(f"warning: {a['title']}: {a['message']} ({span})")
    if (last.get("diagnostics") or {}).get("collapsed") and not any(a["kind"] == "collapsed" for a in alerts):
        lines.append("warning: the latent space has collapsed (see diagnostics.collapse_ratio)")
    return lines


# -------------------------------------------------------------------------------------- runs

def _runs(args: argparse.Namespace) -> int:
    from iaead_core.evaluation.analysis import saved_nu  # lazy: loads pandas, torch

    runs = list_runs(args.out)
    pairs = completed_runs(runs)
    spreads = {r.run_id: (_primary(r), expected_spread(r.config, _primary(r), pairs))
               if r.config and r.final_metrics else (None, None) for r in runs}
    if args.json:
        print(json.dumps([{
            "run_id": r.run_id, "status": r.live_status, "recorded_status": r.status.get("status"),
            "note": r.status_note, "problem": r.problem, "config": r.config,
            "lam": r.meta.get("lam", r.config.get("lam")),
            "nu": saved_nu(r.config, r.meta.get("nu", r.config.get("nu"))),
            "preset": r.config.get("preset"), "epochs_done": len(r.records),
            "metrics": r.final_metrics,
            "spread": _spread_json(spreads[r.run_id][1], spreads[r.run_id][0])}
            for r in runs], default=_json_default))
        return 0
    if not runs:
        print(f"no runs in {resolve_runs_root(args.out)}")
        return 0
    print(f"{'run_id':<52}{'status':<12}{'λ':>7}{'ν':>5}  {'preset':<7}{'epochs':>9}  AUROC by rule "
          f"(its own ± std over seeds)")
    for r in runs:
        cfg = r.config
        lam = r.meta.get("lam", cfg.get("lam")) if cfg else None
        nu = saved_nu(cfg, r.meta.get("nu", cfg.get("nu")))
        nu_s = "—" if not isinstance(nu, (int, float)) else _short(float(nu))
        epochs = f"{len(r.records)}/{cfg.get('epochs', '?')}" if cfg else str(len(r.records))
        rule, spread = spreads[r.run_id]
        aurocs = " ".join(f"{k}={_auroc_cell(v)}"
                          + (f" {spread_text(spread, short=True)}"
                             if k == rule and spread is not None and not v.get("degenerate")
                             else "")
                          for k, v in r.final_metrics.items()
                          if isinstance(v, dict) and "auroc" in v)
        # _short writes λ as analysis.format_lambda does (a test holds them equal) without
        # loading pandas and sklearn just to list runs.
        lam_s = ("—" if lam is None else _short(float(lam))) if cfg else "?"
        print(f"{r.run_id:<52}{r.live_status:<12}{lam_s:>7}{nu_s:>5}  {str(cfg.get('preset', '?')):<7}"
              f"{epochs:>9}  {aurocs}")
        if r.live_status in ("corrupt", "interrupted", "failed") and r.status_note:
            print(f"    {r.live_status}: {r.status_note}")
    sources = {s.detail for _, s in spreads.values() if s is not None}
    if sources:
        print("± std over seeds: " + "; ".join(sorted(sources)))
    return 0


def _primary(run) -> str | None:
    """A saved run's own scoring rule (its metadata, else its last record)."""
    return run.meta.get("primary_score") or (run.records[-1].get("primary_score")
                                             if run.records else None)


# ---------------------------------------------------------------------------- datasets, methods

def _datasets(args: argparse.Namespace) -> int:
    root = resolve_data_root(args.data_root)
    print(f"data root: {root.resolve()}")
    for spec in DATASETS.values():
        status = dataset_status(spec.name, root)
        print(f"{spec.name:<14}{status:<13}{spec.title}: {', '.join(spec.classes)}")
        if status == "corrupt":
            for problem in dataset_problems(spec.name, root):
                print(f"    damaged: {problem.path.name} {problem.reason}")
    return 0


def _methods(args: argparse.Namespace) -> int:
    from iaead_core.methods import METHODS  # lazy: loads torch

    for name in METHOD_NAMES:
        cls = METHODS.get(name)
        if cls is None:
            print(f"{name:<11}(not available in this installation)")
            continue
        title = getattr(cls, "title", name)
        print(f"{name:<11}{title}: {getattr(cls, 'description', '')}")
        for key, opt in (getattr(cls, "options", None) or {}).items():
            print(f"{'':<13}--option {key}=... (default {_short(opt.default)}): "
                  f"{getattr(opt, 'description', '')}")
    return 0
