"""The user's images as a data set: :class:`ImageSet`, and image arrays turned into one.

An :class:`ImageSet` holds images that are not a benchmark draw in the form the benchmark sets
take (:class:`~iaead_core.data.ContaminatedSet`): one float32 tensor ``(N, C, 32, 32)`` in
[−1, 1], so the :class:`~iaead_core.training.engine.Trainer` trains any method on it unchanged.
It comes from a folder of files (:func:`~iaead_core.data.image_files.load_image_folder`, whose
module states the reading rules) or from an array (:func:`image_set_from_array`, for the
:class:`~iaead_core.detector.Detector`).

* **Size.** Every image becomes 32×32 (the networks' input). ``fit="protocol"`` (the default
  for arrays) prepares images as the paper's protocol does (:func:`~iaead_core.data.to_model_input`,
  paper §4.3): 32×32 images are kept, 28×28 images (MNIST, Fashion-MNIST) are padded with 2
  black pixels on every side, and any other size is treated as ``"pad"``. ``fit="pad"`` scales
  the longer side to 32 and pads the rest with black, centred (aspect kept, nothing cut);
  ``fit="crop"`` scales the shorter side to 32 and cuts the centre (aspect kept, borders lost).
* **Values.** Pixels ``x`` in 0..255 map to ``2·x/255 − 1`` as for the benchmark sets
  (:func:`~iaead_core.data.to_model_input`): black and the padding are −1. Arrays follow
  :func:`infer_input_range` and :func:`array_to_model_input` instead: on uint8 28×28 or 32×32
  arrays, ``fit="protocol"`` gives exactly :func:`~iaead_core.data.to_model_input`'s tensor.
* **Forms.** :func:`as_image_batch` reads ``(N, C, H, W)``, ``(N, H, W)`` and flat ``(N, D)``
  arrays (scikit-learn's form) with an ``image_shape``.

The errors of unusable input (:class:`ImageFolderError`, :class:`TooFewImagesError`) and the
record of a file that was not used (:class:`SkippedFile`) live here too, as the set carries them.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from iaead_core.storage import atomic_output

__all__ = ["ImageSet", "SkippedFile", "ImageFolderError", "TooFewImagesError",
           "image_set_from_array", "array_to_model_input", "infer_input_range", "as_image_batch",
           "resolve_image_shape", "check_image_shape", "IMAGE_SIZE", "MIN_IMAGES", "FITS",
           "ALL_FITS", "PROTOCOL", "ACCEPTED_FORMS", "MANIFEST"]

#: Side of the square network input, in pixels.
IMAGE_SIZE = 32
#: Fewest readable images a training folder may hold: with fewer there is no "usually normal"
#: to learn (the paper's smallest set has thousands).
MIN_IMAGES = 50
#: How an image of any size is brought to 32×32 (module docstring); the choices the command
#: line and the lab offer for a folder.
FITS = ("pad", "crop")
#: The paper's preparation (module docstring): 28×28 padded by 2, 32×32 kept, else ``"pad"``.
PROTOCOL = "protocol"
#: Every preparation :func:`array_to_model_input` and the folder reader accept.
ALL_FITS = (PROTOCOL, *FITS)
#: The array forms an estimator accepts, in words (error messages name them).
ACCEPTED_FORMS = ("(N, C, H, W) with C = 1 or 3, (N, H, W), or flat (N, D) with "
                  "image_shape=(C, H, W) (a square D = H·H is read as one grey H×H image)")
#: File in a run folder that lists the training images, in the order of the saved scores.
MANIFEST = "images.csv"
_LABEL_NAMES = {0: "normal", 1: "anomaly", -1: ""}


class ImageFolderError(ValueError):
    """A folder, archive or label file that cannot be used; the message says why and what to
    do. A ``ValueError``, so the CLI reports it as bad input (exit status 2)."""


class TooFewImagesError(ImageFolderError):
    """The folder holds no image, or fewer readable images than the minimum.

    Attributes
    ----------
    n_images : int
        Readable images found.
    minimum : int
        Images needed.
    skipped, ignored : list of SkippedFile
        Image files that could not be read, and non-image files.
    """

    def __init__(self, message: str, n_images: int, minimum: int,
                 skipped: list["SkippedFile"], ignored: list["SkippedFile"]) -> None:
        super().__init__(message)
        self.n_images, self.minimum = n_images, minimum
        self.skipped, self.ignored = skipped, ignored


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not used: ``path`` inside the folder (``/``-separated) and ``reason``."""

    path: str
    reason: str


