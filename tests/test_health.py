"""Training-health alerts: the rules on hand-made inputs, then the three ways a real run on
MNIST dies (λ huge, learning rate huge) next to healthy IAEAD and Deep SVDD runs."""

import numpy as np
import pytest

from iaead_core import Trainer, make_contaminated, preset_config
from iaead_core.evaluation.health import (ALERT_KINDS, DEAD_FRACTION, SATURATED_FRACTION,
                                          STALL_EPOCHS, STALL_RTOL, code_bound, diverged_alert,
                                          epoch_alerts, loss_stalled, summarize)
from iaead_core.evaluation.metrics import DEGENERATE_RTOL, FLOAT32_EPS
HEALTHY_DIAG = {"collapsed": False, "dead_dims": 0.0, "saturated": 0.0,
                "collapse_ratio": 0.4, "effective_rank": 40.0}


# ------------------------------------------------------------------------------ the rules

def test_every_kind_has_a_title_an_explanation_and_a_rule():
    assert list(ALERT_KINDS) == ["collapsed", "dead_units", "saturated", "stalled", "diverged"]
    for kind, info in ALERT_KINDS.items():
        assert set(info) == {"title", "explanation", "rule"}, kind
        assert all(isinstance(v, str) and v for v in info.values()), kind
        # One sentence: a single full stop, at the end.
        assert info["explanation"].endswith(".") and info["explanation"].count(". ") == 0, kind


def test_stall_rule_counts_flat_epochs_relative_to_the_loss():
    assert STALL_RTOL == 4 * FLOAT32_EPS and STALL_EPOCHS == 3
    flat = [0.9, 0.4487, 0.4487, 0.4487, 0.4487]  # 3 flat steps after the first epoch
    assert loss_stalled(flat)
    assert not loss_stalled(flat[:-1])  # only 2 flat steps
    assert not loss_stalled([0.4487] * 3 + [0.4])  # the last step moved
    # At the tolerance, relative to the loss: 0.9 × tol is flat, 1.1 × tol is a change.
    L = 2458.8
    assert loss_stalled([L * (1 + 0.9 * STALL_RTOL) ** i for i in range(4)])
    assert not loss_stalled([L * (1 + 1.1 * STALL_RTOL) ** i for i in range(4)])
    assert loss_stalled([0.0] * 4)  # a loss stuck at exactly 0 is flat too
    assert not loss_stalled([1.0, None, 1.0, 1.0, 1.0])  # a gap inside the last 4 epochs
    assert loss_stalled([None, 1.0, 1.0, 1.0, 1.0])  # ... but not one before them
    assert not loss_stalled([1.0, 1.0, float("nan"), 1.0])


def test_epoch_alerts_from_diagnostics():
    assert epoch_alerts(HEALTHY_DIAG, [1.0, 0.5]) == []
    kinds = [a["kind"] for a in epoch_alerts(
        {**HEALTHY_DIAG, "collapsed": True, "dead_dims": DEAD_FRACTION,
         "saturated": SATURATED_FRACTION}, [1.0, 0.5, 0.5, 0.5, 0.5])]
    assert kinds == ["collapsed", "dead_units", "saturated", "stalled"]
    # Just under the fractions: nothing; codes without a bound (saturated None): never.
    assert epoch_alerts({**HEALTHY_DIAG, "dead_dims": DEAD_FRACTION - 1 / 64,
                         "saturated": SATURATED_FRACTION - 1e-3}, [1.0]) == []
    assert epoch_alerts({**HEALTHY_DIAG, "saturated": None}, [1.0]) == []
    msg = epoch_alerts({**HEALTHY_DIAG, "dead_dims": 0.984375}, [1.0])[0]["message"]
    assert msg.startswith("98% of the latent dimensions")


def test_code_bound_summarize_and_diverged():
    assert code_bound("tanh") == 1.0
    assert code_bound("linear") is None and code_bound("unit") is None and code_bound(None) is None
    assert diverged_alert("boom") == {"kind": "diverged", "message": "boom"}
    records = [{"epoch": 1, "alerts": []},
               {"epoch": 2, "alerts": [{"kind": "stalled", "message": "a"}]},
               {"epoch": 3, "alerts": [{"kind": "saturated", "message": "b"},
                                       {"kind": "stalled", "message": "c"}]},
               {"epoch": 4}]  # a record written before alerts existed
    assert summarize(records) == [
        {"kind": "saturated", "title": "saturated codes", "message": "b", "first_epoch": 3,
         "last_epoch": 3, "epochs": 1},
        {"kind": "stalled", "title": "training stalled", "message": "c", "first_epoch": 2,
         "last_epoch": 3, "epochs": 2}]


