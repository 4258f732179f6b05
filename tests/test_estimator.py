"""The Detector as a scikit-learn / PyOD estimator (issue 20): the contract (clone, get_params /
set_params, pickling, fit_predict, probabilities), the input forms, one preparation (the
protocol's) shared with the Trainer, pipelines, a per-class loop, the sweep of docs/estimator.md,
and scikit-learn's own estimator checks."""

from __future__ import annotations

import inspect
import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.special import erf
from scipy.stats import binom
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from iaead_core import Trainer, preset_config
from iaead_core.data import load_pool, make_contaminated, to_model_input
from iaead_core.data.image_set import array_to_model_input, image_set_from_array
from iaead_core.detector import EXPECTED_FAILED_CHECKS, Detector
from iaead_core.experiments import (LocalExecutor, load_spec, plan_experiment, results_frame,
                                    run_experiment)
from iaead_core.runs import load_run

#: Tiny network, two epochs (the SVDD term on in the second): seconds per fit on a CPU.
TINY = dict(epochs=2, warmup_epochs=1, width=4, latent_dim=8, batch_size=32)


@pytest.fixture(scope="module")
def draw(real_digits):
    """MNIST digit 0 at ρ = 10 %, 300 images: the protocol's set and its raw uint8 digits
    (300, 1, 28, 28) in the same order."""
    data = make_contaminated(real_digits.dataset, 0, rho=0.1, seed=0,
                             data_root=real_digits.data_root, max_samples=300)
    pool, _ = load_pool(real_digits.dataset, real_digits.data_root)
    return data, np.ascontiguousarray(pool[data.indices])


@pytest.fixture(scope="module")
def fitted(draw):
    return Detector(contamination=0.1, device="cpu", **TINY).fit(draw[1])


# ------------------------------------------------------------------ one preparation: the protocol

def test_the_protocol_preparation_is_make_contaminated_s(draw):
    data, raw = draw
    # uint8 28×28 digits in any form become exactly the protocol's tensor (2 pixels of padding)
    for form in (raw, raw[:, 0], raw.reshape(len(raw), -1), torch.from_numpy(raw)):
        assert torch.equal(array_to_model_input(form, (0, 255)), data.images)
    assert torch.equal(to_model_input(raw), data.images)
    padded = np.pad(raw, ((0, 0), (0, 0), (2, 2), (2, 2)))  # 32×32 images are kept as they are
    assert torch.equal(array_to_model_input(padded, (0, 255)), data.images)
    # The other fits rescale: a visible choice, recorded with the set.
    pad = image_set_from_array(raw, fit="pad")
    assert not torch.equal(pad.images, data.images)
    s = image_set_from_array(raw).summary()
    assert (s["fit"], s["input_shape"], s["input_range"]) == ("protocol", [1, 28, 28], [0.0, 255.0])
    # Other sizes: the protocol is "pad" there.
    small = raw[:5, :, ::2, ::2]  # 14×14
    assert torch.equal(array_to_model_input(small, (0, 255)),
                       array_to_model_input(small, (0, 255), fit="pad"))


def test_flat_arrays_need_a_square_or_an_image_shape():
    rgb = np.zeros((4, 3 * 32 * 32), np.uint8)
    with pytest.raises(ValueError, match=r"image_shape=\(3, 32, 32\)"):  # the hint
        array_to_model_input(rgb, (0, 255))
    assert array_to_model_input(rgb, (0, 255), image_shape=(3, 32, 32)).shape == (4, 3, 32, 32)
    assert array_to_model_input(rgb, (0, 255), image_shape=(3, -1, 32)).shape == (4, 3, 32, 32)
    rows = np.arange(12.0).reshape(4, 3)  # tabular rows as one-pixel-high images
    assert array_to_model_input(rows, (0, 11), image_shape=(1, 1, -1)).shape == (4, 1, 32, 32)
    for shape in ((1, 2, 2), (1, -1, -1), (1, 0, 3), (1, 3), "1x1x3"):
        with pytest.raises(ValueError, match="image_shape"):
            array_to_model_input(rows, (0, 11), image_shape=shape)
    with pytest.raises(ValueError, match="Accepted forms: "):
        array_to_model_input(np.zeros((2, 5)), (0, 1))


