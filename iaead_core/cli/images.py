"""Command-line parts for the user's own images (issue 10).

* ``python -m iaead_core train --images PATH [--channels auto|1|3] [--fit pad|crop]
  [--labels CSV] [--method ...] [--preset ...]`` trains any method on a folder (or zip) of
  images, without labels, and writes the training set's ranking to ``ranking.csv`` in the run
  folder (``--rho`` is the guessed anomaly fraction: the top ρ are flagged).
* ``python -m iaead_core score RUN_ID --images PATH [--contamination RHO | --quantile Q |
  --radius] [--labels CSV] [--csv FILE]`` scores new images with a saved run and writes the CSV
  of :func:`iaead_core.detector.score_folder`.

:mod:`iaead_core.cli.parser` hooks these in: :func:`add_image_arguments` on its ``train``
parser, :func:`add_score_parser` on its sub-parsers; :func:`train_images` runs when ``--images``
is given (:mod:`iaead_core.cli.commands`), and :func:`run_score` for ``score``
(:mod:`iaead_core.cli.main`). Errors in the input are ``ValueError`` subclasses, which
the CLI reports as bad input (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iaead_core.cli.common import config_from_args
from iaead_core.runs import RunError, resolve_runs_root
from iaead_core.storage import check_folder, check_target

if TYPE_CHECKING:
    from iaead_core.detector import ScoreReport  # for annotations only
    from iaead_core.data.image_set import ImageSet  # for annotations only

# Like cli.py, nothing heavy (numpy, torch) is imported before the arguments are parsed; these
# two mirror iaead_core.data.image_set.FITS and iaead_core.detector.RADIUS_RULES (a test checks).
FITS = ("pad", "crop")
RADIUS_METHODS = ("iaead", "deep-svdd")

__all__ = ["add_image_arguments", "add_score_parser", "train_images", "run_score"]

_SHOWN = 10  # files listed in a skipped / ignored list
_DEGENERATE = ("warning: the training scores differ only by float noise (a collapsed latent "
               "space?): the ranking and the flags carry no information")


def add_image_arguments(train_parser: argparse.ArgumentParser) -> None:
    """Add ``--images``, ``--channels``, ``--fit`` and ``--labels`` to the ``train`` parser."""
    g = train_parser.add_argument_group(
        "your own images (instead of --dataset)",
        "Train on a folder of images without labels; --rho is then the guessed anomaly "
        "fraction, and the top ρ of the ranking are flagged.")
    g.add_argument("--images", metavar="PATH", default=None,
                   help="folder (nested allowed) or .zip of PNG, JPEG, BMP or TIFF images, at "
                        "least 50; over 100,000 are subsampled (default: none, train on --dataset)")
    g.add_argument("--channels", default="auto", choices=("auto", "1", "3"),
                   help="1 (grey) or 3 (colour); auto: 3 when any image is in colour (default: auto)")
    g.add_argument("--fit", default="pad", choices=FITS,
                   help="how images become 32x32: pad (aspect kept, black borders) or crop "
                        "(centre crop) (default: pad)")
    g.add_argument("--labels", metavar="CSV", default=None,
                   help="optional CSV of filename,label (normal/anomaly) for metrics; folders "
                        "named normal/ and anomaly/ also give labels (default: none)")


def add_score_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``score`` command to the CLI's sub-parsers; returns its parser."""
    s = subparsers.add_parser(
        "score", help="score new images with a saved run (writes a CSV)",
        description="Score a folder of new images with a trained run. Writes a CSV of path, "
                    "score, rank, flagged (new images first, then the training images for "
                    "reference) that also records the threshold used.")
    s.add_argument("run", metavar="RUN_ID", help="run id (or a unique start of one) or run folder")
    s.add_argument("--images", metavar="PATH", required=True,
                   help="folder or .zip of the images to score")
    t = s.add_mutually_exclusive_group()
    t.add_argument("--contamination", type=float, default=None, metavar="RHO",
                   help="flag above the (1 - RHO)-quantile of the training scores (default: "
                        "the run's ρ)")
    t.add_argument("--quantile", type=float, default=None, metavar="Q",
                   help="flag above the Q-quantile of the training scores")
    t.add_argument("--radius", action="store_true",
                   help=f"flag outside the learned radius R ({' and '.join(RADIUS_METHODS)} "
                        f"only)")
    s.add_argument("--labels", metavar="CSV", default=None,
                   help="optional CSV filename,label of the new images, for metrics")
    s.add_argument("--csv", default=None, metavar="FILE",
                   help="where to write the CSV (default <run folder>/scored/<time>-<name>.csv)")
    s.add_argument("--out", default=None, help="runs folder (default $IAEAD_RUNS_DIR or ./runs)")
    s.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    s.add_argument("--top", type=int, default=10, help="most anomalous images to list")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    return s


def _read_folder(args: argparse.Namespace, rho: float) -> "ImageSet":
    from iaead_core.data.image_files import ImageFolderWarning, load_image_folder  # lazy: loads torch

    channels = "auto" if args.channels == "auto" else int(args.channels)
    with warnings.catch_warnings(record=True):  # the set keeps them; printed below, once
        warnings.simplefilter("always", ImageFolderWarning)
        return load_image_folder(args.images, channels=channels, fit=args.fit,
                                 labels=args.labels, rho=rho, seed=args.seed or 0,
                                 max_images=args.max_samples or None)


