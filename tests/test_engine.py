"""The training engine on real MNIST: records, c, stop, NaN, persistence, reproducibility,
and the tables built from its records."""

import json

import numpy as np
import pytest
import torch

from iaead_core import (NonFiniteLossError, Trainer, load_run, make_contaminated, preset_config,
                        restore_run)
from iaead_core.evaluation.analysis import (LAMBDA_CHOICES, curve_frame, final_frame, format_lambda,
                                            run_row, sweep_frame, sweep_summary)
from iaead_core.evaluation.health import ALERT_KINDS
from iaead_core.evaluation.metrics import detection_metrics, score_scale
from iaead_core.methods.iaead import IAEAD
from iaead_core.methods.svdd import fix_centre
from iaead_core.runs import RunError
@pytest.fixture(scope="module")
def small_set(shared_data_root):
    # 600 images of MNIST digit 0 at ρ = 0.1: 540 normal + 60 anomalies.
    return make_contaminated("mnist", 0, 0.1, seed=0, data_root=shared_data_root,
                             max_samples=600, download=False)


def tiny(method="iaead", **kw):
    base = dict(epochs=4, warmup_epochs=2, width=8, latent_dim=16, batch_size=100, max_samples=600)
    base.update(kw)
    return preset_config("quick", method=method, **base)


def test_records_phases_and_scores(small_set, tmp_path):
    trainer = Trainer(tiny(), data=small_set, runs_root=tmp_path)
    records = list(trainer.epochs())
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert [r["phase"] for r in records] == ["warm-up", "warm-up", "svdd", "svdd"]
    # c is fixed at the end of the warm-up: latent_c is reported from epoch 2 on.
    assert "latent_c" not in records[0]["metrics"] and "latent_c" in records[1]["metrics"]
    assert records[0]["loss"]["svdd"] is None and records[2]["loss"]["svdd"] > 0
    assert records[2]["R"] > 0
    for r in records:
        for m in r["metrics"].values():
            assert set(m) == {"auroc", "aupr_in", "aupr_out", "degenerate", "raw", "n_nonfinite"}
            assert all(0 <= m[k] <= 1 for k in ("auroc", "aupr_in", "aupr_out"))
            assert m["n_nonfinite"] == 0 and isinstance(m["degenerate"], bool)
        assert isinstance(r["alerts"], list)
        assert all(set(a) == {"kind", "message"} and a["kind"] in ALERT_KINDS for a in r["alerts"])
        assert r["diagnostics"]["saturated"] is not None  # IAEAD's codes are Tanh codes
    assert records[0]["lr"] == pytest.approx(0.1)
    assert trainer.result.status == "completed"


def test_centre_is_fixed_eval_mean_after_warmup(small_set):
    trainer = Trainer(tiny(epochs=2), data=small_set, runs_root=False)
    trainer.run()
    method = trainer.method
    X = small_set.images
    expected = fix_centre(method.mean_latent(X))
    assert torch.allclose(method.c, expected)
    assert torch.all(method.c.abs() >= 0.1 - 1e-7)


def test_same_seed_same_run(small_set):
    a = Trainer(tiny(epochs=3), data=small_set, runs_root=False).run()
    b = Trainer(tiny(epochs=3), data=small_set, runs_root=False).run()
    assert [r["metrics"] for r in a.records] == [r["metrics"] for r in b.records]
    assert [r["loss"] for r in a.records] == [r["loss"] for r in b.records]


def test_stop_request_between_batches_keeps_completed_epochs(small_set, tmp_path, monkeypatch):
    trainer = Trainer(tiny(epochs=6), data=small_set, runs_root=tmp_path)
    steps = {"n": 0}
    original = IAEAD.after_step

    def counting_step(self):
        original(self)
        steps["n"] += 1
        if steps["n"] == 14:  # 6 batches per epoch: the request comes mid-epoch 3
            trainer.stop()

    monkeypatch.setattr(IAEAD, "after_step", counting_step)
    result = trainer.run()
    assert steps["n"] == 14  # no batch ran after the request
    assert result.status == "stopped" and len(result.records) == 2
    run = load_run(result.run_dir)
    assert run.status["status"] == "stopped" and len(run.records) == 2
    assert run.load_weights()["method"] == "iaead"


