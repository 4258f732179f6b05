"""What an epoch's bookkeeping costs at the paper's size, with the BLAS pool limited to one
thread (the engine's way) and unlimited (as before), side by side in one process.

The bookkeeping of an epoch (:meth:`iaead_core.training.engine.Trainer._keep_books`) makes the
record (AUROC / AUPR per scoring rule, latent diagnostics), appends it to ``metrics.jsonl``, and
every few epochs writes a snapshot and a checkpoint. On one H200 it was 67 % of a paper-protocol
epoch (``benchmarks/suite.py``, part ``accel``, "epoch shares"), so that the overlapped
bookkeeping, not the GPU, set the pace of a run. This script times each part on a synthetic
evaluation of the paper's size (MNIST digit 0: 7,670 codes of 256 dimensions, three scoring
rules) into a temporary run folder, with the median of ``--repeats`` calls:

    python benchmarks/bookkeeping.py --data-root ../shared/data [--repeats 5]

Run it on a quiet machine: a busy one inflates the unlimited pool's figure most.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time

import numpy as np
import torch

try:
    from benchmarks.common import machine_description
except ImportError:  # run as a file (common.py puts the repository on sys.path)
    from common import machine_description

from iaead_core import Trainer, make_contaminated, preset_config  # noqa: E402
from iaead_core.evaluation import metrics  # noqa: E402
from iaead_core.methods import Evaluation, build_method  # noqa: E402
from iaead_core.runs import RunWriter  # noqa: E402


def _median_ms(f, repeats: int) -> float:
    f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def measure(data_root: str | None, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per call: ``record`` and ``record_unlimited`` (the epoch record with the BLAS
    pool at one thread / unlimited), ``append``, ``snapshot``, ``checkpoint``; plus
    ``per_epoch`` (the paper run's mean: a record and an append every epoch, a snapshot every
    25 and a checkpoint every 10)."""
    cfg = preset_config("paper", "iaead", data_root=data_root, device="cpu")
    data = make_contaminated("mnist", 0, cfg.rho, seed=0, data_root=data_root)
    method = build_method(cfg, 1, torch.device("cpu"))
    rng = np.random.default_rng(0)
    z = rng.normal(size=(len(data), cfg.latent_dim)).astype(np.float32)
    c = z.mean(0) + 0.1
    scores = {"latent_mean": np.linalg.norm(z - z.mean(0), axis=1),
              "latent_c": np.linalg.norm(z - c, axis=1), "reconstruction": rng.random(len(data))}
    ev = Evaluation(z=z, scores=scores, centre=c)
    loss = {"total": 1.0, "reconstruction": 1.0, "svdd": 0.0}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, data=data, runs_root=tmp)
        writer = RunWriter(trainer.runs_root, "bench", {"run_id": "bench"})
        state = {"method": "iaead", "model": method.model.state_dict(), "c": torch.tensor(c),
                 "R": 0.0}

        def record():
            return trainer._make_record(0, "svdd", 0.1, loss, ev, 0.0, {}, "latent_mean",
                                        "iaead", None, 0.0, 1.0, 0.0)

        out["record"] = _median_ms(record, repeats)
        limited = metrics._one_blas_thread
        metrics._one_blas_thread = contextlib.nullcontext
        try:
            out["record_unlimited"] = _median_ms(record, repeats)
        finally:
            metrics._one_blas_thread = limited
        rec = record()
        out["append"] = _median_ms(lambda: writer.append_record(rec), repeats)
        out["snapshot"] = _median_ms(lambda: writer.save_snapshot(1, z, scores, c, 0.0), repeats)
        out["checkpoint"] = _median_ms(lambda: writer.save_checkpoint(
            1, state, z, scores, data.is_anomaly, data.labels, c, 0.0), repeats)
        writer.close()
    out["per_epoch"] = out["record"] + out["append"] + out["snapshot"] / 25 + out["checkpoint"] / 10
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    print(f"bookkeeping of a paper-sized epoch (7,670 codes × 256, three rules): "
          f"{machine_description(torch.device('cpu'))}")
    r = measure(args.data_root, args.repeats)
    print(f"epoch record: {r['record']:.1f} ms with one BLAS thread, {r['record_unlimited']:.1f} ms "
          f"with the unlimited pool ({r['record_unlimited'] / r['record']:.1f}x)")
    print(f"append to metrics.jsonl {r['append']:.1f} ms; snapshot {r['snapshot']:.1f} ms "
          f"(every 25 epochs); checkpoint {r['checkpoint']:.1f} ms (every 10 epochs)")
    print(f"per epoch on average: {r['per_epoch']:.1f} ms")


if __name__ == "__main__":
    main()
