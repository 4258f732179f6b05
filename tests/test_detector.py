"""The PyOD-style Detector on arrays, thresholds, ranks and the array input rules (issue 10)."""

import re

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from iaead_core.data import load_pool
from iaead_core.data.image_set import (TooFewImagesError, array_to_model_input, image_set_from_array,
                                       infer_input_range)
from iaead_core.detector import Detector, ThresholdError, choose_threshold, flag, rank, score_images
from iaead_core.evaluation.metrics import detection_metrics
from iaead_core.runs import RunError, load_run
from iaead_core.training.restore import restore_run
TINY = dict(epochs=2, warmup_epochs=1, width=4, latent_dim=8, batch_size=32)


@pytest.fixture(scope="module")
def sneakers(shared_data_root):
    """300 Fashion-MNIST sneakers + 30 other clothes, uint8 (330, 28, 28), and the truth."""
    x, y = load_pool("fashion-mnist", shared_data_root)
    rng = np.random.default_rng(1)
    idx = rng.permutation(np.concatenate([rng.choice(np.flatnonzero(y == 7), 300, replace=False),
                                          rng.choice(np.flatnonzero(y != 7), 30, replace=False)]))
    return np.ascontiguousarray(x[idx, 0]), y[idx] != 7


@pytest.fixture(scope="module")
def fitted(sneakers, tmp_path_factory):
    images, _ = sneakers
    runs = tmp_path_factory.mktemp("runs")
    return Detector("iaead", "quick", contamination=0.1, runs_root=runs, device="cpu").fit(images)


# --------------------------------------------------------------------------- pure functions

def test_threshold_rules_on_hand_made_scores():
    s = np.arange(1.0, 11.0)  # 1..10
    t = choose_threshold(s, "contamination", 0.2, rule="r")
    assert t.value == pytest.approx(8.2) and t.describe() == "contamination 0.2"  # 1 + 0.8·9
    assert flag(s, t.value).tolist() == [0] * 8 + [1, 1]
    assert choose_threshold(s, "quantile", 0.5).value == pytest.approx(5.5)
    assert choose_threshold(np.array([1.0, np.nan, 3.0]), "quantile", 0.5).value == 2.0
    for kind, p in (("contamination", 0.0), ("contamination", 0.6), ("quantile", 1.0),
                    ("quantile", None), ("median", 0.5)):
        with pytest.raises(ThresholdError):
            choose_threshold(s, kind, p)
    assert rank(np.array([0.5, np.nan, 2.0, 2.0])).tolist() == [4, 1, 2, 3]
    assert flag(np.array([np.nan, 1.0]), 5.0).tolist() == [1, 0]  # NaN is flagged


@pytest.mark.parametrize("x,expected", [
    (np.array([[True, False]]), (0.0, 1.0)),
    (np.array([[0, 1]], np.uint8), (0.0, 1.0)),
    (np.array([[0, 200]], np.uint8), (0.0, 255.0)),
    (np.array([[0, 4000]], np.uint16), (0.0, 65535.0)),
    (np.array([[0.0, 0.7]]), (0.0, 1.0)),
    (np.array([[-0.3, 0.7]], np.float32), (-1.0, 1.0)),
    (np.array([[3.5, 250.0]]), (0.0, 255.0)),
    (np.array([[-5.0, 20.0]]), (-5.0, 20.0)),
    (np.array([[-7, 300]], np.int32), (-7.0, 300.0)),
    (np.full((2, 2), -4.0), (-4.0, -3.0)),
])
def test_input_range_rule(x, expected):
    assert infer_input_range(x) == expected