def test_ctrl_c_closes_the_run_as_stopped(small_set, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = IAEAD.after_step

    def interrupted(self):
        original(self)
        calls["n"] += 1
        if calls["n"] == 8:  # during epoch 2
            raise KeyboardInterrupt

    monkeypatch.setattr(IAEAD, "after_step", interrupted)
    trainer = Trainer(tiny(), data=small_set, runs_root=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    run = load_run(trainer.run_dir)
    assert run.status["status"] == "stopped" and run.status["error"] == "interrupted"
    assert len(run.records) == 1 and run.load_weights()["method"] == "iaead"


def test_nan_loss_stops_with_clear_error_and_keeps_records(small_set, tmp_path, monkeypatch):
    original = IAEAD.loss

    def poisoned(self, x, epoch):
        losses = original(self, x, epoch)
        if epoch == 2:
            losses.total = losses.total * float("nan")
        return losses

    monkeypatch.setattr(IAEAD, "loss", poisoned)
    trainer = Trainer(tiny(), data=small_set, runs_root=tmp_path)
    with pytest.raises(NonFiniteLossError, match="epoch 3, batch 1") as info:
        trainer.run()
    assert info.value.epoch == 3 and info.value.kind == "diverged"
    assert info.value.alert == {"kind": "diverged", "message": str(info.value)}
    assert len(trainer.records) == 2
    run = load_run(trainer.run_dir)
    assert run.status["status"] == "failed" and "epoch 3" in run.status["error"]
    diverged = [a for a in run.status["alerts"] if a["kind"] == "diverged"]
    assert len(diverged) == 1 and diverged[0]["first_epoch"] == 3
    assert "diverged" in run_row(run.run_id, run.meta, run.status, run.records)["alerts"]
    assert [r["epoch"] for r in run.records] == [1, 2]
    assert "score_latent_mean" in run.load_final()


def test_a_nan_later_in_the_epoch_is_named_by_its_batch_and_part(small_set, tmp_path,
                                                                  monkeypatch):
    # The losses are read once per epoch, after the steps; the message must still name the
    # first bad batch (here the third of six) and the part that broke (the SVDD term).
    original = IAEAD.loss
    seen = {"batches": 0}

    def poisoned(self, x, epoch):
        losses = original(self, x, epoch)
        if epoch == 2:
            seen["batches"] += 1
            if seen["batches"] >= 3:
                losses.svdd = losses.svdd * float("nan")
                losses.total = losses.reconstruction + losses.svdd
        return losses

    monkeypatch.setattr(IAEAD, "loss", poisoned)
    trainer = Trainer(tiny(), data=small_set, runs_root=tmp_path)
    with pytest.raises(NonFiniteLossError, match="the SVDD loss became nan at epoch 3, batch 3"):
        trainer.run()
    run = load_run(trainer.run_dir)
    assert [r["epoch"] for r in run.records] == [1, 2]
    # The kept weights are those of epoch 2, not the NaN ones of the broken epoch.
    assert all(torch.isfinite(v).all() for v in run.load_weights()["model"].values()
               if v.is_floating_point())


def test_an_epoch_reads_the_device_a_fixed_number_of_times(small_set, monkeypatch):
    # A read of a tensor's value (float(), .item(), .tolist(), ...) per batch would make a GPU
    # wait for the host at every step. Count the reads inside the training epochs of IAEAD:
    # with 12 batches per epoch there must be exactly as many as with 3.
    reads = []
    inside = {"epoch": False}
    for name in ("__float__", "__int__", "__bool__", "item", "tolist", "numpy", "cpu"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **kw):
            if inside["epoch"]:
                reads.append(_name)
            return _original(self, *a, **kw)
        monkeypatch.setattr(torch.Tensor, name, counted)
    train_epoch = Trainer._train_epoch

    def watched(self, *a, **kw):
        inside["epoch"] = True
        try:
            return train_epoch(self, *a, **kw)
        finally:
            inside["epoch"] = False
    monkeypatch.setattr(Trainer, "_train_epoch", watched)

    counts = {}
    for batch_size in (50, 200):  # 12 and 3 batches of the 600 images
        reads.clear()
        Trainer(tiny(batch_size=batch_size), data=small_set).run()
        counts[batch_size] = len(reads)
    assert counts[50] == counts[200] > 0, counts


def test_persistence_round_trip(small_set, tmp_path, shared_data_root):
    cfg = tiny()
    result = Trainer(cfg, data=small_set, runs_root=tmp_path).run()
    run = load_run(result.run_dir)
    assert run.config == result.config.to_dict() == cfg.replace(data_root=run.config["data_root"]).to_dict()
    assert run.meta["seed"] == 0 and run.meta["environment"]["torch"] == torch.__version__
    assert run.meta["data"]["n_normal"] == 540 and run.meta["data"]["n_anomalies"] == 60
    assert run.records == json.loads(json.dumps(result.records))
    assert run.snapshot_epochs() == [1, 2, 3, 4]
    final = run.load_final()
    for rule, score in result.evaluation.scores.items():
        np.testing.assert_allclose(final[f"score_{rule}"], score)
    np.testing.assert_array_equal(final["is_anomaly"], small_set.is_anomaly)
    # Restored weights reproduce the final scores on the re-drawn data set.
    assert run.config["data_root"] == str(shared_data_root.resolve())  # recorded from the data
    method, data = restore_run(run)
    ev = method.evaluate(data.images, epoch=cfg.epochs - 1)
    np.testing.assert_allclose(ev.scores["latent_mean"], final["score_latent_mean"], rtol=1e-4, atol=1e-5)
    assert method.R == pytest.approx(float(final["R"]))


def test_corrupt_and_foreign_checkpoints_raise_run_error(small_set, tmp_path):
    result = Trainer(tiny(epochs=1, warmup_epochs=0), data=small_set, runs_root=tmp_path).run()
    run = load_run(result.run_dir)
    weights = run.dir / "model.pt"
    weights.write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="corrupt"):
        run.load_weights()
    torch.save({"something": torch.zeros(1)}, weights)
    with pytest.raises(RunError, match="not an iaead checkpoint"):
        run.load_weights()
    (run.dir / "config.json").write_text("{ broken")
    with pytest.raises(RunError, match="corrupt"):
        load_run(run.dir)


def test_torn_metrics_line_is_skipped(small_set, tmp_path):
    result = Trainer(tiny(epochs=2), data=small_set, runs_root=tmp_path).run()
    with open(result.run_dir / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "metr')  # a crash mid-write
    assert [r["epoch"] for r in load_run(result.run_dir).records] == [1, 2]


def test_deep_svdd_pretrains_then_scores_by_distance(small_set):
    cfg = tiny("deep-svdd", epochs=4, warmup_epochs=2, svdd_lr=1e-3)
    trainer = Trainer(cfg, data=small_set, runs_root=False)
    records = trainer.run().records
    assert [r["phase"] for r in records] == ["pretrain", "pretrain", "svdd", "svdd"]
    assert "reconstruction" in records[0]["metrics"] and "svdd" not in records[0]["metrics"]
    assert "svdd" in records[3]["metrics"] and "reconstruction" not in records[3]["metrics"]
    assert records[3]["loss"]["svdd"] > 0 and records[3]["loss"]["reconstruction"] is None
    method = trainer.method
    z = method.evaluate(small_set.images, 3).z
    c = method.c.numpy()
    np.testing.assert_allclose(method.evaluate(small_set.images, 3).scores["svdd"],
                               ((z - c) ** 2).sum(1), rtol=1e-4)


def test_deep_svdd_soft_boundary_scores_subtract_radius(small_set):
    cfg = tiny("deep-svdd", epochs=3, warmup_epochs=1, objective="soft-boundary", nu=0.1)
    trainer = Trainer(cfg, data=small_set, runs_root=False)
    trainer.run()
    method = trainer.method
    assert method.R > 0
    ev = method.evaluate(small_set.images, 2)
    dist2 = ((ev.z - method.c.numpy()) ** 2).sum(1)
    np.testing.assert_allclose(ev.scores["svdd"], dist2 - method.R**2, rtol=1e-4, atol=1e-6)


def test_cae_has_no_centre(small_set):
    result = Trainer(tiny("cae", epochs=2), data=small_set, runs_root=False).run()
    assert set(result.final_metrics) == {"latent_mean", "reconstruction"}
    assert result.method.c is None and result.records[-1]["loss"]["svdd"] is None


@pytest.mark.slow
def test_iaead_beats_cae_reconstruction_on_real_mnist(shared_data_root):
    """The paper's claim on a CPU-sized run (MNIST digit 0, ρ = 0.1, 1,500 images, 12 epochs):
    the latent score (eq. 9) is high and beats the CAE's reconstruction error."""
    data = make_contaminated("mnist", 0, 0.1, seed=0, data_root=shared_data_root,
                             max_samples=1500, download=False)
    kw = dict(epochs=12, warmup_epochs=3, lr_step=5, max_samples=1500)
    iaead = Trainer(preset_config("quick", "iaead", **kw), data=data, runs_root=False).run()
    cae = Trainer(preset_config("quick", "cae", **kw), data=data, runs_root=False).run()
    ours = iaead.final_metrics["latent_mean"]["auroc"]
    assert ours >= 0.9
    assert ours > cae.final_metrics["reconstruction"]["auroc"] + 0.1


def test_detection_metrics_agree_with_engine(small_set):
    result = Trainer(tiny(epochs=1, warmup_epochs=0), data=small_set, runs_root=False).run()
    ev = result.evaluation
    for rule in ("latent_mean", "reconstruction"):
        assert result.final_metrics[rule] == detection_metrics(
            small_set.is_anomaly, ev.scores[rule], scale=score_scale(rule, ev.z, ev.centre))


def test_tables_carry_degenerate_and_alerts(small_set, tmp_path):
    """λ = 1e3 collapses the codes (tests/test_health.py shows how): every table built from
    the run says which metrics are degenerate and which alerts were raised."""
    result = Trainer(tiny(lam=1e3), data=small_set, runs_root=tmp_path).run()
    run = load_run(result.run_dir)
    row = run_row(run.run_id, run.meta, run.status, run.records)
    assert row["primary_score"] == "latent_mean" and row["degenerate"] is True
    assert row["auroc"] == 0.5 and row["collapsed"] is True
    assert row["alerts"].split(", ")[:3] == ["collapsed", "dead_units", "saturated"]
    assert [a["kind"] for a in run.status["alerts"]] == row["alerts"].split(", ")
    assert row["nu"] == 1.0  # IAEAD at λ > 0 uses ν (it sets R)
    # ν where the method ignores it is None, as the lab's headers and the experiment tables
    # show it (walk 3: the Runs table said 0.1 for one-class Deep SVDD and 1 for the CAE).
    for method, lam in (("cae", 1e3), ("iaead", 0.0)):
        other = Trainer(tiny(method=method, lam=lam), data=small_set, runs_root=tmp_path).run()
        r = load_run(other.run_dir)
        assert run_row(r.run_id, r.meta, r.status, r.records)["nu"] is None, method
    final = final_frame(run.records, run.config, "x").set_index("rule")
    assert final.loc["distance to mean latent", "degenerate"]
    assert not final.loc["reconstruction error", "degenerate"]
    curves = curve_frame(run.records, "x")
    last = curves[curves["epoch"] == 4].set_index("rule")["degenerate"].to_dict()
    assert last == {"latent_mean": True, "latent_c": True, "reconstruction": False}
    healthy = {**row, "lam": 0.0, "auroc": 0.9, "degenerate": False, "collapsed": False}
    df = sweep_frame([row, {**row, "seed": 1}, healthy, {k: v for k, v in healthy.items()
                                                          if k != "degenerate"}])
    assert df["degenerate"].tolist() == [True, True, False, False]
    summary = sweep_summary(df).set_index("lam")
    assert summary.loc[1000.0, "degenerate"] and summary.loc[1000.0, "n_degenerate"] == 2
    assert not summary.loc[0.0, "degenerate"] and summary.loc[0.0, "n_degenerate"] == 0
    # Records written before the field existed read as not degenerate.
    old = [{**r, "metrics": {k: {m: v[m] for m in ("auroc", "aupr_in", "aupr_out")}
                             for k, v in r["metrics"].items()}} for r in run.records]
    assert not curve_frame(old, "old")["degenerate"].any()
    assert not final_frame(old, run.config, "old")["degenerate"].any()


@pytest.mark.parametrize("lam, text", [(0, "0"), (5e-6, "5e-6"), (0.000005, "5e-6"), (5e-5, "5e-5"),
                                       (1e-4, "1e-4"), (0.005, "5e-3"), (0.05, "0.05"), (0.5, "0.5"), (50, "50"), (1e6, "1e6"),
                                       (np.float32(5e-5), "5e-5"), (None, "—")])
def test_format_lambda_is_the_one_short_format(lam, text):
    assert format_lambda(lam) == text


def test_format_lambda_never_uses_si_prefixes_or_long_decimals():
    for lam in [*LAMBDA_CHOICES, 1e-7, 2.5e-6, 1e3, 1e6, 123456789.0]:
        s = format_lambda(lam)
        assert "µ" not in s and "e+" not in s and "e-0" not in s and "0.0000" not in s, s
        assert float(s) == pytest.approx(lam, rel=1e-5)


def _without_timing(records):
    return [{k: v for k, v in r.items() if k not in ("seconds", "elapsed")} for r in records]


@pytest.mark.parametrize("method", ["iaead", "deep-svdd"])
def test_bookkeeping_beside_training_keeps_the_same_records(small_set, tmp_path, method):
    """Issue 16: on a GPU each epoch's metrics, diagnostics and writes run on a host thread
    beside the next epoch's training. Forced on here (a CPU): the records, the files and the
    snapshots are exactly those of the synchronous path, in order, stop included."""
    cfg = tiny(method, epochs=4, warmup_epochs=2)
    sync = Trainer(cfg, data=small_set, runs_root=tmp_path / "sync", overlap=False).run()
    seen = []
    trainer = Trainer(cfg, data=small_set, runs_root=tmp_path / "overlap", overlap=True)
    for record in trainer.epochs():
        seen.append(record["epoch"])
    assert seen == [1, 2, 3, 4]
    over = trainer.result
    assert _without_timing(over.records) == _without_timing(sync.records)
    a, b = load_run(sync.run_dir), load_run(over.run_dir)
    assert _without_timing(a.records) == _without_timing(b.records)
    assert a.snapshot_epochs() == b.snapshot_epochs() == [1, 2, 3, 4]
    for epoch in a.snapshot_epochs():
        sa, sb = a.load_snapshot(epoch), b.load_snapshot(epoch)
        assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert b.live_status == "completed"
    # A stop request between epochs: the epochs done so far are all kept and written.
    stopper = Trainer(cfg, data=small_set, runs_root=tmp_path / "stop", overlap=True)
    for record in stopper.epochs():
        stopper.stop()
    assert 1 <= len(stopper.records) < 4 and stopper.status == "stopped"
    stopped = load_run(stopper.run_dir)
    assert len(stopped.records) == len(stopper.records) and stopped.live_status == "stopped"
    assert _without_timing(stopper.records) == _without_timing(sync.records[:len(stopper.records)])