def test_the_detector_on_raw_digits_equals_the_trainer(draw, fitted, tmp_path):
    """Same images, same method, same seed: one number, whichever form the digits come in."""
    data, raw = draw
    cfg = preset_config("quick", "iaead", rho=0.1, device="cpu", **TINY)
    result = Trainer(cfg, data=data, runs_root=False).run()
    reference = result.evaluation.scores["latent_mean"]
    np.testing.assert_array_equal(fitted.decision_scores_, reference)
    for form in (raw[:, 0], raw.reshape(len(raw), -1)):
        det = Detector(contamination=0.1, device="cpu", runs_root=tmp_path, **TINY).fit(form)
        np.testing.assert_array_equal(det.decision_scores_, reference)
    data_meta = load_run(det.run_dir_).meta["data"]  # the preparation is recorded in the run
    assert (data_meta["fit"], data_meta["input_shape"]) == ("protocol", [1, 28, 28])
    assert det.config_.rho == 0.1 and det.config_.to_dict()["epochs"] == cfg.epochs
    # Rescaling instead is a visible choice: other scores, and "pad" in the run.
    pad = Detector(contamination=0.1, device="cpu", image_fit="pad", runs_root=tmp_path,
                   **TINY).fit(raw)
    assert not np.allclose(pad.decision_scores_, reference)
    assert load_run(pad.run_dir_).meta["data"]["fit"] == "pad" and pad.image_fit_ == "pad"


# -------------------------------------------------------------------------- the estimator contract

def test_clone_and_set_params_take_effect_at_fit(draw, fitted):
    _, raw = draw
    base = Detector(contamination=0.1, device="cpu", **TINY)
    params = base.get_params()
    assert set(params) == set(inspect.signature(Detector).parameters)
    assert params["contamination"] == 0.1 and params["epochs"] == 2 and params["config"] is None
    det = clone(base)
    det.seed = 7                          # an attribute set after construction counts
    det.set_params(contamination=0.2)     # and so does set_params
    det.fit(raw)
    assert (det.config_.seed, det.config_.rho) == (7, 0.2)
    s = det.decision_scores_
    assert det.labels_.sum() == (s > np.quantile(s, 0.8)).sum() == 60  # top 20 % of 300
    assert not np.allclose(det.decision_scores_, fitted.decision_scores_)  # another seed
    assert base.get_params() == params and not hasattr(base, "method_")
    again = clone(det).fit(raw)           # the same parameters train the same network
    np.testing.assert_array_equal(again.decision_scores_, det.decision_scores_)
    unfitted = clone(fitted)
    assert unfitted.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(unfitted)
    with pytest.raises(NotFittedError):
        unfitted.predict(raw[:2])
    text = " ".join(repr(det).split())  # scikit-learn's repr: the parameters set, as set
    assert text.startswith("Detector(") and "contamination=0.2" in text and "seed=7" in text


def test_pickle_round_trip(draw, fitted):
    _, raw = draw
    back = pickle.loads(pickle.dumps(fitted))
    assert back.get_params() == fitted.get_params() and back.threshold_ == fitted.threshold_
    np.testing.assert_array_equal(back.decision_scores_, fitted.decision_scores_)
    np.testing.assert_array_equal(back.decision_function(raw[:50]),
                                  fitted.decision_function(raw[:50]))
    np.testing.assert_array_equal(back.predict(raw[:50]), fitted.predict(raw[:50]))


