"""Reading the user's own images: a folder (or ``.zip``) of picture files, and its labels.

This is the non-benchmark entry point of issue 10. A folder is read once into an
:class:`~iaead_core.data.image_set.ImageSet`, the same form the benchmark sets take
(:class:`~iaead_core.data.ContaminatedSet`): one float32 tensor ``(N, C, 32, 32)`` in [−1, 1],
so the :class:`~iaead_core.training.engine.Trainer` trains any method on it unchanged.

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
  scale across mixed sizes. ``fit="protocol"`` (the :class:`~iaead_core.detector.Detector`'s
  default) prepares images as the paper's protocol does: 32×32 files are kept, 28×28 files get
  2 black pixels on every side (:func:`~iaead_core.data.to_model_input`), other sizes are
  treated as ``"pad"``.
* **Values.** Pixels ``x`` in 0..255 map to ``2·x/255 − 1`` as for the benchmark sets
  (:func:`~iaead_core.data.to_model_input`): black and the padding are −1.
* **Size limits.** Fewer than :data:`MIN_IMAGES` readable images (or none) is refused with
  :class:`TooFewImagesError`. More than :data:`MAX_IMAGES` image files are **subsampled** (not
  streamed): :data:`MAX_IMAGES` files are drawn uniformly at random (``seed``) before decoding,
  with an :class:`ImageFolderWarning`; the summary records how many there were.
* **Resource caps** (:class:`ImageLimits`; hostile files cannot exhaust memory). Each file is
  read in a bounded stream: at most :data:`MAX_IMAGE_BYTES` bytes (128 MiB), a zip entry capped
  both by its declared size and by what it actually inflates to (it is refused by its declared
  size before anything is inflated). Each image may hold at most :data:`MAX_IMAGE_PIXELS`
  pixels (4096², width × height as decoded, checked from the header before decoding); Pillow's
  own decompression-bomb limit stays on, and its warning refuses the file. All files together
  may be at most :data:`MAX_TOTAL_IMAGE_BYTES` bytes (8 GiB). Devices, pipes and other files
  that are not regular files are refused unread. A refused file is *skipped* and listed with
  the reason, like an unreadable one. The caps are settings: the environment variables
  ``IAEAD_MAX_IMAGE_PIXELS``, ``IAEAD_MAX_IMAGE_BYTES`` and ``IAEAD_MAX_TOTAL_IMAGE_BYTES``,
  or ``load_image_folder(..., limits=ImageLimits(...))``.
* **Labels** (optional). Every image inside a folder named ``normal`` or ``anomaly``
  (case-insensitive, at any depth: the closest such folder counts), or a CSV of
  ``filename,label`` rows (``filename`` is the path inside the folder or, when unique, the bare
  file name; ``label`` is one of :data:`NORMAL_WORDS` / :data:`ANOMALY_WORDS`; a header row is
  optional). With labels of both kinds the engine computes metrics as for the benchmarks; with
  none (or one kind only) it reports losses and rankings. The CSV must be a regular file of at
  most :data:`MAX_LABEL_BYTES` bytes (64 MiB) of UTF-8 text; its errors name the file and the
  line, never what the line holds (the path may point anywhere on a server).

Arrays (for the :class:`~iaead_core.detector.Detector`) follow
:func:`~iaead_core.data.image_set.infer_input_range` and
:func:`~iaead_core.data.image_set.array_to_model_input` instead.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from iaead_core.data.image_set import (ALL_FITS, FITS, IMAGE_SIZE, MIN_IMAGES, PROTOCOL,
                                       ImageFolderError, ImageSet, SkippedFile, TooFewImagesError,
                                       _check_choice)
__all__ = ["ImageFolderWarning", "ImageLimits", "load_image_folder", "finish_labels",
           "IMAGE_EXTENSIONS", "MAX_IMAGES", "MAX_IMAGE_PIXELS", "MAX_IMAGE_BYTES",
           "MAX_TOTAL_IMAGE_BYTES", "MAX_LABEL_BYTES", "COLOUR_SPREAD", "NORMAL_WORDS",
           "ANOMALY_WORDS"]

#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Most images read from one folder; larger folders are subsampled (module docstring).
#: 100,000 colour images take 1.2 GB as float32 tensors.
MAX_IMAGES = 100_000
#: Most pixels of one image (width × height as decoded; a JPEG is decoded at a reduced scale
#: first): 4096² (a 4096² RGBA image decodes to 64 MiB). Setting: ``IAEAD_MAX_IMAGE_PIXELS``.
MAX_IMAGE_PIXELS = 4096 * 4096
#: Most bytes of one image file, or of one zip entry (declared and inflated): 128 MiB (an
#: uncompressed 4096² RGBA file with 16 bits per channel). Setting: ``IAEAD_MAX_IMAGE_BYTES``.
MAX_IMAGE_BYTES = 128 * 2**20
#: Most bytes of all image files of one folder or archive together: 8 GiB (100,000 files of
#: 80 KiB). Setting: ``IAEAD_MAX_TOTAL_IMAGE_BYTES``.
MAX_TOTAL_IMAGE_BYTES = 8 * 2**30
#: Most bytes of a labels CSV: 64 MiB (a million rows).
MAX_LABEL_BYTES = 64 * 2**20
#: Channel spread (0..255 grey levels) above which an image counts as colour.
COLOUR_SPREAD = 16
#: Words read as labels (lower case) from a CSV.
NORMAL_WORDS = ("normal", "0", "inlier", "false", "no")
ANOMALY_WORDS = ("anomaly", "1", "anomalous", "outlier", "abnormal", "true", "yes")
_LABEL_FOLDERS = {"normal": 0, "anomaly": 1}


class ImageFolderWarning(UserWarning):
    """Something about a folder the user should know (subsampled, labels not used)."""


def _size(n: int) -> str:
    """Bytes in words: ``134,217,728 bytes (128 MiB)``."""
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n:,} bytes ({n / div:.3g} {unit})"
    return f"{n:,} bytes"


@dataclass(frozen=True)
class ImageLimits:
    """The resource caps of :func:`load_image_folder` (module docstring, *Resource caps*).

    Attributes
    ----------
    max_pixels : int
        Most pixels (width × height as decoded) of one image; default :data:`MAX_IMAGE_PIXELS`.
    max_file_bytes : int
        Most bytes of one file or zip entry; default :data:`MAX_IMAGE_BYTES`.
    max_total_bytes : int
        Most bytes of all files together; default :data:`MAX_TOTAL_IMAGE_BYTES`.
    """

    max_pixels: int = MAX_IMAGE_PIXELS
    max_file_bytes: int = MAX_IMAGE_BYTES
    max_total_bytes: int = MAX_TOTAL_IMAGE_BYTES

    #: Field → the environment variable that sets it.
    ENV = {"max_pixels": "IAEAD_MAX_IMAGE_PIXELS", "max_file_bytes": "IAEAD_MAX_IMAGE_BYTES",
           "max_total_bytes": "IAEAD_MAX_TOTAL_IMAGE_BYTES"}

    def __post_init__(self) -> None:
        for name in self.ENV:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ImageLimits.{name} must be a whole number ≥ 1; got {v!r}.")

    @classmethod
    def from_env(cls) -> "ImageLimits":
        """The caps set by ``IAEAD_MAX_IMAGE_PIXELS``, ``IAEAD_MAX_IMAGE_BYTES`` and
        ``IAEAD_MAX_TOTAL_IMAGE_BYTES`` (whole numbers; unset or empty: the defaults).

        Raises
        ------
        ValueError
            A variable that is not a whole number ≥ 1 (the message names it).
        """
        values = {}
        for name, var in cls.ENV.items():
            text = os.environ.get(var, "").strip().replace("_", "")
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                raise ValueError(f"the setting {var} must be a whole number ≥ 1 (e.g. "
                                 f"{getattr(cls, name)}); got {os.environ[var]!r}. Fix or unset it.")
            values[name] = int(text)
        return cls(**values)


class _Refused(Exception):
    """A file refused by a cap (listed as skipped with this reason)."""


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

    def size(self, name: str) -> int:
        """Bytes of a file as it says (a zip entry: its declared inflated size); raises
        :class:`_Refused` for what is not a regular file (a device, a pipe)."""
        if self.zip is not None:
            return self.zip.getinfo(name).file_size
        st = os.stat(self.path / name)  # follows a symlink: its target is what would be read
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("refused: not a regular file (a device, a pipe or a socket?)")
        return st.st_size

    def read(self, name: str, limit: int) -> bytes:
        """The bytes of a file, read in a bounded stream: a file larger than ``limit`` (by its
        declared size, or by what it yields) raises :class:`_Refused` having read at most
        ``limit + 1`` bytes."""
        declared = self.size(name)
        if declared > limit:
            raise _Refused(f"refused: {'inflates to' if self.zip else 'is'} {_size(declared)}, "
                           f"over the cap of {_size(limit)} per image file (setting "
                           f"IAEAD_MAX_IMAGE_BYTES)")
        if self.zip is not None:
            # zipfile stops at the declared size and checks the CRC at its end; reading at
            # most declared + 1 bytes also stops an entry that would inflate further.
            with self.zip.open(name) as f:
                data = f.read(declared + 1)
        else:
            with open(self.path / name, "rb") as f:
                data = f.read(limit + 1)
        if len(data) > limit or (self.zip is not None and len(data) != declared):
            raise _Refused(f"refused: yields {'more' if len(data) > declared else 'fewer'} "
                           f"bytes than its declared {_size(declared)} (damaged or crafted)")
        return data

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


# -------------------------------------------------------------------------------- decoding

def _to_8bit(img):
    """Bring an image of any Pillow mode to mode ``L`` or ``RGB`` (module docstring)."""
    from PIL import Image

    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.array(img, dtype=np.float32)  # one copy, then in place: 4 bytes a pixel
        if mode.startswith("I;16") or (mode == "I" and a.size and a.max() > 255):
            a /= 257.0
        elif mode == "F" and a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a *= 255.0
        np.rint(a, out=a)
        np.clip(a, 0, 255, out=a)
        return Image.fromarray(a.astype(np.uint8))
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


def _decode(data: bytes, fit: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """One file's bytes → uint8 ``(32, 32)`` (grey) or ``(32, 32, 3)`` (RGB).

    An image of more than ``max_pixels`` pixels (width × height as it would be decoded) raises
    :class:`_Refused` before it is decoded; so does Pillow's decompression-bomb warning (its
    limit, ``PIL.Image.MAX_IMAGE_PIXELS``, is left as it is). Raises whatever Pillow raises for
    a file it cannot read (the caller lists it as skipped).
    """
    from PIL import Image, ImageOps

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")  # EXIF notices about files that do decode
        warnings.simplefilter("always", Image.DecompressionBombWarning)  # kept: refuses below
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as e:
            raise _Refused(f"refused by Pillow's decompression-bomb limit: {e}") from None
        img.draft(None, (2 * IMAGE_SIZE, 2 * IMAGE_SIZE))  # JPEG: decode at a reduced scale
        w, h = img.size
        if w * h > max_pixels:
            raise _Refused(f"refused: {w}×{h} = {w * h:,} pixels, over the cap of "
                           f"{max_pixels:,} pixels per image (4096² by default; setting "
                           f"IAEAD_MAX_IMAGE_PIXELS)")
        bombs = [m for m in caught if issubclass(m.category, Image.DecompressionBombWarning)]
        if bombs:
            raise _Refused(f"refused by Pillow's decompression-bomb limit: {bombs[0].message}")
        img.load()  # decodes now, so a truncated file fails here
        img = ImageOps.exif_transpose(img)
        img = _to_8bit(img)
        size, resample = (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR
        if fit == PROTOCOL and img.size in ((28, 28), size):  # paper §4.3: pad 28 → 32
            img = ImageOps.expand(img, border=(IMAGE_SIZE - img.size[0]) // 2, fill=0)
        elif fit in ("pad", PROTOCOL):
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
    """``filename → 0/1`` from a labels CSV (module docstring). Its errors name the file and a
    line, never a line's content: the path may point at any file of a server."""
    name = csv_path.name
    try:
        st = os.stat(csv_path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageFolderError(f"the label file {name} is not a regular file; give a CSV "
                                   f"of filename,label rows.")
        if st.st_size > MAX_LABEL_BYTES:
            raise ImageFolderError(f"the label file {name} is {_size(st.st_size)}, over the cap "
                                   f"of {_size(MAX_LABEL_BYTES)} for a labels CSV; give a CSV "
                                   f"of filename,label rows only.")
        with open(csv_path, "rb") as f:
            raw = f.read(MAX_LABEL_BYTES + 1)
    except OSError as e:
        raise ImageFolderError(f"cannot read the label file {name} "
                               f"({e.strerror or type(e).__name__}).") from None
    if len(raw) > MAX_LABEL_BYTES:
        raise ImageFolderError(f"the label file {name} is over the cap of "
                               f"{_size(MAX_LABEL_BYTES)} for a labels CSV.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ImageFolderError(f"the label file {name} is not UTF-8 text (byte {e.start:,} "
                               f"cannot be decoded); save it as a UTF-8 CSV of filename,label "
                               f"rows.") from None
    table: dict[str, int] = {}
    rows = csv.reader(io.StringIO(text))
    n = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error:
            raise ImageFolderError(f"{name}, line {rows.line_num}: not readable as CSV; give "
                                   f"one filename,label row per line.") from None
        n = rows.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2:
            raise ImageFolderError(f"{name}, line {n}: expected two columns, filename,label; "
                                   f"found {len(row)}.")
        y = _label_word(row[1])
        if y is None:
            if not table and n == 1:  # a header row
                continue
            raise ImageFolderError(
                f"{name}, line {n}, column 2: the label is not one of "
                f"{', '.join(NORMAL_WORDS)} (normal) or {', '.join(ANOMALY_WORDS)} (anomaly).")
        table[_norm_name(row[0])] = y
    if not table:
        raise ImageFolderError(f"the label file {name} holds no filename,label rows.")
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
            f"the label file {csv_path.name} gives no label for {len(missing)} of the {len(paths)} "
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

def load_image_folder(path: str | os.PathLike, *, channels: int | str = "auto",
                      fit: str = "pad", labels: str | os.PathLike | None = None,
                      rho: float = 0.1, seed: int = 0, max_images: int | None = None,
                      min_images: int | None = None, files: Sequence[str] | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      limits: ImageLimits | None = None) -> ImageSet:
    """Read a folder (nested allowed) or ``.zip`` of images into an :class:`ImageSet`.

    The rules (files, modes, channels, 32×32 fitting, [−1, 1] values, limits, labels) are
    those of the module docstring.

    Parameters
    ----------
    path : str or os.PathLike
        A folder, or a ``.zip`` archive of one.
    channels : {"auto", 1, 3}
        ``"auto"``: 3 when any image is in colour, else 1.
    fit : {"pad", "crop", "protocol"}
        Aspect kept and padded with black, centre crop, or the paper's preparation (28×28
        padded by 2, 32×32 kept, else ``"pad"``).
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
    limits : ImageLimits or None
        The resource caps (pixels and bytes per image, bytes in all); default
        :meth:`ImageLimits.from_env` (the settings, else :data:`MAX_IMAGE_PIXELS`,
        :data:`MAX_IMAGE_BYTES`, :data:`MAX_TOTAL_IMAGE_BYTES`). A file over a cap is skipped
        and listed with the reason (for ``files``, an error).

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
        Bad ``channels``, ``fit``, ``rho`` or ``max_images``, or a cap setting that is not a
        whole number ≥ 1.

    Warns
    -----
    ImageFolderWarning
        When the folder is subsampled, or labels found cannot be used.
    """
    _check_choice("channels", channels, ("auto", 1, 3))
    _check_choice("fit", fit, ALL_FITS)
    rho = float(rho)
    if not 0.0 < rho < 0.5:
        raise ValueError(f"rho (the guessed anomaly fraction) must lie in the open interval "
                         f"(0, 0.5), e.g. 0.05 or 0.1; got {rho}.")
    if max_images is not None and int(max_images) < 1:
        raise ValueError(f"max_images must be a positive number of images; got {max_images}.")
    minimum = MIN_IMAGES if min_images is None else int(min_images)
    limits = ImageLimits.from_env() if limits is None else limits
    if not str(path).strip():
        raise ImageFolderError("no folder given (an empty path); give a folder of images or a "
                               ".zip archive of one.")
    root = Path(path).expanduser().resolve()
    src = _Source(root)
    try:
        label_file = Path(labels).expanduser().resolve() if labels is not None else None
        if label_file is not None and not label_file.exists():
            raise ImageFolderError(f"the label file {label_file} does not exist.")
        if label_file is not None and not label_file.is_file():
            raise ImageFolderError(f"the label file {label_file.name} is not a regular file; "
                                   f"give a CSV of filename,label rows.")
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
        total = 0  # bytes read so far, all files together
        for i, name in enumerate(candidates):
            try:
                size = src.size(name)
                if total + min(size, limits.max_file_bytes + 1) > limits.max_total_bytes:
                    raise _Refused(f"refused unread: the files before it total {_size(total)}, "
                                   f"and all image files together may hold at most "
                                   f"{_size(limits.max_total_bytes)} (setting "
                                   f"IAEAD_MAX_TOTAL_IMAGE_BYTES)")
                data = src.read(name, limits.max_file_bytes)
                total += len(data)
                arrays.append(_decode(data, fit, limits.max_pixels))
                del data
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

    if isinstance(e, _Refused):
        return str(e)
    if isinstance(e, UnidentifiedImageError):  # its message names a BytesIO object
        return "not a readable image: Pillow cannot identify the format (corrupt or mislabelled)"
    text = str(e).strip() or "unreadable"
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(e).__name__}: {text}"
