"""Tests of iaead_core.data: the data protocol of docs/method.md §5 on real and format-true files."""

import hashlib
import inspect
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

from iaead_core import data
from iaead_core.cli.main import main
from iaead_core.data import benchmarks
from iaead_core.data import (DATASETS, DatasetCorruptError, DatasetUnavailableError, class_index,
                             contaminated, dataset_problems, dataset_status, load_pool,
                             make_contaminated, resolve_data_root, to_model_input)


def scaled(v) -> float:
    return 2.0 * float(v) / 255.0 - 1.0


# --- tiny files in the true on-disk formats ---------------------------------------------------

CIFAR10_PIXEL = (7, 2, 5, 17, 200)  # pool index, c, h, w, value (image 7 = data_batch_2[1])
SVHN_PIXEL = (33, 1, 30, 4, 77)     # pool index 33 = test image 3


def write_cifar10(root: Path) -> np.ndarray:
    """6 images per file (5 train batches + test) = 36, label = pool index % 10."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (36, 3072), dtype=np.uint8)
    i, c, h, w, v = CIFAR10_PIXEL
    x[i, c * 1024 + h * 32 + w] = v
    labels = [i % 10 for i in range(36)]
    for b, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        part = slice(6 * b, 6 * b + 6)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x[part], b"labels": labels[part]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in DATASETS["cifar10"].classes]}, f)
    return x


def write_cifar100(root: Path) -> list[int]:
    """45 train + 15 test images; 12 of coarse class 17 ('trees'), every other class present;
    fine labels differ."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    others = [i % 19 + (i % 19 >= 17) for i in range(48)]  # 0..16, 18, 19
    coarse = [17] * 9 + others[:36] + [17] * 3 + others[36:]
    x = np.random.default_rng(2).integers(0, 256, (60, 3072), dtype=np.uint8)
    for name, part in (("train", slice(0, 45)), ("test", slice(45, 60))):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x[part], b"coarse_labels": coarse[part],
                         b"fine_labels": [5 * c + 1 for c in coarse[part]]}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"coarse_label_names": [n.encode() for n in DATASETS["cifar100"].classes]}, f)
    return coarse


def write_svhn(root: Path) -> np.ndarray:
    """30 train + 12 test images; 20 of digit 0 (stored as label 10). Returns pooled digits."""
    folder = root / "SVHN"
    folder.mkdir(parents=True)
    y = np.array([10] * 14 + [1 + i % 9 for i in range(16)] + [10] * 6 + [1 + i % 9 for i in range(6)])
    x = np.random.default_rng(3).integers(0, 256, (32, 32, 3, 42), dtype=np.uint8)
    i, c, h, w, v = SVHN_PIXEL
    x[h, w, c, i] = v
    savemat(folder / "train_32x32.mat", {"X": x[..., :30], "y": y[:30, None].astype(np.uint8)})
    savemat(folder / "test_32x32.mat", {"X": x[..., 30:], "y": y[30:, None].astype(np.uint8)})
    return y % 10


@pytest.fixture
def official(monkeypatch):
    """``official(root, dataset)`` takes the MD5s of the tiny files just written under ``root``
    as the official ones (the real table holds the official archives' sums, which no
    hand-made file matches)."""
    def trust(root: Path, dataset: str) -> None:
        folder = root / benchmarks._LAYOUT[dataset][0]
        for f in folder.iterdir():
            monkeypatch.setitem(benchmarks.OFFICIAL_MD5[dataset], f.name,
                                hashlib.md5(f.read_bytes()).hexdigest())
    return trust


