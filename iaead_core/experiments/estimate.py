"""How long an experiment will take: per-run estimates before and during a run.

A run's time is modelled as ``epochs × images / 1000 × rate + overhead``, where ``rate`` is the
seconds per thousand image-epochs (training step plus the per-epoch evaluation pass) of that
method and network size on that kind of device. Rates come, in order of preference, from

0. epochs measured in this process (:class:`PaceMeter`, fed by the lab as its runs train),
   normalised to an idle machine and scaled by the load seen now (:func:`load_factor`), then
1. finished runs of the same method, width and latent size on the same kind of device (in this
   experiment's folder: the machine measures itself as the experiment goes), then
2. :data:`MEASURED_RATES` (see the table's comment for where each number comes from), with a
   method that has no entry taking IAEAD's rate, and another network size scaled from the
   nearest measured width by the square of the width ratio (the cost of the inner
   convolutions grows as width², an estimate, not a measurement).
"""

from __future__ import annotations

import os
import statistics
import threading
from typing import Iterable

from iaead_core.config import TrainConfig
from iaead_core.data import make_contaminated
from iaead_core.experiments.spec import PlannedRun, _build_config
from iaead_core.experiments.store import RunInfo
__all__ = ["MEASURED_RATES", "OVERHEAD_S", "set_size", "run_seconds", "epoch_seconds", "learn_rates",
           "format_duration", "load_factor", "PaceMeter", "rate_key"]

#: Seconds per 1,000 image-epochs, by (device type, width, latent size) → method: the
#: training step plus the per-epoch evaluation pass. Measured on the project's idle 2-core
#: development CPU (AMD EPYC, torch 2.14.1, 2 threads) on 2026-11-30 with
#: ``python -m iaead_core.experiments.estimate --presets quick,paper`` (MNIST digit 0,
#: 1,000 images, 10 epochs, the mean of epochs 2-10 so that Deep SVDD's pre-training
#: epochs count as in a real run); a quick IAEAD run of 3,000 images × 30 epochs then
#: takes about 20 s, as the fig4-lambda experiment measured. Deep SVDD keeps its own LeNet
#: at the paper's size, hence its low paper rate. Re-measure on another machine and add rows
#: (a GPU); until then finished runs of the experiment replace these numbers as soon as
#: there are any.
MEASURED_RATES: dict[tuple[str, int, int], dict[str, float]] = {
    ("cpu", 16, 64): {"iaead": 0.268, "cae": 0.267, "deep-svdd": 0.310, "drae": 0.276,
                      "rdae": 0.295, "dagmm": 0.183, "memae": 0.450, "rsrae": 0.324},
    ("cpu", 64, 256): {"iaead": 1.046, "cae": 1.075, "deep-svdd": 0.265, "drae": 1.090,
                       "rdae": 1.446, "dagmm": 1.179, "memae": 0.364, "rsrae": 1.269},
}

#: Seconds per run besides the epochs (data draw, model set-up, writing the folder).
OVERHEAD_S = 3.0

# Pool sizes (train ∪ test) and class counts, for the size of a contaminated set.
_POOL = {"mnist": (70_000, 10), "fashion-mnist": (70_000, 10), "cifar10": (60_000, 10),
         "cifar100": (60_000, 20), "svhn": (99_289, 10), "mnist-5k": (5_000, 10),
         "digits": (1_797, 10)}
_CAP = 12_000


def set_size(cfg: TrainConfig) -> int:
    """Approximate size of the run's contaminated set: the normal class's share of the pool
    divided by (1 − ρ), capped at 12,000 and at ``max_samples``."""
    pool, classes = _POOL.get(cfg.dataset, (70_000, 10))
    n = int(pool / classes / (1 - cfg.rho))
    n = min(n, _CAP)
    if cfg.max_samples:
        n = min(n, int(cfg.max_samples))
    return max(n, 1)


def _key(method: str, width: int, latent: int, device: str) -> tuple:
    return (method, int(width), int(latent), device.split(":")[0])


def rate_key(cfg: TrainConfig, device: str = "cpu") -> tuple:
    """The key of ``cfg``'s rate in a ``learned`` dict (:func:`learn_rates`,
    :meth:`PaceMeter.rates`): ``(method, width, latent_dim, device type)``."""
    return _key(cfg.method, cfg.width, cfg.latent_dim, device)


def learn_rates(plans: Iterable[PlannedRun], infos: dict[str, RunInfo]) -> dict[tuple, float]:
    """Rates (seconds per 1,000 image-epochs) measured by finished runs, keyed by
    ``(method, width, latent_dim, device type)``; the median over runs of each key."""
    samples: dict[tuple, list[float]] = {}
    for p in plans:
        info = infos.get(p.run_id)
        if (info is None or info.state != "completed" or not info.seconds or not info.epochs_done
                or not info.n_images or not info.device):
            continue
        c = p.config
        rate = info.seconds / (info.epochs_done * info.n_images / 1000)
        samples.setdefault(_key(c.method, c.width, c.latent_dim, info.device), []).append(rate)
    return {k: statistics.median(v) for k, v in samples.items()}


def load_factor(load: float | None = None, cpus: int | None = None) -> float:
    """How many times slower a CPU-bound job runs now than on an idle machine, as the load
    average says: ``max(1, load / cpus)`` (with more runnable processes than cores, each gets
    its share). ``load``: the 1-minute load average (``os.getloadavg()[0]`` when None);
    ``cpus``: the cores (``os.cpu_count()``). 1.0 where the load cannot be read. A walk under
    a load of 6–10 on 2 cores saw estimates from an idle machine's rates: 35 s for 383 s."""
    try:
        load = os.getloadavg()[0] if load is None else float(load)
    except (OSError, AttributeError):
        return 1.0
    cpus = cpus or os.cpu_count() or 1
    return max(1.0, load / cpus) if load == load else 1.0