def test_fit_predict_probabilities_and_confidence(draw, fitted):
    _, raw = draw
    labels = clone(fitted).fit_predict(raw)
    np.testing.assert_array_equal(labels, fitted.labels_)
    assert labels.dtype == np.int64 and labels.sum() == 30  # the top 10 % of 300
    s = fitted.decision_function(raw[:40])
    np.testing.assert_allclose(s, fitted.decision_scores_[:40], rtol=1e-4)  # inductive ≈ training
    train = fitted.decision_scores_
    proba = fitted.predict_proba(raw[:40])
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(proba[:, 1], np.clip((s - train.min()) / np.ptp(train), 0, 1))
    unify = fitted.predict_proba(raw[:40], method="unify")
    np.testing.assert_allclose(unify[:, 1],
                               np.clip(erf((s - train.mean()) / (train.std() * np.sqrt(2))), 0, 1))
    with pytest.raises(ValueError, match="linear"):
        fitted.predict_proba(raw[:2], method="softmax")
    conf = fitted.predict_confidence(raw[:40])
    assert conf.shape == (40,) and ((conf >= 0) & (conf <= 1)).all()
    # By hand (Perini et al. 2020) for the most and the least anomalous of these 40.
    for i in (int(np.argmax(s)), int(np.argmin(s))):
        k = int((train <= s[i]).sum())
        c = 1 - binom.cdf(300 - 30, 300, (1 + k) / 302)
        assert conf[i] == pytest.approx(c if s[i] > fitted.threshold_ else 1 - c)
    p2, c2 = fitted.predict_proba(raw[:40], return_confidence=True)
    np.testing.assert_array_equal(p2, proba)
    np.testing.assert_array_equal(c2, conf)


def test_probabilities_match_pyod(fitted, draw):
    """The same numbers as PyOD's own predict_proba / predict_confidence on these scores."""
    pyod_base = pytest.importorskip("pyod.models.base", reason="PyOD is an optional benchmark "
                                    "dependency (requirements-bench.txt)")

    class Scores(pyod_base.BaseDetector):  # a PyOD detector whose scores are given
        def __init__(self, contamination=0.1):
            super().__init__(contamination=contamination)

        def fit(self, X, y=None):
            self._set_n_classes(y)
            self.decision_scores_ = fitted.decision_scores_
            self._process_decision_scores()
            return self

        def decision_function(self, X):
            return np.asarray(X, np.float64).ravel()

    _, raw = draw
    s = fitted.decision_function(raw[:40])
    ref = Scores(contamination=0.1).fit(None)
    assert ref.threshold_ == pytest.approx(fitted.threshold_)
    for method in ("linear", "unify"):
        np.testing.assert_allclose(fitted.predict_proba(raw[:40], method=method),
                                   ref.predict_proba(s[:, None], method=method))
    np.testing.assert_allclose(fitted.predict_confidence(raw[:40]),
                               ref.predict_confidence(s[:, None]))