def test_array_input_shapes_fit_and_channels():
    ones = np.ones((2, 16, 32))  # wide pictures, value 1 in a (0, 1) range → +1
    pad = array_to_model_input(ones, (0.0, 1.0), fit="pad")
    assert pad.shape == (2, 1, 32, 32) and pad.dtype == torch.float32
    assert torch.all(pad[:, :, :8] == -1) and torch.all(pad[:, :, 24:] == -1)
    assert torch.allclose(pad[:, :, 8:24], torch.ones(1))
    assert torch.allclose(array_to_model_input(ones, (0.0, 1.0), fit="crop"), torch.ones(1))
    rgb = np.zeros((1, 3, 32, 32), np.uint8)
    rgb[:, 0] = 255
    grey = array_to_model_input(rgb, (0, 255), channels=1)
    assert torch.allclose(grey, torch.full((1, 1, 32, 32), 0.299 * 2 - 1))  # luma of red
    assert torch.equal(array_to_model_input(ones[:, None], (0, 1), channels=3)[:, 1],
                       array_to_model_input(ones, (0, 1))[:, 0])
    with pytest.raises(ValueError, match="channels last"):
        array_to_model_input(np.zeros((2, 32, 32, 3)), (0, 1))
    for bad in (np.zeros((2, 2, 8, 8)), np.zeros((2, 4, 8, 8)), np.zeros((8, 8)),
                np.zeros((0, 8, 8))):
        with pytest.raises(ValueError):
            array_to_model_input(bad, (0, 1))
    with pytest.raises(TooFewImagesError, match="49 sample"):
        image_set_from_array(np.zeros((49, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        infer_input_range(np.array([np.nan, 1.0]))


def test_parameters_are_stored_as_given_and_validated_at_fit():
    tiny = np.zeros((4, 8, 8), np.uint8)
    bad = (dict(contamination=0.0), dict(contamination=0.5), dict(contamination="0.1"),
           dict(method="knn"), dict(preset="huge"), dict(image_fit="stretch"), dict(channels=2),
           dict(lam=-1.0), dict(seed=-1), dict(image_shape=(1, 0, 8)),
           dict(image_shape=(1, -1, -1)), dict(config={"no_such_field": 1}),
           dict(config={"max_samples": 10}), dict(config={"seed": 3}),
           dict(epochs=2, config={"epochs": 3}), dict(config=[("lr", 0.1)]))
    for kw in bad:
        det = Detector(**kw)  # scikit-learn's rule: the constructor only stores
        assert all(det.get_params()[k] == v for k, v in kw.items())
        with pytest.raises(ValueError):
            det.fit(tiny)
        assert not hasattr(det, "method_")
    with pytest.raises(TypeError):  # no **kwargs: every setting is a named parameter
        Detector(no_such_field=1)
    # Before: float("0.1") let a string through (issue 18); refused at fit, naming the value.
    for bad in ("0.1", b"0.1", None, [0.1]):
        with pytest.raises(ValueError, match=r"contamination .* got " + re.escape(repr(bad))):
            Detector(contamination=bad).build_config()
    with pytest.raises(NotFittedError):
        Detector().decision_function(np.zeros((3, 32, 32)))
    # The config built at fit: the preset's values, then the named parameters, then config.
    cfg = Detector("deep-svdd", contamination=0.2, seed=5, epochs=4, warmup_epochs=2,
                   config={"svdd_lr": 0.01, "init": "pytorch"}).build_config()
    assert (cfg.method, cfg.rho, cfg.seed, cfg.epochs, cfg.warmup_epochs, cfg.svdd_lr,
            cfg.init, cfg.width) == ("deep-svdd", 0.2, 5, 4, 2, 0.01, "pytorch", 16)


# ------------------------------------------------------------------------- trained detector

@pytest.mark.slow  # the module's detector: IAEAD, quick preset, 330 images
def test_fitted_attributes_follow_pyod(fitted, sneakers):
    images, truth = sneakers
    s = fitted.decision_scores_
    assert s.shape == (330,) and s.dtype == np.float64 and np.isfinite(s).all()
    assert fitted.rule_ == "latent_mean" and fitted.channels_ == 1
    assert fitted.input_range_ == (0.0, 255.0) and fitted.image_fit_ == "protocol"
    assert fitted.input_shape_ == (1, 28, 28) and fitted.n_features_in_ == 784
    assert fitted.threshold_ == pytest.approx(np.quantile(s, 0.9))
    assert fitted.labels_.tolist() == (s > fitted.threshold_).astype(int).tolist()
    assert fitted.labels_.sum() == 33  # the top 10 % of 330 distinct scores
    # Real data: other clothes among sneakers score higher (measured AUROC ≈ 0.96).
    assert detection_metrics(truth, s)["auroc"] > 0.85


@pytest.mark.slow  # the module's detector: IAEAD, quick preset, 330 images
def test_decision_function_matches_training_scores_and_input_forms(fitted, sneakers):
    images, _ = sneakers
    s = fitted.decision_function(images)
    np.testing.assert_allclose(s, fitted.decision_scores_, rtol=1e-4, atol=1e-6)
    assert (fitted.predict(images) == fitted.labels_).mean() >= 0.99
    # The same pictures in other forms score the same.
    np.testing.assert_allclose(fitted.decision_function(images[:, None]), s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fitted.decision_function(images.astype(np.float32)), s,
                               rtol=1e-4, atol=1e-5)
    # New images are read in the training range (0..255 here); 0..1 values draw a warning.
    with pytest.warns(UserWarning, match="fitted on images in"):
        dark = fitted.decision_function(images / 255.0)
    assert not np.allclose(dark, s)
    np.testing.assert_allclose(fitted.decision_function(torch.from_numpy(images)), s,
                               rtol=1e-5, atol=1e-6)
    # The protocol pads 28×28 by 2 black pixels: the padded 32×32 pictures are the same input.
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    np.testing.assert_array_equal(fitted.decision_function(padded), s)
    with pytest.raises(ValueError, match="1-channel"):
        fitted.decision_function(np.full((2, 3, 32, 32), 200, np.uint8))


def test_new_images_use_the_training_mean_latent(fitted, sneakers):
    images, _ = sneakers
    one = fitted.decision_function(images[:1])
    # Scored alone, an image keeps the score it has among the training images (eq. 9 with the
    # training set's mean code as reference), not 0 (its distance to its own mean).
    assert one[0] == pytest.approx(fitted.decision_scores_[0], rel=1e-4)
    X = array_to_model_input(images[:5], (0, 255))
    own_mean = score_images(fitted.method_, X, rule="latent_mean",
                            reference_latent=fitted.latent_mean_, epoch=fitted.epoch_)
    np.testing.assert_allclose(own_mean, fitted.decision_scores_[:5], rtol=1e-4)
    with pytest.raises(ValueError, match="reference"):
        score_images(fitted.method_, X, rule="latent_mean", reference_latent=None, epoch=0)
    with pytest.raises(ValueError, match="reports no"):
        score_images(fitted.method_, X, rule="svdd", reference_latent=None, epoch=fitted.epoch_)


def test_saved_run_reloads_as_a_detector(fitted, sneakers):
    images, _ = sneakers
    run = load_run(fitted.run_dir_)
    assert run.config["dataset"] == "array" and run.meta["data"]["input_range"] == [0.0, 255.0]
    assert run.meta["data"]["manifest"] is None and not (run.dir / "images.csv").exists()
    again = Detector.from_run(run.run_id, runs_root=run.dir.parent)
    assert again.threshold_ == pytest.approx(fitted.threshold_)
    np.testing.assert_allclose(again.decision_function(images[:50]),
                               fitted.decision_function(images[:50]), rtol=1e-5, atol=1e-6)
    with pytest.raises(RunError, match="in-memory array"):
        restore_run(run)
    R = fitted.method_.R
    t = fitted.threshold("radius")
    assert (t.kind, t.rule, t.value) == ("radius", "latent_c", pytest.approx(R)) and R > 0


def test_radius_threshold_only_where_a_radius_is_learned(sneakers):
    images, _ = sneakers
    cae = Detector("cae", **TINY).fit(images[:60])
    with pytest.raises(ThresholdError, match="iaead and deep-svdd"):
        cae.threshold("radius")
    one_class = Detector("deep-svdd", objective="one-class", **TINY).fit(images[:60])
    with pytest.raises(ThresholdError, match="one-class"):
        one_class.threshold("radius")
    soft = Detector("deep-svdd", objective="soft-boundary", nu=0.1, **TINY).fit(images[:60])
    t = soft.threshold("radius")
    assert (t.rule, t.value) == ("svdd", 0.0) and t.param == pytest.approx(soft.method_.R)
    assert soft.method_.R > 0
    # Flagged by R ⇔ the code lies outside the sphere: ||z − c|| > R.
    X = torch.from_numpy(images[:60, None].astype(np.float32)) * (2 / 255) - 1
    with torch.no_grad():  # the protocol's 28 → 32 padding
        z = soft.method_.model.encode(torch.nn.functional.pad(X, (2, 2, 2, 2), value=-1.0))
    outside = ((z.double() - soft.method_.c.double()).norm(dim=1) > soft.method_.R).numpy()
    flags = flag(soft.rule_scores(images[:60], rule="svdd"), t.value)
    assert (flags == outside).mean() >= 0.95