def check_protocol(s, k: int, rho: float):
    """Invariants every contaminated set must satisfy."""
    n = len(s)
    assert s.images.shape[0] == n and s.images.shape[2:] == (32, 32)
    assert s.images.dtype == torch.float32
    assert s.images.min() >= -1.0 and s.images.max() <= 1.0
    assert s.is_anomaly.dtype == bool and s.labels.dtype == np.int64
    assert np.all(s.labels[~s.is_anomaly] == k) and np.all(s.labels[s.is_anomaly] != k)
    assert len(np.unique(s.indices)) == n  # drawn without replacement
    assert s.n_normal + s.n_anomalies == n
    assert s.n_anomalies >= 1 and s.n_anomalies / n <= rho + 1e-12


# --- real MNIST / Fashion-MNIST ---------------------------------------------------------------

@pytest.mark.parametrize("digit, n_normal, n_anom", [(0, 6903, 767), (1, 7877, 875)])
def test_mnist_counts(shared_data_root, digit, n_normal, n_anom):
    s = make_contaminated("mnist", digit, rho=0.1, seed=0, data_root=shared_data_root,
                          download=False)
    assert (s.n_normal, s.n_anomalies, len(s)) == (n_normal, n_anom, n_normal + n_anom)
    check_protocol(s, digit, 0.1)
    assert abs(s.is_anomaly.mean() - 0.1) < 1e-3
    assert s.images.shape == (len(s), 1, 32, 32)
    # Normals are every pooled image of the class, not a sample.
    _, labels = load_pool("mnist", shared_data_root)
    assert set(s.indices[~s.is_anomaly]) == set(np.flatnonzero(labels == digit))


def test_mnist_pool_and_pixels(shared_data_root):
    images, labels = load_pool("mnist", shared_data_root)
    assert images.shape == (70_000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels)[:2].tolist() == [6903, 7877]
    assert load_pool("mnist", shared_data_root)[0] is images  # memoised
    s = make_contaminated("mnist", 0, data_root=shared_data_root, download=False)
    x = s.images.numpy()
    # 2-pixel zero padding becomes exactly -1 after scaling.
    assert np.all(x[:, :, :2] == -1) and np.all(x[:, :, -2:] == -1)
    assert np.all(x[:, :, :, :2] == -1) and np.all(x[:, :, :, -2:] == -1)
    for i in (0, 123, len(s) - 1):
        expected = 2 * images[s.indices[i]].astype(np.float32) / 255 - 1
        np.testing.assert_allclose(x[i, :, 2:30, 2:30], expected, atol=1e-6)
        assert s.labels[i] == labels[s.indices[i]]
    # A random permutation: anomalies are not all at the end, so a prefix is a fair sample.
    assert s.is_anomaly[: s.n_normal].any()


def test_fashion_counts_by_name_and_index(shared_data_root):
    by_name = make_contaminated("fashion-mnist", "T-Shirt", data_root=shared_data_root,
                                download=False)
    by_index = make_contaminated("fashion-mnist", 0, data_root=shared_data_root, download=False)
    assert (by_name.n_normal, by_name.n_anomalies, len(by_name)) == (7000, 777, 7777)
    assert by_name.class_name == "t-shirt" and by_name.normal_class == 0
    np.testing.assert_array_equal(by_name.indices, by_index.indices)
    assert torch.equal(by_name.images, by_index.images)
    bag = make_contaminated("fashion-mnist", 8, data_root=shared_data_root, download=False)
    assert (bag.n_normal, bag.n_anomalies, bag.class_name) == (7000, 777, "bag")
    check_protocol(bag, 8, 0.1)


def test_seed_reproducibility(real_digits):
    kw = dict(data_root=real_digits.data_root, download=False)
    a = make_contaminated(real_digits.dataset, 3, seed=5, **kw)
    b = make_contaminated(real_digits.dataset, 3, seed=5, **kw)
    c = make_contaminated(real_digits.dataset, 3, seed=6, **kw)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert torch.equal(a.images, b.images)
    assert set(a.indices[~a.is_anomaly]) == set(c.indices[~c.is_anomaly])
    assert set(a.indices[a.is_anomaly]) != set(c.indices[c.is_anomaly])
    assert a.summary()["seed"] == 5


