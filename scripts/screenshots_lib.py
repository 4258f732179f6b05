"""Drive the lab in a real browser: start ``streamlit run app/main.py``, steer Debian's Chromium
with Playwright, save small screenshots. Used by ``tests/test_browser.py`` and
``scripts/screenshots.py``.

Never runs ``playwright install``: it launches the system Chromium at ``/usr/bin/chromium``
(``apt-get install -y chromium``).
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MAX_PNG_BYTES = 400_000


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, runs_dir: str | Path, data_root: str | Path,
                 log_path: str | Path | None = None, timeout: float = 90.0,
                 offline: bool = False) -> subprocess.Popen:
    """Start the lab on ``port`` and wait until its health endpoint answers. ``offline``: every
    download goes to a proxy that is not there, so it fails at once (tests never download)."""
    env = {**os.environ, "IAEAD_RUNS_DIR": str(runs_dir), "IAEAD_DATA_ROOT": str(data_root)}
    if offline:
        env.update({k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY",
                                                       "HTTPS_PROXY")})
        env.pop("no_proxy", None)
        env.pop("NO_PROXY", None)
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} (log: {log_path})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"streamlit did not answer on port {port} within {timeout} s")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server process this module started."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def launch(playwright):
    """The system Chromium, headless, with network extras off."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def open_app(browser, url: str, timeout: float = 60_000):
    """A 1400×900 page on the lab's Train page, once Streamlit has finished its first run."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(timeout)
    page.goto(url)
    page.get_by_role("heading", name="Train").first.wait_for()
    wait_app_idle(page, timeout)
    return page


def wait_app_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit says it is no longer running the script (the status widget)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout)


def open_page(page, title: str, timeout: float = 60_000) -> None:
    """Click a navigation link in the sidebar and wait for the page's title."""
    page.get_by_role("link", name=title).first.click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label``."""
    page.get_by_role("combobox", name=label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).first.click()
    wait_app_idle(page)


def choose_typed(page, label: str, text: str) -> None:
    """Pick the first option of the select box labelled ``label`` that contains ``text``, by
    typing it (long option lists are virtualised: not every option is in the page)."""
    box = page.get_by_role("combobox", name=label, exact=True).first
    box.click()
    page.keyboard.type(text)
    page.get_by_role("option").filter(has_text=text).first.click()
    wait_app_idle(page)


def pick_radio(page, option: str, tries: int = 3, timeout: float = 10_000) -> None:
    """Choose the radio option labelled ``option``, and wait until the page has drawn with it.

    A click that lands while a page is still in its first run can be dropped (the browser
    test saw the Latent page keep its old histogram for minutes): the option is clicked again
    until its input stays checked once the app is idle, at most ``tries`` times.

    Raises AssertionError when the option is still not chosen after ``tries`` clicks.
    """
    from playwright.sync_api import expect  # lazy: the module's helpers load without it

    radio = page.get_by_role("radio", name=option, exact=True).first
    for _ in range(tries):
        wait_app_idle(page)
        if radio.is_checked():
            return
        page.get_by_text(option, exact=True).first.click()
        try:
            expect(radio).to_be_checked(timeout=timeout)
        except AssertionError:  # the click did not take: click once more
            continue
    wait_app_idle(page)
    assert radio.is_checked(), f"the radio option {option!r} did not stay chosen"


def selected(page, label: str) -> str:
    """The value shown by the select box labelled ``label``."""
    return page.get_by_role("combobox", name=label, exact=True).first.input_value()


def fill_number(page, label: str, value: int | float) -> None:
    """Type a value into the number input labelled ``label`` and commit it."""
    inp = page.locator('[data-testid="stNumberInput"]').filter(has_text=label).first.locator("input")
    inp.fill(str(value))
    inp.press("Enter")
    wait_app_idle(page)


def fill_text(page, label: str, value: str) -> None:
    """Type into the text input labelled ``label`` and commit it."""
    inp = page.locator('[data-testid="stTextInput"]').filter(has_text=label).first.locator("input")
    inp.fill(value)
    inp.press("Enter")
    wait_app_idle(page)


def remove_tag(page, label: str, tag: str) -> None:
    """Remove ``tag`` from the multiselect labelled ``label``."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).first
    box.get_by_role("button", name=f"Remove {tag}", exact=True).first.click()
    wait_app_idle(page)


def add_tag(page, label: str, tag: str) -> None:
    """Add ``tag`` to the multiselect labelled ``label``."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).first
    box.locator("input").first.click()
    page.get_by_role("option", name=tag, exact=True).first.click()
    page.keyboard.press("Escape")
    wait_app_idle(page)


def chart_points(page, index: int = 0) -> int:
    """Number of data points in the ``index``-th plotly chart on the page (0 if none yet)."""
    return page.evaluate(POINTS_JS, index)


#: JS: the bottom (px) of the main area's last element, so a shot can fit the content.
BOTTOM_JS = """() => Math.max(0, ...[...document.querySelectorAll(
    '[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]')]
    .map(e => e.getBoundingClientRect().bottom + (e.closest('[data-testid="stMain"]') || {scrollTop: 0}).scrollTop)) + 60"""

#: JS: number of drawn markers in the i-th plotly chart (SVG scatter points).
POINTS_JS = """(i) => { const p = document.querySelectorAll('.js-plotly-plot')[i];
                        return p ? p.querySelectorAll('.scatterlayer .points path').length : 0; }"""


def screenshot(page, path: str | Path, max_height: int = 2600) -> Path:
    """Save the whole page as a PNG under 400 KB (quantised to a palette if the plain one is
    larger). Streamlit scrolls inside its main block, so the viewport is stretched to the
    content's height (at most ``max_height``) for the shot, then restored."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = int(page.evaluate(BOTTOM_JS))
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(height, max_height))})
    page.wait_for_timeout(800)  # let plotly re-lay out its charts to the new size
    png = page.screenshot()
    page.set_viewport_size(size)
    if len(png) > MAX_PNG_BYTES:
        from PIL import Image

        img = Image.open(io.BytesIO(png)).convert("RGB")
        for colours, scale in ((128, 1.0), (64, 1.0), (64, 0.75), (32, 0.6)):
            im = img if scale == 1.0 else img.resize((int(img.width * scale), int(img.height * scale)))
            buf = io.BytesIO()
            im.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
            png = buf.getvalue()
            if len(png) <= MAX_PNG_BYTES:
                break
    path.write_bytes(png)
    return path
