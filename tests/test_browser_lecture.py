"""Issue 17, "Lecture-ready lab", end to end in a real browser (the lab served by
``streamlit run app/main.py``, Playwright on Debian's Chromium; the fixtures of
``tests/test_browser.py``). Skipped when /usr/bin/chromium is missing, unless CI is set.
Screenshots go to $IAEAD_SCREENSHOTS (e.g. docs/screenshots) or to the test's tmp folder.

What is asserted is the agreement between what a page draws or says and the numbers behind
it, never one outcome of training: whether λ = 50 leaves the codes on one point or on a tiny
line differs between CPUs, and both must be told and drawn truthfully.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import screenshots_lib as lab  # noqa: E402
from test_browser import chromium, server  # noqa: E402,F401  (the fixtures)

pytestmark = pytest.mark.browser

#: JS: one plotly chart (a graph div) with its title, its axes as drawn (plotly's full
#: layout, after autorange; the x axis's title) and its traces' x values and axes.
_CHART_JS = """g => ({
    title: ((g.layout.title || {}).text || '').replace(/<[^>]+>/g, ''),
    layout: JSON.parse(JSON.stringify({
        x: g._fullLayout.xaxis && g._fullLayout.xaxis.range,
        xtitle: g._fullLayout.xaxis?.title?.text ?? '',
        y: g._fullLayout.yaxis && g._fullLayout.yaxis.range,
        y2: g._fullLayout.yaxis2 && {range: g._fullLayout.yaxis2.range, type: g._fullLayout.yaxis2.type,
                                     tickvals: g._fullLayout.yaxis2.tickvals,
                                     ticktext: g._fullLayout.yaxis2.ticktext},
        legend: g._fullLayout.legend?.font?.size ?? null,
        xtick: g._fullLayout.xaxis?.tickfont?.size ?? null,
        ytick: g._fullLayout.yaxis?.tickfont?.size ?? null})),
    data: g._fullData.map(t => ({type: t.type, name: t.name || '', xaxis: t.xaxis || 'x',
                            x: Array.from(t.x || []), y: Array.from(t.y || [])}))})"""

#: JS: every plotly chart of the page (:data:`_CHART_JS`), in page order.
CHARTS_JS = f"""() => [...document.querySelectorAll('.js-plotly-plot')].map({_CHART_JS})"""

#: JS: each side-by-side panel of the Latent page (the j-th column of the four rows that
#: start with the row of headings: story, map, histogram, alerts): its heading, its text, and
#: the charts inside it (:data:`_CHART_JS`), read in one pass, so that a chart and the panel
#: it belongs to come from the same page (read apart, a rerun in between, such as a UMAP
#: finishing, paired a panel with another panel's histogram).
PANELS_JS = f"""() => {{ const chart = {_CHART_JS};
    const rows = [...document.querySelectorAll('[data-testid="stHorizontalBlock"]')];
    const cols = r => [...r.children].filter(c => c.matches('[data-testid="stColumn"]'));
    const i0 = rows.findIndex(r => cols(r).some(c => c.querySelector('h3')));
    if (i0 < 0) return [];
    const mine = rows.slice(i0, i0 + 4);
    return cols(rows[i0]).map((c, j) => {{ const cells = mine.map(r => cols(r)[j]).filter(Boolean);
      return {{heading: (c.querySelector('h3') || {{innerText: ''}}).innerText.trim(),
              text: cells.map(x => x.innerText).join('\\n'),
              charts: cells.flatMap(x => [...x.querySelectorAll('.js-plotly-plot')]).map(chart)}}; }}); }}"""


def settled_panels(page, ready, timeout: float = 300.0) -> dict[str, dict]:
    """The Latent page's panels by heading (:data:`PANELS_JS`), once two reads a second apart
    agree, every panel shows its map and its histogram, and ``ready(panels)`` holds (a choice
    just made in the sidebar is drawn: the page reruns chart by chart, and polls while a UMAP
    computes, with a count of seconds in its text, then redraws)."""
    end = time.time() + timeout
    last = None
    while True:
        now = page.evaluate(PANELS_JS)
        if (now and now == last and all(len(p["charts"]) >= 2 for p in now)
                and ready({p["heading"]: p for p in now})):
            return {p["heading"]: p for p in now}
        shown = "; ".join(f"{p['heading']}: {[(c['title'], c['layout']['xtitle']) for c in p['charts']]}"
                          for p in now)
        assert time.time() < end, (f"the Latent page did not settle within {timeout:.0f} s "
                                   f"(still changing: {now != last}); charts: {shown}")
        last = now
        time.sleep(1.0)


def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("IAEAD_SCREENSHOTS") or tmp_path / "screenshots")


def set_lambda_to_max(page) -> None:
    """Move the λ select slider to its last choice (50) with the keyboard."""
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="λ (IAEAD").first.get_by_role("slider")
    thumb.focus()
    thumb.press("End")
    lab.wait_app_idle(page)


def chart(page, title: str, timeout: float = 60.0) -> dict:
    """The laid-out chart whose title starts with ``title``, once the page has drawn it (the
    text above a chart can appear before plotly has laid it out)."""
    end = time.time() + timeout
    while True:
        found = [c for c in page.evaluate(CHARTS_JS) if c["title"].startswith(title)]
        if found:
            return found[0]
        assert time.time() < end, f"no chart titled {title!r} within {timeout:.0f} s"
        time.sleep(0.5)


def decades(values) -> list[str]:
    """The decade labels a log axis over ``values`` must write (as λ is written)."""
    from iaead_core.numbers import log_ticks

    return log_ticks(values, max_ticks=12)[1]


def test_lambda_50_story_in_the_browser(chromium, server, tmp_path):  # noqa: F811
    url, _ = server
    page = lab.open_app(chromium, url)
    page.set_viewport_size({"width": 1600, "height": 900})
    # MNIST digit 0 (the defaults here), IAEAD + CAE + Deep SVDD at λ = 50, 10 epochs on
    # 1,000 images: IAEAD's SVDD term is on from epoch 6 and collapses the codes at once.
    assert lab.selected(page, "Data set") == "MNIST (on disk)"
    set_lambda_to_max(page)
    assert "50" in page.locator('[data-testid="stSlider"]').filter(has_text="λ (IAEAD").first.inner_text()
    lab.fill_number(page, "Epochs", 10)
    lab.fill_number(page, "Seeds per method", 1)  # quick's default is 3
    page.get_by_text("Advanced").click()
    lab.fill_number(page, "Images in the set", 1000)
    page.get_by_role("button", name="Start").click()
    for method in ("IAEAD", "CAE", "Deep SVDD"):
        page.get_by_text(f"{method} · completed after 10/10 epochs").first.wait_for(timeout=400_000)
    page.get_by_text("Final metrics").first.wait_for(timeout=60_000)
    lab.wait_app_idle(page)

    # The SVDD-loss panel: a log axis with a labelled tick at every decade the losses span
    # (0.1, 1, 10 and 100 when they go from below 1 to about R² = 50), all in view.
    loss = chart(page, "Losses and radius")
    svdd = [v for t in loss["data"] if t["xaxis"] == "x2" for v in t["y"]
            if isinstance(v, (int, float)) and v > 0]
    axis = loss["layout"]["y2"]
    assert axis["type"] == "log" and svdd
    want = decades(svdd)
    assert len(want) >= 2 and set(want) <= set(axis["ticktext"])
    lo, hi = axis["range"]
    assert lo <= math.log10(min(svdd)) + 1e-9 and hi >= math.log10(max(svdd)) - 1e-9
    for text, value in zip(axis["ticktext"], axis["tickvals"]):
        assert lo - 1e-9 <= math.log10(value) <= hi + 1e-9, f"tick {text} out of view"
    if min(svdd) < 0.1 and max(svdd) > 100:
        assert {"0.1", "1", "10", "100"} <= set(axis["ticktext"])
    lab.screenshot(page, shots(tmp_path) / "train-lambda50.png")

    # Latent space, default projection (UMAP), histogram of the distance to c.
    lab.open_page(page, "Latent space")
    lab.pick_radio(page, "distance to c (hypersphere, R marked)")
    page.get_by_text("of the latent codes").first.wait_for()
    panels = settled_panels(page, lambda ps: all(
        p["charts"][1]["layout"]["xtitle"].startswith("distance to c") for h, p in ps.items()
        if h != "CAE"))  # the CAE has no c: its histogram is of the distance to the mean code
    assert {"IAEAD", "CAE", "Deep SVDD"} <= set(panels)
    iaead = panels["IAEAD"]
    assert "Feature collapse." in iaead["text"]  # λ = 50 collapses IAEAD's codes
    proj, hist = iaead["charts"][:2]
    # no UMAP for the collapsed run, and the panel says why in one line
    assert proj["title"].startswith("PCA of the latent codes (at the codes' scale)")
    assert "UMAP is not drawn for a collapsed epoch" in iaead["text"]
    # its map is drawn at the scale of the codes: its axes are at least of the order of a
    # healthy run's, so one point looks like one point (not red and blue at opposite ends)
    width = proj["layout"]["x"][1] - proj["layout"]["x"][0]
    healthy = [panels[h]["charts"][0]["layout"]["x"] for h in ("CAE", "Deep SVDD")
               if "Feature collapse." not in panels[h]["text"]]
    assert healthy, "no healthy run beside the collapsed one"
    for r in healthy:
        assert width >= 0.1 * (r[1] - r[0])
    # the box names where the codes went, with the distance to c the histogram shows
    m = re.search(r"The codes form (one point|one line|a small region)(.*?), at distance "
                  r"([0-9.e+-]+) from c", iaead["text"])
    assert m, iaead["text"]
    assert ("saturated corner" in m.group(2)) or ("away from c" in m.group(2))
    said = float(m.group(3))
    if [t["type"] for t in hist["data"]] == ["bar", "bar"]:  # every image at one distance
        label = hist["data"][0]["x"][0]
        # both at 4 significant digits, of one mean: at most one unit of the last digit apart
        # (float32 scores against float64 codes can round either way at a digit's edge)
        shown = float(label.split(" for all ")[0])
        assert abs(shown - said) <= 1.01 * 10 ** (math.floor(math.log10(said)) - 3), (label, said)
    else:  # a tiny line: the distances differ, and the box's mean lies among them
        xs = [v for t in hist["data"] for v in t["x"]]
        assert min(xs) <= said <= max(xs)
    lab.screenshot(page, shots(tmp_path) / "latent-lambda50.png")


def test_presentation_mode_at_1280x720(chromium, server, tmp_path):  # noqa: F811
    url, _ = server
    page = lab.open_app(chromium, url)
    page.set_viewport_size({"width": 1280, "height": 720})
    lab.choose_typed(page, "Data set", "MNIST 5k")
    lab.remove_tag(page, "Methods", "Deep SVDD")
    lab.fill_number(page, "Epochs", 2)
    lab.fill_number(page, "Seeds per method", 1)  # quick's default is 3
    page.get_by_text("Advanced").click()
    lab.fill_number(page, "Images in the set", 300)
    page.get_by_role("button", name="Start").click()
    page.get_by_text("CAE · completed after 2/2 epochs").first.wait_for(timeout=180_000)
    page.get_by_text("Final metrics").first.wait_for(timeout=60_000)
    before = chart(page, "AUROC per epoch")
    # IAEAD has three rules and the CAE two: every rule is drawn, each method's own marked
    assert sum(" · own score" in t["name"] for t in before["data"]) == 2
    assert len([t for t in before["data"] if t["x"]]) == 5

    page.get_by_text("Presentation mode").first.click()
    lab.wait_app_idle(page)
    # the page reruns chart by chart: wait until both charts are redrawn (a read in between
    # saw one restyled chart beside a stale one), then check every font as laid out
    page.wait_for_function("() => { const g = [...document.querySelectorAll('.js-plotly-plot')];"
                           " return g.length === 2 && g.every(x => x._fullLayout.legend"
                           " && x._fullLayout.legend.font.size >= 18); }", timeout=60_000)
    lab.wait_app_idle(page)
    page.wait_for_timeout(500)
    shown = page.evaluate(CHARTS_JS)
    assert len(shown) == 2  # the AUROC chart and the losses
    for c in shown:  # every chart's legend and tick text, as plotly lays them out
        f = c["layout"]
        assert f["legend"] >= 18 and f["xtick"] >= 18 and f["ytick"] >= 18, (c["title"], f)
    auroc = chart(page, "AUROC per epoch")
    drawn = [t for t in auroc["data"] if t["x"]]
    assert len(drawn) == 2 and all(" · own score" in t["name"] for t in drawn)
    # the AUROC popover is one click away
    page.get_by_role("button", name="What AUROC means").first.click()
    page.get_by_text("is the probability that a randomly chosen anomaly").first.wait_for()
    page.keyboard.press("Escape")
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()  # the chart on the slide
    path = lab.screenshot(page, shots(tmp_path) / "presentation-1280x720.png", max_height=720)
    assert path.stat().st_size < lab.MAX_PNG_BYTES
    # the mode is remembered in this tab across pages
    lab.open_page(page, "Runs")
    assert page.get_by_role("switch", name="Presentation mode").first.is_checked() or \
        page.locator('[data-testid="stCheckbox"]').filter(has_text="Presentation mode").first \
        .locator("input").is_checked()
