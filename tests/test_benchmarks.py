"""The benchmark scripts: the FLOPs they count, their peak and the suite's smoke run.

No speed is asserted (speed targets live in the scripts' output, never in tests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import (flops_per_image, layer_macs, machine_description,  # noqa: E402
                               matmul_peak)
from iaead_core.methods.nets import CAE  # noqa: E402
from iaead_core.training.stacked import StackedCAE  # noqa: E402


def cae_macs(w: int, d: int, c: int = 1) -> tuple[int, int]:
    """Multiply-adds per 32×32 image of CAE(c, w, d), by hand, and those of its first layer.

    Encoder: 3×3 stride-2 convolutions to 16², 8², 4² pixels; Linear 4w·16 → d. Decoder:
    Linear d → 4w·16; transposed convolutions from 4², 8², 16² input pixels (each input
    pixel meets every output channel's 3×3 kernel).
    """
    first = 16 * 16 * w * c * 9
    macs = (first + 8 * 8 * 2 * w * w * 9 + 4 * 4 * 4 * w * 2 * w * 9
            + 4 * w * 16 * d + d * 4 * w * 16
            + 4 * 4 * 4 * w * 2 * w * 9 + 8 * 8 * 2 * w * w * 9 + 16 * 16 * w * c * 9)
    return macs, first


def test_paper_network_flops():
    macs, first = cae_macs(64, 256)
    assert macs == 21_266_432  # the paper's CAE: 42.5 MFLOP per image forward
    model = CAE(1, 64, 256)
    assert sum(layer_macs(model).values()) == macs
    f = flops_per_image(model)
    assert f["forward"] == 2 * macs
    # Backward: weight gradients for every layer (= forward) and input gradients for every
    # layer but the first, whose input needs none: a step is 3 × forward − first layer.
    assert f["train_step"] == 3 * 2 * macs - 2 * first
    assert not any(p.grad is not None for p in model.parameters())  # left clean


@pytest.mark.parametrize("w,d,c", [(16, 64, 1), (8, 16, 3)])
def test_light_network_flops(w, d, c):
    macs, _ = cae_macs(w, d, c)
    assert sum(layer_macs(CAE(c, w, d), in_channels=c).values()) == macs
    assert flops_per_image(CAE(c, w, d), in_channels=c)["forward"] == 2 * macs


def test_stacked_network_does_k_times_the_work():
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(2, 1, 32, 32)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        StackedCAE([CAE(1, 8, 16) for _ in range(3)])(x)
    assert fc.get_total_flops() / 2 == 3 * 2 * cae_macs(8, 16)[0]


def test_peak_and_machine():
    dev = torch.device("cpu")
    assert matmul_peak(dev, n=128, seconds=0.01) > 0
    assert "logical cores" in machine_description(dev)


def test_scripts_import_and_explain_themselves():
    code = ("import benchmarks.epoch_throughput, benchmarks.stacked_vs_sequential, "
            "benchmarks.bookkeeping, "
            "benchmarks.umap_speed, benchmarks.suite")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "benchmarks/umap_speed.py", "--help"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "UMAP" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_gpu_suite_smoke_prints_every_figure(shared_data_root):
    env = {**os.environ, "IAEAD_DATA_ROOT": str(shared_data_root), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", "benchmarks/gpu_suite.sh", "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    expected = [
        r"^paper-protocol run \(MNIST digit 0, .*\): [\d.]+ s for 2 epochs",
        r"^engine vs reference \[quick\]: engine \d+ images/s, reference \d+ images/s, "
        r"ratio [\d.]+x",
        r"^engine vs reference \[paper\]: ",
        r"^achieved vs peak \[quick\]: .*FLOP/s achieved, fp32 matmul peak .*% of it",
        r"^achieved vs peak \[paper\]: ",
        r"^epoch shares \[quick\]: training \d+%, evaluation \d+%, bookkeeping \(.*\) \d+%",
        r"^epoch shares \[paper\]: ",
        r"^stacked K=2 vs sequential \(smoke stand-in for K=6\): sequential [\d.]+ s, "
        r"stacked [\d.]+ s, speed-up [\d.]+x",
        r"^stacked K=3 vs sequential \(smoke stand-in for K=24\): ",
        r"^peak memory: paper-protocol run .*stacked K=3 ",
        r"^CUDA graph vs eager steps \(6 epochs of 64 images, .*\): eager [\d.]+ s, graphs [\d.]+ s "
        r".*largest relative loss difference 0\.0e\+00, largest AUROC difference 0\.0000 "
        r"\(a CPU: both eager\)",
        r"^mini-study \(IAEAD, MNIST, 2 classes, experiment run, process workers, accel .*\): "
        r"[\d.]+ s = [\d.]+ runs/min; one at a time [\d.]+ s",
        r"^mini-study \(IAEAD, MNIST, 2 classes, experiment run, thread workers, accel .*\): ",
        r"^  class 0: AUROC [\d.]+ \(paper 96\.59, Δ [-+][\d.]+\)",
        r"^accel default: [\d.]+ s/epoch \(1\.00x the default\), AUROC after 3 epochs [\d.]+ "
        r"\(a CPU: every setting is the default\)",
        r"^accel bf16: ",
        r"^accel: fastest ",
        r"^  fashion-mnist class 0: AUROC [\d.]+ \(paper 89\.67, ",
        r"^reproduction \(IAEAD, paper protocol, accel .*, 3 classes of Table 3\): \d/3 within "
        r"±1\.5 points",
    ]
    for pattern in expected:
        assert re.search(pattern, out, re.M), f"missing {pattern!r} in:\n{out}"
    # The counted FLOPs are the network's, whatever the machine.
    assert "FLOPs per image [paper]: forward 42.53 MFLOP, training step 127.30 MFLOP" in out
