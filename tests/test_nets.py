"""The paper's CAE, Deep SVDD's nets and the baselines' networks (docs/method.md §3, §8; docs/baselines.md)."""

import pytest
import torch
from torch import nn

from iaead_core.methods.baseline_nets import DAGMMNet, MemAENet
from iaead_core.methods.nets import CAE, DeepSVDDNet, count_parameters, init_released
def test_paper_cae_has_2_850_049_parameters():
    # docs/method.md §3: 2,850,049 parameters for one input channel.
    assert count_parameters(CAE(1)) == 2_850_049


def test_cae_shapes_and_ranges():
    model = CAE(3, width=8, latent_dim=16).eval()
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    z, x_hat = model(x)
    assert z.shape == (5, 16) and x_hat.shape == (5, 3, 32, 32)
    assert z.abs().max() < 1 and x_hat.abs().max() < 1  # both end in Tanh


def test_released_init_statistics():
    torch.manual_seed(0)
    model = CAE(1)
    lin = model.encoder[4]
    # Xavier-normal std = gain * sqrt(2 / (fan_in + fan_out)), gain 0.02.
    expected = 0.02 * (2 / (4096 + 256)) ** 0.5
    assert lin.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert torch.count_nonzero(lin.bias) == 0
    bn2d = model.encoder[1][1]
    assert bn2d.weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert 0.01 < bn2d.weight.std().item() < 0.03
    bn1d = model.decoder_fc[1]
    assert torch.all(bn1d.weight == 1)  # BatchNorm1d keeps PyTorch's default


def test_pytorch_init_differs_and_bad_init_rejected():
    torch.manual_seed(0)
    default = CAE(1, init="pytorch").encoder[4].weight.std().item()
    assert default > 0.005  # Kaiming-uniform default is far wider than gain 0.02
    with pytest.raises(ValueError, match="released"):
        CAE(1, init="glorot")


@pytest.mark.parametrize("channels,rep_dim", [(1, 32), (3, 128)])
def test_deep_svdd_net_is_bias_free_by_default(channels, rep_dim):
    net = DeepSVDDNet(channels)
    assert net.rep_dim == rep_dim
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            assert m.bias is None
        if isinstance(m, nn.BatchNorm2d):
            assert not m.affine
    z, x_hat = net.eval()(torch.zeros(2, channels, 32, 32))
    assert z.shape == (2, rep_dim) and x_hat.shape == (2, channels, 32, 32)
    # Bias-free, no affine BN: the zero image maps exactly to the origin (Ruff et al. Prop. 2).
    assert torch.count_nonzero(z) == 0


def test_unregularised_deep_svdd_net_has_biases():
    net = DeepSVDDNet(1, bias=True)
    assert net.encoder[0].bias is not None
    with pytest.raises(ValueError):
        DeepSVDDNet(2)


def test_init_released_returns_model():
    m = nn.Linear(3, 2)
    assert init_released(m) is m and torch.count_nonzero(m.bias) == 0


def test_cae_variants_for_the_baselines():
    # DAGMM: linear 5-d code; RSRAE: decoder fed by a 10-d code.
    linear = CAE(1, width=8, latent_dim=5, code_activation="linear").eval()
    assert not isinstance(linear.encoder[-1], nn.Tanh)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    assert linear(x)[0].shape == (4, 5)
    rsr = CAE(1, width=8, latent_dim=16, decoder_in=10).eval()
    assert rsr.decode(torch.zeros(4, 10)).shape == (4, 1, 32, 32)
    with pytest.raises(ValueError, match="code_activation"):
        CAE(1, code_activation="relu")


def test_keras_init_is_glorot_uniform_with_keras_batchnorm():
    torch.manual_seed(0)
    model = CAE(1, init="keras")
    lin = model.encoder[4]
    bound = (6 / (4096 + 256)) ** 0.5  # Glorot-uniform limit sqrt(6 / (fan_in + fan_out))
    assert lin.weight.abs().max().item() <= bound
    assert lin.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.02)
    assert torch.count_nonzero(lin.bias) == 0
    bn = model.encoder[0][1]
    assert (bn.momentum, bn.eps) == (0.01, 1e-3) and torch.all(bn.weight == 1)


def test_memae_net_round_trips_32x32_with_the_official_init():
    torch.manual_seed(0)
    net = MemAENet(1, slots=100)
    z, x_hat = net.eval()(torch.rand(3, 1, 32, 32) * 2 - 1)
    assert z.shape == (3, 1024) and x_hat.shape == (3, 1, 32, 32)
    conv = net.encoder[1][0]
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.1)  # N(0, 0.02)
    bound = 1 / 64**0.5
    assert net.memory.weight.abs().max().item() <= bound  # U(−1/√C, 1/√C)
    with pytest.raises(ValueError, match="memae"):
        MemAENet(1, init="released")


def test_dagmm_net_keeps_its_mixture_in_the_state_dict():
    net = DAGMMNet(1, width=8, code_dim=5, K=3)
    state = net.state_dict()
    assert state["phi"].shape == (3,) and state["mu"].shape == (3, 7)
    assert state["cov"].shape == (3, 7, 7)
    gamma = net.eval().estimate(torch.randn(6, 7))
    torch.testing.assert_close(gamma.sum(1), torch.ones(6))