def test_cap_and_max_samples_on_mnist(shared_data_root):
    s = make_contaminated("mnist", 0, data_root=shared_data_root, download=False, cap=1000)
    assert (len(s), s.n_anomalies, s.n_normal) == (1000, 100, 900)
    check_protocol(s, 0, 0.1)
    m = make_contaminated("mnist", 0, data_root=shared_data_root, download=False,
                          max_samples=500)
    assert (len(m), m.n_anomalies) == (500, 50)
    check_protocol(m, 0, 0.1)
    m = make_contaminated("mnist", 2, rho=0.2, data_root=shared_data_root, download=False,
                          max_samples=101)
    assert (len(m), m.n_anomalies) == (101, 20)
    with pytest.raises(ValueError, match="minimum is 10"):
        make_contaminated("mnist", 0, data_root=shared_data_root, max_samples=9)
    with pytest.raises(ValueError, match="minimum is 4"):
        make_contaminated("mnist", 0, rho=0.3, data_root=shared_data_root, max_samples=3)


def test_summary_is_json(real_digits):
    name = real_digits.dataset
    s = make_contaminated(name, 1, data_root=real_digits.data_root, download=False, max_samples=50)
    summary = json.loads(json.dumps(s.summary()))
    assert summary == {"dataset": name, "normal_class": 1, "class_name": "1", "rho": 0.1,
                       "seed": 0, "n_normal": 45, "n_anomalies": 5, "n": 50,
                       "source": DATASETS[name].source, "max_samples": 50}


def test_status(shared_data_root, tmp_data_root):
    assert dataset_status("mnist", shared_data_root) == "on disk"
    assert dataset_status("fashion-mnist", shared_data_root) == "on disk"
    assert dataset_status("cifar10", tmp_data_root) == "downloadable"
    assert dataset_status("svhn") == "downloadable"  # default root from IAEAD_DATA_ROOT
    assert dataset_status("digits") == dataset_status("mnist-5k") == "embedded"


# --- the default 12,000 cap, on a synthetic pool ------------------------------------------------

def test_default_cap(monkeypatch):
    assert inspect.signature(make_contaminated).parameters["cap"].default == 12_000
    labels = np.r_[np.zeros(13_000), np.arange(2_000) % 9 + 1].astype(np.int64)
    images = np.zeros((len(labels), 1, 28, 28), np.uint8)
    monkeypatch.setattr(contaminated, "load_pool", lambda *a, **k: (images, labels))
    s = make_contaminated("mnist", 0)  # uncapped: 13,000 + 1,444
    assert (len(s), s.n_anomalies, s.n_normal) == (12_000, 1_200, 10_800)
    check_protocol(s, 0, 0.1)


# --- CIFAR-10, CIFAR-100, SVHN from tiny format-true files ---------------------------------------

def test_cifar10_files(tmp_data_root, official):
    raw = write_cifar10(tmp_data_root)
    official(tmp_data_root, "cifar10")
    images, labels = load_pool("cifar10", tmp_data_root)
    assert images.shape == (36, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images.reshape(36, -1), raw)
    np.testing.assert_array_equal(labels, np.arange(36) % 10)
    assert dataset_status("cifar10") == "on disk"
    i, c, h, w, v = CIFAR10_PIXEL
    assert images[i, c, h, w] == v
    # Image 7 is a horse (class 7), so it is among the normals; int(3 * 0.4 / 0.6) = 2.
    s = make_contaminated("cifar10", "horse", rho=0.4, download=False)
    assert (s.n_normal, s.n_anomalies, s.class_name) == (3, 2, "horse")
    check_protocol(s, 7, 0.4)
    j = int(np.flatnonzero(s.indices == i)[0])
    assert s.images[j, c, h, w].item() == pytest.approx(scaled(v), abs=1e-6)


