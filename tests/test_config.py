"""TrainConfig validation in one place, presets, and when the paper's number may stand beside a
run (iaead_core.config, iaead_core.evaluation.paper)."""

import dataclasses
import math
import re
import subprocess
import sys

import pytest

from iaead_core.config import (METHOD_NAMES, NUMERIC_RULES, PRESETS, TrainConfig, preset_config,
                               scaled_config)
from iaead_core.evaluation.paper import (PAPER_BEST_LAM, PaperReference, paper_reference,
                                         protocol_differences)
def numeric_fields() -> list[str]:
    """Every TrainConfig field whose annotation admits an int or a float (bool excluded), read
    from the dataclass itself: a numeric field added later is picked up here automatically."""
    return [f.name for f in dataclasses.fields(TrainConfig)
            if re.search(r"\b(int|float)\b", str(f.type))]


NUMERIC = numeric_fields()


def test_numeric_fields_are_found():
    # The derivation itself: these fields exist today and must be among those found.
    assert {"rho", "lam", "nu", "epochs", "lr", "seed", "max_samples", "normal_class"} <= set(NUMERIC)
    assert "svdd_bias" not in NUMERIC and "dataset" not in NUMERIC


@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_field_has_a_rule(name):
    assert name in NUMERIC_RULES, f"TrainConfig.{name} has no validation rule in NUMERIC_RULES"


def test_no_rule_without_a_field():
    assert set(NUMERIC_RULES) == set(NUMERIC)


def _bad(name: str, value) -> str:
    with pytest.raises(ValueError) as info:
        TrainConfig(**{name: value}).validate()
    msg = str(info.value)
    assert msg.startswith(name), msg  # the message names the field first ...
    assert NUMERIC_RULES[name].allowed() in msg  # ... and the allowed values
    return msg


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused_at_once(name, value):
    _bad(name, value)


def _outside(rule) -> list:
    """Values just outside a rule's range."""
    out = []
    step = 1 if rule.kind is int else 1e-9
    if rule.low is not None:
        out.append(rule.kind(rule.low) if rule.low_open else rule.kind(rule.low - step) if rule.kind is int
                   else rule.low - max(step, abs(rule.low) * 1e-9))
    if rule.high is not None:
        out.append(rule.kind(rule.high) if rule.high_open else
                   (int(rule.high) + 1 if rule.kind is int else rule.high + max(step, abs(rule.high) * 1e-9)))
    return out


@pytest.mark.parametrize("name", NUMERIC)
def test_values_out_of_range_are_refused(name):
    rule = NUMERIC_RULES[name]
    assert rule.low is not None or rule.high is not None, f"{name}: a rule with no range"
    for value in _outside(rule):
        msg = _bad(name, value)
        assert repr(value) in msg


@pytest.mark.parametrize("name", NUMERIC)
def test_wrong_types_are_refused(name):
    rule = NUMERIC_RULES[name]
    _bad(name, True)  # a bool is not a number here
    _bad(name, [1])
    if not rule.names_ok:
        _bad(name, "1")  # a string that looks like a number is still a string
    if rule.kind is int:
        msg = _bad(name, 2.5)
        assert "(a float)" in msg
    if not rule.none_ok:
        _bad(name, None)


@pytest.mark.parametrize("name", NUMERIC)
def test_bounds_and_defaults_are_accepted(name):
    rule = NUMERIC_RULES[name]
    TrainConfig().validate()  # every default is valid
    for bound, is_open in ((rule.low, rule.low_open), (rule.high, rule.high_open)):
        if bound is not None and not is_open:
            value = rule.kind(bound)
            if name == "max_samples":
                value = 10  # the smallest size that holds an anomaly at ρ = 0.1
            TrainConfig(**{name: value}).validate()


