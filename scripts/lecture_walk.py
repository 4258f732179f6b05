"""Walk the lab as a lecturer preparing a class on feature collapse would (issue 17), in a real
browser, and save the screenshots of that walk.

    PYTHONPATH=. python scripts/lecture_walk.py [--out docs/screenshots] [--runs /tmp/walk/runs]

1. **Train** at 1600×900: IAEAD + CAE + Deep SVDD on MNIST digit 0 at λ = 50 (``--epochs``,
   ``--images``); records the first time-left estimate the page shows and the real duration;
2. presentation mode on, at 1280×720: the Train page, then **Latent space** with the
   histogram of the distance to c (the λ = 50 story), and the same page at 1600×900 in full;
3. **λ sensitivity**: a short sweep (``--sweep-epochs``), caught while it runs (one progress
   line per running run) and once it is done; 4. **Runs**; 5. **Experiments** (the sweep's
   experiment, its tables on the 0–1 scale).

Prints a JSON summary (the estimates against the real times, the texts checked). Needs
/usr/bin/chromium and MNIST under $IAEAD_DATA_ROOT.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import screenshots_lib as lab
from playwright.sync_api import sync_playwright

MIN = 60_000


def main() -> None:
    """Run the walk (see the module docstring); print its JSON summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--runs", default="/tmp/lecture_walk/runs")
    ap.add_argument("--data", default=os.environ.get("IAEAD_DATA_ROOT", "data"))
    ap.add_argument("--port", type=int, default=8598)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--sweep-epochs", type=int, default=3)
    args = ap.parse_args()
    out, report = Path(args.out), {"load_at_start": os.getloadavg()[0]}
    os.environ.setdefault("IAEAD_EXPERIMENTS_DIR", str(Path(args.runs).parent / "experiments"))
    proc = lab.start_server(args.port, args.runs, args.data, Path(args.runs).parent / "server.log")
    try:
        with sync_playwright() as p:
            browser = lab.launch(p)
            page = lab.open_app(browser, f"http://127.0.0.1:{args.port}", MIN)
            page.set_viewport_size({"width": 1600, "height": 900})
            thumb = page.locator('[data-testid="stSlider"]').filter(has_text="λ (IAEAD").first.get_by_role("slider")
            thumb.focus()
            thumb.press("End")
            lab.wait_app_idle(page)
            lab.fill_number(page, "Epochs", args.epochs)
            page.get_by_text("Advanced").click()
            lab.fill_number(page, "Images in the set", args.images)
            t0 = time.time()
            page.get_by_role("button", name="Start").click()
            eta = page.get_by_text(re.compile(r"About .* left for this comparison"))
            eta.first.wait_for(timeout=5 * MIN)
            report["first_estimate"] = eta.first.inner_text()
            report["first_estimate_after_s"] = round(time.time() - t0, 1)
            page.get_by_text("Deep SVDD · completed after").first.wait_for(timeout=30 * MIN)
            report["comparison_s"] = round(time.time() - t0, 1)
            page.get_by_text("Final metrics").first.wait_for(timeout=MIN)
            lab.wait_app_idle(page)
            lab.screenshot(page, out / "train.png")

            page.set_viewport_size({"width": 1280, "height": 720})
            page.get_by_text("Presentation mode").first.click()
            lab.wait_app_idle(page)
            page.wait_for_timeout(1500)
            page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
            lab.screenshot(page, out / "presentation-train.png", max_height=720)
            lab.open_page(page, "Latent space")
            lab.pick_radio(page, "distance to c (hypersphere, R marked)")
            page.get_by_text("of the latent codes").first.wait_for()
            page.wait_for_timeout(1500)
            lab.screenshot(page, out / "presentation-latent.png", max_height=720)
            box = page.locator('[data-testid="stAlert"]').filter(has_text="Feature collapse").first
            report["collapse_box"] = box.inner_text() if box.count() else None
            page.get_by_text("Presentation mode").first.click()
            lab.wait_app_idle(page)
            page.set_viewport_size({"width": 1600, "height": 900})
            page.wait_for_timeout(1500)
            lab.screenshot(page, out / "latent.png")

            lab.open_page(page, "λ sensitivity")
            lab.fill_number(page, "Epochs per run", args.sweep_epochs)
            page.get_by_text("Advanced").first.click()
            lab.fill_number(page, "Images in the set", args.images)
            lab.wait_app_idle(page)
            t1 = time.time()
            page.get_by_role("button", name="Start sweep").click()
            line = page.get_by_text(re.compile(r"· epoch \d+/\d+"))
            line.first.wait_for(timeout=5 * MIN)
            report["sweep_progress_line"] = line.first.inner_text()
            lab.screenshot(page, out / "sensitivity-running.png")
            page.get_by_text(re.compile(r"(\d+) of \1 runs finished")).first.wait_for(timeout=30 * MIN)
            report["sweep_s"] = round(time.time() - t1, 1)
            lab.wait_app_idle(page)
            page.wait_for_timeout(1500)
            lab.screenshot(page, out / "sensitivity.png")

            lab.open_page(page, "Runs")
            lab.wait_app_idle(page)
            lab.screenshot(page, out / "runs.png")
            lab.open_page(page, "Experiments")
            lab.wait_app_idle(page)
            page.wait_for_timeout(1500)
            lab.screenshot(page, out / "experiments.png")
            report["load_at_end"] = os.getloadavg()[0]
    finally:
        lab.stop_server(proc)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
