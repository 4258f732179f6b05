"""How much a quick run's AUROC moves with the CPU thread count and the seed (issue 19).

For each case (a data set and its normal class), method and seed, the same training runs with
1 and with 2 CPU threads, each in its own subprocess (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``
and ``torch.set_num_threads`` set before torch works), on the project's contaminated set
(:func:`iaead_core.make_contaminated`, ρ = 10 %) at the ``quick`` preset, or the preset with
``--preset-overrides``. Float32 sums are ordered differently with another thread count; at a
high learning rate that rounding difference can grow until the runs end in different places.

It prints, per case and method (IAEAD judged by ``latent_mean``, eq. 9; the CAE by
``reconstruction``, eq. 3):

* the final AUROC of every run (seed × threads);
* the spread (max − min) and mean ± std (sample std) over those runs;
* where the 1- and 2-thread runs of one seed *part*: the first epoch at which their AUROC
  curves differ by more than ``--part-at`` (default 0.01), and their final difference;
* the wall seconds of a run per thread count (1-thread runs may share the machine, see
  ``--jobs``; 2-thread runs always run alone);
* the paper's effect: whether IAEAD's mean AUROC beats the CAE's on each case.

``--variant NAME`` stores the results under that name in ``--json`` (other variants in the
file are kept), so "before" and "after" settings are measured by the same script; ``--out``
writes every variant of the JSON file as Markdown between :data:`BEGIN` / :data:`END` in a
page (``docs/method.md``), with the command, the machine and the date of each. ``--package``
writes the variant's per-case spread of the chosen preset to the table that ships in the
package (``iaead_core/evaluation/stability.json``, read by
:func:`iaead_core.evaluation.stability.expected_spread`).

``--trajectory DIR`` keeps every epoch's weights of every run and prints, for each pair of
1- and 2-thread runs, the relative weight distance epoch by epoch (where the chaos enters).
``--probe`` adds, per run, the AUROC of two candidate remedies computed from the same
training: the scores' ranks averaged over the last K epochs, and the weights (and BatchNorm
statistics) averaged over the last K epochs.

    python benchmarks/stability.py --data-root ../shared/data --variant before \\
        --json docs/stability.json --out docs/method.md
    python benchmarks/stability.py --data-root ../shared/data --variant lr05 \\
        --preset-overrides lr=0.05 --cases fashion-mnist:6 --methods iaead --seeds 0,1
    python benchmarks/stability.py --tiny --data-root ../shared/data      # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from iaead_core.cli.parser import parse_scalar  # noqa: E402  (no torch)
from iaead_core.storage import atomic_output  # noqa: E402
from iaead_core.evaluation.stability import SETTING_FIELDS, setting_of  # noqa: E402  (no torch)

if "--worker" in sys.argv:  # before torch loads OpenMP (see launch)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: The issue's cases: Fashion-MNIST 6 (shirt, where it was seen), 0 (T-shirt/top) and MNIST
#: 2, 5, 8 (three digits where the paper's IAEAD beats its CAE by a wide margin).
DEFAULT_CASES = ("fashion-mnist:6", "fashion-mnist:0", "mnist:2", "mnist:5", "mnist:8")
#: The score each method is judged by (its own rule).
RULES = {"iaead": "latent_mean", "cae": "reconstruction"}
#: Where the produced Markdown goes in a page that holds both markers.
BEGIN, END = "<!-- stability: begin -->", "<!-- stability: end -->"
#: ``--tiny``: few images, a tiny network, 3 epochs (a smoke run; its numbers mean nothing).
TINY = dict(max_samples=200, epochs=3, warmup_epochs=1, lr_step=1, width=4, latent_dim=8)
#: The package's table (read by ``iaead_core.evaluation.stability``).
PACKAGE_TABLE = ROOT / "iaead_core" / "evaluation" / "stability.json"
#: K of the ``--probe`` remedies (averages over the last K epochs).
PROBE_K = (3, 5, 10)


# ----------------------------------------------------------------------------------- worker

def parse_overrides(text: str | None) -> dict[str, Any]:
    """``"lr=0.05,epochs=40,max_samples=2000"`` → ``{"lr": 0.05, "epochs": 40, ...}``
    (whole numbers as int, other numbers as float, else the text; ``none`` → None).

    Raises
    ------
    ValueError
        An item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"a preset override is FIELD=VALUE; got {item!r}")
        out[key.strip()] = None if raw.strip().lower() == "none" else parse_scalar(raw)
    return out


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one run in this process (the worker's body) and return its record.

    ``spec``: case, method, seed, threads, preset, overrides, data_root, and optionally
    ``trajectory`` (a folder: every epoch's weights go to ``<key>.npy``, float32
    ``(epochs, P)``) and ``probe`` (bool).

    Returns a JSON-able dict: the spec, ``rule``, ``curve`` (AUROC of ``rule`` per epoch),
    ``loss`` (total loss per epoch), ``final`` (last AUROC), ``seconds`` (wall time of the
    training), ``torch_threads``, ``settings`` (:func:`~iaead_core.evaluation.stability.setting_of` of the config),
    ``centre`` (c as a list, IAEAD) and with ``probe``: ``probe`` {"scores_K", "weights_K":
    AUROC}.
    """
    import numpy as np
    import torch

    torch.set_num_threads(int(spec["threads"]))
    from iaead_core.config import preset_config
    from iaead_core.evaluation.metrics import detection_metrics
    from iaead_core.training.engine import Trainer
    from benchmarks.peers import parse_case

    dataset, k = parse_case(spec["case"])
    cfg = preset_config(spec["preset"], spec["method"], dataset=dataset, normal_class=k, rho=0.1,
                        seed=int(spec["seed"]), device="cpu", data_root=spec["data_root"],
                        download=False, **spec["overrides"])
    rule = RULES[spec["method"]]
    trainer = Trainer(cfg, runs_root=False, overlap=False)
    curve, loss, weights, scores, states = [], [], [], [], []
    probe = bool(spec.get("probe"))
    t0 = time.perf_counter()
    for rec in trainer.epochs():
        curve.append(float(rec["metrics"][rule]["auroc"]))
        loss.append(float(rec["loss"]["total"]))
        model = trainer.method.model
        if spec.get("trajectory"):
            weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().copy())
        if probe:
            states.append({k2: v.detach().clone() for k2, v in model.state_dict().items()})
            ev = trainer.method.evaluate(trainer.data.images, rec["epoch"] - 1, cfg.eval_batch_size)
            scores.append(ev.scores[rule])
            states = states[-max(PROBE_K):]
            scores = scores[-max(PROBE_K):]
    seconds = time.perf_counter() - t0
    result = trainer.result
    y = result.is_anomaly
    out = {**{k2: spec[k2] for k2 in ("case", "method", "seed", "threads")}, "rule": rule,
           "curve": curve, "loss": loss, "final": curve[-1], "seconds": seconds,
           "torch_threads": torch.get_num_threads(),
           "settings": setting_of(result.config)}
    c = trainer.method.c
    out["centre"] = None if c is None else c.detach().cpu().tolist()
    if spec.get("trajectory"):
        key = f"{spec['case'].replace(':', '-')}_{spec['method']}_s{spec['seed']}_t{spec['threads']}"
        np.save(Path(spec["trajectory"]) / f"{key}.npy", np.stack(weights))
        out["trajectory"] = key
    if probe:
        from scipy.stats import rankdata

        out["probe"] = {}
        method = trainer.method
        for K in PROBE_K:
            if K > len(scores):
                continue
            ranks = np.mean([rankdata(s) for s in scores[-K:]], axis=0)
            out["probe"][f"scores_{K}"] = float(detection_metrics(y, ranks)["auroc"])
            avg = {name: (torch.stack([s[name].float() for s in states[-K:]]).mean(0)
                          .to(states[-1][name].dtype)) for name in states[-1]}
            method.model.load_state_dict(avg)
            ev = method.evaluate(trainer.data.images, cfg.epochs - 1, cfg.eval_batch_size)
            out["probe"][f"weights_{K}"] = float(detection_metrics(y, ev.scores[rule])["auroc"])
    return out


def _worker_main(spec_json: str) -> int:
    """Entry of a worker subprocess: the spec as JSON in, the record as JSON on stdout's last
    line."""
    print(json.dumps(run_one(json.loads(spec_json))))
    return 0


def launch(spec: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`run_one` in a fresh subprocess with ``spec["threads"]`` threads (both
    ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set before Python starts, and
    ``OMP_WAIT_POLICY=PASSIVE``).

    Raises
    ------
    RuntimeError
        When the worker fails (its stderr's tail in the message).
    """
    # Passive waiting: an OpenMP thread that spins while its partner is descheduled (another
    # job on the machine) slows a 2-thread run twenty-fold; how threads wait changes no sum.
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]),
           "MKL_NUM_THREADS": str(spec["threads"]), "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker",
                           json.dumps(spec)], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec['case']} {spec['method']} seed {spec['seed']} "
                           f"threads {spec['threads']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_all(specs: list[dict[str, Any]], jobs: int, echo=print,
            share: bool = False) -> list[dict[str, Any]]:
    """Every spec in its own subprocess: the 1-thread ones ``jobs`` at a time, then every
    multi-thread one alone (so that its timing is its own; with ``share`` they too run
    ``jobs`` at a time, for a quick screening whose timings mean nothing). Results in
    ``specs``' order."""
    results: dict[int, dict[str, Any]] = {}

    def go(i: int) -> None:
        r = launch(specs[i])
        results[i] = r
        echo(f"  {r['case']:<16} {r['method']:<6} seed {r['seed']} threads {r['threads']}: "
             f"AUROC {r['final']:.4f} ({r['seconds']:.1f} s)"
             + ("" if "probe" not in r else "  probe " + " ".join(
                 f"{k}={v:.4f}" for k, v in r["probe"].items())))

    single = [i for i, s in enumerate(specs) if s["threads"] == 1 or share]
    multi = [i for i, s in enumerate(specs) if i not in single]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(go, single))
    for i in multi:
        go(i)
    return [results[i] for i in range(len(specs))]


