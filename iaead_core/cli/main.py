"""Command line: ``python -m iaead_core {train,runs,datasets,methods} ...``.

``train`` shows a progress bar with the live (oracle) AUROC and ends with a table of every
scoring rule's AUROC / AUPR-in / AUPR-out under a header that names the run's settings (λ, ν,
preset, init), with the paper's value where :func:`iaead_core.evaluation.paper.paper_reference` allows
one, and one warning line per kind of training-health alert. With ``--json`` it prints one
JSON object instead::

    {"run_id", "seconds", "status", "run_dir", "data", "settings": {...},
     "metrics": {RULE: {"auroc", "aupr_in", "aupr_out", "degenerate", ...}},
     "paper": {"value", "label"}, "alerts": [{"kind", "message", "first_epoch", "last_epoch"}]}

``runs`` lists saved runs with their live status (running, completed, stopped, failed,
interrupted, corrupt), settings and final metrics; ``datasets`` lists the data sets with their
classes and whether their files are on disk and sound; ``methods`` describes each method.

Only the standard library, :mod:`iaead_core.config` and :mod:`iaead_core.data` (both free of
torch) are imported before the arguments are parsed, so ``--help`` and a mistyped option
answer at once; torch is loaded only when a command needs it.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import textwrap
import sys
from pathlib import Path
from typing import Any, Sequence

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.cli.common import CONFIG_OPTIONS, config_from_args
from iaead_core.cli.experiments import add_experiment_parser, run_experiment_command
from iaead_core.cli.images import add_image_arguments, add_score_parser, run_score, train_images
from iaead_core.config import (DEVICES, INITS, METHOD_NAMES, OBJECTIVES, PRESETS, TrainConfig,
                               preset_config)
from iaead_core.data import (DATASETS, DatasetCorruptError, DatasetUnavailableError,
                             OFFLINE_DEFAULT, dataset_problems, dataset_status, resolve_data_root)
from iaead_core.evaluation.paper import paper_reference, protocol_differences
from iaead_core.numbers import format_lambda
from iaead_core.runs import list_runs, resolve_runs_root
__all__ = ["main", "build_parser"]

_DOCS = Path(__file__).resolve().parents[2] / "docs" / "method.md"
_EXIT_CODES = "Exit codes: 0 ok, 2 bad input, 3 data set missing or damaged, 4 training diverged, " \
              "130 interrupted"


def _short(v: Any) -> str:
    """A value as the project writes it: floats as :func:`~iaead_core.numbers.format_lambda`
    (5e-5, not 5e-05; 0.1), 3000; None → "none"; booleans on / off."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return format_lambda(v)
    return str(v)


