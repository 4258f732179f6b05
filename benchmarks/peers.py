"""IAEAD beside the detectors a user would otherwise pick: PyOD's, on the same contaminated sets.

For each case (a data set and its normal class) one contaminated one-vs-all set is drawn with
the project's protocol (:func:`iaead_core.make_contaminated`: ρ = 10 %, 3,000 images, seed 0)
and every detector is trained on it, without labels, and scored on it (the paper's
transductive protocol, docs/method.md §5):

* ``IAEAD`` and ``CAE``: :class:`iaead_core.detector.Detector` at the ``quick`` preset, on the
  raw 28×28 uint8 digits (prepared by the protocol: padded to 32×32; the same numbers as the
  Trainer on ``make_contaminated``'s tensor);
* PyOD's ``AutoEncoder``, ``DeepSVDD``, ``IForest``, ``OCSVM``, ``KNN``, ``ECOD`` and ``PCA`` with
  their default settings, on the flat pixels scaled to [0, 1] (``(N, 784)`` float64), the form
  a PyOD user has. Only the contamination (ρ), ``random_state`` (the seed, where a detector has
  one), ``verbose=0``, DeepSVDD's required ``n_features`` and the neural networks' ``device``
  are set.

The detectors run case by case and interleaved (within a case one after another, in an order
rotated from case to case), so a change in the machine's load falls on all of them; each torch
detector is fitted once, untimed, before the first case, so that no timed fit pays torch's
start-up. Each one
prints AUROC and AUPR-out (anomalies positive;
:func:`iaead_core.evaluation.metrics.detection_metrics`, the labels used only here), the CPU seconds of ``fit`` (``time.process_time``: every thread of
the process) and its wall seconds, with ratios to IAEAD's, and the machine's load average
after each fit. ``--out`` writes the Markdown tables
(per case, and the mean over cases) with the command, the machine and the date — into a page
that holds :data:`BEGIN` / :data:`END` markers, between them (``docs/peers.md``); ``--json``
the raw numbers.

PyOD is an optional dependency of this script only (``pip install -r requirements-bench.txt``);
the library never imports it.

    python benchmarks/peers.py --data-root ../shared/data --out docs/peers.md
    python benchmarks/peers.py --data-root ../shared/data --cases mnist:0 --detectors iaead,iforest
    python benchmarks/peers.py --tiny --data-root ../shared/data      # seconds: proves it runs
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    from benchmarks.common import machine_description
except ImportError:  # run as a file (common.py puts the repository on sys.path)
    from common import machine_description

import torch  # noqa: E402

from iaead_core import make_contaminated  # noqa: E402
from iaead_core.storage import atomic_output  # noqa: E402
from iaead_core.data import DATASETS, class_index, load_pool  # noqa: E402
from iaead_core.detector import Detector  # noqa: E402
from iaead_core.evaluation.metrics import detection_metrics  # noqa: E402

#: The issue's cases: MNIST 0, 2, 8 and Fashion-MNIST 0 (T-shirt/top), 6 (shirt).
DEFAULT_CASES = ("mnist:0", "mnist:2", "mnist:8", "fashion-mnist:0", "fashion-mnist:6")
#: Detector keys, in the tables' order, and their names there.
LABELS = {"iaead": "IAEAD (quick)", "cae": "CAE (quick)", "pyod-ae": "PyOD AutoEncoder",
          "deepsvdd": "PyOD DeepSVDD", "iforest": "PyOD IForest", "ocsvm": "PyOD OCSVM",
          "knn": "PyOD KNN", "ecod": "PyOD ECOD", "pca": "PyOD PCA"}
#: ``--tiny``: a few hundred images, tiny networks, one or two epochs (a smoke run).
TINY_IMAGES = 200
_TINY_NET = dict(epochs=2, warmup_epochs=1, width=4, latent_dim=8)


@dataclass
class Result:
    """One detector on one case: metrics (labels used only here), the cost of ``fit`` and the
    machine's 1-minute load average just after it (other jobs inflate both times)."""

    case: str
    detector: str
    auroc: float
    aupr_out: float
    cpu_s: float
    wall_s: float
    n: int
    n_anomalies: int
    load: float = float("nan")