# ------------------------------------------------------------------------ real MNIST runs

@pytest.fixture(scope="module")
def digits(shared_data_root):
    # 600 images of MNIST digit 0 at ρ = 0.1: 540 normal + 60 anomalies.
    return make_contaminated("mnist", 0, 0.1, seed=0, data_root=shared_data_root,
                             max_samples=600, download=False)


def small(method="iaead", **kw):
    """A small run: the quick preset's optimiser on a width-8, 16-d network."""
    base = dict(epochs=4, warmup_epochs=2, width=8, latent_dim=16, batch_size=100, max_samples=600)
    base.update(kw)
    return preset_config("quick", method=method, **base)


def kinds(record):
    return [a["kind"] for a in record["alerts"]]


def test_healthy_iaead_and_deep_svdd_raise_nothing(digits):
    """λ = 5e-5 on the quick preset's network (width 16, 64-d codes), and Deep SVDD: no alert
    at any epoch, no degenerate metric, and loss steps far above the stall tolerance."""
    iaead = Trainer(small(width=16, latent_dim=64, batch_size=32, lam=5e-5), data=digits,
                    runs_root=False).run().records
    svdd = Trainer(small("deep-svdd", svdd_lr=1e-3), data=digits, runs_root=False).run().records
    for records in (iaead, svdd):
        assert [r["alerts"] for r in records] == [[]] * 4
        assert not any(m["degenerate"] for r in records for m in r["metrics"].values())
        losses = [r["loss"]["total"] for r in records]
        steps = [abs(b - a) / max(abs(a), abs(b)) for a, b in zip(losses, losses[1:])]
        assert min(steps) > 1e3 * STALL_RTOL
    assert iaead[-1]["metrics"]["latent_mean"]["auroc"] > 0.7  # and it detects something


def test_huge_lambda_collapses_and_its_latent_metrics_are_degenerate(digits):
    """λ = 1e3: the SVDD term drives every Tanh code into the same corner of the cube in the
    first SVDD epoch. The latent distances are then float noise at most, so they are reported
    at chance, while the reconstruction error (the decoder still works) is not."""
    records = Trainer(small(lam=1e3), data=digits, runs_root=False).run().records
    last = records[-1]
    assert {"collapsed", "dead_units", "saturated"} <= set(kinds(last))
    d = last["diagnostics"]
    assert d["saturated"] == 1.0 and d["dead_dims"] == 1.0
    # The mechanism: the codes coincide to float precision. Every |z| ≥ 0.99 in 16
    # dimensions, so the code length is at least 0.99 × 4.
    assert d["spread"] <= DEGENERATE_RTOL * 0.99 * np.sqrt(16)
    for rule in ("latent_mean", "latent_c"):
        m = last["metrics"][rule]
        assert m["degenerate"] is True and m["auroc"] == 0.5
        assert m["aupr_in"] == pytest.approx(0.9) and m["aupr_out"] == pytest.approx(0.1)
        assert set(m["raw"]) == {"auroc", "aupr_in", "aupr_out"}
    assert last["metrics"]["reconstruction"]["degenerate"] is False


def test_huge_learning_rate_stalls_the_loss(digits):
    """lr = 1e3 wrecks the network in its first epoch; from then on the warm-up loss stays
    the same up to float rounding, and the fourth flat epoch raises ``stalled``."""
    records = Trainer(small(epochs=6, warmup_epochs=5, lr=1e3), data=digits,
                      runs_root=False).run().records
    losses = [r["loss"]["total"] for r in records]
    flat = [abs(b - a) / abs(a) <= STALL_RTOL for a, b in zip(losses, losses[1:])]
    assert flat[1:4] == [True] * 3  # epochs 2 → 5 (the rule's premise, measured ~1e-8)
    assert "stalled" in kinds(records[4])
    assert not any("stalled" in kinds(r) for r in records[:3])  # needs 4 epochs of history
    assert all(a["message"] for r in records for a in r["alerts"])