@dataclass
class ImageSet:
    """Images that are not a benchmark draw: a folder of files, or an array.

    Quacks like :class:`~iaead_core.data.ContaminatedSet` for the
    :class:`~iaead_core.training.engine.Trainer`.

    Attributes
    ----------
    images : torch.Tensor
        float32, shape (N, C, 32, 32), values in [−1, 1] (module docstring).
    paths : list of str or None
        Path of each image inside ``root`` (``/``-separated), in the order of ``images``; None
        for an array.
    is_anomaly : np.ndarray or None
        bool, shape (N,), when both normal and anomalous labels are known; otherwise None (no
        metrics, rankings only).
    labels : np.ndarray
        int64, shape (N,): 0 normal, 1 anomaly, −1 unknown.
    dataset : str
        ``"folder"`` or ``"array"``.
    root : str or None
        Absolute path of the folder or ``.zip`` (None for an array).
    channels : int
        1 or 3.
    fit : str
        ``"protocol"``, ``"pad"`` or ``"crop"`` (module docstring): how the images became
        32×32, recorded in the run.
    rho : float
        The guessed anomaly fraction ρ (contamination), used to flag the top ρ of the scores.
    seed : int
        Seed of the subsampling draw.
    label_source : str or None
        ``"folders"``, ``"csv"``, ``"manifest"`` or None.
    skipped, ignored : list of SkippedFile
        Unreadable image files, and non-image files.
    n_files : int
        Image files found (before subsampling and before decoding).
    subsampled_from : int or None
        Image files found when more than the limit were present (the set holds a random
        subsample), else None.
    max_samples : int or None
        The size limit that subsampled the set, else None.
    input_range : tuple of float or None
        For an array: the (low, high) mapped to (−1, 1) (see :func:`infer_input_range`).
    input_shape : tuple of int or None
        For an array: the shape ``(C, H, W)`` of one image as given, before it was brought to
        32×32 (None for a folder).
    warnings : list of str
        What the user was warned about while reading.
    """

    images: torch.Tensor
    paths: list[str] | None
    is_anomaly: np.ndarray | None
    labels: np.ndarray
    dataset: str = "folder"
    root: str | None = None
    channels: int = 1
    fit: str = "pad"
    rho: float = 0.1
    seed: int = 0
    label_source: str | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: list[SkippedFile] = field(default_factory=list)
    n_files: int = 0
    subsampled_from: int | None = None
    max_samples: int | None = None
    input_range: tuple[float, float] | None = None
    input_shape: tuple[int, int, int] | None = None
    warnings: list[str] = field(default_factory=list)

    #: The one normal "class" of a folder (labels: 0 normal, 1 anomaly).
    normal_class: int = 0

    @property
    def class_name(self) -> str:
        """Name shown for the normal class: the folder's name (``"array"`` for an array)."""
        return Path(self.root).name if self.root else self.dataset

    @property
    def data_root(self) -> str | None:
        """Where the images came from (the folder or archive), recorded in the run config."""
        return self.root

    @property
    def source(self) -> str:
        """One line saying where the images came from."""
        if self.root is None:
            return "in-memory array"
        return f"image {'archive' if self.root.lower().endswith('.zip') else 'folder'} {self.root}"

    @property
    def labelled(self) -> bool:
        """True when metrics can be computed (both normal and anomalous labels known)."""
        return self.is_anomaly is not None

    @property
    def n_normal(self) -> int | None:
        """Number of images labelled normal (None without labels)."""
        return None if self.is_anomaly is None else int((~self.is_anomaly).sum())

    @property
    def n_anomalies(self) -> int | None:
        """Number of images labelled anomalous (None without labels)."""
        return None if self.is_anomaly is None else int(self.is_anomaly.sum())

    def __len__(self) -> int:
        return len(self.images)

    def summary(self) -> dict[str, Any]:
        """A JSON-able description, saved as ``data`` in a run's ``config.json``.

        Keys of :meth:`ContaminatedSet.summary` (``dataset``, ``normal_class``, ``class_name``,
        ``rho``, ``seed``, ``n_normal``, ``n_anomalies`` — None without labels —, ``n``,
        ``source``, ``max_samples``) plus ``root``, ``channels``, ``fit``, ``image_size``,
        ``labelled``, ``label_source``, ``n_files``, ``subsampled_from``, ``n_skipped``,
        ``n_ignored``, ``skipped`` / ``ignored`` (the first 50, as [path, reason]),
        ``input_range``, ``input_shape``, ``warnings`` and ``manifest`` (the file in the run
        folder listing the
        images in order; None for an array, whose images are not saved).
        """
        return {
            "dataset": self.dataset, "normal_class": self.normal_class,
            "class_name": self.class_name, "rho": float(self.rho), "seed": int(self.seed),
            "n_normal": self.n_normal, "n_anomalies": self.n_anomalies, "n": len(self),
            "source": self.source, "max_samples": self.max_samples, "root": self.root,
            "channels": int(self.channels), "fit": self.fit, "image_size": IMAGE_SIZE,
            "labelled": self.labelled, "label_source": self.label_source,
            "n_files": self.n_files, "subsampled_from": self.subsampled_from,
            "n_skipped": len(self.skipped), "n_ignored": len(self.ignored),
            "skipped": [[s.path, s.reason] for s in self.skipped[:50]],
            "ignored": [[s.path, s.reason] for s in self.ignored[:50]],
            "input_range": None if self.input_range is None else list(self.input_range),
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "warnings": list(self.warnings),
            "manifest": None if self.paths is None else MANIFEST,
        }

    def save_manifest(self, run_dir: str | os.PathLike) -> None:
        """Write :data:`MANIFEST` (``index,path,label``, one row per image in the order of
        ``images``) into a run folder; nothing for an array. Called by the Trainer."""
        if self.paths is None:
            return
        with atomic_output(Path(run_dir) / MANIFEST, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "path", "label"])
            for i, (p, y) in enumerate(zip(self.paths, self.labels.tolist())):
                w.writerow([i, p, _LABEL_NAMES[int(y)]])


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")