def test_cifar100_coarse_labels(tmp_data_root, official):
    coarse = write_cifar100(tmp_data_root)
    official(tmp_data_root, "cifar100")
    images, labels = load_pool("cifar100")
    assert images.shape == (60, 3, 32, 32)
    np.testing.assert_array_equal(labels, coarse)
    assert class_index("cifar100", "trees") == 17
    s = make_contaminated("cifar100", "trees", rho=0.2, seed=3, download=False)
    assert (s.n_normal, s.n_anomalies, s.class_name) == (12, 3, "trees")
    check_protocol(s, 17, 0.2)


def test_svhn_labels_pixels_and_cap(tmp_data_root, official):
    expected = write_svhn(tmp_data_root)
    official(tmp_data_root, "svhn")
    images, labels = load_pool("svhn")
    assert images.shape == (42, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected)  # train then test, 10 -> 0
    assert labels.min() == 0 and labels.max() == 9 and (labels == 0).sum() == 20
    i, c, h, w, v = SVHN_PIXEL
    assert images[i, c, h, w] == v
    full = make_contaminated("svhn", "0", rho=0.2, download=False)
    assert (full.n_normal, full.n_anomalies) == (20, 5)
    j = int(np.flatnonzero(full.indices == i)[0])
    assert full.images[j, c, h, w].item() == pytest.approx(scaled(v), abs=1e-6)
    capped = make_contaminated("svhn", 0, rho=0.2, download=False, cap=10)
    assert (len(capped), capped.n_anomalies, capped.n_normal) == (10, 2, 8)
    check_protocol(capped, 0, 0.2)
    # max_samples larger than the set changes nothing.
    same = make_contaminated("svhn", 0, rho=0.2, download=False, max_samples=1000)
    np.testing.assert_array_equal(same.indices, full.indices)


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="imagenet", normal_class=0), "allowed: mnist, fashion-mnist, cifar10"),
    (dict(dataset="fashion-mnist", normal_class="sock"), "'t-shirt'"),
    (dict(dataset="mnist", normal_class=10), r"indices 0\.\.9"),
    (dict(dataset="mnist", normal_class=-1), r"indices 0\.\.9"),
    (dict(dataset="mnist", normal_class=0, rho=0), r"open interval \(0, 0.5\)"),
    (dict(dataset="mnist", normal_class=0, rho=0.5), r"open interval \(0, 0.5\)"),
    (dict(dataset="mnist", normal_class=0, rho=-0.1), r"open interval \(0, 0.5\)"),
    (dict(dataset="mnist", normal_class=0, rho=0.7), r"open interval \(0, 0.5\)"),
    (dict(dataset="mnist", normal_class=0, max_samples=5), "minimum is 10"),
])
def test_bad_input(tmp_data_root, kwargs, match):
    # Validation happens before any file is read: the data root is empty.
    with pytest.raises(ValueError, match=match):
        make_contaminated(**kwargs, download=False)


