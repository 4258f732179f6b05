import os
from pathlib import Path

import pytest

# Real MNIST / Fashion-MNIST in torchvision layout, shared read-only between checkouts.
SHARED = Path(os.environ.get("IAEAD_TEST_DATA_ROOT") or os.environ.get("IAEAD_DATA_ROOT")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data_root() -> Path:
    if not (SHARED / "MNIST" / "raw").is_dir():
        if os.environ.get("CI"):  # in CI the real data must be there: never skip silently
            pytest.fail(f"real MNIST not found under {SHARED}")
        pytest.skip(f"real MNIST/Fashion-MNIST not found under {SHARED} (set IAEAD_TEST_DATA_ROOT)")
    return SHARED


@pytest.fixture
def tmp_data_root(tmp_path, monkeypatch) -> Path:
    """An empty data root, also made the default through IAEAD_DATA_ROOT."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("IAEAD_DATA_ROOT", str(root))
    return root
