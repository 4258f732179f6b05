"""The GPU arithmetic settings (iaead_core.training.accel, issue 16): read from the environment,
off on a CPU, refused in words when malformed, and recorded with every run."""

import json

import pytest
import torch

from iaead_core import Trainer, preset_config
from iaead_core.training.accel import Accel, accel_from_env

CUDA = torch.device("cuda")


def test_settings_come_from_the_environment_on_a_gpu_only(monkeypatch):
    monkeypatch.setenv("IAEAD_PRECISION", "bf16")
    monkeypatch.setenv("IAEAD_CHANNELS_LAST", "1")
    monkeypatch.setenv("IAEAD_CUDNN_BENCHMARK", "yes")
    assert accel_from_env(CUDA) == Accel("bf16", True, True)
    assert accel_from_env(torch.device("cpu")) == Accel("fp32", False, False)
    monkeypatch.delenv("IAEAD_PRECISION")
    monkeypatch.setenv("IAEAD_CHANNELS_LAST", "0")
    assert accel_from_env(CUDA) == Accel("fp32", False, True)


@pytest.mark.parametrize("name, value, words", [
    ("IAEAD_PRECISION", "fp16", "IAEAD_PRECISION='fp16': choose one of fp32, bf16"),
    ("IAEAD_CHANNELS_LAST", "maybe", "IAEAD_CHANNELS_LAST='maybe': use 1 or 0"),
])
def test_a_malformed_setting_is_refused_in_words(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=words):
        accel_from_env(torch.device("cpu"))


def test_layout_and_autocast_keep_values():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    y = Accel(channels_last=True).layout(x)
    assert torch.equal(x, y) and y.is_contiguous(memory_format=torch.channels_last)
    assert Accel().layout(x) is x
    with Accel().autocast():  # fp32: no autocast at all
        assert not torch.is_autocast_enabled("cuda")


def test_the_settings_in_force_are_recorded_with_the_run(shared_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("IAEAD_PRECISION", "bf16")  # a CPU run ignores it, and says so
    cfg = preset_config("quick", "iaead", data_root=str(shared_data_root), device="cpu",
                        epochs=1, warmup_epochs=1, max_samples=64, width=4, latent_dim=8)
    res = Trainer(cfg, runs_root=tmp_path).run()
    meta = json.loads((res.run_dir / "config.json").read_text())
    assert meta["environment"]["accel"] == {"precision": "fp32", "channels_last": False,
                                            "cudnn_benchmark": False}