# ---------------------------------------------------------------------------------- arrays

def infer_input_range(x: np.ndarray | torch.Tensor) -> tuple[float, float]:
    """The value range of an image array, mapped later to [−1, 1].

    Rule (the first that fits the values): bool → (0, 1); integer values within 0..1 →
    (0, 1), within 0..255 → (0, 255), within 0..65535 → (0, 65535); floating-point values
    within [0, 1] → (0, 1), within [−1, 1] → (−1, 1), within [0, 255] → (0, 255);
    otherwise the array's own (min, max) (a constant array gets (v, v + 1)).

    Parameters
    ----------
    x : array or tensor of any shape and real dtype

    Returns
    -------
    (low, high) : tuple of float, low < high

    Raises
    ------
    ValueError
        Empty input, or non-finite values.
    """
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.size == 0:
        raise ValueError("no images: the array is empty.")
    if a.dtype == bool:
        return 0.0, 1.0
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"images must be a real-valued array; got dtype {a.dtype}.")
    lo, hi = float(a.min()), float(a.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("images contain NaN or infinite values.")
    if np.issubdtype(a.dtype, np.integer):
        candidates = ((0.0, 1.0), (0.0, 255.0), (0.0, 65535.0))
    else:
        candidates = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
    for low, high in candidates:
        if lo >= low and hi <= high:
            return low, high
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def check_image_shape(image_shape: Any) -> tuple[int, int, int]:
    """``image_shape`` as a tuple ``(C, H, W)`` of int, checked: three whole numbers ≥ 1, one
    of which may be −1 (inferred from the number of values, as in numpy's ``reshape``).

    Raises
    ------
    ValueError
        Anything else (the message says what is expected).
    """
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    ok = (shape is not None and len(shape) == 3
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in shape)
          and all(v >= 1 or v == -1 for v in shape) and list(shape).count(-1) <= 1)
    if not ok:
        raise ValueError(f"image_shape must be (C, H, W): three whole numbers ≥ 1, one of which "
                         f"may be -1 (inferred, as in numpy's reshape); got {image_shape!r}.")
    return tuple(int(v) for v in shape)