# ---------------------------------------------------------------------------------- summary

def part_epoch(a: list[float], b: list[float], tol: float) -> int | None:
    """The first epoch (1-based) where two AUROC curves differ by more than ``tol``; None
    when they never do."""
    for e, (x, y) in enumerate(zip(a, b), start=1):
        if abs(x - y) > tol:
            return e
    return None


def summarize(runs: list[dict[str, Any]], tol: float = 0.01) -> list[dict[str, Any]]:
    """One row per (case, method): ``finals`` {"s<seed>/t<threads>": AUROC}, ``spread``,
    ``mean``, ``std`` (sample std; 0 for one run), ``parts`` {seed: epoch or None},
    ``thread_gap`` (largest final |Δ| between the thread counts of one seed), ``seconds``
    {threads: mean wall s}, ``rule``."""
    rows = []
    keys = list(dict.fromkeys((r["case"], r["method"]) for r in runs))
    for case, method in keys:
        mine = [r for r in runs if r["case"] == case and r["method"] == method]
        finals = [r["final"] for r in mine]
        parts, gaps = {}, []
        for seed in sorted({r["seed"] for r in mine}):
            by_t = {r["threads"]: r for r in mine if r["seed"] == seed}
            if len(by_t) >= 2:
                t = sorted(by_t)
                parts[seed] = part_epoch(by_t[t[0]]["curve"], by_t[t[-1]]["curve"], tol)
                gaps.append(abs(by_t[t[0]]["final"] - by_t[t[-1]]["final"]))
        seconds = {t: statistics.mean(r["seconds"] for r in mine if r["threads"] == t)
                   for t in sorted({r["threads"] for r in mine})}
        rows.append({"case": case, "method": method, "rule": mine[0]["rule"],
                     "finals": {f"s{r['seed']}/t{r['threads']}": r["final"] for r in mine},
                     "spread": max(finals) - min(finals), "mean": statistics.mean(finals),
                     "std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
                     "parts": parts, "thread_gap": max(gaps) if gaps else None,
                     "seconds": seconds, "n": len(finals)})
    return rows


