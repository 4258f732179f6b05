"""The contaminated one-vs-all protocol of IAEAD (paper §4.3; docs/method.md §5).

* class ``k`` of a benchmark's pool (:func:`~iaead_core.data.benchmarks.load_pool`) is normal:
  every pooled image of class ``k`` is kept;
* ``int(n_normal · ρ / (1 − ρ))`` anomalies are drawn uniformly without replacement from the
  pooled images of all other classes, so that ρ is the anomaly fraction of the final set;
* sets larger than 12,000 images are subsampled to 12,000 (affects some SVHN classes).

The model trains on the resulting set without labels and is scored on the same set.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from iaead_core.data.benchmarks import DEFAULT_CAP, _spec, class_index, load_pool, resolve_data_root
# torch is imported inside the functions that need it (heavy; listing data sets stays fast).
if TYPE_CHECKING:
    import torch


def min_samples(rho: float) -> int:
    """Smallest set size that holds at least one anomaly at ratio ρ (``int(n·ρ) ≥ 1``)."""
    m = max(1, math.floor(1 / rho))
    while int(m * rho) < 1:
        m += 1
    return m


def to_model_input(images_uint8: np.ndarray) -> "torch.Tensor":
    """Turn stored images into the network's input.

    Parameters
    ----------
    images_uint8 : np.ndarray
        Shape (N, C, H, W) (or (N, H, W) for grey) with H = W in {28, 32, 8}; uint8 0..255, or
        0..16 for 8x8 ``digits`` images.

    Returns
    -------
    torch.Tensor
        float32, shape (N, C, 32, 32), values ``2·x/255 − 1`` in [-1, 1]. 28x28 images are
        zero-padded by 2 pixels first (border = −1, as in the paper's 32x32 input, §4.3);
        8x8 images are scaled 0..16 → 0..255 and upsampled bilinearly.

    Raises
    ------
    ValueError
        Unsupported shape.
    """
    import torch
    import torch.nn.functional as F

    x = np.asarray(images_uint8)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[2] != x.shape[3] or x.shape[2] not in (8, 28, 32):
        raise ValueError(f"Expected images of shape (N, C, H, H) with H in 8, 28 or 32; "
                         f"got {x.shape}.")
    t = torch.from_numpy(x.astype(np.float32))
    size = x.shape[2]
    if size == 28:
        t = F.pad(t, (2, 2, 2, 2))
    elif size == 8:
        t = F.interpolate(t * (255.0 / 16.0), size=(32, 32), mode="bilinear",
                          align_corners=False).clamp_(0.0, 255.0)
    return t * (2.0 / 255.0) - 1.0


@dataclass
class ContaminatedSet:
    """One contaminated one-vs-all set (docs/method.md §5), in random order.

    Attributes
    ----------
    images : torch.Tensor
        float32, shape (N, C, 32, 32), values in [-1, 1] (see :func:`to_model_input`).
    is_anomaly : np.ndarray
        bool, shape (N,); ground truth, for metrics only.
    labels : np.ndarray
        int64, shape (N,); original class labels.
    dataset, normal_class, class_name, rho, seed, source
        How the set was made; ``rho`` is the anomaly fraction requested.
    indices : np.ndarray or None
        int64, shape (N,); position of each image in :func:`load_pool`'s pool.
    max_samples : int or None
        The ``max_samples`` the set was drawn with (None: full protocol size).
    data_root : str or None
        Absolute data root the images were read from (None for embedded sets).
    """

    images: torch.Tensor
    is_anomaly: np.ndarray
    labels: np.ndarray
    dataset: str
    normal_class: int
    class_name: str
    rho: float
    seed: int
    source: str
    indices: np.ndarray | None = None
    max_samples: int | None = None
    data_root: str | None = None

    @property
    def n_normal(self) -> int:
        """Number of normal images."""
        return int((~self.is_anomaly).sum())

    @property
    def n_anomalies(self) -> int:
        """Number of anomalies."""
        return int(self.is_anomaly.sum())

    def __len__(self) -> int:
        return len(self.is_anomaly)

    def summary(self) -> dict:
        """Return a JSON-able description: dataset, normal_class, class_name, rho, seed,
        n_normal, n_anomalies, n, source, max_samples."""
        return {"dataset": self.dataset, "normal_class": int(self.normal_class),
                "class_name": self.class_name, "rho": float(self.rho), "seed": int(self.seed),
                "n_normal": self.n_normal, "n_anomalies": self.n_anomalies, "n": len(self),
                "source": self.source, "max_samples": self.max_samples}


def _subsample(rng, normal, anomalies, size: int, rho: float):
    n_anom = min(int(size * rho), len(anomalies))
    n_normal = min(size - n_anom, len(normal))
    return (rng.choice(normal, n_normal, replace=False),
            rng.choice(anomalies, n_anom, replace=False))


def make_contaminated(dataset: str, normal_class: int | str, rho: float = 0.1, seed: int = 0,
                      data_root: str | os.PathLike | None = None, max_samples: int | None = None,
                      download: bool = True, cap: int = DEFAULT_CAP) -> ContaminatedSet:
    """Build the contaminated one-vs-all set of docs/method.md §5 (paper §4.3).

    All pooled (train ∪ test) images of ``normal_class`` are normal; ``int(n_normal·ρ/(1−ρ))``
    anomalies are drawn uniformly without replacement from the other classes. If the set is
    larger than ``cap``, it is subsampled to ``cap`` images: ``int(cap·ρ)`` anomalies and
    ``cap − int(cap·ρ)`` normals, each drawn without replacement (the paper only says "randomly
    subsampled"; subsampling each part keeps ρ exact). ``max_samples`` then shrinks the set the
    same way. Everything is drawn from one ``np.random.default_rng(seed)``, and the set is
    returned in a random permutation, so any prefix is a fair sample.

    Parameters
    ----------
    dataset : str
        Data set key (see ``DATASETS``).
    normal_class : int or str
        Normal class, by index or name (see :func:`class_index`).
    rho : float
        Anomaly fraction, in the open interval (0, 0.5); the paper uses 0.05 … 0.25.
    seed : int
        Seed of the draw.
    data_root : str or os.PathLike or None
        See :func:`resolve_data_root`.
    max_samples : int or None
        Optional smaller size (e.g. for quick runs); must satisfy ``int(max_samples·ρ) ≥ 1``.
    download : bool
        Fetch missing files with torchvision (needs network access).
    cap : int
        Size limit of the protocol (12,000).

    Returns
    -------
    ContaminatedSet

    Raises
    ------
    ValueError
        Unknown data set or class, ρ outside (0, 0.5), ``max_samples`` or ``cap`` too small.
    DatasetUnavailableError
        Files missing and not downloadable.
    """
    spec = _spec(dataset)
    k = class_index(dataset, normal_class)
    rho = float(rho)
    if not 0.0 < rho < 0.5:
        raise ValueError(f"rho (anomaly fraction) must lie in the open interval (0, 0.5), "
                         f"e.g. 0.05, 0.1, 0.25; got {rho}.")
    for name, value in (("max_samples", max_samples), ("cap", cap)):
        if value is not None and int(value) * rho < 1:
            raise ValueError(f"{name}={value} is too small for rho={rho}: it would hold no "
                             f"anomaly; the minimum is {min_samples(rho)}.")

    images, labels = load_pool(dataset, data_root, download=download)
    rng = np.random.default_rng(seed)
    normal = np.flatnonzero(labels == k)
    others = np.flatnonzero(labels != k)
    # The epsilon absorbs float error, e.g. 6903·0.1/0.9 = 767.0000000000001 or 766.99999…
    n_anom = int(len(normal) * rho / (1 - rho) + 1e-9)
    if n_anom > len(others):
        raise ValueError(f"{dataset!r} has only {len(others)} images outside class {k}, "
                         f"fewer than the {n_anom} anomalies rho={rho} needs.")
    anomalies = rng.choice(others, n_anom, replace=False)
    for size in (cap, max_samples):
        if size is not None and len(normal) + len(anomalies) > size:
            normal, anomalies = _subsample(rng, normal, anomalies, int(size), rho)

    idx = rng.permutation(np.concatenate([normal, anomalies]))
    return ContaminatedSet(
        images=to_model_input(images[idx]),
        is_anomaly=labels[idx] != k,
        labels=labels[idx].astype(np.int64),
        dataset=dataset, normal_class=k, class_name=spec.classes[k], rho=rho, seed=int(seed),
        source=spec.source, indices=idx.astype(np.int64),
        max_samples=None if max_samples is None else int(max_samples),
        data_root=None if spec.embedded else str(resolve_data_root(data_root).resolve()),
    )
