"""MemAE, the memory-augmented autoencoder (Gong et al., ICCV 2019), with the paper's image
network and the official memory module (donggong1/memae-anomaly-detection; docs/baselines.md §5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iaead_core.catalog import METHOD_CATALOG
from iaead_core.methods.base import (EpochMean, Evaluation, Method, Option, StepLosses,
                                     constant_schedule)
from iaead_core.methods.baseline_nets import MemAENet
__all__ = ["MemAE", "addressing_entropy"]


def addressing_entropy(w: torch.Tensor) -> torch.Tensor:
    """Per-query entropy ``−Σ_i ŵ_i log(ŵ_i + 1e-12)`` (official ``EntropyLossEncap``):
    ``(M, N)`` → ``(M,)``; 0 for a one-hot or all-zero row, ``log N`` for a uniform one."""
    return -(w * torch.log(w + 1e-12)).sum(1)


class MemAE(Method):
    """MemAE (docs/baselines.md §5; the settings are *reconstructed*: the IAEAD authors' MemAE code
    is unpublished).

    The encoder's 64×4×4 map is read through a memory of ``N`` slots, each of the 16 positions
    separately (sparse addressing by hard shrinkage), and the decoder sees only the memory's
    output, so anomalies are reconstructed from normal prototypes. Loss:
    ``MSE(x̂, x) + α · mean entropy of the addressing weights`` with α = 2e-4. Adam lr
    ``cfg.lr`` (1e-4), no weight decay, no schedule. Inputs in [−1, 1]; the decoder ends in a
    bare transposed convolution, as the official one.

    Options (``TrainConfig.extra``): ``memae_slots`` (N = 100), ``memae_shrink`` (λ = 1/N =
    0.01; 0.0025 is the official video default; 0 turns shrinkage off), ``memae_alpha`` (α),
    ``memae_address`` (``"dot"``: official; ``"cosine"``: the paper's eq.).
    ``cfg.init``: ``"released"`` is the official MemAE initialisation, ``"pytorch"`` torch's.

    Scores: ``residual_norm`` — per image, the mean over pixels of the residual's Euclidean norm
    across channels (the official test script; mean absolute error for one channel);
    ``reconstruction`` — per-image MSE (same ranking as Σ(x − x̂)²); ``latent_mean`` — eq. (9)
    on the encoder's map before the memory, flattened to 1024 dimensions.

    Diagnostics per epoch: ``entropy`` (mean addressing entropy of the training queries) and
    ``zero_addressing`` (training queries whose weights were all ≤ λ, so the memory output
    was 0).
    """

    name = "memae"
    title, description = METHOD_CATALOG['memae']
    primary_score = "residual_norm"
    score_rules = ("residual_norm", "reconstruction", "latent_mean")
    code_activation = "relu"
    options = {
        "memae_slots": Option(100, "memory size N", low=1),
        "memae_shrink": Option(0.01, "hard-shrinkage threshold λ of the addressing weights "
                                     "(0 = off)", low=0.0),
        "memae_alpha": Option(0.0002, "weight α of the addressing entropy", low=0.0),
        "memae_address": Option("dot", "addressing similarity: dot product (official code) or "
                                "cosine (paper)", choices=("dot", "cosine")),
    }

    def __init__(self, cfg, in_channels, device):
        super().__init__(cfg, in_channels, device)
        self.alpha = float(self.option("memae_alpha"))
        self._entropy = EpochMean()
        self._zero = EpochMean()  # images whose addressing weights are all zero, per batch

    def build_model(self, in_channels: int) -> MemAENet:
        if self.cfg.init not in ("released", "pytorch"):
            raise ValueError(f"MemAE's init must be 'released' (official MemAE code) or "
                             f"'pytorch', got {self.cfg.init!r}")
        return MemAENet(in_channels, int(self.option("memae_slots")),
                        float(self.option("memae_shrink")), self.option("memae_address"),
                        init="memae" if self.cfg.init == "released" else "pytorch")

    def phase(self, epoch: int) -> str:
        return "train"

    def loss(self, x: torch.Tensor, epoch: int) -> StepLosses:
        net: MemAENet = self.model
        q_hat, w = net.address(net.encode(x))
        x_hat = net.decode(q_hat)
        rec = F.mse_loss(x_hat, x)
        entropy = addressing_entropy(w)
        with torch.no_grad():
            self._entropy.add(entropy.mean())
            self._zero.add((w.sum(1) == 0).sum())
        return StepLosses(total=rec + self.alpha * entropy.mean(), reconstruction=rec)

    def make_optimizer(self, epoch: int):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        return opt, constant_schedule(opt)

    def evaluate(self, X: torch.Tensor, epoch: int, batch_size: int = 1024) -> Evaluation:
        net: MemAENet = self.model

        def batch(x: torch.Tensor) -> dict[str, torch.Tensor]:
            z = net.encode(x)
            r = x - net.decode(net.address(z)[0])
            return {"z": z, "rec": (r ** 2).flatten(1).mean(1),
                    "norm": (r ** 2).sum(1).sqrt().flatten(1).mean(1)}

        out = self.eval_pass(X, batch_size, batch)
        scores = self.score(out["z"], out["rec"], epoch)
        scores["residual_norm"] = out["norm"]
        return Evaluation(z=out["z"], scores=scores, centre=None)

    def epoch_diagnostics(self) -> dict[str, float]:
        out = {"zero_addressing": self._zero.pop_sum()}
        entropy = self._entropy.pop()
        if entropy is not None:
            out["entropy"] = entropy
        return out