def _fmt_part(p: int | None) -> str:
    return "never" if p is None else str(p)


def table(rows: list[dict[str, Any]], tol: float) -> list[str]:
    """Markdown rows of :func:`summarize`'s output."""
    runs = list(rows[0]["finals"]) if rows else []
    lines = ["| case | method (score) | " + " | ".join(runs)
             + f" | spread | mean ± std | parts at epoch (\\|Δ\\| > {tol:g}, per seed) "
               "| final \\|Δ\\| threads | s per run (1 / 2 threads) |",
             "|---|---|" + "---:|" * (len(runs) + 2) + "---|---:|---:|"]
    for r in rows:
        cells = [f"{r['finals'].get(k, float('nan')):.3f}" for k in runs]
        parts = ", ".join(_fmt_part(r["parts"][s]) for s in sorted(r["parts"]))
        secs = " / ".join(f"{v:.0f}" for v in r["seconds"].values())
        gap = "—" if r["thread_gap"] is None else f"{r['thread_gap']:.3f}"
        lines.append(f"| {r['case']} | {r['method']} ({r['rule']}) | " + " | ".join(cells)
                     + f" | **{r['spread']:.3f}** | {r['mean']:.3f} ± {r['std']:.3f} | {parts} "
                       f"| {gap} | {secs} |")
    return lines


