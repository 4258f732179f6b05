"""Networks of the added baselines (docs/baselines.md): MemAE's autoencoder and memory module,
DAGMM's and RSRAE's networks on the shared :class:`~iaead_core.methods.nets.CAE`.

The torch modules here know nothing about training; methods in :mod:`iaead_core.methods`
decide how they are optimised and scored.

Sources
-------
* MemAE: the image autoencoder and memory module are :class:`MemAENet` and
  :class:`MemoryUnit` (Gong et al., ICCV 2019, official ``MemoryUnit``).
* DAGMM (linear 5-d code) and RSRAE (decoder fed by the d-dimensional RSR code): the CAE
  variants given by :class:`~iaead_core.methods.nets.CAE`'s ``code_activation`` and
  ``decoder_in``.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from iaead_core.methods.nets import CAE, INITS, init_keras, init_released
__all__ = ["DAGMMNet", "MemAENet", "MemoryUnit", "RSRAENet", "hard_shrink", "init_memae"]


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
