"""Training throughput: the engine's epoch vs a straightforward DataLoader loop, side by side.

Both train the same network (same initial weights) with the same batch size and SGD on the
same contaminated MNIST set for one warm-up epoch (reconstruction loss only, so the work per
batch is identical). The reference loop is the usual tutorial code: a ``DataLoader`` over a
CPU ``TensorDataset`` with shuffling and a per-batch ``.to(device)``; the engine keeps the
whole set on the device and shuffles with ``randperm``. Epochs alternate (engine, reference,
engine, ...) so both see the same machine state; the median of ``--repeats`` is reported.

    python benchmarks/epoch_throughput.py --data-root ../shared/data [--preset paper] [--device cuda]

Prints images/second for both and their ratio (engine / reference).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iaead_core import Trainer, make_contaminated, preset_config  # noqa: E402


def reference_epoch(model, opt, images_cpu, batch_size, device) -> None:
    """One epoch of the plain loop: DataLoader, per-batch transfer, MSE, SGD step."""
    model.train()
    for (x,) in DataLoader(TensorDataset(images_cpu), batch_size=batch_size, shuffle=True):
        x = x.to(device)
        _, x_hat = model(x)
        loss = F.mse_loss(x_hat, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--preset", default="quick", choices=("quick", "paper"))
    p.add_argument("--device", default="auto")
    p.add_argument("--max-samples", type=int, default=None, help="default: the preset's")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    cfg = preset_config(args.preset, "iaead", device=args.device, data_root=args.data_root,
                        max_samples=args.max_samples, epochs=1000, warmup_epochs=1000)
    data = make_contaminated(cfg.dataset, cfg.normal_class, cfg.rho, seed=0,
                             data_root=cfg.data_root, max_samples=cfg.max_samples)
    trainer = Trainer(cfg, data=data, runs_root=False)
    device = trainer.device
    # Build the engine's method once, then give the reference an identical copy.
    from iaead_core.methods import build_method

    torch.manual_seed(0)
    method = build_method(trainer.cfg, data.images.shape[1], device)
    X = data.images.to(device)
    opt, _ = method.make_optimizer(0)
    ref_model = copy.deepcopy(method.model)
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(0)
    images_cpu = data.images.clone()

    engine_t, ref_t = [], []
    # One untimed epoch each: allocator and kernel warm-up.
    trainer._train_epoch(method, opt, X, gen, 0)
    reference_epoch(ref_model, ref_opt, images_cpu, cfg.batch_size, device)
    for r in range(args.repeats):
        sync(device)
        t = time.perf_counter()
        trainer._train_epoch(method, opt, X, gen, r + 1)
        sync(device)
        engine_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        reference_epoch(ref_model, ref_opt, images_cpu, cfg.batch_size, device)
        sync(device)
        ref_t.append(time.perf_counter() - t)

    n = len(data)
    e, rf = n / statistics.median(engine_t), n / statistics.median(ref_t)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"preset {args.preset}: {n} images, batch {cfg.batch_size}, width {cfg.width}, "
          f"latent {cfg.latent_dim}, device {device} ({name}), median of {args.repeats}")
    print(f"engine (tensor on device, randperm): {e:10.0f} images/s")
    print(f"reference (DataLoader, .to(device)): {rf:10.0f} images/s")
    print(f"ratio engine / reference:            {e / rf:10.2f}x")


if __name__ == "__main__":
    main()
