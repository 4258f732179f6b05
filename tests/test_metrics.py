"""Metrics on hand-made cases, the degenerate-score rule, and collapse diagnostics."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from iaead_core.evaluation.metrics import (COLLAPSE_RATIO, DEAD_RTOL, DEGENERATE_RTOL, FLOAT32_EPS,
                                           SATURATION_LEVEL, detection_metrics, is_degenerate,
                                           latent_diagnostics, score_scale)
def test_perfect_and_inverted_scores():
    y = np.array([0, 0, 0, 1, 1], bool)
    good = detection_metrics(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9]))
    assert good == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "degenerate": False,
                    "raw": None, "n_nonfinite": 0}
    bad = detection_metrics(y, np.array([0.9, 0.8, 0.7, 0.2, 0.1]))
    assert bad["auroc"] == 0.0 and not bad["degenerate"]


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
    assert m["degenerate"] is False and m["raw"] is None and m["n_nonfinite"] == 0


def test_constant_scores_are_degenerate_at_the_base_rates():
    y = np.array([0, 1, 0, 0, 1], bool)  # 3 normal, 2 anomalies
    m = detection_metrics(y, np.full(5, 7.0))
    assert m["degenerate"] is True
    assert m["auroc"] == 0.5
    assert (m["aupr_in"], m["aupr_out"]) == (pytest.approx(0.6), pytest.approx(0.4))
    assert m["raw"]["auroc"] == 0.5  # sklearn agrees on exact ties
    assert is_degenerate(np.zeros(4)) and is_degenerate(np.full(3, -2.5))
    with pytest.raises(ValueError, match="both"):
        detection_metrics(np.zeros(4, bool), np.arange(4.0))
    with pytest.raises(ValueError, match="same shape"):
        detection_metrics(y, np.arange(4.0))


def test_float_noise_around_a_collapsed_distance_is_degenerate():
    """The λ = 50 fault: distances 7.1192585 that differ by 1e-7 (relative) rank perfectly by
    chance, and sklearn reports that noise as a detector."""
    y = np.array([0] * 8 + [1] * 2, bool)
    noise = np.array([0, -1, 1, 0, -2, 1, 0, -1, 3, 2]) * 1e-7  # anomalies on the noise's top
    s = 7.1192585 * (1 + noise)
    assert roc_auc_score(y, s) == 1.0  # what the record used to say
    m = detection_metrics(y, s)
    assert m["degenerate"] is True
    assert m["auroc"] == 0.5
    assert m["aupr_in"] == pytest.approx(0.8) and m["aupr_out"] == pytest.approx(0.2)
    assert m["raw"] == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0}


def test_tolerance_boundary_separates_noise_from_a_small_real_spread():
    y = np.array([0, 0, 1, 1], bool)
    base = 7.1192585
    # The largest |score| is base + spread, so the rule compares spread with RTOL × that.
    above = base + np.array([0.0, 1.0, 2.0, 3.0]) / 3 * (1.01 * DEGENERATE_RTOL * (base + 1e-4))
    m = detection_metrics(y, above)
    assert m["degenerate"] is False and m["auroc"] == 1.0 and m["raw"] is None
    below = base + np.array([0.0, 1.0, 2.0, 3.0]) / 3 * (0.99 * DEGENERATE_RTOL * base)
    assert detection_metrics(y, below)["degenerate"] is True
    # The tolerance is 64 float32 epsilons: a few ULPs of rounding in each code coordinate,
    # accumulated through the encoder and doubled by a difference, stay inside it.
    assert DEGENERATE_RTOL == 64 * FLOAT32_EPS == 2.0**-17


def test_latent_mean_of_codes_one_ulp_apart_is_degenerate_only_against_the_code_scale():
    """Tanh codes pinned just below ±1 that differ by one float32 ULP in a few entries: the
    distance to the mean code is itself pure rounding. Judged against its own tiny values it
    looks like a real spread; judged against the code length (score_scale) it is noise."""
    n, d = 40, 16
    corner = np.where(np.arange(d) % 2 == 0, 1.0, -1.0).astype(np.float32)
    z = np.tile(np.nextafter(corner, np.float32(0)), (n, 1))
    y = np.zeros(n, bool)
    y[:6] = True
    z[:6, 0] = np.nextafter(z[:6, 0], np.float32(0))  # the anomalies sit one ULP further in
    score = np.linalg.norm(z.astype(np.float64) - z.astype(np.float64).mean(0), axis=1)
    assert roc_auc_score(y, score) == 1.0
    assert not is_degenerate(score)  # its own scale is ~1e-8: relative spread of order 1
    scale = score_scale("latent_mean", z)
    assert scale == pytest.approx(np.sqrt(d), rel=1e-6)  # the code length, sqrt(16 · 1²)
    m = detection_metrics(y, score, scale=scale)
    assert m["degenerate"] is True and m["auroc"] == 0.5 and m["raw"]["auroc"] == 1.0


def test_score_scale_per_rule():
    z = np.array([[3.0, 4.0], [0.0, 0.0]])  # ||z|| = 5 and 0: RMS length sqrt(12.5)
    assert score_scale("latent_mean", z) == pytest.approx(np.sqrt(12.5))
    assert score_scale("latent_c", z, np.array([30.0, 40.0])) == pytest.approx(np.sqrt(12.5))
    # Squared distance to c: L × the largest ||z − c|| (here ||(0,0) − (6,8)|| = 10).
    assert score_scale("svdd", z, np.array([6.0, 8.0])) == pytest.approx(np.sqrt(12.5) * 10)
    assert score_scale("svdd", z) is None
    assert score_scale("reconstruction", z) is None
    assert score_scale("latent_mean", np.array([[np.nan, 1.0]])) is None


def test_tiny_codes_far_from_the_centre_are_not_noise():
    """Codes that have not grown yet are tiny (here 1e-7) but exact to float32's relative
    precision; their distances to a centre of norm 0.4 vary by about 1e-7, which is real
    information, not rounding: the noise scale is the codes' own length, not the centre's."""
    rng = np.random.default_rng(2)
    z = (1e-7 * rng.normal(size=(50, 16))).astype(np.float32)
    c = np.full(16, 0.1)
    y = np.zeros(50, bool)
    y[:5] = True
    z[:5] *= 3  # anomalies sit further out
    score = np.linalg.norm(z.astype(np.float64) - c, axis=1)
    assert (score.max() - score.min()) / score.max() < DEGENERATE_RTOL  # tiny next to ||c||
    m = detection_metrics(y, score, scale=score_scale("latent_c", z))
    assert m["degenerate"] is False and m["auroc"] == roc_auc_score(y, score)


def test_nonfinite_scores_rank_as_most_anomalous():
    # Normals 0.1, 0.3, inf; anomalies NaN, 0.2. NaN and inf tie at the top.
    # Pairs (anomaly, normal): (top,0.1)=1 (top,0.3)=1 (top,top)=½ (0.2,0.1)=1 (0.2,0.3)=0
    # (0.2,top)=0 → 3.5 / 6.
    y = np.array([False, True, False, True, False])
    s = np.array([0.1, np.nan, 0.3, 0.2, np.inf])
    m = detection_metrics(y, s)
    assert m["n_nonfinite"] == 2 and m["degenerate"] is False
    assert m["auroc"] == pytest.approx(3.5 / 6)
    # AUPR-out: top group {A, N} → P ½ at recall ½; then 0.2 (A) → P 2/4 at recall 1.
    assert m["aupr_out"] == pytest.approx(0.5)
    # AUPR-in (ranked by −score): 0.1 (N) P 1 at ⅓; 0.3 (N) P ⅔ at ⅔; top (N) P ⅗ at 1.
    assert m["aupr_in"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert m["auroc"] == detection_metrics(y, np.array([0.1, 9.0, 0.3, 0.2, 9.0]))["auroc"]


def test_nonfinite_beside_flat_scores_ranks_only_the_split():
    # The finite scores are float noise (tied); the NaN is the only ranking information.
    # Pairs: (NaN, n1)=1 (NaN, n2)=1 (tie, n1)=½ (tie, n2)=½ → 3/4.
    y = np.array([False, False, True, True])
    s = np.array([5.0, 5.0 * (1 + 1e-9), np.nan, 5.0 * (1 - 1e-9)])
    m = detection_metrics(y, s)
    assert m["degenerate"] is False and m["n_nonfinite"] == 1
    assert m["auroc"] == pytest.approx(0.75)
    assert not is_degenerate(s)


def test_all_nonfinite_scores_are_degenerate():
    y = np.array([0, 1, 0, 0], bool)
    m = detection_metrics(y, np.array([np.nan, np.inf, -np.inf, np.nan]))
    assert m == {"auroc": 0.5, "aupr_in": 0.75, "aupr_out": 0.25, "degenerate": True,
                 "raw": None, "n_nonfinite": 4}
    assert is_degenerate(np.full(3, np.nan))


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
    assert d2["dead_dims"] == 0.0  # collapsed, yet each dimension still varies (2e-5 of 0.5)
    same = latent_diagnostics(np.tile(c, (10, 1)), c)
    assert same["spread"] == 0 and same["effective_rank"] == 0 and same["collapsed"]
    assert same["dead_dims"] == 1.0


def test_dead_and_saturated_fractions():
    # 4 dimensions: one constant at the Tanh bound, one constant up to one float32 ULP, one
    # varying by 1e-4 only, one varying in (−0.5, 0.5).
    rng = np.random.default_rng(1)
    z = np.column_stack([np.full(100, 1.0), np.full(100, 0.2, np.float32).astype(np.float64),
                         np.full(100, 0.3), rng.uniform(-0.5, 0.5, 100)])
    z[::2, 1] = np.nextafter(np.float32(0.2), np.float32(1))  # rounding, not information
    z[:10, 2] += 1e-4  # small but far above rounding: alive
    rms = np.sqrt((z**2).mean())
    assert np.ptp(z[:, 1]) <= DEAD_RTOL * rms < np.ptp(z[:, 2])
    d = latent_diagnostics(z, bound=1.0)
    assert d["dead_dims"] == 0.5
    assert d["saturated"] == 0.25  # the first column: 100 of 400 entries at |z| ≥ 0.99
    assert latent_diagnostics(z)["saturated"] is None  # codes without a bound cannot saturate
    edge = np.array([[SATURATION_LEVEL, -SATURATION_LEVEL, np.nextafter(SATURATION_LEVEL, 0), 0.0]])
    assert latent_diagnostics(edge, bound=1.0)["saturated"] == 0.5


def test_every_dimension_dead_means_every_latent_distance_degenerate():
    """Walk 5: "100 % of the latent dimensions are constant up to float rounding" (by each
    dimension's std) beside distances to the mean from 2e-8 to 1e-4 that the metric rightly
    judged informative. Dead is now judged by each dimension's range, which bounds every
    latent distance's spread: all dead ⇒ degenerate."""
    rng = np.random.default_rng(5)
    y = np.zeros(3000, bool)
    y[:300] = True
    corner = np.ones((3000, 64))
    # codes along one direction (effective rank 1, as in the walk): std about 7e-6 per
    # dimension (dead by the old std rule), range about 5e-5 (alive by the new one)
    u = np.full(64, 1 / 8.0)
    noisy = corner + 5.6e-5 * rng.normal(size=(3000, 1)) * u
    d = latent_diagnostics(noisy)
    dist = np.linalg.norm(noisy - noisy.mean(0), axis=1)
    assert (noisy.std(0) <= DEAD_RTOL).all()  # what the std rule called dead
    assert not detection_metrics(y, dist, scale=score_scale("latent_mean", noisy))["degenerate"]
    assert d["dead_dims"] == 0.0
    # every range at the dead limit: the distances are degenerate, as the words say
    edge = corner + DEAD_RTOL * rng.uniform(0, 1, size=corner.shape)
    assert latent_diagnostics(edge)["dead_dims"] == 1.0
    dist = np.linalg.norm(edge - edge.mean(0), axis=1)
    assert detection_metrics(y, dist, scale=score_scale("latent_mean", edge))["degenerate"]


def test_tiny_fresh_codes_are_not_dead():
    # Right after initialisation every code is tiny (std ~2e-5) yet varies: dead is relative.
    z = 2e-5 * np.random.default_rng(3).normal(size=(200, 8))
    assert latent_diagnostics(z)["dead_dims"] == 0.0
    assert latent_diagnostics(np.zeros((5, 3)))["dead_dims"] == 1.0


def test_rank_one_codes_have_effective_rank_one_and_count_as_collapsed():
    # Codes spread widely but along one line: distances carry one number, the flag says so.
    z = np.outer(np.linspace(-1, 1, 100), np.ones(4))
    d = latent_diagnostics(z, c=np.full(4, 0.1))
    assert d["effective_rank"] == pytest.approx(1.0)
    assert d["collapse_ratio"] > 1 and d["collapsed"]
    # Without a centre there is no SVDD pull to collapse onto: the flag stays off.
    assert not latent_diagnostics(z)["collapsed"]