def _default(name: str, none: str = "none", methods: tuple[str, ...] | None = None) -> str:
    """The default of a field, said once: the TrainConfig default, or, where it depends on the
    preset (or on the method within a preset), the value for each.

    ``methods`` limits the text to the methods that use the field (e.g. Deep SVDD's own)."""
    base = TrainConfig.__dataclass_fields__[name].default
    show = lambda v: none if v is None else _short(v)  # noqa: E731
    presets = sorted(PRESETS, key=lambda p: p != "quick")  # the default preset first

    def value(preset: str, method: str) -> Any:
        settings = PRESETS[preset]
        own = settings.get(method, {})
        return own.get(name, settings.get(name, base))

    special = [m for m in METHOD_NAMES if any(m in PRESETS[p] for p in presets)]
    base_values = {p: value(p, "iaead") for p in presets}
    groups: dict[str, list[str]] = {}  # "quick 30, paper 300" → methods that have it

    def show_values(per: dict[str, Any]) -> str:
        if len({repr(v) for v in per.values()}) == 1:
            return show(next(iter(per.values())))
        return ", ".join(f"{p} {show(v)}" for p, v in per.items())

    for method in (methods or special):
        per = {p: value(p, method) for p in presets}
        if not methods and per == base_values:
            continue  # same as the others: said once
        groups.setdefault(show_values(per), []).append(method)
    if methods:
        texts = list(groups)
        if len(texts) == 1 and len({repr(value(p, methods[0])) for p in presets}) == 1:
            return f"default: {show(value(presets[0], methods[0]))}"
        return "default: from the preset: " + "; ".join(texts)
    if not groups and len({repr(v) for v in base_values.values()}) == 1:
        return f"default: {show(base_values[presets[0]])}"
    parts = [show_values(base_values)] + [f"{', '.join(ms)}: {text}" for text, ms in groups.items()]
    by_preset = any(", " in t and " " in t for t in [show_values(base_values), *groups]
                    if any(t.startswith(p + " ") for p in presets))
    return ("default: from the preset: " if by_preset else "default: ") + "; ".join(parts)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    # nan/inf parse here and are refused, with the allowed range, by TrainConfig.validate.
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _option_arg(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    raw = raw.strip()
    value: Any = {"true": True, "false": False}.get(raw.lower(), raw)
    if isinstance(value, str):
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
    return key.strip(), value


def _class_arg(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _methods_block() -> str:
    """One line per method for ``train --help``: name, title and the first clause of its
    description (:data:`iaead_core.catalog.METHOD_CATALOG`, the one place they are kept)."""
    lines = ["methods (`python -m iaead_core methods` says more):"]
    lines += [f"  {name:<10} {title}: {_first_clause(text)}"
              for name, (title, text) in METHOD_CATALOG.items()]
    return "\n".join(lines)


def _first_clause(text: str) -> str:
    """A method description cut to its first clause, for one line of ``--help``."""
    head = text.split(":")[0] if ":" in text[:60] else text.split(",")[0]
    return head.rstrip(".").strip()[0].lower() + head.rstrip(".").strip()[1:]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m iaead_core`` (imports nothing heavy)."""
    docs = str(_DOCS) if _DOCS.exists() else "docs/method.md in the iaead repository"
    p = argparse.ArgumentParser(
        prog="python -m iaead_core",
        description="IAEAD: unsupervised image anomaly detection (Wang et al. 2021) with its "
                    "baselines, on contaminated one-vs-all image sets.",
        epilog=f"The method, the data protocol, the equations and the sources: {docs}. "
               f"{_EXIT_CODES}.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,score,runs,datasets,methods,experiment}")

    t = sub.add_parser(
        "train", help="train one method on a contaminated one-vs-all set",
        description=textwrap.fill(
            "Train one method on a contaminated one-vs-all set and print its metrics after every "
            "epoch (oracle monitoring: labels are used only to compute them). Options left out "
            "take the preset's value.", 78),
        epilog=_methods_block() + "\n\n" + textwrap.fill(f"Method and protocol: {docs}. {_EXIT_CODES}.", 78),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    d = t.add_argument_group("data")
    d.add_argument("--dataset", default=None, choices=sorted(DATASETS),
                   help=f"data set (default: mnist; when MNIST can be neither found nor "
                        f"downloaded, the offline {OFFLINE_DEFAULT}, with a note)")
    d.add_argument("--normal-class", dest="normal_class", type=_class_arg, default=None,
                   help=f"normal class, by index or name, e.g. 0, t-shirt, ship, trees "
                        f"({_default('normal_class')})")
    d.add_argument("--rho", type=_number, default=None,
                   help=f"anomaly ratio ρ, in (0, 0.5) ({_default('rho')})")
    d.add_argument("--max-samples", dest="max_samples", type=_whole, default=None,
                   help=f"subsample that keeps ρ; 0 = the full set "
                        f"({_default('max_samples', none='full set')})")
    d.add_argument("--data-root", dest="data_root", default=None,
                   help="folder holding the data sets (default: $IAEAD_DATA_ROOT, else ./data)")
    d.add_argument("--download", action=argparse.BooleanOptionalAction, default=None,
                   help="fetch missing data files (needs network access); --no-download never "
                        "does (default: --download)")

    m = t.add_argument_group("method")
    m.add_argument("--method", default="iaead", choices=METHOD_NAMES,
                   help="method to train, one of those listed under 'methods' below "
                        "(default: iaead)")
    m.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                   help="quick: a light network (width 16, latent 64, not the paper's), 3,000 "
                        "images, 30 epochs, about a minute on a 2-core CPU; paper: the paper's "
                        "protocol (docs/method.md §3-4, GPU advised) (default: quick)")
    m.add_argument("--lam", type=_number, default=None,
                   help=f"λ of eq. (6), ≥ 0; iaead only (cae is λ = 0) ({_default('lam')}, the "
                        f"paper's best)")
    m.add_argument("--nu", type=_number, default=None,
                   help="ν of eq. (7), in (0, 1] (default: 1 for iaead, as in the paper; 0.1 "
                        "for deep-svdd, as in Ruff et al.)")
    m.add_argument("--objective", default=None, choices=OBJECTIVES,
                   help=f"Deep SVDD objective ({_default('objective')})")
    m.add_argument("--init", default=None, choices=INITS,
                   help=f"weight initialisation of the autoencoder: released (the IAEAD code's "
                        f"Xavier-normal, gain 0.02), pytorch (torch's defaults) or keras "
                        f"(Glorot-uniform, Keras BatchNorm) ({_default('init')})")
    m.add_argument("--width", type=_whole, default=None,
                   help=f"channels of the autoencoder's first layer ({_default('width')})")
    m.add_argument("--latent-dim", dest="latent_dim", type=_whole, default=None,
                   help=f"size of the latent code z ({_default('latent_dim')})")

    o = t.add_argument_group("optimisation")
    o.add_argument("--epochs", type=_whole, default=None,
                   help=f"training epochs, warm-up included ({_default('epochs')})")
    o.add_argument("--warmup-epochs", dest="warmup_epochs", type=_whole, default=None,
                   help=f"IAEAD: epochs before the SVDD term starts (c is fixed at their end); "
                        f"Deep SVDD: autoencoder pre-training epochs ({_default('warmup_epochs')})")
    o.add_argument("--lr", type=_number, default=None,
                   help=f"learning rate: SGD for iaead and cae, Adam for the autoencoder "
                        f"baselines ({_default('lr')})")
    o.add_argument("--lr-step", dest="lr_step", type=_whole, default=None,
                   help=f"epochs between learning-rate drops ({_default('lr_step')})")
    o.add_argument("--lr-gamma", dest="lr_gamma", type=_number, default=None,
                   help=f"factor of each SGD learning-rate drop, in (0, 1] "
                        f"({_default('lr_gamma', methods=('iaead',))})")
    o.add_argument("--batch-size", dest="batch_size", type=_whole, default=None,
                   help=f"mini-batch size ({_default('batch_size')})")
    o.add_argument("--svdd-lr", dest="svdd_lr", type=_number, default=None,
                   help=f"Deep SVDD's Adam learning rate ({_default('svdd_lr', methods=('deep-svdd',))})")
    o.add_argument("--svdd-weight-decay", dest="svdd_weight_decay", type=_number, default=None,
                   help=f"Deep SVDD's weight decay ({_default('svdd_weight_decay', methods=('deep-svdd',))})")
    o.add_argument("--svdd-bias", dest="svdd_bias", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="Deep SVDD with biases and affine BatchNorm: Ruff et al.'s precaution "
                        "against collapse turned off (default: off)")

    m.add_argument("--option", dest="options", action="append", default=None, type=_option_arg,
                   metavar="KEY=VALUE",
                   help="a method's own setting, kept in the run's config under extra, e.g. "
                        "--option memae_slots=200; repeatable; `python -m iaead_core methods` "
                        "lists each method's settings and defaults (default: none)")

    r = t.add_argument_group("run")
    r.add_argument("--seed", type=_whole, default=None,
                   help=f"seeds the data draw, torch, numpy and random ({_default('seed')})")
    r.add_argument("--device", default=None, choices=DEVICES,
                   help=f"where to train; auto picks cuda, then mps, then cpu ({_default('device')})")
    r.add_argument("--eval-batch-size", dest="eval_batch_size", type=_whole, default=None,
                   help=f"batch size of the per-epoch scoring pass ({_default('eval_batch_size')})")
    r.add_argument("--out", default=None,
                   help="runs folder (default: $IAEAD_RUNS_DIR, else ./runs)")
    r.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout, no progress bar")

    rs = sub.add_parser("runs", help="list saved runs: live status, settings, final metrics",
                        description="List the run folders with their live status (a run whose "
                                    "process died shows as interrupted, an unreadable folder as "
                                    "corrupt, with the reason), λ / ν / preset and final metrics.")
    rs.add_argument("--out", default=None, help="runs folder (default: $IAEAD_RUNS_DIR, else ./runs)")
    rs.add_argument("--json", action="store_true", help="print a JSON list")

    ds = sub.add_parser("datasets", help="list data sets, classes and whether their files are "
                                         "on disk and sound")
    ds.add_argument("--data-root", dest="data_root", default=None,
                    help="folder holding the data sets (default: $IAEAD_DATA_ROOT, else ./data)")

    sub.add_parser("methods", help="describe each method")
    add_image_arguments(t)
    add_score_parser(sub)
    add_experiment_parser(sub)
    return p


# ------------------------------------------------------------------------------------- train

def _train(args: argparse.Namespace) -> int:
    if getattr(args, "images", None):  # a folder of the user's own images, not a benchmark
        return train_images(args)
    # Checked in full before torch is loaded: a bad value answers at once.
    cfg = config_from_args(args)
    args._cfg = cfg
    if args.options:  # a typo in a method setting must not be ignored silently
        from iaead_core.methods import METHODS  # lazy: loads torch

        known = getattr(METHODS[cfg.method], "options", None) or {}
        for key, _ in args.options:
            if key not in known:
                raise ValueError(f"--option {key}: {cfg.method} has no setting {key!r}; its "
                                 f"settings: {', '.join(known) or 'none'} "
                                 f"(`python -m iaead_core methods` describes them)")
    try:
        return _train_on(args, cfg)
    except DatasetUnavailableError as e:
        if args.dataset is not None:  # asked for by name: say so rather than substitute
            raise
        spec = DATASETS[OFFLINE_DEFAULT]
        print(f"note: {e}\nnote: using the offline default {OFFLINE_DEFAULT!r} instead: "
              f"{spec.source}.", file=sys.stderr)
        return _train_on(args, cfg.replace(dataset=OFFLINE_DEFAULT))


def _train_on(args: argparse.Namespace, cfg: TrainConfig) -> int:
    from iaead_core.training.engine import Trainer  # lazy: loads pandas, torch

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
                                    f"{' degenerate' if m.get('degenerate') else ''}"
                                    f" loss={rec['loss']['total']:.4g}")
                bar.update(1)
            result = trainer.run(show)
    cfg = result.config
    config = cfg.to_dict()
    last = result.records[-1] if result.records else {}

    paper = paper_reference(config)
    from iaead_core.evaluation.health import summarize  # lazy: loads pandas

    alerts = summarize(result.records)
    if args.json:
        print(json.dumps({
            "run_id": result.run_id, "seconds": round(result.seconds, 2), "status": result.status,
            "run_dir": str(result.run_dir), "data": result.data, "settings": _settings(cfg),
            "metrics": {rule: {**m, "degenerate": bool(m.get("degenerate", False))}
                        for rule, m in result.final_metrics.items()},
            "paper": {"value": paper.value, "label": paper.label,
                      "rule": last.get("primary_score")},
            "alerts": alerts}, default=_json_default))
    else:
        _print_table(last, cfg, paper)
        print(f"\n{result.status} in {result.seconds:.1f} s; saved to {result.run_dir}")
        for line in _alert_lines(alerts, last):
            print(line)
    return 0


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


def _print_table(record: dict, cfg: TrainConfig, paper) -> None:
    """Last epoch's metrics per rule under a header with the run's settings; the paper's AUROC
    beside the method's own rule where :func:`paper_reference` gives one."""
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
        print(f"{rule:<16}{_auroc_cell(m):<20}{m['aupr_in']:>8.3f}{m['aupr_out']:>10.3f}"
              f"{ref_s:>8}  {SCORE_RULES.get(rule, '')}")
    if paper.value is not None:
        line = f"paper: {paper.label}, the paper's AUROC for this class at ρ = 0.1 (Table 3)"
        if paper.label != "paper":

            diffs = protocol_differences(cfg.to_dict())
            line += "; this run differs in " + "; ".join(diffs)
        print(line)
    else:
        print(f"paper: {paper.label}")
    if any(m.get("degenerate") for m in metrics.values()):
        print("degenerate: the rule's scores differ only by float noise, so they carry no "
              "information; its AUROC is reported as 0.5 and its AUPRs as the base rates "
              "(the raw values are in --json and the run folder)")


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
    if args.json:
        print(json.dumps([{
            "run_id": r.run_id, "status": r.live_status, "recorded_status": r.status.get("status"),
            "note": r.status_note, "problem": r.problem, "config": r.config,
            "lam": r.meta.get("lam", r.config.get("lam")),
            "nu": saved_nu(r.config, r.meta.get("nu", r.config.get("nu"))),
            "preset": r.config.get("preset"), "epochs_done": len(r.records),
            "metrics": r.final_metrics} for r in runs], default=_json_default))
        return 0
    if not runs:
        print(f"no runs in {resolve_runs_root(args.out)}")
        return 0
    print(f"{'run_id':<52}{'status':<12}{'λ':>7}{'ν':>5}  {'preset':<7}{'epochs':>9}  AUROC by rule")
    for r in runs:
        cfg = r.config
        lam = r.meta.get("lam", cfg.get("lam")) if cfg else None
        nu = saved_nu(cfg, r.meta.get("nu", cfg.get("nu")))
        nu_s = "—" if not isinstance(nu, (int, float)) else _short(float(nu))
        epochs = f"{len(r.records)}/{cfg.get('epochs', '?')}" if cfg else str(len(r.records))
        aurocs = " ".join(f"{k}={_auroc_cell(v)}" for k, v in r.final_metrics.items()
                          if isinstance(v, dict) and "auroc" in v)
        # _short writes λ as analysis.format_lambda does (a test holds them equal) without
        # loading pandas and sklearn just to list runs.
        lam_s = ("—" if lam is None else _short(float(lam))) if cfg else "?"
        print(f"{r.run_id:<52}{r.live_status:<12}{lam_s:>7}{nu_s:>5}  {str(cfg.get('preset', '?')):<7}"
              f"{epochs:>9}  {aurocs}")
        if r.live_status in ("corrupt", "interrupted", "failed") and r.status_note:
            print(f"    {r.live_status}: {r.status_note}")
    return 0


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


# -------------------------------------------------------------------------------------- main

def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _option_hint(message: str) -> str:
    """``" (option --lr-step)"`` when an error message starts with a config field's name."""
    m = re.match(r"(?:unknown )?(\w+)", message)
    flag = CONFIG_OPTIONS.get(m.group(1)) if m else None
    return f" (option {flag})" if flag else ""


def _data_hint(e: DatasetUnavailableError, args: argparse.Namespace) -> str:
    cfg = getattr(args, "_cfg", None)
    if isinstance(e, DatasetCorruptError):
        return ("hint: delete the damaged file, then run again (downloads are on unless "
                "--no-download), or copy an intact file there")
    if cfg is not None and not cfg.download:
        return (f"hint: run without --no-download (or with --download) to fetch the files where "
                f"network access exists, or use --dataset {OFFLINE_DEFAULT}, which needs none")
    return (f"hint: the download needs network access; otherwise place the files there "
            f"yourself, or use --dataset {OFFLINE_DEFAULT}, which needs none")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 3 data set missing or damaged,
    4 diverged, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    # `kill` (SIGTERM) ends a run like Ctrl-C: the run folder is closed as "stopped".
    signal.signal(signal.SIGTERM, _interrupt)
    commands = {"train": _train, "runs": _runs, "datasets": _datasets, "methods": _methods,
                "score": run_score, "experiment": run_experiment_command}
    try:
        return commands[args.command](args)
    except DatasetUnavailableError as e:
        print(f"error: {e}\n{_data_hint(e, args)}", file=sys.stderr)
        return 3
    except ValueError as e:
        print(f"error: {e}{_option_hint(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the completed epochs are kept in the run folder", file=sys.stderr)
        return 130
    except Exception as e:
        engine = sys.modules.get(f"{__package__}.engine")
        if engine is not None and isinstance(e, engine.NonFiniteLossError):
            print(f"error: {e}", file=sys.stderr)
            return 4
        raise
