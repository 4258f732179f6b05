"""Networks: the paper's convolutional autoencoder and Deep SVDD's bias-free LeNet-type nets.

The torch modules here know nothing about training; methods in :mod:`iaead_core.methods`
decide how they are optimised and scored. The networks of the added baselines (MemAE, DAGMM,
RSRAE), built on :class:`CAE`, are in :mod:`iaead_core.methods.baseline_nets`.

Sources
-------
* CAE: docs/method.md §3 (the architecture of Golan & El-Yaniv used by the IAEAD paper, §4.3),
  with the released code's initialisation (:func:`init_released`).
* Deep SVDD: Ruff et al., "Deep One-Class Classification", ICML 2018, §4 / their
  ``mnist_LeNet.py`` and ``cifar10_LeNet.py`` (bias-free, BatchNorm without affine parameters,
  leaky ReLU, max-pooling).
* Baselines (docs/baselines.md): the CAE variants of DAGMM (linear 5-d code) and RSRAE (decoder fed
  by the d-dimensional RSR code) come from :class:`CAE`'s ``code_activation`` and
  ``decoder_in``.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["CAE", "DeepSVDDNet", "init_released", "init_keras", "count_parameters"]

INITS = ("released", "pytorch", "keras")


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def _up(cin: int, cout: int, last: bool = False) -> nn.Sequential:
    deconv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
    if last:
        return nn.Sequential(deconv, nn.Tanh())
    return nn.Sequential(deconv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CAE(nn.Module):
    """The paper's convolutional autoencoder for 32×32 images (docs/method.md §3).

    Encoder ``f_w``: three stride-2 3×3 convolutions (``width``, ``2·width``, ``4·width``
    channels) with BatchNorm and ReLU, then ``Linear(4·width·16 → latent_dim)`` and Tanh.
    Decoder ``g_u``: ``Linear(latent_dim → 4·width·16)`` + BatchNorm1d + ReLU, three 3×3
    stride-2 transposed convolutions back to ``in_channels``, ending in Tanh.
    With ``width=64, latent_dim=256`` this is the paper's network: 2,850,049 parameters for
    one input channel. Smaller values give the lighter CPU network of the ``quick`` preset,
    which is *not* the paper's network.

    Parameters
    ----------
    in_channels : int
        ``C``: 1 for MNIST-like data, 3 for CIFAR / SVHN.
    width : int
        Channels of the first convolution (64 in the paper).
    latent_dim : int
        Size of the latent code ``z`` (256 in the paper).
    init : {"released", "pytorch", "keras"}
        ``"released"`` (default) applies :func:`init_released`, the released code's scheme,
        which docs/method.md §3 shows decides the result; ``"pytorch"`` keeps torch's defaults
        (E3Outlier's CAE, used for DRAE and RDAE); ``"keras"`` applies :func:`init_keras`
        (E3Outlier's Keras DAGMM).
    code_activation : {"tanh", "linear"}
        Last layer of the encoder: Tanh (the paper's CAE) or none (DAGMM's linear code).
    decoder_in : int or None
        Input size of the decoder's first Linear; ``None`` means ``latent_dim``. RSRAE feeds
        the decoder its d-dimensional RSR code instead of ``z`` (then ``forward`` is not
        defined: the caller maps ``z`` to ``decoder_in`` dimensions itself).

    Raises
    ------
    ValueError
        For a non-positive size, an unknown ``init`` or ``code_activation``.

    Shapes
    ------
    ``forward(x)``: ``x`` float32 ``(N, C, 32, 32)`` in [-1, 1] → ``(z, x_hat)`` with ``z``
    ``(N, latent_dim)`` in (-1, 1) (any real with a linear code) and ``x_hat``
    ``(N, C, 32, 32)`` in (-1, 1).
    """

    def __init__(self, in_channels: int = 1, width: int = 64, latent_dim: int = 256,
                 init: str = "released", code_activation: str = "tanh",
                 decoder_in: int | None = None) -> None:
        super().__init__()
        decoder_in = latent_dim if decoder_in is None else decoder_in
        if min(in_channels, width, latent_dim, decoder_in) < 1:
            raise ValueError("in_channels, width, latent_dim and decoder_in must be positive integers")
        if code_activation not in ("tanh", "linear"):
            raise ValueError(f"code_activation must be 'tanh' or 'linear', got {code_activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
        w = width
        self.in_channels, self.width, self.latent_dim = in_channels, width, latent_dim
        self.decoder_in = decoder_in
        code = [nn.Tanh()] if code_activation == "tanh" else []
        self.encoder = nn.Sequential(
            _down(in_channels, w), _down(w, 2 * w), _down(2 * w, 4 * w),
            nn.Flatten(), nn.Linear(4 * w * 16, latent_dim), *code,
        )
        self.decoder_fc = nn.Sequential(
            nn.Linear(decoder_in, 4 * w * 16), nn.BatchNorm1d(4 * w * 16), nn.ReLU(inplace=True)
        )
        self.decoder = nn.Sequential(
            _up(4 * w, 2 * w), _up(2 * w, w), _up(w, in_channels, last=True)
        )
        if init == "released":
            init_released(self)
        elif init == "keras":
            init_keras(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``f_w(x)``: ``(N, C, 32, 32)`` → ``z`` ``(N, latent_dim)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``g_u(z)``: ``(N, decoder_in)`` → ``x_hat`` ``(N, C, 32, 32)`` (eq. 1)."""
        h = self.decoder_fc(z).view(-1, 4 * self.width, 4, 4)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)


def init_released(model: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise as the authors' released code does (docs/method.md §3).

    Every ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` weight gets Xavier-normal with
    ``gain`` (0.02) and a zero bias; ``BatchNorm2d`` weights are drawn from N(1, 0.02) with a
    zero bias; ``BatchNorm1d`` keeps PyTorch's default (weight 1, bias 0). In place; returns
    ``model``. Draws from torch's global RNG, so seed first for a repeatable network.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return model


def init_keras(model: nn.Module) -> nn.Module:
    """Initialise as Keras does by default (E3Outlier's DAGMM, docs/baselines.md §4).

    ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` weights get Glorot-uniform (torch's
    ``xavier_uniform_``, whose fans match Keras' for convolutions) and zero biases; BatchNorm
    layers get Keras' defaults: momentum 0.99 (torch ``momentum=0.01``) and ``eps=1e-3``, weight
    1, bias 0. In place; returns ``model``. Draws from torch's global RNG.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum, m.eps = 0.01, 1e-3
            if m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return model


class DeepSVDDNet(nn.Module):
    """Deep SVDD's LeNet-type encoder with the decoder used for its pre-training.

    Ruff et al. (2018): ``bias=False`` everywhere and BatchNorm without affine parameters
    (``eps=1e-4``), leaky ReLU, 2×2 max-pooling; the decoder mirrors the encoder with
    upsampling and 5×5 transposed convolutions. For 1-channel inputs the encoder is the MNIST
    net (8 and 4 channels, ``rep_dim`` 32); for 3 channels the CIFAR-10 net (32, 64, 128
    channels, ``rep_dim`` 128). Inputs are 32×32 here (MNIST-like data padded, docs/method.md §3),
    unlike the released code's 28×28. The decoder ends in Tanh because the data lie in
    [-1, 1] (docs/method.md §9: the released baseline's sigmoid cannot reach them).

    Parameters
    ----------
    in_channels : int
        1 (MNIST-like) or 3 (CIFAR / SVHN).
    rep_dim : int or None
        Latent size; ``None`` picks Ruff's 32 (1 channel) or 128 (3 channels).
    bias : bool
        ``False`` (default) is Ruff's bias-free net, which rules out the trivial collapsed
        solution. ``True`` adds biases and affine BatchNorm: the *unregularised* variant that
        collapses, kept to show feature collapse.

    Shapes
    ------
    ``encode``: ``(N, C, 32, 32)`` → ``(N, rep_dim)``; ``forward``: → ``(z, x_hat)`` with
    ``x_hat`` ``(N, C, 32, 32)``.

    Raises
    ------
    ValueError
        For ``in_channels`` other than 1 or 3.
    """

    def __init__(self, in_channels: int = 1, rep_dim: int | None = None, bias: bool = False) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        chans = (8, 4) if in_channels == 1 else (32, 64, 128)
        self.rep_dim = rep_dim or (32 if in_channels == 1 else 128)
        self.in_channels, self.chans, self.bias = in_channels, chans, bias
        self.side = 32 // 2 ** len(chans)

        def bn(c: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(c, eps=1e-4, affine=bias)

        enc: list[nn.Module] = []
        cin = in_channels
        for c in chans:
            enc += [nn.Conv2d(cin, c, 5, padding=2, bias=bias), bn(c), nn.LeakyReLU(0.01),
                    nn.MaxPool2d(2)]
            cin = c
        enc += [nn.Flatten(), nn.Linear(chans[-1] * self.side**2, self.rep_dim, bias=bias)]
        self.encoder = nn.Sequential(*enc)

        self.decoder_fc = nn.Linear(self.rep_dim, chans[-1] * self.side**2, bias=bias)
        dec: list[nn.Module] = []
        outs = list(reversed(chans[:-1])) + [in_channels]
        cin = chans[-1]
        for i, c in enumerate(outs):
            dec += [nn.Upsample(scale_factor=2), nn.ConvTranspose2d(cin, c, 5, padding=2, bias=bias)]
            dec += [nn.Tanh()] if i == len(outs) - 1 else [bn(c), nn.LeakyReLU(0.01)]
            cin = c
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``phi(x; W)``: ``(N, C, 32, 32)`` → ``(N, rep_dim)`` (Deep SVDD's feature map)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-training decoder: ``(N, rep_dim)`` → ``(N, C, 32, 32)``."""
        h = F.leaky_relu(self.decoder_fc(z), 0.01).view(-1, self.chans[-1], self.side, self.side)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (int); 2,850,049 for ``CAE(1)`` (docs/method.md §3)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
