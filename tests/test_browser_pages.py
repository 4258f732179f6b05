"""The Experiments and Your images pages end to end in a real browser (the lab served by
``streamlit run app/main.py``, Playwright on Debian's Chromium; the helpers and the
``chromium`` fixture of ``tests/test_browser.py``). Skipped when /usr/bin/chromium is missing,
unless CI is set. Screenshots go to $IAEAD_SCREENSHOTS or to the test's tmp folder."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import screenshots_lib as lab  # noqa: E402
from test_browser import chromium  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path, shared_data_root, monkeypatch):
    """The lab on a free port with fresh runs and experiments folders and the real data."""
    monkeypatch.setenv("IAEAD_EXPERIMENTS_DIR", str(tmp_path / "experiments"))
    port = lab.free_port()
    proc = lab.start_server(port, tmp_path / "runs", shared_data_root, tmp_path / "server.log")
    yield f"http://127.0.0.1:{port}", tmp_path
    lab.stop_server(proc)


def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("IAEAD_SCREENSHOTS") or tmp_path / "screenshots")


def test_a_tiny_experiment_fills_its_figure_in(chromium, served):  # noqa: F811
    url, tmp = served
    page = lab.open_app(chromium, url)
    lab.open_page(page, "Experiments")
    lab.choose(page, "Start from", "custom: start from one IAEAD run")
    # The choice fills the fields; type only once it has (else the fill may overwrite it).
    page.wait_for_function(
        "() => [...document.querySelectorAll('input')].some(i => i.value === 'my-study')")
    lab.fill_text(page, "Name", "tiny")
    lab.choose(page, "Kind (the report's main view)", "fig4-lambda")
    lab.fill_text(page, "λ values", "0, 5e-5")
    lab.fill_number(page, "Epochs (blank", 2)
    lab.fill_number(page, "Images per set", 300)
    lab.fill_text(page, "Seeds", "1")  # a custom quick study starts from 3 seeds
    # Each field reruns the page; on a loaded machine that takes a while.
    page.get_by_text("2 of 2 runs to train").first.wait_for(timeout=180_000)
    page.get_by_text("tiny-quick").first.wait_for(timeout=60_000)  # every field took
    assert lab.chart_points(page) == 0  # Fig. 4 is drawn, still empty
    lab.wait_app_idle(page)  # a rerun briefly shows the stale copy of the button beside the new
    page.get_by_role("button", name="Start / resume").first.click()
    page.wait_for_function(f"() => ({lab.POINTS_JS})(0) >= 2", timeout=240_000)
    page.get_by_text("2 of 2 runs completed").first.wait_for(timeout=60_000)
    lab.screenshot(page, shots(tmp) / "experiments.png")
    runs = tmp / "experiments" / "tiny-quick" / "runs"
    assert sorted((d / "status.json").exists() for d in runs.iterdir()) == [True, True]
    # A cell's runs open on the Runs page, in the same tab.
    page.get_by_role("link", name="Open its 1 run(s) on the Runs page").first.click()
    page.get_by_role("heading", name="Runs").first.wait_for()
    page.get_by_text("Showing 1 of the 1 runs").first.wait_for()
    assert "experiment=tiny-quick" in page.url


def test_a_zip_upload_is_read_trained_and_ranked(chromium, served, fashion_zip):  # noqa: F811
    url, tmp = served
    page = lab.open_app(chromium, url)
    lab.open_page(page, "Your images")
    page.get_by_text("a .zip uploaded from here").click()
    lab.wait_app_idle(page)
    page.locator('input[type="file"]').first.set_input_files(str(fashion_zip))
    page.get_by_text(fashion_zip.name).first.wait_for()
    lab.wait_app_idle(page)  # the upload reruns the page; a click during that rerun is lost
    page.get_by_role("button", name="Read the images").click()
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="images used")
    metric.first.wait_for(timeout=60_000)
    assert "60" in metric.first.inner_text()
    lab.fill_number(page, "Epochs", 2)
    page.get_by_role("button", name="Start training").click()
    flagged = page.locator('[data-testid="stMetric"]').filter(has_text="flagged")
    flagged.first.wait_for(timeout=180_000)
    # The default guess ρ = 10 %: above the 0.9-quantile of 60 distinct scores lie 6 (the
    # metric may first show the count of a render that ran before the threshold widget's value).
    flagged.filter(has_text="6 of 60").first.wait_for(timeout=60_000)
    page.get_by_text("#1 · ").first.wait_for(timeout=60_000)  # the ranked images
    lab.screenshot(page, shots(tmp) / "images.png")


@pytest.fixture
def fashion_zip(tmp_path, shared_data_root) -> Path:
    """A zip of 60 PNGs from real Fashion-MNIST: 54 sneakers and 6 bags."""
    from PIL import Image

    from iaead_core.data import load_pool

    x, y = load_pool("fashion-mnist", shared_data_root)
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == 7), 54, replace=False),
                          rng.choice(np.flatnonzero(y == 8), 6, replace=False)])
    path = tmp_path / "shop.zip"
    with zipfile.ZipFile(path, "w") as z:
        for j, i in enumerate(idx):
            png = io.BytesIO()
            Image.fromarray(x[i, 0]).save(png, "PNG")
            z.writestr(f"shop/{j:02d}.png", png.getvalue())
    return path