def resolve_image_shape(n_features: int, image_shape: Any = None) -> tuple[int, int, int]:
    """The ``(C, H, W)`` of one flat image of ``n_features`` values.

    Parameters
    ----------
    n_features : int
        D, the number of values per image in a flat ``(N, D)`` array.
    image_shape : (C, H, W) or None
        Whole numbers ≥ 1, of which one may be −1: inferred from D as numpy's ``reshape``
        does (``(1, 1, -1)`` reads each row as a one-pixel-high image, so any D fits). None: D
        must be a square H·H, read as one grey H×H image (784 → (1, 28, 28)).

    Returns
    -------
    (C, H, W) : tuple of int, with C·H·W = D

    Raises
    ------
    ValueError
        A malformed ``image_shape``, C·H·W ≠ D, or (without ``image_shape``) a D that is not a
        square; the message names the accepted forms.
    """
    d = int(n_features)
    if image_shape is None:
        side = math.isqrt(d)
        if side * side == d and d > 0:
            return 1, side, side
        hint = ""
        if d % 3 == 0 and math.isqrt(d // 3) ** 2 == d // 3:
            s3 = math.isqrt(d // 3)
            hint = f" (colour images of {s3}×{s3}? pass image_shape=(3, {s3}, {s3}))"
        raise ValueError(f"a flat array of {d} values per image needs image_shape=(C, H, W) with "
                         f"C·H·W = {d}: {d} is not a square, so it cannot be read as one grey "
                         f"square image{hint}. Accepted forms: {ACCEPTED_FORMS}.")
    shape = check_image_shape(image_shape)
    known = math.prod(v for v in shape if v != -1)
    if -1 in shape:
        if d % known:
            raise ValueError(f"image_shape={shape} does not fit {d} values per image: {d} is not "
                             f"a multiple of {known}.")
        shape = tuple(d // known if v == -1 else v for v in shape)
    if math.prod(shape) != d:
        raise ValueError(f"image_shape={shape} holds {math.prod(shape)} values per image; the "
                         f"array has {d} (C·H·W must equal D).")
    return shape


def as_image_batch(x: Any, image_shape: Any = None) -> np.ndarray:
    """An image array in one of the accepted forms, as ``(N, C, H, W)`` (a view when possible).

    Parameters
    ----------
    x : array-like or torch.Tensor
        ``(N, C, H, W)`` with C ∈ {1, 3}, ``(N, H, W)`` (grey), or flat ``(N, D)``; any real
        dtype (bool becomes uint8).
    image_shape : (C, H, W) or None
        For a flat array only (see :func:`resolve_image_shape`); ignored otherwise.

    Returns
    -------
    np.ndarray
        Shape (N, C, H, W), the input's dtype.

    Raises
    ------
    ValueError
        Any other shape (the message names the accepted forms and spots channels-last
        arrays), an empty array, or a flat array whose D does not fit ``image_shape``.
    """
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.ndim == 2 and a.shape[0] >= 1:
        a = a.reshape((a.shape[0], *resolve_image_shape(a.shape[1], image_shape)))
    elif a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1] not in (1, 3) or a.shape[0] == 0 or min(a.shape[2:]) < 1:
        hint = ""
        if a.ndim == 4 and a.shape[-1] in (1, 3):
            hint = " (channels last? move them with x.transpose(0, 3, 1, 2))"
        elif a.ndim == 1:
            hint = (" (one flat image? reshape your data with x.reshape(1, -1); one H×W image "
                    "with x[None])")
        raise ValueError(f"images must be {ACCEPTED_FORMS}, N ≥ 1; got an array of shape "
                         f"{tuple(a.shape)}{hint}.")
    return a


def array_to_model_input(x: np.ndarray | torch.Tensor, input_range: tuple[float, float],
                         fit: str = PROTOCOL, channels: int | None = None,
                         chunk: int = 4096, image_shape: Any = None) -> torch.Tensor:
    """Turn an image array into the network's input.

    Parameters
    ----------
    x : array or tensor in a form of :func:`as_image_batch`
        Any real dtype and range.
    input_range : (low, high)
        Values mapped linearly to (−1, 1): ``2·(x − low)/(high − low) − 1`` in float32 (from
        :func:`infer_input_range` on the training images; values outside stay outside, so an
        image brighter than any training image keeps that difference). For uint8 images and
        (0, 255) this is :func:`~iaead_core.data.to_model_input`'s arithmetic, to the bit.
    fit : {"protocol", "pad", "crop"}
        How images become 32×32 (module docstring): ``"protocol"`` keeps 32×32, pads 28×28
        by 2 pixels of −1 (paper §4.3) and treats other sizes as ``"pad"``; ``"pad"`` scales
        the longer side to 32 and pads with −1, centred; ``"crop"`` scales the shorter side to
        32 and cuts the centre (torch's antialiased bilinear filter; 32×32 images are kept
        as they are by every fit).
    channels : {1, 3} or None
        Channels wanted: grey is repeated into 3; colour becomes ITU-R 601-2 luma
        (0.299 R + 0.587 G + 0.114 B). None keeps C.
    chunk : int
        Images converted at a time (bounds the float32 working memory).
    image_shape : (C, H, W) or None
        For a flat ``(N, D)`` array (see :func:`resolve_image_shape`).

    Returns
    -------
    torch.Tensor
        float32, shape (N, channels or C, 32, 32).

    Raises
    ------
    ValueError
        Bad shape, ``fit`` or ``channels``.
    """
    _check_choice("fit", fit, ALL_FITS)
    if channels is not None:
        _check_choice("channels", channels, (1, 3))
    a = as_image_batch(x, image_shape)
    low, high = float(input_range[0]), float(input_range[1])
    out = []
    for i in range(0, len(a), chunk):
        # a float32 copy (never a view: the caller's array stays untouched, read-only ones too)
        part = torch.from_numpy(np.array(a[i:i + chunk], dtype=np.float32))
        part = (part - low) * (2.0 / (high - low)) - 1.0
        part = _fit_tensor(part, fit)
        if channels == 3 and part.shape[1] == 1:
            part = part.expand(-1, 3, -1, -1)
        elif channels == 1 and part.shape[1] == 3:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            part = (part * w).sum(1, keepdim=True)
        out.append(part.contiguous())
    return torch.cat(out)


def _fit_tensor(t: torch.Tensor, fit: str) -> torch.Tensor:
    h, w = t.shape[-2:]
    if (h, w) == (IMAGE_SIZE, IMAGE_SIZE):
        return t
    if fit == PROTOCOL:
        if (h, w) == (28, 28):  # to_model_input: 2 black pixels on every side (paper §4.3)
            return F.pad(t, (2, 2, 2, 2), value=-1.0)
        fit = "pad"
    s = IMAGE_SIZE / (max(h, w) if fit == "pad" else min(h, w))
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if fit == "pad":
        nh, nw = min(nh, IMAGE_SIZE), min(nw, IMAGE_SIZE)
    else:
        nh, nw = max(nh, IMAGE_SIZE), max(nw, IMAGE_SIZE)
    t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    if fit == "pad":
        top, left = round((IMAGE_SIZE - nh) * 0.5), round((IMAGE_SIZE - nw) * 0.5)
        return F.pad(t, (left, IMAGE_SIZE - nw - left, top, IMAGE_SIZE - nh - top), value=-1.0)
    top, left = (nh - IMAGE_SIZE) // 2, (nw - IMAGE_SIZE) // 2
    return t[..., top:top + IMAGE_SIZE, left:left + IMAGE_SIZE]


def image_set_from_array(x: np.ndarray | torch.Tensor, *, input_range: tuple[float, float]
                         | None = None, fit: str = PROTOCOL, channels: int | None = None,
                         rho: float = 0.1, seed: int = 0, min_images: int = MIN_IMAGES,
                         image_shape: Any = None) -> ImageSet:
    """An :class:`ImageSet` (``dataset="array"``, no paths, no labels) from an image array.

    Parameters
    ----------
    x : array or tensor in a form of :func:`as_image_batch`
    input_range : (low, high) or None
        Default :func:`infer_input_range` of ``x``.
    fit, channels, image_shape : see :func:`array_to_model_input`.
    rho : float
        Guessed anomaly fraction (recorded).
    seed : int
        Recorded with the set.
    min_images : int
        Fewest images accepted.

    Returns
    -------
    ImageSet
        With ``fit`` and ``input_shape`` (one image's (C, H, W) as given) recorded.

    Raises
    ------
    TooFewImagesError
        Fewer than ``min_images`` images.
    ValueError
        Bad shape, dtype or values.
    """
    a = as_image_batch(x, image_shape)
    if len(a) < min_images:
        raise TooFewImagesError(f"{len(a)} sample(s) (images) given; at least {min_images} are "
                                f"needed to learn what is normal.", len(a), min_images, [], [])
    rng_ = infer_input_range(a) if input_range is None else tuple(map(float, input_range))
    images = array_to_model_input(a, rng_, fit=fit, channels=channels)
    n = len(images)
    return ImageSet(images=images, paths=None, is_anomaly=None,
                    labels=np.full(n, -1, np.int64), dataset="array", root=None,
                    channels=int(images.shape[1]), fit=fit, rho=float(rho), seed=int(seed),
                    n_files=n, input_range=(float(rng_[0]), float(rng_[1])),
                    input_shape=tuple(int(v) for v in a.shape[1:]))