def test_input_forms_after_fit(draw, fitted):
    _, raw = draw
    s = fitted.decision_function(raw[:5])
    np.testing.assert_array_equal(fitted.decision_function(raw[:5, 0]), s)
    np.testing.assert_array_equal(fitted.decision_function(raw[:5].reshape(5, -1)), s)
    np.testing.assert_array_equal(fitted.decision_function(torch.from_numpy(raw[:5])), s)
    one = fitted.decision_function(raw[0, 0])  # a single (H, W) image of the fitted size
    assert one.shape == (1,) and one[0] == pytest.approx(s[0], rel=1e-5)
    with pytest.raises(ValueError, match="784 features"):
        fitted.decision_function(np.zeros((2, 100)))
    with pytest.raises(ValueError, match="Reshape your data"):
        fitted.decision_function(raw[0, 0, 0])
    with pytest.raises(ValueError, match="channels last"):
        fitted.decision_function(np.zeros((2, 28, 28, 3)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fitted.decision_function(np.zeros((1, 2, 3, 4, 5)))
    with pytest.raises(ValueError, match="1-channel"):
        fitted.decision_function(np.full((2, 3, 28, 28), 200, np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        fitted.decision_function(np.full((2, 28, 28), np.nan))


# ---------------------------------------------------------------------------------- the ecosystem

def test_a_pipeline_with_a_preprocessing_step(draw):
    """docs/estimator.md's pipeline: min-max scaling of each pixel, then the detector."""
    _, raw = draw
    X = raw.reshape(len(raw), -1)
    pipe = make_pipeline(MinMaxScaler(), Detector(contamination=0.1, device="cpu", **TINY))
    pipe.fit(X)
    scaled = MinMaxScaler().fit_transform(X)
    direct = Detector(contamination=0.1, device="cpu", **TINY).fit(scaled)
    assert pipe[-1].input_range_ == (0.0, 1.0)
    np.testing.assert_array_equal(pipe[-1].decision_scores_, direct.decision_scores_)
    np.testing.assert_array_equal(pipe.decision_function(X[:50]),
                                  direct.decision_function(scaled[:50]))
    np.testing.assert_array_equal(pipe.predict(X[:50]), direct.predict(scaled[:50]))
    np.testing.assert_array_equal(clone(pipe).fit_predict(X), direct.labels_)
    pipe.set_params(detector__contamination=0.2).fit(X)
    assert pipe[-1].labels_.sum() == 60
    back = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(back.decision_function(X[:20]), pipe.decision_function(X[:20]))


def test_clone_in_a_per_class_loop(real_digits):
    """docs/estimator.md's loop: one clone per normal class, each trained on its own draw."""
    pool, _ = load_pool(real_digits.dataset, real_digits.data_root)
    base = Detector(contamination=0.1, device="cpu", **TINY)
    results = {}
    for digit in (0, 1):
        data = make_contaminated(real_digits.dataset, digit, rho=0.1, seed=0,
                                 data_root=real_digits.data_root, max_samples=200)
        det = clone(base).fit(pool[data.indices])
        results[digit] = (det, roc_auc_score(data.is_anomaly, det.decision_scores_), data)
    assert not hasattr(base, "method_")  # the template stays unfitted
    (d0, auc0, data0), (d1, auc1, _) = results[0], results[1]
    assert d0 is not d1 and d0.method_ is not d1.method_
    assert d0.labels_.sum() == d1.labels_.sum() == 20 and 0 <= auc0 <= 1 and 0 <= auc1 <= 1
    # Nothing leaks from one class's fit into the next: a fresh detector repeats class 0.
    fresh = Detector(**base.get_params()).fit(pool[data0.indices])
    np.testing.assert_array_equal(fresh.decision_scores_, d0.decision_scores_)


def test_the_sweep_of_the_docs_runs(real_digits, tmp_path):
    """docs/estimator.md's λ sweep with the experiment runner (labels used only to report)."""
    spec = load_spec({"name": "lambda-sweep", "datasets": [real_digits.dataset], "classes": [0],
                      "methods": ["iaead"], "lam": [0, 5e-5], "seeds": 1,
                      "config": {**TINY, "max_samples": 200}})
    summary = run_experiment(spec, LocalExecutor(device="cpu", threads=1), root=tmp_path,
                             data_root=str(real_digits.data_root))
    assert (summary.total, summary.failed) == (2, 0)
    plan = plan_experiment(spec, root=tmp_path, data_root=str(real_digits.data_root))
    frame = results_frame(plan)
    assert sorted(frame["lam"]) == [0, 5e-5] and (frame["state"] == "completed").all()
    assert frame["auroc"].between(0, 1).all()


# ------------------------------------------------------------------ scikit-learn's estimator checks

@parametrize_with_checks(
    # Random tabular rows read as one-pixel-high images; PyTorch's initialisation so that the
    # scores after two epochs are not microscopic (the released one's gain of 0.02 makes them so).
    [Detector(image_shape=(1, 1, -1), device="cpu", epochs=2, warmup_epochs=1, width=4,
              latent_dim=8, batch_size=16, config={"init": "pytorch"})],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():  # the checks fit on 20–300 rows: "fewer than 50 images"
        warnings.filterwarnings("ignore", message=".*too few to learn what is normal")
        check(estimator)