def _report_files(data: "ImageSet", out=sys.stderr) -> None:
    for title, items in (("skipped (unreadable)", data.skipped), ("ignored (not images)",
                                                                   data.ignored)):
        if items:
            print(f"{title}: {len(items)} file(s)", file=out)
            for f in items[:_SHOWN]:
                print(f"  {f.path}: {f.reason}", file=out)
            if len(items) > _SHOWN:
                print(f"  ... and {len(items) - _SHOWN} more", file=out)
    for note in data.warnings:
        print(f"warning: {note}", file=out)


def train_images(args: argparse.Namespace) -> int:
    """``train --images PATH``: read the folder, train, write ``ranking.csv``, report.

    Uses the ``train`` options of :mod:`iaead_core.cli.parser` (:func:`~iaead_core.cli.common.config_from_args`:
    method, preset, every config field, ``--out``, ``--json``); ``--rho`` is the guessed anomaly
    fraction; only an explicit ``--max-samples`` subsamples the folder. Prints a JSON object
    with ``--json``::

        {"run_id", "seconds", "status", "run_dir", "data", "metrics", "ranking_csv",
         "threshold": {"kind", "param", "value", "rule"}, "n_flagged", "degenerate",
         "top": [{"path", "score", "rank"}, ...]}

    Returns
    -------
    int
        0.

    Raises
    ------
    ValueError
        An empty ``--images``, ``--dataset`` or ``--normal-class`` given too, or a config value
        out of range.
    iaead_core.data.image_set.ImageFolderError, TooFewImagesError
        Unusable folder (both ``ValueError``).
    NonFiniteLossError
        Training diverged.
    """
    import numpy as np

    from iaead_core.detector import Detector  # lazy: loads pandas, torch

    given = (("--dataset", getattr(args, "dataset", None)),
             ("--normal-class", getattr(args, "normal_class", None)))
    if not str(args.images).strip():
        raise ValueError("--images: an empty path; give a folder of images or a .zip archive of "
                         "one, or leave --images out to train on a benchmark (--dataset).")
    clash = [option for option, value in given if value is not None]
    if clash:
        raise ValueError(f"give either a benchmark ({' / '.join(clash)}) or --images (your own "
                         f"folder), not both.")
    cfg = config_from_args(args)
    check_folder(resolve_runs_root(args.out))  # a read-only runs folder fails before reading
    # The preset's max_samples sizes benchmark draws; a folder is subsampled only by an
    # explicit --max-samples (and the reader's limit).
    data = _read_folder(args, cfg.rho)
    det = Detector.from_config(cfg, runs_root=args.out)
    if cfg.method == "iaead" and cfg.warmup_epochs >= cfg.epochs:
        print(f"warning: warm-up ({cfg.warmup_epochs} epochs) >= epochs ({cfg.epochs}): the SVDD "
              "term never switches on, so this run is a plain CAE scored in latent space",
              file=sys.stderr)
    if args.json:
        det.fit(data)
    else:
        from tqdm import tqdm

        labels = (f"labelled from {data.label_source}: {data.n_normal} normal + "
                  f"{data.n_anomalies} anomalies" if data.labelled else "no labels")
        print(f"{data.source}: {len(data)} images ({data.channels} channel(s), fit {data.fit}, "
              f"{labels}); {cfg.method}, preset {cfg.preset}", file=sys.stderr)
        _report_files(data)
        with tqdm(total=cfg.epochs, unit="epoch", file=sys.stderr) as bar:
            def show(rec: dict) -> None:
                m = rec["metrics"].get(rec["primary_score"])
                auroc = f" AUROC({rec['primary_score']})={m['auroc']:.3f}" if m else ""
                bar.set_postfix_str(f"{rec['phase']}{auroc} loss={rec['loss']['total']:.4g}")
                bar.update(1)
            det.fit(data, callback=show)
    result = det.result_
    thr = det.threshold()
    ranking = None
    if result.run_dir is not None:  # Detector.fit wrote it
        ranking = str(result.run_dir / "ranking.csv")
    order = np.argsort(-det.decision_scores_, kind="stable")[:10]
    top = [{"path": data.paths[i], "score": float(det.decision_scores_[i]), "rank": r + 1}
           for r, i in enumerate(order)]
    out = {"run_id": result.run_id, "seconds": round(result.seconds, 2),
           "status": result.status,
           "run_dir": None if result.run_dir is None else str(result.run_dir),
           "data": result.data, "metrics": result.final_metrics, "ranking_csv": ranking,
           "threshold": {"kind": thr.kind, "param": thr.param, "value": thr.value,
                         "rule": thr.rule},
           "n_flagged": int(det.labels_.sum()), "degenerate": det.degenerate_, "top": top}
    if args.json:
        print(json.dumps(out))
        return 0
    if result.final_metrics:
        print("\nOracle monitoring: labels are used only to compute these metrics.")
        print(f"{'rule':<16}{'AUROC':>8}{'AUPR-in':>9}{'AUPR-out':>10}")
        for rule, m in result.final_metrics.items():
            print(f"{rule:<16}{m['auroc']:>8.3f}{m['aupr_in']:>9.3f}{m['aupr_out']:>10.3f}")
    print(f"\nMost anomalous ({det.rule_}; flagged above {thr.value:.4g}, the top "
          f"ρ = {thr.param:g} of the scores: {out['n_flagged']} of {len(data)}):")
    for t in top:
        print(f"{t['rank']:>4}  {t['score']:.4g}  {t['path']}")
    print(f"\n{result.status} in {result.seconds:.1f} s; saved to {result.run_dir}"
          + (f"; ranking in {ranking}" if ranking else ""))
    _print_alerts(result.records)
    if det.degenerate_:
        print(_DEGENERATE, file=sys.stderr)
    return 0