def paper_effect(rows: list[dict[str, Any]]) -> list[str]:
    """One line per case with both methods: IAEAD's mean AUROC against the CAE's."""
    by = {(r["case"], r["method"]): r for r in rows}
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        a, b = by.get((case, "iaead")), by.get((case, "cae"))
        if a and b:
            worst = min(a["finals"].values()) - max(b["finals"].values())
            out.append(f"{case}: IAEAD {a['mean']:.3f} vs CAE {b['mean']:.3f} → "
                       f"{'IAEAD ahead' if a['mean'] > b['mean'] else 'CAE ahead'}"
                       f" (worst IAEAD run − best CAE run {worst:+.3f})")
    return out


def variant_markdown(name: str, v: dict[str, Any]) -> str:
    """The Markdown of one stored variant: what ran, where and when, its table, the paper's
    effect and the largest IAEAD spread."""
    rows = summarize(v["runs"], v["part_at"])
    settings = v["runs"][0]["settings"] if v["runs"] else {}
    iaead = [r for r in rows if r["method"] == "iaead"]
    parts = [f"#### Variant `{name}`", "",
             f"Produced by `{v['command']}` on {v['date']}.", "",
             f"Machine: {v['machine']}.", "",
             f"Settings: preset {v['preset']}"
             + (f" with {', '.join(f'{k}={x}' for k, x in v['overrides'].items())}"
                if v["overrides"] else "")
             + " → " + ", ".join(f"{k} {settings.get(k)}" for k in SETTING_FIELDS
                                 if k in settings) + ".", ""]
    if v.get("tiny"):
        parts += ["**--tiny: a smoke run; its numbers mean nothing.**", ""]
    jobs = v.get("jobs") or _option_of(v["command"], "--jobs", 1)
    parts += [f"Seconds: wall time of one run's training; 1-thread runs ran {jobs} at "
              "a time" + (", and so did the multi-thread runs (--share): the seconds mean "
                          "little." if v.get("shared") else ", multi-thread runs alone.")
              + " The AUROCs do not depend on what else ran.", ""]
    parts += table(rows, v["part_at"])
    effect = paper_effect(rows)
    if effect:
        parts += ["", "Paper's effect (mean over the runs): " + "; ".join(effect) + "."]
    if iaead:
        worst = max(iaead, key=lambda r: r["spread"])
        parts += ["", f"Largest IAEAD spread: **{worst['spread']:.3f}** ({worst['case']})."]
    probe = probe_table(v["runs"])
    if probe:
        parts += ["", "Averaging over the last K epochs of the same runs (--probe): the spread "
                      "of the final AUROC, of the AUROC of the scores' ranks averaged over the "
                      "last K epochs, and of the weights (BatchNorm statistics included) "
                      "averaged over the last K epochs:", "", *probe]
    return "\n".join(parts) + "\n"


