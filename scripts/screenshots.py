"""Use the lab as a new user would, in a real browser, and save the README screenshots.

    PYTHONPATH=. python scripts/screenshots.py [--out docs/screenshots] [--runs /tmp/runs_ui]

1. starts ``streamlit run app/main.py``; on **Train** runs IAEAD + CAE + Deep SVDD on MNIST
   digit 0, ρ = 10 %, quick preset, to the end; measures the time from Start to the first AUROC
   point and how long a page switch takes during training;
2. **Latent space**: waits for the three UMAPs; 3. **λ sensitivity**: runs the default 6-point
   λ grid (``--sweep-epochs`` per run); 4. **Runs**;
5. restarts the server and checks that everything is still there.

Prints a JSON summary of the measurements. Needs /usr/bin/chromium and MNIST under
$IAEAD_DATA_ROOT (or ./data).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import screenshots_lib as lab
from playwright.sync_api import sync_playwright

MIN = 60_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/screenshots")
    ap.add_argument("--runs", default="/tmp/runs_ui")
    ap.add_argument("--data", default=os.environ.get("IAEAD_DATA_ROOT", "data"))
    ap.add_argument("--port", type=int, default=8599)
    ap.add_argument("--epochs", type=int, default=30, help="epochs of the comparison")
    ap.add_argument("--sweep-epochs", type=int, default=10, help="epochs per λ-sweep run")
    ap.add_argument("--images", type=int, default=3000, help="images per contaminated set")
    args = ap.parse_args()
    out, report = Path(args.out), {}
    log = Path(args.runs).parent / "screenshots_server.log"

    proc = lab.start_server(args.port, args.runs, args.data, log)
    url = f"http://127.0.0.1:{args.port}"
    try:
        with sync_playwright() as p:
            browser = lab.launch(p)
            page = lab.open_app(browser, url, MIN)
            if args.epochs != 30:
                lab.fill_number(page, "Epochs", args.epochs)
            if args.images != 3000:
                page.get_by_text("Advanced").click()
                lab.fill_number(page, "Images in the set", args.images)
            t0 = time.time()
            page.get_by_role("button", name="Start").click()
            page.wait_for_function(f"() => ({lab.POINTS_JS})(0) > 0", timeout=5 * MIN)
            report["first_auroc_point_s"] = round(time.time() - t0, 1)
            # responsiveness during training: a page switch and back
            t1 = time.time()
            lab.open_page(page, "Runs")
            report["page_switch_during_training_s"] = round(time.time() - t1, 2)
            t1 = time.time()
            lab.open_page(page, "Train")
            report["page_switch_back_s"] = round(time.time() - t1, 2)
            page.get_by_text("Deep SVDD · completed after").first.wait_for(timeout=40 * MIN)
            report["comparison_s"] = round(time.time() - t0, 1)
            page.get_by_text("Final metrics").first.wait_for()
            lab.wait_app_idle(page)
            page.wait_for_timeout(2000)  # the last poll's full rerun replaces stale elements
            lab.screenshot(page, out / "train.png")

            lab.open_page(page, "Latent space")
            t1 = time.time()
            page.wait_for_function(
                "() => [...document.querySelectorAll('.gtitle')].filter("
                "t => t.textContent.startsWith('UMAP of')).length >= 3", timeout=10 * MIN)
            report["three_umaps_s"] = round(time.time() - t1, 1)
            lab.wait_app_idle(page)
            page.wait_for_timeout(2000)
            lab.screenshot(page, out / "latent.png")

            lab.open_page(page, "λ sensitivity")
            lab.fill_number(page, "Epochs per run", args.sweep_epochs)
            if args.images != 3000:
                page.get_by_text("Advanced").click()
                lab.fill_number(page, "Images in the set", args.images)
            t1 = time.time()
            page.get_by_role("button", name="Start sweep").click()
            page.get_by_text("6 of 6 runs finished").first.wait_for(timeout=60 * MIN)
            report["sweep_s"] = round(time.time() - t1, 1)
            lab.wait_app_idle(page)
            page.wait_for_timeout(2000)
            lab.screenshot(page, out / "sensitivity.png")

            lab.open_page(page, "Runs")
            page.get_by_text("9 of 9 runs").first.wait_for()
            lab.screenshot(page, out / "runs.png")
            browser.close()
    finally:
        lab.stop_server(proc)

    # restart: everything must still be there
    proc = lab.start_server(args.port, args.runs, args.data, log)
    try:
        with sync_playwright() as p:
            browser = lab.launch(p)
            page = lab.open_app(browser, url, MIN)
            for name in ("IAEAD", "CAE", "Deep SVDD"):
                page.get_by_text(f"{name} · completed after").first.wait_for()
            lab.open_page(page, "Latent space")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.gtitle')].filter("
                "t => t.textContent.includes('of the latent codes')).length >= 3", timeout=5 * MIN)
            lab.open_page(page, "λ sensitivity")
            page.get_by_text("6 of 6 runs finished").first.wait_for()
            lab.open_page(page, "Runs")
            page.get_by_text("9 of 9 runs").first.wait_for()
            report["after_restart"] = "train, latent, sensitivity and runs all present"
            browser.close()
    finally:
        lab.stop_server(proc)
    report["png_bytes"] = {p.name: p.stat().st_size for p in sorted(out.glob("*.png"))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