def test_collapse_message_cites_only_the_criteria_met():
    """The lecturer walk read "effective rank 2.3 (collapse below 2)" as evidence of collapse:
    a figure above its threshold must not be cited."""
    from iaead_core.evaluation.health import epoch_alerts

    diag = {"collapsed": True, "collapse_ratio": 9.8e-7, "effective_rank": 2.3}
    (alert,) = [a for a in epoch_alerts(diag, [1.0]) if a["kind"] == "collapsed"]
    assert "spread of the codes 9.8e-07" in alert["message"]
    assert "effective rank" not in alert["message"]
    diag = {"collapsed": True, "collapse_ratio": 0.5, "effective_rank": 1.4}
    (alert,) = [a for a in epoch_alerts(diag, [1.0]) if a["kind"] == "collapsed"]
    assert alert["message"] == "the codes form one line: effective rank 1.4, below the collapse level 2"


def test_collapse_is_described_by_kind_and_place_with_the_diagnostics_figures():
    """Issue 17 §2: the alert said "onto (almost) one point" while the codes sat in a saturated
    corner at distance 7.283 from c. Kind (point, line, region) and place (c, corner, away)
    come from the diagnostics, and the alert quotes the same distance."""
    from iaead_core.evaluation.health import collapse_report, epoch_alerts
    from iaead_core.evaluation.metrics import latent_diagnostics

    rng = np.random.default_rng(0)
    c = np.full(8, 0.1)
    corner = np.ones((200, 8))  # every code pinned at the same corner of [-1, 1]^8
    d = latent_diagnostics(corner, c, bound=1.0)
    assert d["coincide"] and d["effective_rank"] == 0 and d["collapsed"]
    rep = collapse_report(d)
    expected = float(np.linalg.norm(np.ones(8) - c))
    assert (rep["kind"], rep["place"]) == ("point", "corner")
    assert rep["distance"] == pytest.approx(expected) and rep["dead_gradients"]
    (alert,) = [a for a in epoch_alerts(d, [1.0]) if a["kind"] == "collapsed"]
    assert f"one point in a saturated corner of the code space, at distance {expected:.4g} from c" \
        in alert["message"]
    # onto c: a tiny line through c (unbounded codes)
    line = c + np.outer(rng.normal(size=200), np.eye(8)[0]) * 1e-6
    rep = collapse_report(latent_diagnostics(line, c))
    assert (rep["kind"], rep["place"]) == ("line", "c")
    # a healthy cloud is a region, and not collapsed
    rep = collapse_report(latent_diagnostics(rng.normal(size=(200, 8)), c))
    assert rep["kind"] == "region" and not rep["collapsed"]


def test_svdd_frozen_at_r_squared_is_told_from_the_records():
    from iaead_core.evaluation.health import STALL_EPOCHS, svdd_frozen

    recs = [{"epoch": 1, "loss": {"svdd": None}, "R": 0.0},
            {"epoch": 2, "loss": {"svdd": 0.22}, "R": 0.3}]
    recs += [{"epoch": e, "loss": {"svdd": 53.04}, "R": 53.04 ** 0.5} for e in range(3, 9)]
    out = svdd_frozen(recs)
    assert out["frozen"] and out["first"] == 0.22 and out["first_epoch"] == 2
    assert out["since_epoch"] == 3 and out["loss"] == pytest.approx(out["R2"])
    # moving, or flat but not at R²: not frozen
    assert not svdd_frozen(recs[:2 + STALL_EPOCHS])["frozen"]
    flat_off = [{**r, "R": 1.0} for r in recs]
    assert not svdd_frozen(flat_off)["frozen"]
    assert svdd_frozen(recs[:1]) is None


def test_stalled_names_how_long_the_loss_has_been_flat():
    """Walk 6: "stayed at 2537.82 for 4 epochs" at epochs 8 and 10 of a loss flat since
    epoch 3: the message counts the whole flat stretch, not the detection window."""
    from iaead_core.evaluation.health import epoch_alerts

    history = [9.0, 5.0] + [2537.82] * 8  # flat from epoch 3 to epoch 10
    [alert] = epoch_alerts({}, history)
    assert alert["kind"] == "stalled" and "for the last 8 epochs" in alert["message"]
    [alert] = epoch_alerts({}, history[:7])  # epoch 7: flat for 5 epochs (3 to 7)
    assert "for the last 5 epochs" in alert["message"]
    assert epoch_alerts({}, history[:5]) == []  # 3 flat epochs: not yet stalled