def _print_alerts(records: list[dict]) -> None:
    """One warning line per training-health alert kind seen (records' ``alerts``)."""
    seen: dict[str, str] = {}
    for rec in records:
        for a in rec.get("alerts") or []:
            seen.setdefault(a.get("kind", "?"), a.get("message", ""))
    for kind, message in seen.items():
        print(f"warning: {kind}: {message}", file=sys.stderr)
    if not seen and records and records[-1].get("diagnostics", {}).get("collapsed"):
        print("warning: the latent space has collapsed (see diagnostics.collapse_ratio)",
              file=sys.stderr)


def _report_json(r: "ScoreReport", top: int) -> dict[str, Any]:
    import numpy as np

    order = np.argsort(r.ranks, kind="stable")[:max(top, 0)]
    return {"run_id": r.run_id, "csv": str(r.csv_path),
            "threshold": {"kind": r.threshold.kind, "param": r.threshold.param,
                          "value": r.threshold.value, "rule": r.threshold.rule,
                          "by": r.threshold.describe()},
            "n": len(r.paths), "n_flagged": r.n_flagged, "degenerate": r.degenerate,
            "n_train": len(r.train_scores), "n_train_flagged": int(r.train_flagged.sum()),
            "metrics": r.metrics, "data": r.data,
            "top": [{"path": r.paths[i], "score": float(r.scores[i]), "rank": int(r.ranks[i]),
                     "flagged": int(r.flagged[i])} for i in order]}


def run_score(args: argparse.Namespace) -> int:
    """``score RUN_ID --images PATH``: score new images with a saved run, write the CSV.

    Returns
    -------
    int
        0, or 2 when the run cannot be found or read (the message says why).

    Raises
    ------
    ThresholdError, ImageFolderError, TooFewImagesError
        Bad threshold or unusable folder (``ValueError`` subclasses: exit status 2).
    iaead_core.storage.StorageError
        ``--csv`` is a folder, a device, a FIFO, a symbolic link or read-only, or its folder
        cannot be written: refused before torch is loaded or any image read (exit status 5).
    """
    if args.csv is not None:  # before any work: `--csv /dev/null` must never be replaced
        check_target(args.csv)
        check_folder(Path(args.csv).parent)
    from iaead_core.detector import score_folder  # lazy: loads pandas, torch
    from iaead_core.data.image_files import ImageFolderWarning  # lazy: loads torch

    if args.radius:
        kind, param = "radius", None
    elif args.quantile is not None:
        kind, param = "quantile", args.quantile
    else:
        kind, param = "contamination", args.contamination
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always", ImageFolderWarning)
            report = score_folder(args.run, args.images, threshold=kind, param=param,
                                  labels=args.labels, csv_path=args.csv, runs_root=args.out,
                                  device=args.device)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = _report_json(report, args.top)
    if args.json:
        print(json.dumps(out))
        return 0
    thr = report.threshold
    for title, items in (("skipped (unreadable)", report.skipped),
                         ("ignored (not images)", report.ignored)):
        if items:
            print(f"{title}: {len(items)} file(s)", file=sys.stderr)
            for f in items[:_SHOWN]:
                print(f"  {f.path}: {f.reason}", file=sys.stderr)
    for note in report.data.get("warnings", []):
        print(f"warning: {note}", file=sys.stderr)
    value = "" if thr.kind == "radius" and thr.value == thr.param else f" = {thr.value:.4g}"
    print(f"Scored {out['n']} images with run {report.run_id} ({thr.rule}); threshold "
          f"{thr.describe()}{value}: {out['n_flagged']} flagged "
          f"(training set: {out['n_train_flagged']} of {out['n_train']}).")
    if report.metrics:
        m = report.metrics
        print(f"labels: AUROC {m['auroc']:.3f}, AUPR-in {m['aupr_in']:.3f}, "
              f"AUPR-out {m['aupr_out']:.3f}")
    for t in out["top"]:
        print(f"{t['rank']:>4}  {t['score']:.4g}  {'FLAG' if t['flagged'] else '    '}  "
              f"{t['path']}")
    print(f"CSV: {report.csv_path}")
    if report.degenerate:
        print(_DEGENERATE, file=sys.stderr)
    return 0