def _option_of(command: str, option: str, default: int) -> int:
    """The value of ``option`` in a stored command line (variants stored before the value
    was kept), else ``default``."""
    words = shlex.split(command)
    return int(words[words.index(option) + 1]) if option in words else default


def probe_table(runs: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: per case and method, the spread of the final AUROC and of each
    ``--probe`` remedy; [] when the runs carry no probe."""
    if not runs or "probe" not in runs[0]:
        return []
    keys = list(runs[0]["probe"])
    lines = ["| case | method | final | " + " | ".join(keys) + " |",
             "|---|---|---:|" + "---:|" * len(keys)]
    for case, method in dict.fromkeys((r["case"], r["method"]) for r in runs):
        mine = [r for r in runs if r["case"] == case and r["method"] == method]
        spread = lambda vals: f"{max(vals) - min(vals):.3f}"  # noqa: E731
        lines.append(f"| {case} | {method} | {spread([r['final'] for r in mine])} | "
                     + " | ".join(spread([r["probe"][k] for r in mine]) for k in keys) + " |")
    return lines


def write_markdown(path: Path, store: dict[str, Any]) -> None:
    """Every variant of ``store`` as Markdown between :data:`BEGIN` and :data:`END` of the
    page at ``path`` (the page must hold both markers; the rest of it is kept).

    Raises
    ------
    ValueError
        When the page lacks the markers.
    """
    old = path.read_text(encoding="utf-8")
    if BEGIN not in old or END not in old.split(BEGIN, 1)[1]:
        raise ValueError(f"{path} holds no {BEGIN} … {END} markers")
    text = "\n".join(variant_markdown(n, v) for n, v in store["variants"].items())
    head, rest = old.split(BEGIN, 1)
    with atomic_output(path) as f:  # refuses a target that is not a regular file
        f.write(f"{head}{BEGIN}\n{text}{END}{rest.split(END, 1)[1]}")


def package_table(name: str, v: dict[str, Any]) -> dict[str, Any]:
    """The table shipped in the package for one variant: its settings, where and when it was
    measured, and per method its rule, per case ``{mean, std, spread, n}``, and ``pooled``
    (the mean of the cases' std and the largest spread)."""
    rows = summarize(v["runs"], v["part_at"])
    methods: dict[str, Any] = {}
    for r in rows:
        m = methods.setdefault(r["method"], {"rule": r["rule"], "cases": {}})
        m["cases"][r["case"]] = {k: round(r[k], 4) for k in ("mean", "std", "spread")}
        m["cases"][r["case"]]["n"] = r["n"]
    for m in methods.values():
        cases = m["cases"].values()
        m["pooled"] = {"std": round(statistics.mean(c["std"] for c in cases), 4),
                       "spread": round(max(c["spread"] for c in cases), 4)}
    runs = v["runs"]
    return {"preset": v["preset"], "variant": name,
            "settings": {m: next(r["settings"] for r in runs if r["method"] == m)
                         for m in methods},
            "seeds": sorted({r["seed"] for r in runs}),
            "threads": sorted({r["threads"] for r in runs}),
            "measured": {"command": v["command"], "date": v["date"], "machine": v["machine"]},
            "methods": methods}


# ------------------------------------------------------------------------------- trajectory

def trajectory_report(folder: Path, runs: list[dict[str, Any]]) -> list[str]:
    """Per pair of runs (same case, method, seed; lowest and highest thread count): epoch by
    epoch the relative weight distance ``||w₁ − w₂|| / ||w₁||``, |Δ loss| / loss and |Δ AUROC|,
    and for IAEAD the distance between their centres c."""
    import numpy as np

    lines = []
    groups: dict[tuple, dict[int, dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["case"], r["method"], r["seed"]), {})[r["threads"]] = r
    for (case, method, seed), by_t in groups.items():
        if len(by_t) < 2:
            continue
        t = sorted(by_t)
        a, b = by_t[t[0]], by_t[t[-1]]
        wa, wb = (np.load(folder / f"{x['trajectory']}.npy").astype(np.float64) for x in (a, b))
        lines.append(f"{case} {method} seed {seed} (threads {t[0]} vs {t[-1]}):")
        lines.append("  epoch  rel. weight dist  rel. Δloss   |ΔAUROC|")
        for e in range(len(wa)):
            d = np.linalg.norm(wa[e] - wb[e]) / np.linalg.norm(wa[e])
            dl = abs(a["loss"][e] - b["loss"][e]) / abs(a["loss"][e])
            lines.append(f"  {e + 1:>5}  {d:15.3e}  {dl:10.3e}  {abs(a['curve'][e] - b['curve'][e]):8.4f}")
        if a.get("centre") and b.get("centre"):
            ca, cb = np.array(a["centre"]), np.array(b["centre"])
            lines.append(f"  centre c: ||c₁ − c₂|| / ||c₁|| = "
                         f"{np.linalg.norm(ca - cb) / np.linalg.norm(ca):.3e}")
    return lines


# ------------------------------------------------------------------------------------- main

def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the measurement (module docstring); returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data-root", default=None, help="holds MNIST/raw and FashionMNIST/raw")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES), help="DATASET:CLASS, comma-separated")
    ap.add_argument("--methods", default="iaead,cae", help="of: iaead, cae (default: both)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated (default: 0,1,2)")
    ap.add_argument("--threads", default="1,2", help="thread counts (default: 1,2)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="1-thread runs at once (multi-thread runs always run alone)")
    ap.add_argument("--share", action="store_true",
                    help="let multi-thread runs share the machine too (screening: the AUROCs "
                         "are the same, the timings mean nothing)")
    ap.add_argument("--preset", default="quick", help="the preset measured (default: quick)")
    ap.add_argument("--preset-overrides", default="",
                    help="FIELD=VALUE,... changes to the preset (e.g. lr=0.05,epochs=40)")
    ap.add_argument("--variant", default="current", help="name of these settings in --json")
    ap.add_argument("--part-at", type=float, default=0.01,
                    help="|ΔAUROC| at which two runs' curves count as parted (default 0.01)")
    ap.add_argument("--trajectory", default=None,
                    help="folder for every epoch's weights; prints the weight distances")
    ap.add_argument("--probe", action="store_true",
                    help="also the AUROC of score / weight averaging over the last K epochs")
    ap.add_argument("--tiny", action="store_true", help="smoke run: tiny network, 3 epochs")
    ap.add_argument("--json", default=None, help="store the runs here under --variant")
    ap.add_argument("--out", default=None, help="write every stored variant into this page")
    ap.add_argument("--package", action="store_true",
                    help=f"write this variant's table to {PACKAGE_TABLE.relative_to(ROOT)} "
                         "(its settings must be the preset's own)")
    ap.add_argument("--render-only", action="store_true",
                    help="train nothing: write --out and --package from the variant stored in "
                         "--json")
    args = ap.parse_args(argv)
    if args.worker is not None:
        return _worker_main(args.worker)
    if args.render_only:
        if not args.json:
            ap.error("--render-only reads the variants stored in --json")
        store = json.loads(Path(args.json).read_text(encoding="utf-8"))
        if args.out:
            write_markdown(Path(args.out), store)
            print(f"Markdown written to {args.out}")
        if args.package:
            write_package(args.variant, store["variants"][args.variant])
        return 0
    from benchmarks.peers import parse_case
    from benchmarks.common import machine_description
    from iaead_core.config import preset_config

    cases, methods = _csv(args.cases), _csv(args.methods)
    seeds, threads = [int(s) for s in _csv(args.seeds)], [int(t) for t in _csv(args.threads)]
    overrides = {**(TINY if args.tiny else {}), **parse_overrides(args.preset_overrides)}
    for m in methods:
        if m not in RULES:
            ap.error(f"unknown method {m!r}; choose from {', '.join(RULES)}")
    for c in cases:
        try:
            ds, k = parse_case(c)
            preset_config(args.preset, methods[0], dataset=ds, normal_class=k, **overrides)
        except ValueError as e:
            ap.error(str(e))
    if args.out and not args.json:
        ap.error("--out renders the variants stored in --json: give --json too")
    if args.package and args.tiny:
        ap.error("--package ships the preset's own table: no --tiny")
    traj = Path(args.trajectory) if args.trajectory else None
    if traj:
        traj.mkdir(parents=True, exist_ok=True)
    specs = [{"case": c, "method": m, "seed": s, "threads": t, "preset": args.preset,
              "overrides": overrides, "data_root": args.data_root,
              "trajectory": str(traj) if traj else None, "probe": args.probe}
             for c in cases for m in methods for s in seeds for t in threads]
    import torch

    machine = machine_description(torch.device("cpu")).rsplit(" with ", 1)[0]
    print(f"{machine}\n{len(specs)} runs: {len(cases)} case(s) × {len(methods)} method(s) × "
          f"seeds {seeds} × threads {threads}; preset {args.preset}"
          + (f" with {overrides}" if overrides else ""))
    runs = run_all(specs, args.jobs, share=args.share)
    rows = summarize(runs, args.part_at)
    print()
    print("\n".join(table(rows, args.part_at)))
    for line in paper_effect(rows):
        print(line)
    if args.probe:
        print("\nprobe (spread / mean over the runs of each case and method):")
        for case in cases:
            for m in methods:
                mine = [r for r in runs if r["case"] == case and r["method"] == m]
                for key in mine[0].get("probe", {}):
                    vals = [r["probe"][key] for r in mine]
                    print(f"  {case:<16} {m:<6} {key:<11} spread {max(vals) - min(vals):.3f} "
                          f"mean {statistics.mean(vals):.3f}")
    if traj:
        print()
        print("\n".join(trajectory_report(traj, runs)))
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/stability.py " + " ".join(shlex.quote(a) for a in given)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    variant = {"command": command.strip(), "date": date, "machine": f"{machine}; each run in its "
               f"own process with OMP_NUM_THREADS = MKL_NUM_THREADS = torch threads = the "
               f"run's thread count",
               "preset": args.preset, "overrides": parse_overrides(args.preset_overrides),
               "shared": args.share, "jobs": args.jobs,
               "tiny": args.tiny, "part_at": args.part_at,
               "runs": [{k: v for k, v in r.items() if k != "centre"} for r in runs]}
    if args.json:
        path = Path(args.json)
        store = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        store.setdefault("variants", {})[args.variant] = variant
        with atomic_output(path) as f:
            f.write(json.dumps(store, indent=1))
        print(f"\nstored as variant {args.variant!r} in {path}")
        if args.out:
            write_markdown(Path(args.out), store)
            print(f"Markdown written to {args.out}")
    if args.package:
        write_package(args.variant, variant)
    return 0


def write_package(name: str, v: dict[str, Any], path: Path = PACKAGE_TABLE) -> None:
    """Write :func:`package_table` of a stored variant to ``path``.

    Raises
    ------
    ValueError
        When a method's measured settings are not its preset's own now
        (:func:`iaead_core.evaluation.stability.setting_of`): the package's table must describe
        the preset as it ships.
    """
    from iaead_core.config import preset_config

    table = package_table(name, v)
    for method, settings in table["settings"].items():
        own = setting_of(preset_config(table["preset"], method))
        if settings != own:
            raise ValueError(f"variant {name!r} measured {method} at {settings}, not at the "
                             f"{table['preset']} preset's own settings {own}")
    with atomic_output(path) as f:
        f.write(json.dumps(table, indent=1) + "\n")
    print(f"package table written to {path}")


if __name__ == "__main__":
    sys.exit(main())