def _pyod() -> dict[str, Any]:
    """PyOD's detector classes, or a clear exit when PyOD is not installed."""
    try:
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.deep_svdd import DeepSVDD
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.knn import KNN
        from pyod.models.ocsvm import OCSVM
        from pyod.models.pca import PCA
    except ImportError as e:
        sys.exit(f"PyOD is needed for the peer detectors ({e}); install the benchmark extras: "
                 f"pip install -r requirements-bench.txt")
    return dict(AutoEncoder=AutoEncoder, DeepSVDD=DeepSVDD, ECOD=ECOD, IForest=IForest, KNN=KNN,
                OCSVM=OCSVM, PCA=PCA)


def make_detector(key: str, *, rho: float, seed: int, n_features: int, device: str,
                  tiny: bool) -> tuple[Any, str]:
    """An unfitted detector and the input it takes: ``"images"`` (uint8 (N, 1, 28, 28)) or
    ``"flat"`` ((N, D) float64 in [0, 1]).

    Raises
    ------
    KeyError
        An unknown key (see :data:`LABELS`).
    """
    if key in ("iaead", "cae"):
        net = _TINY_NET if tiny else {}
        return Detector(key, "quick", rho, seed=seed, device=device, **net), "images"
    p = _pyod()
    short = {"epoch_num": 1} if tiny else {}
    factories: dict[str, Callable[[], Any]] = {
        "pyod-ae": lambda: p["AutoEncoder"](contamination=rho, random_state=seed, verbose=0,
                                            device=device, **short),
        "deepsvdd": lambda: p["DeepSVDD"](n_features=n_features, contamination=rho,
                                          random_state=seed, verbose=0,
                                          **({"epochs": 1} if tiny else {})),
        "iforest": lambda: p["IForest"](contamination=rho, random_state=seed),
        "ocsvm": lambda: p["OCSVM"](contamination=rho),
        "knn": lambda: p["KNN"](contamination=rho),
        "ecod": lambda: p["ECOD"](contamination=rho),
        "pca": lambda: p["PCA"](contamination=rho, random_state=seed),
    }
    return factories[key](), "flat"


def parse_case(text: str) -> tuple[str, int]:
    """``"fashion-mnist:6"`` → ``("fashion-mnist", 6)`` (a class by index or name).

    Raises
    ------
    ValueError
        No ``:``, an unknown data set or class.
    """
    dataset, sep, cls = text.partition(":")
    if not sep or dataset not in DATASETS:
        raise ValueError(f"a case is DATASET:CLASS with DATASET in {', '.join(DATASETS)}; "
                         f"got {text!r}")
    return dataset, class_index(dataset, cls)


def run_case(case: str, detectors: list[str], *, data_root: str | None, n: int, rho: float,
             seed: int, device: str, tiny: bool, rotate: int = 0,
             echo: Callable[[str], None] = print) -> list[Result]:
    """Every detector on one contaminated draw (same images, same order), in the order of
    ``detectors`` rotated by ``rotate``; returns their results in ``detectors``' order."""
    dataset, k = parse_case(case)
    data = make_contaminated(dataset, k, rho=rho, seed=seed, data_root=data_root, max_samples=n,
                             download=False)
    pool, _ = load_pool(dataset, data_root, download=False)
    images = np.ascontiguousarray(pool[data.indices])            # uint8 (N, C, 28, 28)
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    truth = data.is_anomaly
    out: dict[str, Result] = {}
    order = detectors[rotate % len(detectors):] + detectors[:rotate % len(detectors)]
    for key in order:
        det, kind = make_detector(key, rho=rho, seed=seed, n_features=flat.shape[1],
                                  device=device, tiny=tiny)
        X = images if kind == "images" else flat
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the peers' deprecation and convergence notes
            cpu0, wall0 = time.process_time(), time.perf_counter()
            det.fit(X)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        load = os.getloadavg()[0]
        m = detection_metrics(truth, np.asarray(det.decision_scores_, np.float64))
        out[key] = Result(case, key, float(m["auroc"]), float(m["aupr_out"]), cpu, wall,
                          len(truth), int(truth.sum()), load)
        echo(f"  {LABELS[key]:<18} AUROC {m['auroc']:.3f}  AUPR-out {m['aupr_out']:.3f}  "
             f"CPU {cpu:7.1f} s  wall {wall:6.1f} s  load {load:.1f}")
    return [out[key] for key in detectors]


