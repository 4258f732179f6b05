"""The user's own images as a data set: a folder (or ``.zip``) of picture files, or an array.

This is the non-benchmark entry point of issue 10. A folder is read once into the same form the
benchmark sets take (:class:`~iaead_core.data.ContaminatedSet`): one float32 tensor
``(N, C, 32, 32)`` in [−1, 1], so the :class:`~iaead_core.training.engine.Trainer` trains any method on it
unchanged.

Reading rules (each one is also stated where it is applied):

* **Files.** PNG, JPEG, BMP and TIFF (by extension, case-insensitive), in nested folders or in a
  ``.zip`` archive, decoded with Pillow. Hidden entries (names starting with ``.``) and
  ``__MACOSX`` folders are passed over silently; any other non-image file is *ignored* and
  listed; an image file Pillow cannot decode (corrupt, truncated, not really an image) is
  *skipped* and listed with the reason. Multi-frame files (TIFF stacks) give their first frame;
  an EXIF orientation is applied.
* **Modes.** Palette and 1-bit images are expanded; transparent pixels are laid on black (the
  padding colour); CMYK/YCbCr become RGB; 16-bit images are divided by 257; 32-bit integer
  images count as 16-bit when a value exceeds 255, else as 8-bit; floating-point images as
  [0, 1] when every value lies there, else as 0..255 (clipped).
* **Channels.** ``"auto"``: 3 when any image is in colour — some pixel's red, green and blue
  differ by more than :data:`COLOUR_SPREAD` grey levels after resizing (so JPEG noise on a grey
  picture does not count) — else 1. Grey images are repeated into 3 channels; colour images
  become grey with Pillow's ITU-R 601-2 luma. ``1`` or ``3`` force the count.
* **Size.** Every image becomes 32×32 (the networks' input) with Pillow's antialiased bilinear
  filter. ``fit="pad"`` scales the longer side to 32 and pads the rest with black, centred
  (aspect kept, nothing cut); ``fit="crop"`` scales the shorter side to 32 and cuts the centre
  (aspect kept, borders lost). Small images are scaled up the same way, so objects keep one
  scale across mixed sizes.
* **Values.** Pixels ``x`` in 0..255 map to ``2·x/255 − 1`` as for the benchmark sets
  (:func:`~iaead_core.data.to_model_input`): black and the padding are −1.
* **Size limits.** Fewer than :data:`MIN_IMAGES` readable images (or none) is refused with
  :class:`TooFewImagesError`. More than :data:`MAX_IMAGES` image files are **subsampled** (not
  streamed): :data:`MAX_IMAGES` files are drawn uniformly at random (``seed``) before decoding,
  with an :class:`ImageFolderWarning`; the summary records how many there were.
* **Labels** (optional). Every image inside a folder named ``normal`` or ``anomaly``
  (case-insensitive, at any depth: the closest such folder counts), or a CSV of
  ``filename,label`` rows (``filename`` is the path inside the folder or, when unique, the bare
  file name; ``label`` is one of :data:`NORMAL_WORDS` / :data:`ANOMALY_WORDS`; a header row is
  optional). With labels of both kinds the engine computes metrics as for the benchmarks; with
  none (or one kind only) it reports losses and rankings.

Arrays (for the :class:`~iaead_core.detector.Detector`) follow :func:`infer_input_range` and
:func:`array_to_model_input` instead.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ImageSet", "SkippedFile", "ImageFolderError", "TooFewImagesError",
           "ImageFolderWarning", "load_image_folder", "finish_labels",
           "image_set_from_array", "array_to_model_input", "infer_input_range",
           "IMAGE_EXTENSIONS", "IMAGE_SIZE", "MIN_IMAGES", "MAX_IMAGES", "FITS", "MANIFEST",
           "COLOUR_SPREAD", "NORMAL_WORDS", "ANOMALY_WORDS"]

#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Side of the square network input, in pixels.
IMAGE_SIZE = 32
#: Fewest readable images a training folder may hold: with fewer there is no "usually normal"
#: to learn (the paper's smallest set has thousands).
MIN_IMAGES = 50
#: Most images read from one folder; larger folders are subsampled (module docstring).
#: 100,000 colour images take 1.2 GB as float32 tensors.
MAX_IMAGES = 100_000
#: How an image is brought to 32×32 (module docstring).
FITS = ("pad", "crop")
#: File in a run folder that lists the training images, in the order of the saved scores.
MANIFEST = "images.csv"
#: Channel spread (0..255 grey levels) above which an image counts as colour.
COLOUR_SPREAD = 16
#: Words read as labels (lower case) from a CSV.
NORMAL_WORDS = ("normal", "0", "inlier", "false", "no")
ANOMALY_WORDS = ("anomaly", "1", "anomalous", "outlier", "abnormal", "true", "yes")
_LABEL_FOLDERS = {"normal": 0, "anomaly": 1}
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


class ImageFolderWarning(UserWarning):
    """Something about a folder the user should know (subsampled, labels not used)."""


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
        ``"pad"`` or ``"crop"``.
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
        ``input_range``, ``warnings`` and ``manifest`` (the file in the run folder listing the
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
            "warnings": list(self.warnings),
            "manifest": None if self.paths is None else MANIFEST,
        }

    def save_manifest(self, run_dir: str | os.PathLike) -> None:
        """Write :data:`MANIFEST` (``index,path,label``, one row per image in the order of
        ``images``) into a run folder; nothing for an array. Called by the Trainer."""
        if self.paths is None:
            return
        with open(Path(run_dir) / MANIFEST, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["index", "path", "label"])
            for i, (p, y) in enumerate(zip(self.paths, self.labels.tolist())):
                w.writerow([i, p, _LABEL_NAMES[int(y)]])


# --------------------------------------------------------------------------------- sources

def _hidden(rel: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/"))


def _is_image(rel: str) -> bool:
    return rel.lower().endswith(IMAGE_EXTENSIONS)


class _Source:
    """The files of a folder or a zip archive, by ``/``-separated path inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            names = []
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
                rel_dir = Path(dirpath).relative_to(path)
                names += [(rel_dir / f).as_posix() for f in filenames]
        elif path.is_file() and (zipfile.is_zipfile(path) or path.suffix.lower() == ".zip"):
            try:
                self.zip = zipfile.ZipFile(path)
                names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as e:
                raise ImageFolderError(f"{path} is not a readable zip archive: {e}") from e
        elif path.is_file():
            raise ImageFolderError(
                f"{path} is a single file; give a folder of images or a .zip archive of one "
                f"(PNG, JPEG, BMP or TIFF files).")
        else:
            raise ImageFolderError(f"{path} does not exist (expected a folder of images or a "
                                   f".zip archive of one).")
        self.names = sorted(n for n in names if not _hidden(n))

    def read(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        return (self.path / name).read_bytes()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


# -------------------------------------------------------------------------------- decoding

def _to_8bit(img):
    """Bring an image of any Pillow mode to mode ``L`` or ``RGB`` (module docstring)."""
    from PIL import Image

    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and a.size and a.max() > 255):
            a = a / 257.0
        elif mode == "F" and a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    if mode == "1":
        return img.convert("L")
    if mode in ("L", "RGB"):
        return img
    if mode in ("P", "PA", "LA", "La", "RGBA", "RGBa"):
        if mode == "P" and "transparency" not in img.info:
            return img.convert("RGB")
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _decode(data: bytes, fit: str) -> np.ndarray:
    """One file's bytes → uint8 ``(32, 32)`` (grey) or ``(32, 32, 3)`` (RGB).

    Raises whatever Pillow raises for a file it cannot read (the caller lists it as skipped).
    """
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EXIF and size notices about files that do decode
        img = Image.open(io.BytesIO(data))
        img.draft(None, (2 * IMAGE_SIZE, 2 * IMAGE_SIZE))  # JPEG: decode at a reduced scale
        img.load()  # decodes now, so a truncated file fails here
        img = ImageOps.exif_transpose(img)
        img = _to_8bit(img)
        size, resample = (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR
        if fit == "pad":
            img = ImageOps.pad(img, size, method=resample, color=0, centering=(0.5, 0.5))
        else:
            img = ImageOps.fit(img, size, method=resample, centering=(0.5, 0.5))
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 3 and int(np.ptp(a.astype(np.int16), axis=2).max()) <= COLOUR_SPREAD:
        a = np.asarray(img.convert("L"), dtype=np.uint8)  # a grey picture stored as RGB
    return a


def _stack(arrays: list[np.ndarray], channels: int) -> np.ndarray:
    """Decoded images → uint8 ``(N, channels, 32, 32)``."""
    from PIL import Image

    out = np.empty((len(arrays), channels, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, a in enumerate(arrays):
        if channels == 3:
            out[i] = a.transpose(2, 0, 1) if a.ndim == 3 else a[None]
        else:
            out[i, 0] = a if a.ndim == 2 else np.asarray(Image.fromarray(a).convert("L"))
    return out


# ---------------------------------------------------------------------------------- labels

def _label_word(value: str) -> int | None:
    v = value.strip().lower()
    if v in NORMAL_WORDS:
        return 0
    if v in ANOMALY_WORDS:
        return 1
    return None


def _labels_from_folders(paths: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    labels = np.full(len(paths), -1, np.int64)
    for i, p in enumerate(paths):
        for part in reversed(p.split("/")[:-1]):  # the closest labelled folder counts
            if part.lower() in _LABEL_FOLDERS:
                labels[i] = _LABEL_FOLDERS[part.lower()]
                break
    notes = []
    n_unknown = int((labels < 0).sum())
    if 0 < n_unknown < len(paths):
        notes.append(f"{len(paths) - n_unknown} images lie in 'normal'/'anomaly' folders but "
                     f"{n_unknown} do not (e.g. {paths[int(np.argmax(labels < 0))]}): the folder "
                     f"names are not used as labels.")
        labels[:] = -1
    return labels, notes


def _norm_name(name: str) -> str:
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _read_label_csv(csv_path: Path) -> dict[str, int]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ImageFolderError(f"cannot read the label file {csv_path}: {e}") from e
    table: dict[str, int] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2:
            raise ImageFolderError(f"{csv_path}, line {n}: expected 'filename,label', got "
                                   f"{','.join(row)!r}.")
        y = _label_word(row[1])
        if y is None:
            if n == 1 and not table:  # a header row
                continue
            raise ImageFolderError(
                f"{csv_path}, line {n}: label {row[1].strip()!r} is not one of "
                f"{', '.join(NORMAL_WORDS)} (normal) or {', '.join(ANOMALY_WORDS)} (anomaly).")
        table[_norm_name(row[0])] = y
    if not table:
        raise ImageFolderError(f"the label file {csv_path} holds no 'filename,label' rows.")
    return table


def _labels_from_csv(paths: Sequence[str], csv_path: Path) -> tuple[np.ndarray, list[str]]:
    table = _read_label_csv(csv_path)
    # A row may name an image by its path inside the folder, or by its bare file name when
    # neither the folder nor the CSV has another file of that name.
    by_base: dict[str, list[str]] = {}
    for key in table:
        by_base.setdefault(PurePosixPath(key).name, []).append(key)
    base_count: dict[str, int] = {}
    for p in paths:
        b = PurePosixPath(p).name
        base_count[b] = base_count.get(b, 0) + 1
    labels = np.full(len(paths), -1, np.int64)
    missing, used = [], set()
    for i, p in enumerate(paths):
        b = PurePosixPath(p).name
        keys = by_base.get(b, [])
        key = p if p in table else (keys[0] if len(keys) == 1 and base_count[b] == 1 else None)
        if key is None:
            missing.append(p)
            continue
        labels[i] = table[key]
        used.add(key)
    if missing:
        raise ImageFolderError(
            f"the label file {csv_path} gives no label for {len(missing)} of the {len(paths)} "
            f"images (e.g. {', '.join(missing[:5])}); list every image as 'filename,label' "
            f"(filename: the path inside the folder, or the bare name when it is unique), or "
            f"leave the labels out to get rankings only.")
    notes = []
    if len(table) > len(used):
        notes.append(f"{len(table) - len(used)} rows of {csv_path.name} name no readable "
                     f"image of the folder; they are not used.")
    return labels, notes


def finish_labels(labels: np.ndarray, source: str | None) -> tuple[np.ndarray | None,
                                                                       str | None, list[str]]:
    """is_anomaly (only with both kinds of label), the label source, notes."""
    if source is None or (labels < 0).all():
        return None, None, []
    kinds = set(labels.tolist())
    if kinds == {0} or kinds == {1}:
        only = "normal" if kinds == {0} else "anomalous"
        return None, source, [f"every image is labelled {only}: no metrics can be computed, "
                              f"only rankings."]
    return labels == 1, source, []


# --------------------------------------------------------------------------------- loading

def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")


def load_image_folder(path: str | os.PathLike, *, channels: int | str = "auto",
                      fit: str = "pad", labels: str | os.PathLike | None = None,
                      rho: float = 0.1, seed: int = 0, max_images: int | None = None,
                      min_images: int | None = None, files: Sequence[str] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """Read a folder (nested allowed) or ``.zip`` of images into an :class:`ImageSet`.

    The rules (files, modes, channels, 32×32 fitting, [−1, 1] values, limits, labels) are
    those of the module docstring.

    Parameters
    ----------
    path : str or os.PathLike
        A folder, or a ``.zip`` archive of one.
    channels : {"auto", 1, 3}
        ``"auto"``: 3 when any image is in colour, else 1.
    fit : {"pad", "crop"}
        Aspect kept and padded with black, or centre crop.
    labels : path or None
        A CSV of ``filename,label`` rows. Without it, folders named ``normal`` / ``anomaly``
        give the labels when every image lies in one.
    rho : float
        The guessed anomaly fraction ρ in (0, 0.5), recorded with the set (the contamination
        threshold flags the top ρ of the scores).
    seed : int
        Seed of the subsampling draw.
    max_images : int or None
        Subsample to at most this many image files (random, ``seed``); the hard limit
        :data:`MAX_IMAGES` applies in any case, with a warning.
    min_images : int or None
        Fewest readable images accepted (default :data:`MIN_IMAGES`; scoring new images
        passes 1).
    files : sequence of str or None
        Read exactly these paths (inside ``path``), in this order, e.g. a run's manifest; a
        missing or unreadable one is an error, no limit or subsampling applies, and no labels
        are read (the caller has them).
    progress : callable or None
        Called as ``progress(done, total)`` while decoding.

    Returns
    -------
    ImageSet
        ``images`` float32 (N, C, 32, 32) in [−1, 1]; ``paths`` in sorted order (or the order
        of ``files``).

    Raises
    ------
    ImageFolderError
        Path missing, not a folder or zip, unreadable archive or label file, a label file
        that misses images, ``files`` that cannot be read. A ``ValueError``.
    TooFewImagesError
        No image file at all, or fewer than ``min_images`` readable ones.
    ValueError
        Bad ``channels``, ``fit``, ``rho`` or ``max_images``.

    Warns
    -----
    ImageFolderWarning
        When the folder is subsampled, or labels found cannot be used.
    """
    _check_choice("channels", channels, ("auto", 1, 3))
    _check_choice("fit", fit, FITS)
    rho = float(rho)
    if not 0.0 < rho < 0.5:
        raise ValueError(f"rho (the guessed anomaly fraction) must lie in the open interval "
                         f"(0, 0.5), e.g. 0.05 or 0.1; got {rho}.")
    if max_images is not None and int(max_images) < 1:
        raise ValueError(f"max_images must be a positive number of images; got {max_images}.")
    minimum = MIN_IMAGES if min_images is None else int(min_images)
    root = Path(path).expanduser().resolve()
    src = _Source(root)
    try:
        label_file = Path(labels).expanduser().resolve() if labels is not None else None
        if label_file is not None and not label_file.is_file():
            raise ImageFolderError(f"the label file {label_file} does not exist.")
        notes: list[str] = []
        ignored = [SkippedFile(n, f"not an image file ({PurePosixPath(n).suffix or 'no extension'}"
                                  f"; reads {', '.join(IMAGE_EXTENSIONS)})")
                   for n in src.names if not _is_image(n)
                   and (label_file is None or src.zip is not None or root / n != label_file)]
        if files is not None:
            candidates = [_norm_name(f) for f in files]
            absent = sorted(set(candidates) - set(src.names))
            if absent:
                raise ImageFolderError(
                    f"{len(absent)} of the {len(candidates)} recorded images are no longer in "
                    f"{root} (e.g. {', '.join(absent[:5])}); the folder has changed since.")
        else:
            candidates = [n for n in src.names if _is_image(n)]
        n_files = len(candidates)
        if not candidates:
            raise TooFewImagesError(
                f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {root}"
                + (f"; {len(ignored)} other file(s) were ignored (e.g. {ignored[0].path})"
                   if ignored else "") + ".", 0, minimum, [], ignored)
        limit = MAX_IMAGES if max_images is None else min(int(max_images), MAX_IMAGES)
        subsampled_from = None
        if files is None and n_files > limit:
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(n_files, limit, replace=False))
            candidates = [candidates[i] for i in keep]
            subsampled_from = n_files
            why = ("the limit of the folder reader" if limit == MAX_IMAGES
                   else f"max_images={limit}")
            msg = (f"{root} holds {n_files:,} image files, more than {limit:,} ({why}): a "
                   f"random subsample of {limit:,} (seed {seed}) is used.")
            notes.append(msg)
            warnings.warn(msg, ImageFolderWarning, stacklevel=2)

        arrays, kept, skipped = [], [], []
        for i, name in enumerate(candidates):
            try:
                arrays.append(_decode(src.read(name), fit))
                kept.append(name)
            except Exception as e:  # Pillow raises many types for bad files; each is listed
                skipped.append(SkippedFile(name, _reason(e)))
            if progress is not None:
                progress(i + 1, len(candidates))
    finally:
        src.close()
    if files is not None and skipped:
        raise ImageFolderError(f"{len(skipped)} recorded image(s) can no longer be read: "
                               + "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]))
    if len(kept) < minimum:
        listed = "".join(f"\n  {s.path}: {s.reason}" for s in skipped[:10])
        raise TooFewImagesError(
            f"{root} holds {len(kept)} readable image(s); at least {minimum} are needed to "
            f"learn what is normal. {len(skipped)} image file(s) could not be read and "
            f"{len(ignored)} other file(s) were ignored.{listed}",
            len(kept), minimum, skipped, ignored)

    if channels == "auto":
        channels = 3 if any(a.ndim == 3 for a in arrays) else 1
    x = _stack(arrays, int(channels))
    del arrays
    if files is not None:  # the caller knows the labels (a run's manifest)
        y, label_notes, source = np.full(len(kept), -1, np.int64), [], None
    elif label_file is not None:
        y, label_notes = _labels_from_csv(kept, label_file)
        source = "csv"
    else:
        y, label_notes = _labels_from_folders(kept)
        source = "folders"
    is_anomaly, label_source, more = finish_labels(y, source)
    for note in label_notes + more:
        notes.append(note)
        warnings.warn(note, ImageFolderWarning, stacklevel=2)
    return ImageSet(
        images=torch.from_numpy(x).float().mul_(2.0 / 255.0).sub_(1.0), paths=kept,
        is_anomaly=is_anomaly, labels=y, dataset="folder", root=str(root),
        channels=int(channels), fit=fit, rho=rho, seed=int(seed), label_source=label_source,
        skipped=skipped, ignored=ignored, n_files=n_files, subsampled_from=subsampled_from,
        max_samples=None if subsampled_from is None else limit, warnings=notes)


def _reason(e: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(e, UnidentifiedImageError):  # its message names a BytesIO object
        return "not a readable image: Pillow cannot identify the format (corrupt or mislabelled)"
    text = str(e).strip() or "unreadable"
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(e).__name__}: {text}"


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


def _as_nchw(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4 or t.shape[1] not in (1, 3) or t.shape[0] == 0 or min(t.shape[2:]) < 1:
        hint = ""
        if t.ndim == 4 and t.shape[-1] in (1, 3):
            hint = " (channels last? move them with x.transpose(0, 3, 1, 2))"
        raise ValueError(f"images must have shape (N, C, H, W) with C = 1 or 3, or (N, H, W), "
                         f"N ≥ 1; got {tuple(t.shape)}{hint}.")
    return t


def array_to_model_input(x: np.ndarray | torch.Tensor, input_range: tuple[float, float],
                         fit: str = "pad", channels: int | None = None,
                         chunk: int = 4096) -> torch.Tensor:
    """Turn an image array into the network's input.

    Parameters
    ----------
    x : array or tensor, shape (N, C, H, W) with C ∈ {1, 3}, or (N, H, W)
        Any real dtype and range.
    input_range : (low, high)
        Values mapped linearly to (−1, 1): ``2·(x − low)/(high − low) − 1`` (from
        :func:`infer_input_range` on the training images; values outside stay outside, so an
        image brighter than any training image keeps that difference).
    fit : {"pad", "crop"}
        For sizes other than 32×32: scale the longer side to 32 and pad with −1, centred, or
        scale the shorter side to 32 and cut the centre (torch's antialiased bilinear filter).
    channels : {1, 3} or None
        Channels wanted: grey is repeated into 3; colour becomes ITU-R 601-2 luma
        (0.299 R + 0.587 G + 0.114 B). None keeps C.
    chunk : int
        Images converted at a time (bounds the float64 working memory).

    Returns
    -------
    torch.Tensor
        float32, shape (N, channels or C, 32, 32).

    Raises
    ------
    ValueError
        Bad shape, ``fit`` or ``channels``.
    """
    _check_choice("fit", fit, FITS)
    if channels is not None:
        _check_choice("channels", channels, (1, 3))
    t = _as_nchw(x)
    low, high = float(input_range[0]), float(input_range[1])
    out = []
    for i in range(0, len(t), chunk):
        part = (t[i:i + chunk].double() - low) * (2.0 / (high - low)) - 1.0
        part = _fit_tensor(part.float(), fit)
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
                         | None = None, fit: str = "pad", channels: int | None = None,
                         rho: float = 0.1, seed: int = 0,
                         min_images: int = MIN_IMAGES) -> ImageSet:
    """An :class:`ImageSet` (``dataset="array"``, no paths, no labels) from an image array.

    Parameters
    ----------
    x : array or tensor (N, C, H, W) or (N, H, W)
    input_range : (low, high) or None
        Default :func:`infer_input_range` of ``x``.
    fit, channels : see :func:`array_to_model_input`.
    rho : float
        Guessed anomaly fraction (recorded).
    seed : int
        Recorded with the set.
    min_images : int
        Fewest images accepted.

    Returns
    -------
    ImageSet

    Raises
    ------
    TooFewImagesError
        Fewer than ``min_images`` images.
    ValueError
        Bad shape, dtype or values.
    """
    t = _as_nchw(x)
    if len(t) < min_images:
        raise TooFewImagesError(f"{len(t)} image(s) given; at least {min_images} are needed to "
                                f"learn what is normal.", len(t), min_images, [], [])
    rng_ = infer_input_range(t) if input_range is None else tuple(map(float, input_range))
    images = array_to_model_input(t, rng_, fit=fit, channels=channels)
    n = len(images)
    return ImageSet(images=images, paths=None, is_anomaly=None,
                    labels=np.full(n, -1, np.int64), dataset="array", root=None,
                    channels=int(images.shape[1]), fit=fit, rho=float(rho), seed=int(seed),
                    n_files=n, input_range=(float(rng_[0]), float(rng_[1])))
