"""Networks: the paper's convolutional autoencoder and Deep SVDD's bias-free LeNet-type nets.

The torch modules here know nothing about training; methods in :mod:`iaead_core.methods`
decide how they are optimised and scored.

Sources
-------
* CAE: docs/method.md §3 (the architecture of Golan & El-Yaniv used by the IAEAD paper, §4.3),
  with the released code's initialisation (:func:`init_released`).
* Deep SVDD: Ruff et al., "Deep One-Class Classification", ICML 2018, §4 / their
  ``mnist_LeNet.py`` and ``cifar10_LeNet.py`` (bias-free, BatchNorm without affine parameters,
  leaky ReLU, max-pooling).
* Baselines (docs/baselines.md): the CAE variants of DAGMM (linear 5-d code) and RSRAE (decoder fed
  by the d-dimensional RSR code) come from :class:`CAE`'s ``code_activation`` and
  ``decoder_in``; MemAE's image autoencoder and memory module are :class:`MemAENet` and
  :class:`MemoryUnit` (Gong et al., ICCV 2019, official ``MemoryUnit``).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["CAE", "DAGMMNet", "DeepSVDDNet", "MemAENet", "MemoryUnit", "RSRAENet", "hard_shrink", "init_released",
           "init_keras", "init_memae", "count_parameters"]

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


def hard_shrink(w: torch.Tensor, lam: float, eps: float = 1e-12) -> torch.Tensor:
    """MemAE's hard shrinkage of addressing weights, then ℓ1 renormalisation (Gong et al.,
    eq. 7; official ``hard_shrink_relu`` + ``F.normalize(p=1)``).

    ``ŵ_i = max(w_i − λ, 0) · w_i / (|w_i − λ| + eps)`` (≈ ``w_i`` where ``w_i > λ``, else 0),
    then ``ŵ ← ŵ / max(||ŵ||₁, eps)``. A row whose weights are all ≤ λ becomes exactly zero
    (the caller counts such rows). With ``lam <= 0`` both steps are skipped and ``w`` is
    returned unchanged, as in the official code.

    Parameters
    ----------
    w : Tensor ``(M, N)`` float
        Non-negative addressing weights (softmax rows).
    lam : float
        Shrinkage threshold λ (the MemAE paper advises 1/N … 3/N).

    Returns
    -------
    Tensor ``(M, N)``, rows summing to 1 or all zero.
    """
    if lam <= 0:
        return w
    w = F.relu(w - lam) * w / ((w - lam).abs() + eps)
    return F.normalize(w, p=1, dim=1, eps=eps)


class MemoryUnit(nn.Module):
    """MemAE's memory: ``N`` learned slots of dimension ``C`` addressed by each query.

    For a query ``q`` (one row): ``w = softmax(q Mᵀ)`` over the slots (``address="dot"``, the
    official code) or ``softmax(cos(q, M_i))`` (``address="cosine"``, the paper's eq. 5), then
    :func:`hard_shrink` with λ = ``shrink``, and the output ``q̂ = ŵ M``.
    The slots start uniform in ``(−1/√C, 1/√C)`` (official ``reset_parameters``).

    Parameters
    ----------
    slots : int
        ``N`` (100 for MNIST-like data in the MemAE paper).
    dim : int
        ``C``, the query size (the encoder's channels).
    shrink : float
        λ; ``<= 0`` turns shrinkage off.
    address : {"dot", "cosine"}

    Raises
    ------
    ValueError
        For a non-positive size or an unknown ``address``.

    Shapes
    ------
    ``forward(q)``: ``(M, C)`` → ``(q̂ (M, C), ŵ (M, N))``.
    """

    def __init__(self, slots: int, dim: int, shrink: float = 0.0, address: str = "dot") -> None:
        super().__init__()
        if min(slots, dim) < 1:
            raise ValueError("slots and dim must be positive integers")
        if address not in ("dot", "cosine"):
            raise ValueError(f"address must be 'dot' or 'cosine', got {address!r}")
        self.slots, self.dim, self.shrink, self.address = slots, dim, float(shrink), address
        self.weight = nn.Parameter(torch.empty(slots, dim))
        bound = 1.0 / dim**0.5
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.address == "cosine":
            logits = F.normalize(q, dim=1) @ F.normalize(self.weight, dim=1).t()
        else:
            logits = q @ self.weight.t()
        w = hard_shrink(torch.softmax(logits, dim=1), self.shrink)
        return w @ self.weight, w


def init_memae(model: nn.Module, std: float = 0.02) -> nn.Module:
    """The official MemAE initialisation (``utils.weights_init``): convolution and transposed
    convolution weights from N(0, ``std``), BatchNorm weights from N(1, ``std``) and zero
    BatchNorm biases; convolution biases keep torch's default. In place; returns ``model``."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return model


class MemAENet(nn.Module):
    """The MemAE paper's image autoencoder with the memory between encoder and decoder
    (Gong et al., ICCV 2019, §4; docs/baselines.md §5).

    Encoder: Conv(C→16, k1, s2) – Conv(16→32, k3, s2, p1) – Conv(32→64, k3, s2, p1), each with
    BatchNorm and ReLU (32→16→8→4). Memory: :class:`MemoryUnit` addresses every one of the
    4×4 positions separately (queries of 64 channels). Decoder: ConvT(64→64) – ConvT(64→32),
    each with BatchNorm and ReLU, then a bare ConvT(32→C) (k3, s2, p1, output padding 1;
    4→8→16→32). The padding is not given by the paper; these values make 32×32 round trip.
    3-channel inputs use the same net (the paper's CIFAR net could not be verified).

    Parameters
    ----------
    in_channels : int
    slots : int
        Memory size ``N``.
    shrink : float
        Hard-shrinkage threshold λ (≤ 0: off).
    address : {"dot", "cosine"}
    init : {"memae", "pytorch"}
        ``"memae"`` applies :func:`init_memae` (official); ``"pytorch"`` keeps torch's defaults.

    Raises
    ------
    ValueError
        For an unknown ``init`` or ``address``, or a non-positive size.

    Shapes
    ------
    ``encode(x)``: ``(B, C, 32, 32)`` → ``z`` ``(B, 1024)`` (the 64×4×4 encoder map, flattened
    channel-first); ``address(z)`` → ``(q̂ (B, 1024), ŵ (B·16, N))``; ``decode(q̂)`` → ``(B, C,
    32, 32)``; ``forward(x)`` → ``(z, x_hat)`` (through the memory).
    """

    code_channels = 64
    side = 4

    def __init__(self, in_channels: int = 1, slots: int = 100, shrink: float = 0.01,
                 address: str = "dot", init: str = "memae") -> None:
        super().__init__()
        if init not in ("memae", "pytorch"):
            raise ValueError(f"init must be 'memae' or 'pytorch' for MemAE, got {init!r}")
        if in_channels < 1:
            raise ValueError("in_channels must be a positive integer")
        self.in_channels = in_channels
        c = self.code_channels

        def block(conv: nn.Module, cout: int) -> nn.Sequential:
            return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.encoder = nn.Sequential(
            block(nn.Conv2d(in_channels, 16, 1, stride=2), 16),
            block(nn.Conv2d(16, 32, 3, stride=2, padding=1), 32),
            block(nn.Conv2d(32, c, 3, stride=2, padding=1), c),
        )
        self.memory = MemoryUnit(slots, c, shrink, address)
        self.decoder = nn.Sequential(
            block(nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1), c),
            block(nn.ConvTranspose2d(c, 32, 3, stride=2, padding=1, output_padding=1), 32),
            nn.ConvTranspose2d(32, in_channels, 3, stride=2, padding=1, output_padding=1),
        )
        if init == "memae":
            init_memae(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder map, flattened: ``(B, C, 32, 32)`` → ``(B, 64·4·4)``."""
        return self.encoder(x).flatten(1)

    def address(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory read of every position: ``z`` ``(B, 1024)`` → ``(q̂ (B, 1024), ŵ (B·16, N))``.

        Each position's 64 channels form one query (channel last), so positions are
        addressed independently."""
        B, c, s = len(z), self.code_channels, self.side
        q = z.view(B, c, s * s).transpose(1, 2).reshape(B * s * s, c)
        q_hat, w = self.memory(q)
        return q_hat.view(B, s * s, c).transpose(1, 2).reshape(B, c * s * s), w

    def decode(self, q_hat: torch.Tensor) -> torch.Tensor:
        """Decoder: ``(B, 1024)`` memory output → ``(B, C, 32, 32)``."""
        return self.decoder(q_hat.view(-1, self.code_channels, self.side, self.side))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(self.address(z)[0])


class DAGMMNet(nn.Module):
    """DAGMM's networks on the shared CAE (Zong et al., ICLR 2018; E3Outlier ``models/dagmm.py``;
    docs/baselines.md §4).

    Compression net: the CAE encoder ending in a *linear* ``code_dim``-d code ``z_c``; decoder:
    the CAE decoder taking ``code_dim`` inputs. Mixture features
    ``f = [z_c, ||x − x̂||/(||x|| + 1e-12), cos(x, x̂)]`` (``code_dim + 2``). Estimation net:
    Linear 64 – tanh – Dropout 0.5 – Linear 10 – tanh – Dropout 0.5 – Linear K – softmax,
    giving memberships ``γ``. The mixture parameters live in buffers ``phi`` ``(K,)``, ``mu``
    ``(K, code_dim + 2)``, ``cov`` ``(K, code_dim + 2, code_dim + 2)``, so they travel with
    the weights; the method decides when to update them.

    Parameters
    ----------
    in_channels, width : as :class:`CAE`.
    code_dim : int — size of ``z_c`` (5 in E3Outlier).
    K : int — mixture components (3 in E3Outlier).
    init : {"keras", "pytorch", "released"} — applied to every layer (E3Outlier's is Keras).

    Shapes
    ------
    ``encode(x)``: ``(N, C, 32, 32)`` → ``z_c`` ``(N, code_dim)``; ``decode``: back;
    ``features(x, x_hat, z_c)`` → ``(N, code_dim + 2)``; ``estimate(f)`` → ``γ`` ``(N, K)``.
    """

    def __init__(self, in_channels: int = 1, width: int = 64, code_dim: int = 5, K: int = 3,
                 init: str = "keras") -> None:
        super().__init__()
        if min(code_dim, K) < 1:
            raise ValueError("code_dim and K must be positive integers")
        self.cae = CAE(in_channels, width, code_dim, init="pytorch", code_activation="linear")
        f = code_dim + 2
        self.estimation = nn.Sequential(
            nn.Linear(f, 64), nn.Tanh(), nn.Dropout(0.5), nn.Linear(64, 10), nn.Tanh(),
            nn.Dropout(0.5), nn.Linear(10, K), nn.Softmax(dim=1))
        self.register_buffer("phi", torch.full((K,), 1.0 / K))
        self.register_buffer("mu", torch.zeros(K, f))
        self.register_buffer("cov", torch.eye(f).repeat(K, 1, 1))
        if init == "keras":
            init_keras(self)
        elif init == "released":
            init_released(self)
        elif init != "pytorch":
            raise ValueError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.cae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.cae.decode(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cae(x)

    @staticmethod
    def features(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``[z_c, relative Euclidean distance, cosine similarity]`` per image, with 1e-12
        under every norm so an all-zero image gives finite features."""
        a, b = x.flatten(1), x_hat.flatten(1)
        na, nb = a.norm(dim=1), b.norm(dim=1)
        rel = (a - b).norm(dim=1) / (na + 1e-12)
        cos = (a * b).sum(1) / ((na + 1e-12) * (nb + 1e-12))
        return torch.cat([z, rel[:, None], cos[:, None]], dim=1)

    def estimate(self, f: torch.Tensor) -> torch.Tensor:
        """Memberships ``γ`` ``(N, K)`` (rows sum to 1)."""
        return self.estimation(f)


class RSRAENet(nn.Module):
    """RSRAE's network on the shared CAE (Lai, Zou & Lerman, ICLR 2020; docs/baselines.md §6,
    *reconstructed*): encoder ``y = E(x)`` (the CAE's Tanh code, ``D = latent_dim``), the
    robust subspace recovery layer ``z̃ = A y`` with ``A`` ``(d, D)`` (bias-free, entries
    N(0, 1), as the official code), optionally renormalised ``z̃ ← z̃ / (||z̃|| + 1e-12)``,
    and the CAE decoder taking ``d`` inputs.

    Parameters
    ----------
    in_channels, width, latent_dim, init
        As :class:`CAE` (``latent_dim`` is ``D``).
    d : int
        Dimension of the RSR code (official ``-m 10``).
    renormalise : bool
        Unit-normalise ``z̃`` (on in the official runs).

    Shapes
    ------
    ``features(x)``: ``(N, C, 32, 32)`` → ``y`` ``(N, D)``; ``encode(x)`` → ``z̃`` ``(N, d)``;
    ``decode(z̃)`` → ``(N, C, 32, 32)``; ``forward(x)`` → ``(z̃, x_hat)``.
    """

    def __init__(self, in_channels: int = 1, width: int = 64, latent_dim: int = 256,
                 d: int = 10, renormalise: bool = True, init: str = "pytorch") -> None:
        super().__init__()
        self.cae = CAE(in_channels, width, latent_dim, init=init, decoder_in=d)
        self.A = nn.Parameter(torch.randn(d, latent_dim))
        self.d, self.renormalise = d, renormalise

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``y = E(x)``: ``(N, C, 32, 32)`` → ``(N, D)``."""
        return self.cae.encode(x)

    def project(self, y: torch.Tensor) -> torch.Tensor:
        """``z̃ = A y`` (renormalised if asked): ``(N, D)`` → ``(N, d)``."""
        z = y @ self.A.t()
        return z / (z.norm(dim=1, keepdim=True) + 1e-12) if self.renormalise else z

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.cae.decode(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Encoder weights and ``A`` (what the L_pca step trains)."""
        return [*self.cae.encoder.parameters(), self.A]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (int); 2,850,049 for ``CAE(1)`` (docs/method.md §3)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
