"""Metrics on hand-made cases and collapse diagnostics."""

import numpy as np
import pytest

from iaead_core.metrics import COLLAPSE_RATIO, detection_metrics, latent_diagnostics


def test_perfect_and_inverted_scores():
    y = np.array([0, 0, 0, 1, 1], bool)
    good = detection_metrics(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9]))
    assert good == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0}
    bad = detection_metrics(y, np.array([0.9, 0.8, 0.7, 0.2, 0.1]))
    assert bad["auroc"] == 0.0


def test_hand_computed_case():
    # Normals score 1, 3; anomalies score 2, 4. Pairs (anomaly > normal): (2>1),(4>1),(4>3) = 3/4.
    y = np.array([False, True, False, True])
    s = np.array([1.0, 2.0, 3.0, 4.0])
    m = detection_metrics(y, s)
    assert m["auroc"] == pytest.approx(0.75)
    # AUPR-out (anomaly positive, ranked 4,3,2,1): precisions at hits 1/1 and 2/3 → (1 + 2/3)/2.
    assert m["aupr_out"] == pytest.approx((1 + 2 / 3) / 2)
    # AUPR-in (normal positive, ranked by −score: 1,2,3,4): hits at ranks 1 and 3 → (1 + 2/3)/2.
    assert m["aupr_in"] == pytest.approx((1 + 2 / 3) / 2)


def test_tied_scores_give_half_auroc_and_bad_input_raises():
    y = np.array([0, 1, 0, 1], bool)
    assert detection_metrics(y, np.ones(4))["auroc"] == 0.5
    with pytest.raises(ValueError, match="both"):
        detection_metrics(np.zeros(4, bool), np.arange(4.0))
    with pytest.raises(ValueError, match="NaN"):
        detection_metrics(y, np.array([0, np.nan, 1, 2]))


def test_diagnostics_of_spread_and_collapsed_codes():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 8))
    d = latent_diagnostics(z)
    assert d["std_mean"] == pytest.approx(1.0, abs=0.1)
    assert d["effective_rank"] > 7  # isotropic: close to the full 8
    assert not d["collapsed"]
    c = np.full(8, 0.5)
    collapsed = c + 1e-5 * rng.normal(size=(500, 8))
    d2 = latent_diagnostics(collapsed, c)
    assert d2["collapsed"] and d2["collapse_ratio"] < COLLAPSE_RATIO
    assert d2["dead_dims"] == 1.0
    same = latent_diagnostics(np.tile(c, (10, 1)), c)
    assert same["spread"] == 0 and same["effective_rank"] == 0 and same["collapsed"]


def test_rank_one_codes_have_effective_rank_one_and_count_as_collapsed():
    # Codes spread widely but along one line: distances carry one number, the flag says so.
    z = np.outer(np.linspace(-1, 1, 100), np.ones(4))
    d = latent_diagnostics(z, c=np.full(4, 0.1))
    assert d["effective_rank"] == pytest.approx(1.0)
    assert d["collapse_ratio"] > 1 and d["collapsed"]
    # Without a centre there is no SVDD pull to collapse onto: the flag stays off.
    assert not latent_diagnostics(z)["collapsed"]