# The rules themselves, by hand: the ranges the method and the code need (docs/method.md).
@pytest.mark.parametrize("name,ok,bad", [
    ("rho", [0.05, 0.25, 0.4999], [0.0, 0.5, -0.1]),          # ρ in (0, 0.5): anomalies are a minority
    ("lam", [0.0, 5e-5, 1e6], [-1e-9]),                      # λ = 0 is the CAE
    ("nu", [None, 1.0, 0.1, 1e-3], [0.0, 1.0001]),           # ν in (0, 1]; None = method default
    ("epochs", [1, 250, 10_000], [0, 10_001, 99999999999999999999]),
    ("warmup_epochs", [0, 20], [-1, 10_001]),
    ("lr", [1e-4, 0.1], [0.0]),
    ("lr_step", [1], [0, 10_001]),
    ("lr_gamma", [0.1, 1.0], [0.0, 1.5]),                    # a drop, not a rise
    ("batch_size", [2, 256, 16_384], [0, 1, 16_385]),        # BatchNorm needs 2 images
    ("svdd_lr", [1e-4], [0.0]),
    ("svdd_weight_decay", [0.0, 5e-7], [-5e-7]),
    ("width", [1, 64, 512], [0, 513, 100_000]),
    ("latent_dim", [1, 256, 4096], [0, 4097]),
    ("max_samples", [None, 10, 3000], [0, -5, 10**6 + 1]),
    ("seed", [0, 2**32 - 1], [-1, 2**32]),                   # numpy's seeding range
    ("eval_batch_size", [1], [0, 65_537]),
    ("normal_class", [0, 9, "3", "t-shirt"], [-1, 10]),
])
def test_rule_ranges(name, ok, bad):
    for value in ok:
        kwargs = {"dataset": "fashion-mnist"} if value == "t-shirt" else {}
        TrainConfig(**{name: value}, **kwargs).validate()
    for value in bad:
        with pytest.raises(ValueError, match=re.escape(name)):
            TrainConfig(**{name: value}).validate()


def test_every_count_has_a_sane_maximum():
    # Before: epochs, batch sizes, width, code size and set size had no upper bound
    # (`--epochs 99999999999999999999` was accepted; `--width 100000` crashed in torch).
    for name, rule in NUMERIC_RULES.items():
        if rule.kind is int and name not in ("normal_class",):
            assert rule.high is not None, f"{name} has no maximum"
    with pytest.raises(ValueError) as info:
        TrainConfig(batch_size=1).validate()
    assert str(info.value) == ("batch_size must be a whole number in [2, 16384]; got 1 (BatchNorm "
                               "normalises over a batch, so it needs 2 images or more)")
    with pytest.raises(ValueError, match=r"^epochs must be a whole number in \[1, 10000\]; got 'x'"):
        scaled_config("quick", "iaead", epochs="x")  # before: a TypeError from arithmetic


def test_lambda_nan_refused_before_training():
    # Before: λ = nan passed validate() and the run failed five epochs later with a NaN loss.
    with pytest.raises(ValueError, match=r"^lam must be a finite number ≥ 0; got nan$"):
        preset_config("quick", lam=float("nan"))
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0; got inf$"):
        preset_config("quick", lr=float("inf"))


@pytest.mark.parametrize("kwargs,needle", [
    (dict(method="nope"), "unknown method 'nope'; choose one of iaead, cae, deep-svdd"),
    (dict(objective="both"), "unknown objective"),
    (dict(device="tpu"), "unknown device"),
    (dict(init="zeros"), "unknown init"),
    (dict(dataset="imagenet"), "unknown dataset 'imagenet'"),
    (dict(dataset="cifar10", normal_class="zebra"), "normal_class: unknown class 'zebra'"),
    (dict(method="deep-svdd", epochs=5, warmup_epochs=5), "warmup_epochs (pre-training) < epochs"),
    (dict(max_samples=9), "max_samples=9 is too small for rho=0.1"),
    (dict(rho=0.3, max_samples=3), "the minimum is 4"),
    (dict(svdd_bias=1), "svdd_bias must be True or False"),
    (dict(download="yes"), "download must be True or False"),
    (dict(extra=[1]), "extra must be a dict"),
    (dict(preset=""), "preset must be a preset name"),
])
def test_names_and_cross_field_rules(kwargs, needle):
    with pytest.raises(ValueError) as info:
        TrainConfig(**kwargs).validate()
    assert needle in str(info.value)


def test_method_names_match_the_registry():
    from iaead_core.methods import METHODS

    assert METHOD_NAMES == tuple(METHODS)