class PaceMeter:
    """Seconds per 1,000 image-epochs measured in this process, per (method, width, latent
    size, device type), each observation divided by the load factor it was made under, so
    that :meth:`rates` can scale it to the load seen when asked. Thread-safe; one epoch of a
    run counts once however often it is observed.

    Used as the ``learned`` rates of :func:`run_seconds` / :func:`epoch_seconds`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[tuple[str, int]] = set()
        self._samples: dict[tuple, list[float]] = {}

    def observe(self, cfg: TrainConfig, run_id: str, epoch: int, seconds: float,
                n_images: int | None = None, device: str = "cpu",
                load: float | None = None) -> bool:
        """Record that epoch ``epoch`` of run ``run_id`` (config ``cfg``) took ``seconds``
        on ``n_images`` images (:func:`set_size` of ``cfg`` when None) under ``load``
        (:func:`load_factor`'s argument; now when None). Returns False for an epoch already
        seen or an unusable figure (≤ 0, NaN)."""
        if not (isinstance(seconds, (int, float)) and seconds > 0 and seconds == seconds):
            return False
        n = n_images or set_size(cfg)
        with self._lock:
            if (run_id, int(epoch)) in self._seen:
                return False
            self._seen.add((run_id, int(epoch)))
            rate = seconds / (n / 1000) / load_factor(load)
            self._samples.setdefault(_key(cfg.method, cfg.width, cfg.latent_dim, device),
                                     []).append(rate)
        return True

    def rates(self, load: float | None = None) -> dict[tuple, float]:
        """The median idle rate of each key, times the load factor now (or at ``load``)."""
        f = load_factor(load)
        with self._lock:
            return {k: statistics.median(v) * f for k, v in self._samples.items()}

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._samples.values())


def run_seconds(cfg: TrainConfig, device: str = "cpu", learned: dict[tuple, float] | None = None) -> float:
    """Estimated wall time of one run, in seconds (see the module docstring)."""
    return cfg.epochs * epoch_seconds(cfg, device, learned) + OVERHEAD_S


def epoch_seconds(cfg: TrainConfig, device: str = "cpu", learned: dict[tuple, float] | None = None) -> float:
    """Estimated seconds of one epoch of the run ``cfg`` (training and evaluation, averaged
    over its phases), without the run's fixed overhead (see the module docstring)."""
    dev = device.split(":")[0]
    rate = (learned or {}).get(_key(cfg.method, cfg.width, cfg.latent_dim, dev))
    if rate is None:
        table = MEASURED_RATES.get((dev, cfg.width, cfg.latent_dim)) or MEASURED_RATES.get(
            ("cpu", cfg.width, cfg.latent_dim))
        if table is None:  # another network size: scale the nearest by its width squared
            w, lat = min(((w, lat) for (_, w, lat) in MEASURED_RATES),
                         key=lambda k: abs(k[0] - cfg.width))
            base = MEASURED_RATES[("cpu", w, lat)]
            table = {m: r * (cfg.width / w) ** 2 for m, r in base.items()}
        rate = table.get(cfg.method, table["iaead"])
    return set_size(cfg) / 1000 * rate


def format_duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``, ``1.5 d``; ``?`` for None."""
    if seconds is None:
        return "?"
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    if s < 48 * 3600:
        return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"
    return f"{s / 86400:.1f} d"


def _measure(argv: list[str] | None = None) -> None:  # pragma: no cover - run by hand
    """Print the rate of registered methods at the presets' network sizes (MEASURED_RATES).

    ``python -m iaead_core.experiments.estimate [--presets quick,paper] [--methods a,b]
    [--epochs 10] [--images 1000]``: MNIST class 0 at ρ = 0.1; the mean epoch time, the first
    epoch (warm-up costs) left out.
    """
    import argparse
    import time

    from iaead_core.training.engine import Trainer  # lazy: loads torch
    from iaead_core.methods import METHODS  # lazy: loads torch

    p = argparse.ArgumentParser(description=_measure.__doc__.splitlines()[0])
    p.add_argument("--presets", default="quick,paper")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--images", type=int, default=1000)
    args = p.parse_args(argv)
    data = make_contaminated("mnist", 0, 0.1, max_samples=args.images, download=False)
    for preset in args.presets.split(","):
        for method in args.methods.split(","):
            try:
                cfg = _build_config(preset, method, {"epochs": args.epochs,
                                                     "max_samples": args.images})
            except ValueError as e:
                print(preset, method, "skipped:", e)
                continue
            times = []
            t_last = [time.perf_counter()]

            def tick(rec, times=times, t_last=t_last):
                now = time.perf_counter()
                times.append(now - t_last[0])
                t_last[0] = now
            Trainer(cfg, data=data, runs_root=False).run(tick)
            # The mean, not the median: a method with phases (Deep SVDD pre-trains an
            # autoencoder first) must be priced over all of them, as a real run has them.
            rate = statistics.mean(times[1:]) / (len(data) / 1000)
            print(f"{preset:<6} {method:<10} width {cfg.width:>3} latent {cfg.latent_dim:>3}: "
                  f"{rate:.3f} s per 1,000 image-epochs")


if __name__ == "__main__":  # pragma: no cover
    _measure()