#: Detectors built on torch: their first fit in a process pays its one-time start-up.
_TORCH_DETECTORS = ("iaead", "cae", "pyod-ae", "deepsvdd")


def warm_up(case: str, detectors: list[str], *, data_root: str | None, seed: int,
            device: str) -> None:
    """Fit each torch detector once, untimed, on 64 images of ``case`` with tiny settings, so
    that no timed fit pays torch's one-time start-up (thread pools, kernels)."""
    dataset, k = parse_case(case)
    data = make_contaminated(dataset, k, rho=0.1, seed=seed, data_root=data_root,
                             max_samples=64, download=False)
    pool, _ = load_pool(dataset, data_root, download=False)
    images = np.ascontiguousarray(pool[data.indices])
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    for key in detectors:
        if key in _TORCH_DETECTORS:
            det, kind = make_detector(key, rho=0.1, seed=seed, n_features=flat.shape[1],
                                      device=device, tiny=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                det.fit(images if kind == "images" else flat)


def _ratio(x: float, ref: float) -> str:
    return "—" if not ref else f"{x / ref:.2f}"


def case_table(results: list[Result]) -> list[str]:
    """Markdown rows of one case: each detector's AUROC, AUPR-out, CPU and wall seconds, with
    ratios to IAEAD's (when IAEAD ran)."""
    ref = next((r for r in results if r.detector == "iaead"), None)
    lines = ["| detector | AUROC | × IAEAD | AUPR-out | × IAEAD | CPU s | × IAEAD | wall s | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ra = _ratio(r.auroc, ref.auroc) if ref else "—"
        rp = _ratio(r.aupr_out, ref.aupr_out) if ref else "—"
        rc = _ratio(r.cpu_s, ref.cpu_s) if ref else "—"
        lines.append(f"| {LABELS[r.detector]} | {r.auroc:.3f} | {ra} | {r.aupr_out:.3f} | {rp} "
                     f"| {r.cpu_s:.1f} | {rc} | {r.wall_s:.1f} | {r.load:.1f} |")
    return lines


def summary_table(results: list[Result], cases: list[str], detectors: list[str]) -> list[str]:
    """Markdown rows: AUROC per case and its mean, the mean AUPR-out and CPU seconds, per
    detector (best mean AUROC in bold)."""
    by = {(r.case, r.detector): r for r in results}
    means = {d: float(np.mean([by[c, d].auroc for c in cases])) for d in detectors}
    best = max(means.values())
    head = ("| detector | " + " | ".join(f"AUROC {c}" for c in cases)
            + " | mean AUROC | mean AUPR-out | mean CPU s |")
    lines = [head, "|---|" + "---:|" * (len(cases) + 3)]
    for d in detectors:
        cells = [f"{by[c, d].auroc:.3f}" for c in cases]
        mean = f"{means[d]:.3f}"
        if means[d] == best:
            mean = f"**{mean}**"
        lines.append(f"| {LABELS[d]} | " + " | ".join(cells)
                     + f" | {mean} | {np.mean([by[c, d].aupr_out for c in cases]):.3f} "
                       f"| {np.mean([by[c, d].cpu_s for c in cases]):.1f} |")
    return lines


def markdown(results: list[Result], cases: list[str], detectors: list[str], *, command: str,
             machine: str, date: str, n: int, rho: float, seed: int, tiny: bool) -> str:
    """The whole report: what ran, where and when, the summary, then one table per case."""
    import sklearn

    try:
        import pyod
        versions = f"scikit-learn {sklearn.__version__}, PyOD {pyod.__version__}"
    except ImportError:  # only IAEAD / CAE ran
        versions = f"scikit-learn {sklearn.__version__}"
    parts = [f"Produced by `{command}` on {date}.", "",
             f"Machine: {machine}; {versions}.",
             "",
             f"Each case: one contaminated set of the project's protocol, {n:,} images with "
             f"ρ = {rho:g} ({results[0].n - results[0].n_anomalies:,} normal + "
             f"{results[0].n_anomalies:,} anomalies), seed {seed}, trained and scored without "
             f"labels; AUROC and AUPR-out (anomalies positive) from the labels; CPU s = CPU "
             f"seconds of `fit` (all threads), wall s = its wall-clock seconds, load = the "
             f"machine's 1-minute load average just after the fit (above the number of cores, "
             f"other jobs were competing for them and both times are inflated)."]
    if tiny:
        parts += ["", "**--tiny: a smoke run (tiny networks, one or two epochs); its numbers "
                      "mean nothing.**"]
    parts += ["", "Mean over the cases:", "", *summary_table(results, cases, detectors)]
    for c in cases:
        parts += ["", f"#### {c}", "", *case_table([r for r in results if r.case == c])]
    return "\n".join(parts) + "\n"


#: A docs page that holds these markers gets the tables between them replaced (the rest kept).
BEGIN, END = "<!-- peers.py output: begin -->", "<!-- peers.py output: end -->"


def write_markdown(path: Path, text: str) -> None:
    """Write the report to ``path``: between :data:`BEGIN` and :data:`END` when the file
    already holds both (a docs page keeps its own text around the produced tables), else as
    the whole file."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if BEGIN in old and END in old.split(BEGIN, 1)[1]:
        head, rest = old.split(BEGIN, 1)
        text = f"{head}{BEGIN}\n{text}{END}{rest.split(END, 1)[1]}"
    with atomic_output(path) as f:  # makes the folder; refuses a target that is not a regular file
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (module docstring); returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help="holds MNIST/raw and FashionMNIST/raw")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES),
                    help="comma-separated DATASET:CLASS (default: %(default)s)")
    ap.add_argument("--detectors", default=",".join(LABELS),
                    help="comma-separated, of: %(default)s")
    ap.add_argument("--n", type=int, default=None, help="images per case (default 3000; "
                    f"--tiny: {TINY_IMAGES})")
    ap.add_argument("--rho", type=float, default=0.1, help="anomaly fraction (default 0.1)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draws and detectors")
    ap.add_argument("--device", default="cpu", help="for IAEAD, CAE and PyOD's AutoEncoder")
    ap.add_argument("--tiny", action="store_true", help="smoke run: tiny networks, 1–2 epochs")
    ap.add_argument("--out", default=None, help="write the Markdown tables here")
    ap.add_argument("--json", default=None, help="write the raw results here")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [d for d in detectors if d not in LABELS]
    if unknown:
        ap.error(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(LABELS)}")
    for c in cases:
        try:
            parse_case(c)
        except ValueError as e:
            ap.error(str(e))
    if any(d not in ("iaead", "cae") for d in detectors):
        _pyod()  # fail now, not after the first case
    n = args.n or (TINY_IMAGES if args.tiny else 3000)
    machine = machine_description(torch.device(args.device))
    print(f"{machine}\n{len(cases)} case(s) × {len(detectors)} detector(s), {n} images, "
          f"ρ = {args.rho:g}, seed {args.seed}")
    warm_up(cases[0], detectors, data_root=args.data_root, seed=args.seed, device=args.device)
    results: list[Result] = []
    for i, case in enumerate(cases):
        print(f"\n{case}")
        rows = run_case(case, detectors, data_root=args.data_root, n=n, rho=args.rho,
                        seed=args.seed, device=args.device, tiny=args.tiny, rotate=i)
        results += rows
        print("\n".join(case_table(rows)))
    print("\nMean over the cases:")
    print("\n".join(summary_table(results, cases, detectors)))
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/peers.py " + " ".join(shlex.quote(a) for a in given)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.out:
        text = markdown(results, cases, detectors, command=command.strip(), machine=machine,
                        date=date, n=n, rho=args.rho, seed=args.seed, tiny=args.tiny)
        write_markdown(Path(args.out), text)
        print(f"\nMarkdown written to {args.out}")
    if args.json:
        with atomic_output(args.json) as f:
            f.write(json.dumps({"command": command.strip(), "date": date, "machine": machine,
                                "n": n, "rho": args.rho, "seed": args.seed, "tiny": args.tiny,
                                "results": [asdict(r) for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