def test_config_is_importable_without_torch():
    code = ("import sys; from iaead_core.config import preset_config; "
            "preset_config('paper', 'deep-svdd', dataset='cifar10', normal_class='ship'); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_presets_and_round_trip():
    for preset in PRESETS:
        for method in METHOD_NAMES:
            cfg = preset_config(preset, method)
            assert TrainConfig.from_dict(cfg.to_dict()) == cfg.validate()
    assert preset_config("quick", max_samples=0).max_samples is None  # 0 = the full set
    assert preset_config("paper", "deep-svdd").epochs == 300
    with pytest.raises(ValueError, match="unknown config field"):
        preset_config("quick", learning_rate=0.1)


# --- the paper's number only beside a run with the paper's settings -----------------------------

def test_paper_value_for_the_paper_setting_and_protocol():
    # Table 3: IAEAD, MNIST digit 0, ρ = 10 %: 96.59.
    assert paper_reference(preset_config("paper").to_dict()) == PaperReference(0.9659, "paper")
    assert protocol_differences(preset_config("paper").to_dict()) == []


def test_quick_preset_is_labelled_different_protocol():
    ref = paper_reference(preset_config("quick").to_dict())
    assert ref == PaperReference(0.9659, "paper (different protocol)")
    diffs = protocol_differences(preset_config("quick").to_dict())
    assert diffs[:2] == ["max_samples: 3000 vs full set", "epochs: 30 vs 250"]
    # The paper preset with one setting changed is a different protocol too.
    assert paper_reference(preset_config("paper", epochs=10).to_dict()).label == \
        "paper (different protocol)"


@pytest.mark.parametrize("overrides,label", [
    (dict(lam=50.0), "no paper value: λ = 50 (the paper's is 5e-5)"),
    (dict(lam=0.5), "no paper value: λ = 0.5 (the paper's is 5e-5)"),
    (dict(lam=0.0), "no paper value: λ = 0 (the paper's is 5e-5)"),
    (dict(nu=0.5), "no paper value: ν = 0.5 (the paper's is 1)"),
    (dict(rho=0.2), "no paper value: the paper's per-class table is at ρ = 10 %, this run has ρ = 20 %"),
])
def test_no_paper_value_for_other_settings(overrides, label):
    # Before: the CLI and the lab showed 0.966 beside a λ = 50 IAEAD run.
    for preset in PRESETS:
        assert paper_reference(preset_config(preset, **overrides).to_dict()) == PaperReference(None, label)


def test_paper_value_for_baselines_and_missing_entries():
    cae = preset_config("paper", "cae", dataset="fashion-mnist", normal_class="trouser")
    assert paper_reference(cae.to_dict()) == PaperReference(0.9481, "paper")  # Table 3: 94.81
    svdd = preset_config("paper", "deep-svdd", dataset="fashion-mnist", normal_class=0)
    assert paper_reference(svdd.to_dict()) == PaperReference(0.7803, "paper")
    biased = svdd.replace(svdd_bias=True)
    assert paper_reference(biased.to_dict()).value is None
    # A baseline with an option away from its default: the paper measured the default.
    rdae = preset_config("paper", "rdae", dataset="fashion-mnist", normal_class=0)
    assert paper_reference(rdae.to_dict()).value is not None
    assert paper_reference(rdae.replace(extra={"rdae_prox": "e3outlier"}).to_dict()).value is not None
    assert paper_reference(rdae.replace(extra={"rdae_prox": "l21"}).to_dict()) == PaperReference(
        None, "no paper value: rdae_prox = l21 (the paper's is the default)")
    for cfg in (preset_config("paper", "deep-svdd"),                 # no MNIST Deep SVDD row
                preset_config("paper", dataset="mnist-5k"),          # not a data set of the paper
                preset_config("paper", dataset="cifar10")):          # no CIFAR per-class row
        assert paper_reference(cfg.to_dict()).value is None
    # A saved config (class index, λ written as 0.00005) reads the same.
    saved = {**preset_config("paper").to_dict(), "lam": 0.00005}
    assert paper_reference(saved).value == 0.9659 and PAPER_BEST_LAM == 5e-5
