"""The argument parser of ``python -m iaead_core`` (:func:`build_parser`): the ``train``,
``runs``, ``datasets`` and ``methods`` commands, with the ``score`` and ``experiment`` parsers
(and ``train --images``) added from :mod:`~iaead_core.cli.images` and
:mod:`~iaead_core.cli.experiments`.

Every ``train`` option's help states its default once, from the presets (:func:`_default`).
Nothing heavy is imported: the parser is built and used without torch.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.cli.common import _short
from iaead_core.cli.experiments import add_experiment_parser
from iaead_core.cli.images import add_image_arguments, add_score_parser
from iaead_core.config import (DEVICES, INITS, METHOD_NAMES, OBJECTIVES, PRESETS, QUICK_SEEDS,
                               TrainConfig)
from iaead_core.data import DATASETS, OFFLINE_DEFAULT
__all__ = ["build_parser"]

_DOCS = Path(__file__).resolve().parents[2] / "docs" / "method.md"
_EXIT_CODES = "Exit codes: 0 ok, 2 bad input, 3 data set missing or damaged, 4 training diverged, " \
              "5 results cannot be written (read-only or full disk, an output path that is not " \
              "a regular file), 130 interrupted"


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


def parse_scalar(raw: str) -> bool | int | float | str:
    """The value a ``KEY=VALUE`` setting's text stands for: ``true`` / ``false`` (any case) as a
    bool, else an int, else a float, else the stripped text itself. Never raises."""
    raw = raw.strip()
    flag = {"true": True, "false": False}.get(raw.lower())
    if flag is not None:
        return flag
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def _option_arg(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_scalar(raw)


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
    r.add_argument("--seeds", type=_whole, default=None, metavar="N",
                   help="train the setting with N seeds (--seed, --seed + 1, …) and report the "
                        "mean ± std over them; 1 gives a single run (default: "
                        f"{QUICK_SEEDS} at the quick preset, whose single runs move by several "
                        "AUROC points with the seed and even the CPU thread count; 1 at paper "
                        "and with --images)")
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