@pytest.mark.parametrize("dataset, folder, first_file", [
    ("cifar10", "cifar-10-batches-py", "data_batch_1"),
    ("cifar100", "cifar-100-python", "train"),
    ("svhn", "SVHN", "train_32x32.mat"),
    ("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
    ("fashion-mnist", "FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
])
def test_unavailable(tmp_data_root, dataset, folder, first_file):
    with pytest.raises(DatasetUnavailableError) as info:
        make_contaminated(dataset, 0, download=False)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.dataset == dataset and err.folder == tmp_data_root.resolve() / folder
    assert first_file in err.expected and err.hint
    msg = str(err)
    assert str(err.folder) in msg and all(f in msg for f in err.expected)
    assert "mnist-5k" in msg and err.hint in msg
    # Neutral: no function argument or command-line flag; each interface adds its own.
    assert "download=True" not in msg and "--download" not in msg
    assert not isinstance(err, DatasetCorruptError)


# --- damaged files: named, with their size and the size they must have --------------------------

# Sizes fixed by the IDX format: 16-byte header + 28·28 bytes per image, 8 + 1 per label.
MNIST_SIZES = {"train-images-idx3-ubyte": 47_040_016, "train-labels-idx1-ubyte": 60_008,
               "t10k-images-idx3-ubyte": 7_840_016, "t10k-labels-idx1-ubyte": 10_008}


def test_mnist_sizes_match_the_real_files(shared_data_root):
    for folder in ("MNIST", "FashionMNIST"):
        for name, size in MNIST_SIZES.items():
            assert (shared_data_root / folder / "raw" / name).stat().st_size == size
    assert dataset_problems("mnist", shared_data_root) == []


def _linked_mnist(shared_data_root, tmp_data_root):
    """A data root whose MNIST/raw files link to the real ones (so a test can replace one)."""
    raw = tmp_data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_SIZES:
        (raw / name).symlink_to(shared_data_root / "MNIST" / "raw" / name)
    return raw


def test_truncated_real_mnist_file_is_named(shared_data_root, tmp_data_root, capsys):
    raw = _linked_mnist(shared_data_root, tmp_data_root)
    # A copy cut short, as an interrupted download or copy leaves it.
    cut = raw / "train-images-idx3-ubyte"
    cut.unlink()
    with open(shared_data_root / "MNIST" / "raw" / cut.name, "rb") as f:
        cut.write_bytes(f.read(1_000_000))
    assert dataset_status("mnist", tmp_data_root) == "corrupt"
    (problem,) = dataset_problems("mnist", tmp_data_root)
    assert (problem.path, problem.size, problem.expected_size) == (cut, 1_000_000, 47_040_016)
    for download in (False, True):  # a download would not replace a file that is there
        with pytest.raises(DatasetCorruptError) as info:
            make_contaminated("mnist", 0, data_root=tmp_data_root, download=download)
        msg = str(info.value)
        # Before: "Data set 'mnist' is not available: expected the files ..." (all four named).
        assert str(cut) in msg and "1,000,000 bytes, expected 47,040,016" in msg
        assert "t10k-images" not in msg and isinstance(info.value, DatasetUnavailableError)

    assert main(["datasets", "--data-root", str(tmp_data_root)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^mnist\s+corrupt", out, re.M)
    assert "damaged: train-images-idx3-ubyte is 1,000,000 bytes, expected 47,040,016" in out
    assert main(["train", "--seeds", "1", "--dataset", "mnist", "--data-root", str(tmp_data_root),
                 "--out", str(tmp_data_root / "runs")]) == 3
    err = capsys.readouterr().err
    assert "1,000,000 bytes, expected 47,040,016" in err and "hint: delete the damaged file" in err


def write_idx(raw: Path, sizes=MNIST_SIZES) -> None:
    """Files of the right size and header (images all zero, labels 0, 1, ..., 9, 0, ...):
    enough for the size, header and label checks."""
    raw.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        magic, n = (2051, (size - 16) // 784) if "images" in name else (2049, size - 8)
        with open(raw / name, "wb") as f:
            f.write(magic.to_bytes(4, "big") + n.to_bytes(4, "big"))
            if magic == 2049:
                f.write((np.arange(n) % 10).astype(np.uint8).tobytes())
            f.truncate(size)  # sparse: no 47 MB written


def test_idx_header_and_size_checks(tmp_data_root):
    raw = tmp_data_root / "FashionMNIST" / "raw"
    write_idx(raw)
    assert dataset_status("fashion-mnist") == "on disk" and dataset_problems("fashion-mnist") == []
    labels = raw / "t10k-labels-idx1-ubyte"
    with open(labels, "r+b") as f:
        f.write((2051).to_bytes(4, "big"))  # an image header on a label file
    (problem,) = dataset_problems("fashion-mnist")
    assert problem.path == labels and "not the header of an IDX file of 10,000 labels" in str(problem)
    labels.write_bytes(b"\0" * 10_009)  # one byte too many
    (problem,) = dataset_problems("fashion-mnist")
    assert "10,009 bytes, expected 10,008" in str(problem)
    assert dataset_status("fashion-mnist") == "corrupt"
    (raw / "train-images-idx3-ubyte").unlink()  # damaged beats missing: say what is wrong
    assert dataset_status("fashion-mnist") == "corrupt"


def test_truncated_cifar_and_svhn_files_are_named(tmp_data_root, official):
    write_cifar10(tmp_data_root)
    official(tmp_data_root, "cifar10")
    batch = tmp_data_root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    # No fixed size for pickles: their MD5 finds it, before anything is unpickled, and names it.
    assert dataset_status("cifar10") == "corrupt"
    with pytest.raises(DatasetCorruptError) as info:
        load_pool("cifar10")
    assert info.value.path == batch and str(batch) in str(info.value)
    assert "damaged or not the official file" in str(info.value)
    # A file the table trusts that still cannot be parsed is named too.
    official(tmp_data_root, "cifar10")
    with pytest.raises(DatasetCorruptError) as info:
        load_pool("cifar10")
    assert info.value.path == batch and "(100 bytes) could not be read" in str(info.value)

    write_svhn(tmp_data_root)
    official(tmp_data_root, "svhn")
    mat = tmp_data_root / "SVHN" / "test_32x32.mat"
    mat.write_bytes(mat.read_bytes()[:300])
    with pytest.raises(DatasetCorruptError, match="test_32x32.mat"):
        load_pool("svhn")


# --- hostile data roots (issue 18): no code from data files, labels checked -------------------

def test_official_md5_table_is_torchvisions():
    # The table is a copy (checking files must not load torch); its source is torchvision.
    from torchvision import datasets as tv

    for name, cls in (("cifar10", tv.CIFAR10), ("cifar100", tv.CIFAR100)):
        expected = dict(cls.train_list + cls.test_list)
        expected[cls.meta["filename"]] = cls.meta["md5"]
        assert benchmarks.OFFICIAL_MD5[name] == expected
    svhn = {f: md5 for _, f, md5 in (tv.SVHN.split_list[s] for s in ("train", "test"))}
    assert benchmarks.OFFICIAL_MD5["svhn"] == svhn
    assert set(benchmarks.OFFICIAL_MD5) == {"cifar10", "cifar100", "svhn"}


class _MakesAFile:
    """Unpickling this calls ``open(path, "w")``: a crafted file that would run code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_crafted_cifar_file_is_refused_before_it_is_unpickled(tmp_data_root, tmp_path,
                                                                 monkeypatch, capsys):
    write_cifar10(tmp_data_root)
    marker = tmp_path / "made-by-the-pickle"
    batch = tmp_data_root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _MakesAFile(marker), b"labels": [0]}))
    # Before: listed as "on disk", and loading it created the file, then said "damaged".
    assert main(["datasets", "--data-root", str(tmp_data_root)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^cifar10\s+corrupt", out, re.M) and not re.search(r"^cifar10\s+on disk", out, re.M)
    assert "damaged: data_batch_1 is damaged or not the official file" in out
    with pytest.raises(DatasetCorruptError) as info:
        load_pool("cifar10")
    assert info.value.path == batch and "damaged or not the official file" in str(info.value)
    assert main(["train", "--seeds", "1", "--dataset", "cifar10", "--data-root", str(tmp_data_root),
                 "--no-download", "--out", str(tmp_path / "runs")]) == 3
    assert "data_batch_1 is damaged or not the official file" in capsys.readouterr().err
    assert not marker.exists()
    # Even a file the table trusts is unpickled by an unpickler that builds arrays only.
    for f in batch.parent.iterdir():
        monkeypatch.setitem(benchmarks.OFFICIAL_MD5["cifar10"], f.name,
                            hashlib.md5(f.read_bytes()).hexdigest())
    with pytest.raises(DatasetCorruptError, match="refers to .*open, which no CIFAR file holds"):
        load_pool("cifar10")
    assert not marker.exists()


def test_svhn_and_cifar100_files_are_checked_before_they_are_parsed(tmp_data_root):
    write_svhn(tmp_data_root)
    write_cifar100(tmp_data_root)
    # Hand-made files are not the official ones: refused by their MD5, named, nothing parsed.
    for dataset, first in (("svhn", "train_32x32.mat"), ("cifar100", "train")):
        assert dataset_status(dataset) == "corrupt"
        problems = {p.path.name: str(p) for p in dataset_problems(dataset)}
        assert first in problems and "damaged or not the official file" in problems[first]
        assert benchmarks.OFFICIAL_MD5[dataset][first] in problems[first]  # the expected MD5
        with pytest.raises(DatasetCorruptError, match="damaged or not the official file"):
            load_pool(dataset)


def test_an_object_array_in_a_run_file_gives_no_pickle_advice(tmp_path):
    from iaead_core.runs import Run, RunError

    np.savez(tmp_path / "final.npz", scores=np.array([object()], dtype=object))
    run = Run(run_id="r", dir=tmp_path, meta={}, status={})
    with pytest.raises(RunError) as info:
        run.load_final()
    # Before: numpy's "Object arrays cannot be loaded when allow_pickle=False" reached the user.
    assert "allow_pickle" not in str(info.value) and "not unpickled here" in str(info.value)


def test_mnist_labels_out_of_range_are_damaged(shared_data_root, tmp_data_root, capsys):
    raw = _linked_mnist(shared_data_root, tmp_data_root)
    labels = raw / "train-labels-idx1-ubyte"
    labels.unlink()
    header = (shared_data_root / "MNIST" / "raw" / labels.name).read_bytes()[:8]
    labels.write_bytes(header + bytes([200]) * 60_000)  # right size, right header, every label 200
    # Before: "on disk", and training counted every normal image as an anomaly.
    assert dataset_status("mnist") == "corrupt"
    (problem,) = dataset_problems("mnist")
    assert problem.path == labels and "labels outside 0..9" in str(problem)
    assert "e.g. 200 at item 0" in str(problem)
    with pytest.raises(DatasetCorruptError, match="train-labels-idx1-ubyte"):
        make_contaminated("mnist", 0, download=False)
    assert main(["datasets", "--data-root", str(tmp_data_root)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^mnist\s+corrupt", out, re.M)
    assert "damaged: train-labels-idx1-ubyte holds labels outside 0..9" in out
    assert main(["train", "--seeds", "1", "--dataset", "mnist", "--data-root", str(tmp_data_root),
                 "--no-download", "--out", str(tmp_data_root / "runs")]) == 3


def test_a_label_file_missing_classes_is_damaged(tmp_data_root):
    raw = tmp_data_root / "FashionMNIST" / "raw"
    write_idx(raw)
    labels = raw / "t10k-labels-idx1-ubyte"
    with open(labels, "r+b") as f:  # every test label 0: the right range, not the right counts
        f.seek(8)
        f.write(bytes(10_000))
    (problem,) = dataset_problems("fashion-mnist")
    assert problem.path == labels and "has no item of class 1, 2, 3" in str(problem)
    assert dataset_status("fashion-mnist") == "corrupt"


def test_cifar_and_svhn_labels_and_counts_are_checked_on_loading(tmp_data_root, official):
    write_cifar10(tmp_data_root)
    batch = tmp_data_root / "cifar-10-batches-py" / "data_batch_2"
    with open(batch, "rb") as f:
        content = pickle.load(f, encoding="bytes")
    batch.write_bytes(pickle.dumps({**content, b"labels": [12] + content[b"labels"][1:]}))
    official(tmp_data_root, "cifar10")
    # Before: label 12 of a 10-class set was loaded as is.
    with pytest.raises(DatasetCorruptError, match=r"labels outside 0\.\.9 \(1 of them, e\.g\. 12"):
        load_pool("cifar10")
    batch.write_bytes(pickle.dumps({**content, b"labels": content[b"labels"][:5]}))
    official(tmp_data_root, "cifar10")
    with pytest.raises(DatasetCorruptError, match="data_batch_2 .*holds 6 images but 5 labels"):
        load_pool("cifar10")

    write_svhn(tmp_data_root)
    mat = tmp_data_root / "SVHN" / "test_32x32.mat"
    x = np.zeros((32, 32, 3, 3), np.uint8)
    savemat(mat, {"X": x, "y": np.array([[1], [20], [3]], np.uint8)})
    official(tmp_data_root, "svhn")
    # Before: label 20 became digit 0 (20 % 10).
    with pytest.raises(DatasetCorruptError, match=r"test_32x32.mat .*labels outside 1\.\.10"):
        load_pool("svhn")


def test_data_module_loads_without_torch():
    import subprocess
    import sys

    code = ("import sys; from iaead_core.data import dataset_status, DATASETS; "
            "[dataset_status(d) for d in DATASETS]; print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


# --- names, roots, conversion, embedded sets ---------------------------------------------------

def test_class_index():
    assert class_index("cifar100", "Trees") == 17
    assert class_index("cifar100", "vehicles_1") == class_index("cifar100", "vehicles-1") == 18
    assert class_index("cifar100", "large man made outdoor things") == 9
    assert class_index("fashion-mnist", "ankle boot") == 9
    assert class_index("cifar10", "SHIP") == class_index("cifar10", "8") == 8
    assert class_index("mnist", "0") == 0 and class_index("svhn", np.int64(7)) == 7
    with pytest.raises(ValueError, match="'airplane'"):
        class_index("cifar10", "plane")
    with pytest.raises(ValueError, match="allowed"):
        class_index("cifar10", True)


def test_resolve_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("IAEAD_DATA_ROOT", raising=False)
    assert resolve_data_root() == Path("./data")
    monkeypatch.setenv("IAEAD_DATA_ROOT", str(tmp_path))
    assert resolve_data_root() == tmp_path
    assert resolve_data_root("elsewhere") == Path("elsewhere")


def test_to_model_input():
    x = np.zeros((2, 3, 32, 32), np.uint8)
    x[0, 1, 2, 3] = 255
    t = to_model_input(x)
    assert t.dtype == torch.float32 and t.shape == (2, 3, 32, 32)
    assert t[0, 1, 2, 3] == 1 and t[0, 0, 0, 0] == -1
    d = to_model_input(np.full((1, 1, 8, 8), 16, np.uint8))
    assert d.shape == (1, 1, 32, 32) and torch.allclose(d, torch.ones_like(d))
    with pytest.raises(ValueError, match="28 or 32"):
        to_model_input(np.zeros((1, 1, 30, 30), np.uint8))


def test_embedded_sets():
    assert [s.name for s in data.list_datasets()] == list(DATASETS)
    images, labels = load_pool("mnist-5k")
    assert images.shape == (5000, 1, 28, 28) and images.max() == 255
    assert sorted(np.unique(labels)) == list(range(10))
    digits, digit_labels = load_pool("digits")
    assert digits.shape == (1797, 1, 8, 8) and digits.max() == 16 and len(digit_labels) == 1797
    for name in ("mnist-5k", "digits"):
        spec = DATASETS[name]
        assert spec.embedded and spec.channels == 1
        s = make_contaminated(name, 4, seed=1)
        check_protocol(s, 4, 0.1)
        assert s.images.shape == (len(s), 1, 32, 32)
        n4 = int((load_pool(name)[1] == 4).sum())
        assert s.n_normal == n4 and s.n_anomalies == int(n4 * 0.1 / 0.9 + 1e-9)
