"""The lab's job registry, background tasks, views and the pure helpers of iaead_core.analysis.

Trainings here use scikit-learn's embedded 8×8 digits (about 200 images per set), so each
epoch takes a fraction of a second and no data download is needed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.jobs import BackgroundTasks, JobRegistry, config_key  # noqa: E402
from app.views import RunIndex, fmt_seconds, group_items, known_groups  # noqa: E402
from iaead_core.analysis import (centre_distances, extremes, format_lambda, parse_lambda_grid,  # noqa: E402
                                 pca_2d, scaled_config, snapshot_for_epoch, sweep_summary,
                                 time_left, umap_2d)
from iaead_core.config import preset_config  # noqa: E402


def cfg(epochs: int = 2, **kw):
    """A tiny IAEAD config on the embedded digits (CPU)."""
    kw.setdefault("warmup_epochs", 1)
    return preset_config("quick", kw.pop("method", "iaead"), dataset="digits", normal_class=0,
                         epochs=epochs, device="cpu", **kw)


def wait_until(pred, timeout: float = 60.0, every: float = 0.05) -> None:
    """Poll ``pred`` until it is true; fail the test after ``timeout`` seconds."""
    end = time.time() + timeout
    while not pred():
        if time.time() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


@pytest.fixture
def registry(tmp_path):
    reg = JobRegistry(tmp_path / "runs", slots=1)
    yield reg
    reg.shutdown()


def test_same_group_twice_is_one_group(registry):
    cfgs = [cfg(epochs=40), cfg(epochs=40, method="cae")]
    g1 = registry.submit_group(cfgs, "compare")
    g2 = registry.submit_group([c.replace() for c in cfgs], "compare")  # a rerun / second tab
    assert g1 == g2
    assert len(registry.jobs()) == 2
    assert [j.cfg.method for j in registry.jobs(g1)] == ["iaead", "cae"]
    assert all(j.cfg.extra == {"group": g1, "kind": "compare"} for j in registry.jobs(g1))
    registry.stop_group(g1)
    wait_until(lambda: not registry.busy())


def test_same_job_twice_is_one_job(registry):
    a = registry.submit(cfg(epochs=40))
    b = registry.submit(cfg(epochs=40))
    assert a.key == b.key == config_key(cfg(epochs=40))
    assert len(registry.jobs()) == 1
    registry.stop(a.key)
    wait_until(lambda: not registry.busy())


def test_queue_order_and_stop(registry):
    g = registry.submit_group([cfg(epochs=200, seed=s) for s in range(3)], "sweep")
    keys = [j.key for j in registry.jobs(g)]
    wait_until(lambda: registry.job(keys[0]).status == "running" and registry.job(keys[0]).records)
    assert [j.key for j in registry.queue()] == keys[1:]  # FIFO, one slot on a CPU
    registry.stop(keys[1])  # a queued job leaves the queue without running
    assert registry.job(keys[1]).status == "stopped"
    assert [j.key for j in registry.queue()] == keys[2:]
    registry.stop(keys[0])  # a running one stops after its batch, keeping its epochs
    wait_until(lambda: registry.job(keys[0]).status == "stopped")
    first = registry.job(keys[0])
    assert 1 <= len(first.records) < 200
    assert (first.run_dir / "metrics.jsonl").read_text().count("\n") == len(first.records)
    wait_until(lambda: registry.job(keys[2]).status == "running")
    registry.stop_group(g)
    wait_until(lambda: not registry.group_active(g))
    assert registry.job(keys[1]).run_dir is None  # it never started


def test_diverging_job_fails_with_epoch_and_keeps_records(registry):
    g = registry.submit_group([cfg(epochs=4, lam=1e30)], "compare")
    wait_until(lambda: not registry.group_active(g))
    job = registry.jobs(g)[0]
    assert job.status == "failed" and job.error_kind == "diverged"
    assert "epoch 2" in job.error
    assert len(job.records) == 1 and job.records[0]["epoch"] == 1
    # and after a restart the folder still tells the story
    items = group_items(JobRegistry(registry.runs_root, slots=1), RunIndex(registry.runs_root), g)
    assert items[0].status == "failed" and "epoch 2" in items[0].error
    assert len(items[0].records) == 1


def test_missing_data_set_fails_in_words(registry, tmp_data_root):
    bad = preset_config("quick", "iaead", dataset="cifar10", normal_class=0, epochs=2,
                        warmup_epochs=1, device="cpu", download=False)
    g = registry.submit_group([bad], "compare")
    wait_until(lambda: not registry.group_active(g))
    job = registry.jobs(g)[0]
    assert job.status == "failed" and job.error_kind == "data"
    assert "cifar-10-batches-py" in job.error and "mnist-5k" in job.error


def test_group_survives_restart(registry):
    g = registry.submit_group([cfg(epochs=2), cfg(epochs=2, method="cae")], "compare")
    wait_until(lambda: not registry.group_active(g))
    fresh, index = JobRegistry(registry.runs_root, slots=1), RunIndex(registry.runs_root)
    try:
        assert known_groups(fresh, index, "compare") == [g]
        items = group_items(fresh, index, g)
        assert sorted(i.label for i in items) == ["CAE", "IAEAD"]
        assert all(i.status == "completed" and len(i.records) == 2 for i in items)
    finally:
        fresh.shutdown()


def test_empty_group_is_refused(registry):
    with pytest.raises(ValueError, match="at least one"):
        registry.submit_group([], "compare")


def test_background_tasks_cache_and_errors():
    tasks = BackgroundTasks()
    calls = []
    assert tasks.get("a", lambda: calls.append(1) or 42)[0] == "working"
    assert tasks.wait("a", 10) == ("ready", 42)
    assert tasks.get("a", lambda: calls.append(1) or 0) == ("ready", 42)
    assert calls == [1]  # computed once
    tasks.get("b", lambda: 1 / 0)
    status, msg = tasks.wait("b", 10)
    assert status == "error" and "ZeroDivisionError" in msg


# ------------------------------------------------------------------- iaead_core.analysis

def test_parse_lambda_grid():
    assert parse_lambda_grid("50, 0 5e-6;5e-5, 0") == [0.0, 5e-6, 5e-5, 50.0]
    with pytest.raises(ValueError, match="not a number"):
        parse_lambda_grid("0, abc")
    with pytest.raises(ValueError, match="≥ 0"):
        parse_lambda_grid("-1")
    with pytest.raises(ValueError, match="empty"):
        parse_lambda_grid(" , ")


def test_format_lambda_and_seconds():
    assert [format_lambda(v) for v in (0, 5e-6, 5e-5, 0.5, 50)] == ["0", "5e-6", "5e-5", "0.5", "50"]
    assert fmt_seconds(75) == "1 min 15 s" and fmt_seconds(None) == "?"


def test_scaled_config_keeps_phases():
    c = scaled_config("quick", "deep-svdd", 4)
    assert (c.epochs, c.warmup_epochs) == (4, 2)
    c = scaled_config("quick", "iaead", 4, lam=0.5)
    assert (c.epochs, c.warmup_epochs, c.lam) == (4, 1, 0.5)
    assert scaled_config("quick", "iaead").epochs == 30
    with pytest.raises(ValueError, match="at least 2"):
        scaled_config("quick", "deep-svdd", 1)


def test_time_left_skips_first_epoch():
    recs = [{"epoch": 1, "seconds": 10.0}, {"epoch": 2, "seconds": 2.0}, {"epoch": 3, "seconds": 4.0}]
    assert time_left(recs, 10) == pytest.approx(7 * 3.0)
    assert time_left([], 10) is None


def test_latent_helpers():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 8)).astype(np.float32)
    assert pca_2d(z).shape == (50, 2)
    same = np.ones((50, 8), np.float32)
    assert not pca_2d(same).any() and not umap_2d(same).any()  # total collapse: one point
    top, bottom = extremes(np.arange(10.0), 3)
    assert list(top) == [9, 8, 7] and list(bottom) == [0, 1, 2]
    assert centre_distances(np.array([[3.0, 4.0], [0.0, 0.0]]), np.zeros(2)).tolist() == [5.0, 0.0]
    assert snapshot_for_epoch([1, 5, 10], 7) == 5 and snapshot_for_epoch([5], 1) == 5
    assert snapshot_for_epoch([], 3) is None


def test_sweep_summary_mean_std_and_collapse():
    df = pd.DataFrame({"lam": [0, 0, 50, 50], "normal_class": ["0"] * 4, "seed": [0, 1, 0, 1],
                       "auroc": [0.9, 0.8, 0.5, 0.5], "collapsed": [False, False, True, False]})
    s = sweep_summary(df)
    assert s["lam"].tolist() == [0, 50]
    assert s["mean"].tolist() == pytest.approx([0.85, 0.5])
    assert s["std"].tolist() == pytest.approx([np.std([0.9, 0.8], ddof=1), 0.0])
    assert s["collapsed"].tolist() == [False, True]
