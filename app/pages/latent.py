"""Latent space: IAEAD, CAE and Deep SVDD side by side at one epoch snapshot."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st
import torch

from app import charts, explain, state, ui
from app.views.latent import collapsed_map_range, panel_distance, radius_series
from app.views.runs import (SEEN_RUNS, RunItem, deleted_items, deleted_note, group_items,
                            group_status, known_groups, remember, seed_spread)

from iaead_core.data import DATASETS
from iaead_core.evaluation.analysis import (display_images, extremes, pca_2d, snapshot_diagnostics,
                                            snapshot_for_epoch, subsample_index, umap_2d)
from iaead_core.evaluation.health import collapse_report
from iaead_core.evaluation.metrics import COLLAPSE_MIN_RANK, COLLAPSE_RATIO, DEAD_RTOL
from iaead_core.evaluation.stability import spread_text
from iaead_core.runs import RunError, load_run
from iaead_core.training.restore import load_method

MAX_POINTS = 3000  # per projection: enough to see the structure, fast to draw and to embed
N_IMAGES = 6
IMAGE_PX = 46  # six in a row fit a third of the page

reg, index, tasks = state.registry(), state.run_index(), state.tasks()
sb = st.sidebar
ui.keep_widget_state("latent")  # settings survive page switches


@st.cache_data(show_spinner=False, max_entries=32)
def _snapshot(run_dir: str, epoch: int, mtime: float) -> dict[str, np.ndarray]:
    """One snapshot; ``mtime`` of its file keys the cache, so a replaced folder is re-read."""
    return load_run(run_dir).load_snapshot(epoch)


@st.cache_resource(show_spinner=False, max_entries=3)
def _restored(run_dir: str, mtime: float):
    """The final trained model of a run (CPU); ``mtime`` of model.pt invalidates it."""
    return load_method(load_run(run_dir), "cpu")


st.title("Latent space")
ui.auroc_help(key="latent_auroc_help")
st.caption("Where each method puts the images. A healthy latent space keeps normal images "
           "together and anomalies apart; a **collapsed** one maps everything to (almost) one "
           "point, so every distance-based score becomes noise.")

# Runs shown in this browser session (any page), so that a run deleted since (on the Runs
# page, in another tab or by hand) is still named, with its settings, in a note.
seen = st.session_state.setdefault(SEEN_RUNS, {})
WHAT = {"compare": "comparison", "sweep": "λ sweep"}


def group_title(g: str, kind: str) -> str:
    """Picker title: the settings of the group's runs, those deleted since included (their
    settings stay known from the job registry or this session), and which were deleted."""
    items = group_items(reg, index, g)
    remember(seen, items)
    gone = deleted_items(reg, g, seen.values())
    return (f"{WHAT[kind]} · "
            + explain.group_title(g, [i.config for i in items + gone], kind, group_status(items))
            + (f" · {', '.join(d.label for d in gone)} deleted" if gone else ""))


kinds = {g: k for k in ("compare", "sweep") for g in known_groups(reg, index, k)}
groups = sorted(kinds, key=lambda g: g.split("-", 1)[-1], reverse=True)
titles = {g: group_title(g, kinds[g]) for g in groups}
# The group this tab showed last, if every run folder of it has been deleted since: the picker
# no longer offers it; say so (until another group's runs are deleted).
_last = st.session_state.get("latent_group")
if _last and _last not in groups:
    _gone = deleted_items(reg, _last, seen.values())
    if _gone:
        _kind = (_gone[0].config.get("extra") or {}).get("kind", "compare")
        _what = WHAT.get(_kind, "group")
        st.session_state["_latent_gone_note"] = (
            f"**The {_what} {explain.group_title(_last, [d.config for d in _gone], _kind)} is "
            "no longer offered.** " + deleted_note(_gone, _what))
if st.session_state.get("_latent_gone_note"):
    st.info(st.session_state["_latent_gone_note"] + " " + ui.RELIABILITY_NOTE)
group = ui.group_picker(groups, "latent_group", "Runs from", sb, titles=titles)
colour_by = sb.radio("Colour by", ["anomaly", "class"], horizontal=True, **ui.PERSIST, key=ui.kept("latent_colour"),
                     format_func={"anomaly": "normal vs anomaly", "class": "original class"}.get)
view = sb.radio("Projection", ["umap", "pca"], horizontal=True, **ui.PERSIST, key=ui.kept("latent_view"),
                format_func=str.upper,
                help="PCA is shown at once; UMAP computes in the background (its first call "
                     "compiles for tens of seconds) and is cached per run and epoch.")
hist_of = sb.radio("Histogram of", ["score", "c"], **ui.PERSIST, key=ui.kept("latent_hist", "score"),
                   format_func={"score": "each run's score (as in its headline)",
                                "c": "distance to c (hypersphere, R marked)"}.get,
                   help="The score is what the AUROC ranks. The distance to c is the Deep SVDD "
                        "view: where c is not fixed (CAE, warm-up) the mean code stands in.")

if group is None:
    st.write("No runs yet: start a comparison on the **Train** page.")
    st.stop()

# Runs whose folder vanished (deleted here, in another tab or by hand) or is unreadable are
# left out with a note that names them, never a traceback.
gone = deleted_items(reg, group, seen.values())
if gone:
    st.info(deleted_note(gone, WHAT.get(kinds[group], "group")) + " " + ui.RELIABILITY_NOTE)
items, lost = [], []
for it in group_items(reg, index, group):
    if it.run_dir is None:
        continue
    try:
        run = load_run(it.run_dir)
    except RunError as e:
        lost.append(f"{it.label}: {e}")
        continue
    items.append((it, run))
if lost:
    st.warning("Some runs of this group cannot be shown (deleted or corrupt folders): "
               + "; ".join(lost) + ". " + ui.RELIABILITY_NOTE)
if not items:
    st.info("No run of this group has a folder to show (yet, or any more).")
    st.stop()

by_label = {it.label: it for it, _ in items}
runs = {it.label: run for it, run in items}
runs_key = f"latent_runs_{group}"
wanted = st.session_state.get(runs_key, list(by_label)[:3])
st.session_state[runs_key] = [lab for lab in wanted if lab in by_label]
chosen = sb.multiselect("Runs side by side", list(by_label), key=runs_key)
if not chosen:
    st.info("Choose at least one run in the sidebar.")
    st.stop()


def _safe_epochs(run) -> list[int]:
    try:
        return run.snapshot_epochs()
    except (OSError, ValueError):
        return []


epochs = sorted({e for lab in chosen for e in _safe_epochs(runs[lab])})
if not epochs:
    st.info("No latent snapshot yet: the first one is saved after epoch 1.")
    epoch = None
elif len(epochs) == 1:
    epoch = epochs[0]
    sb.caption(f"Epoch snapshot: {epoch}")
else:
    key = f"latent_epoch_{group}"
    if st.session_state.get(key) not in epochs:
        st.session_state.pop(key, None)
    epoch = sb.select_slider("Epoch snapshot", epochs, value=epochs[-1], key=key)


def _score_rule(item: RunItem, snap: dict) -> str | None:
    rules = [k[6:] for k in snap if k.startswith("score_")]
    rec = next((r for r in item.records if r.get("primary_score")), None)
    primary = rec.get("primary_score") if rec else None
    return primary if primary in rules else (rules[0] if rules else None)


def _projection(label: str, ep: int, z: np.ndarray, idx: np.ndarray,
                collapsed: bool = False) -> tuple[np.ndarray, str]:
    """UMAP if ready (else PCA with a note of progress), or PCA when chosen; always PCA for a
    collapsed or degenerate epoch (UMAP of float noise invents structure)."""
    pca = pca_2d(z[idx])
    if view == "pca" or collapsed:
        return pca, "PCA"
    # On a CPU, UMAP beside a training job slows the training several-fold: wait for it.
    start = not (reg.busy() and reg.slots == 1 and not torch.cuda.is_available())
    status, value = tasks.get(("umap", str(runs[label].dir), ep), lambda: umap_2d(z[idx]), start)
    if status == "ready":
        return value, "UMAP"
    if status == "waiting":
        st.info("UMAP starts once training is done (on this CPU it would slow the training "
                "down). Showing PCA meanwhile.")
        return pca, "PCA (UMAP waits for training)"
    if status == "error":
        st.warning(f"UMAP failed ({value}); showing PCA.")
        return pca, "PCA"
    st.info(f"UMAP is computing in the background ({value:.0f} s so far; the first one "
            "compiles for tens of seconds). Showing PCA meanwhile.")
    return pca, "PCA (UMAP pending)"


def panel(item: RunItem, run, ep: int, lab: str, cells):
    """One run's column, drawn into ``cells`` (its column in each of the page's rows: story,
    map, histogram, alerts), so that the maps of the runs side by side start at the same
    height whatever the length of their boxes (a collapsed run's box is long, and its map
    ended up far below the healthy maps it is the contrast to); returns what the image
    section needs, or None."""
    top, map_cell, hist_cell, notes = cells
    with top:
        return _panel(item, run, ep, lab, map_cell, hist_cell, notes)


def _panel(item: RunItem, run, ep: int, lab: str, map_cell, hist_cell, notes):
    """:func:`panel`'s body; draws into the current (story) cell and the three others."""
    try:
        path = run.dir / "snapshots" / f"epoch_{ep:04d}.npz"
        snap = _snapshot(str(run.dir), ep, path.stat().st_mtime)
        data = state.contaminated(run.config)
    except (RunError, OSError, ValueError, RuntimeError) as e:
        st.error(f"Cannot show this run (its folder was deleted or is corrupt, or its data set "
                 f"is not available here): {e}")
        return None
    if "z" not in snap or len(snap["z"]) != len(data.is_anomaly):
        st.error(f"Cannot show this run: its snapshot of epoch {ep} does not match its data "
                 "(a corrupt or foreign file).")
        return None
    z = snap["z"]
    rule = _score_rule(item, snap)
    # named as on Train (the panel's heading names the method: "distance to c", not "Deep SVDD distance")
    rule_title = explain.rule_name(rule, item.method) if rule else "no score"
    rec = next((r for r in item.records if r["epoch"] == ep), None)
    m = (rec.get("metrics") or {}).get(rule) if rec and rule else None
    st.caption(f"epoch {ep} · {explain.settings_text(item.config)}")
    headline = st.container()  # filled below; in presentation mode the story box comes first
    # The epoch's own diagnostics (float32 codes, as its alerts quote them); the snapshot keeps
    # the codes in float16, whose rounding would give other figures for a collapsed space.
    diag = {**snapshot_diagnostics(snap), **((rec or {}).get("diagnostics") or {})}
    dist = panel_distance(snap, rule, item.config, want=hist_of)
    # The story explains the headline's AUROC: always from the headline's own score, whatever
    # the histogram shows.
    told = dist if hist_of == "score" else panel_distance(snap, rule, item.config, want="score")
    has_c = snap.get("centre") is not None and np.size(snap.get("centre")) > 0
    report = collapse_report(diag, [r for r in item.records if r.get("epoch", 0) <= ep]) \
        if has_c else None
    kind, story = explain.panel_story(rule_title, m, diag, told.name, told.values, told.scale,
                                      has_centre=has_c, report=report)
    score_line = f"Score: **{rule_title}** · AUROC **{explain.metric_text(m, 'auroc')}**"
    # how much that AUROC moves with the seed (the core's; only for the final epoch's own
    # score, which is what was measured)
    last_ep = item.records[-1].get("epoch") if item.records else None
    spread = seed_spread(item, index) if ep == last_ep and m and not m.get("degenerate") else None
    if spread is not None:
        score_line += f" {spread_text(spread, short=True)} over seeds"
    if ui.presentation():  # the story first, for a projector
        getattr(headline, kind)(story)
        st.markdown(score_line)
    else:
        headline.markdown(score_line)
        getattr(st, kind)(story)
    if spread is not None:
        st.caption(f"± over seeds: {spread_text(spread)}.")
    for line in explain.alert_lines(rec):
        notes.warning(line)
    notes.markdown(f"effective rank **{diag['effective_rank']:.1f}** · dead dimensions "
                f"**{diag['dead_dims']:.0%}** · "
                + (f"collapse ratio **{diag['collapse_ratio']:.2g}**" if has_c else
                   f"spread of the codes **{diag['spread']:.2g}** (no c: no collapse ratio)"),
                help=f"Effective rank of the centred codes (0: all equal); dead dimensions: "
                     f"range over the images at most {DEAD_RTOL:.2g} × the RMS code entry (constant "
                     "up to float rounding); collapse ratio: spread of the codes / ‖c‖. The "
                     f"space counts as collapsed when the ratio is below {COLLAPSE_RATIO:g} or the "
                     f"effective rank below {COLLAPSE_MIN_RANK:g}.")
    idx = subsample_index(len(z), MAX_POINTS, seed=0)
    half = collapsed_map_range(diag, m)
    with map_cell:
        return _map_and_histogram(item, lab, ep, z, idx, half, diag, data, rec, dist, rule,
                                  run, snap, hist_cell)


def _map_and_histogram(item, lab, ep, z, idx, half, diag, data, rec, dist, rule, run, snap,
                       hist_cell):
    """The map (in the current cell) and the histogram (in ``hist_cell``) of one panel."""
    xy, name = _projection(lab, ep, z, idx, collapsed=half is not None)
    spec = DATASETS.get(data.dataset)
    ui.chart(charts.projection_chart(
        xy, data.is_anomaly[idx], data.labels[idx], spec.classes if spec else [],
        colour_by, f"{name} of the latent codes" + (" (at the codes' scale)" if half else ""),
        half_range=half), key=f"proj_{lab}")
    distinct = len(np.unique(z[idx], axis=0))
    if half is not None:
        far = float(np.abs(xy).max()) if len(xy) else 0.0
        st.caption(explain.collapsed_map_caption(len(idx), half, far, view == "umap"))
    elif distinct < min(10, len(idx)) and diag.get("spread", 0.0) > 0:
        # an older run's float16 snapshot (iaead_core.runs.RunWriter.save_snapshot)
        st.caption(f"The {len(idx):,} codes drawn fall on {distinct} distinct point(s): this "
                   "snapshot keeps the codes at float16 precision, coarser than their spread "
                   f"({diag['spread']:.2g}). The histogram and the box, from float32 scores, "
                   "show the real spread.")
    elif name == "UMAP" and distinct >= 10:
        st.caption("UMAP keeps who is next to whom, not how far apart: a space that has shrunk "
                   "to a tiny region still spreads over the whole map. The histogram below and the "
                   "diagnostics above give the scale.")
    R = radius_series([rec], item.config)[0] if rec else float("nan")
    with hist_cell:
        ui.chart(charts.hypersphere_chart(dist.values, data.is_anomaly,
                                          R if dist.to_c else None, dist.name, dist.scale),
                 key=f"sphere_{lab}")
    one_class = (item.config.get("method") == "deep-svdd"
                 and item.config.get("objective", "one-class") == "one-class")
    no_radius = (" One-class Deep SVDD has no radius R (its objective has no boundary)."
                 if one_class else " R is not defined at this epoch (no SVDD term yet, or a "
                 "method without a radius).")
    hist_cell.caption(dist.relation + (no_radius if dist.to_c and math.isnan(R) else ""))
    return name, (item, run, snap, data, rule)


def draw() -> bool:
    """Draw the chosen runs; True while something is still coming (a run or a UMAP)."""
    ui.queue_panel()  # inside the polling fragment, so it stays current
    pending = any(by_label[lab].active for lab in chosen)
    if epoch is None:
        return pending
    # one row each for the stories, the maps, the histograms and the alerts, so the maps
    # (and the histograms) of the runs side by side line up
    rows = [st.columns(len(chosen)) for _ in range(4)]
    panels = []
    for j, lab in enumerate(chosen):
        item, run = by_label[lab], runs[lab]
        ep = snapshot_for_epoch(_safe_epochs(run), epoch)
        with rows[0][j]:
            st.subheader(lab)
            if ep is None:
                st.caption("no snapshot yet (or its folder was deleted)")
                panels.append(None)
                continue
            out = panel(item, run, ep, lab, [r[j] for r in rows])
            if out is None:
                panels.append(None)
                continue
            pending |= out[0].endswith("pending)")
            panels.append(out[1])
    st.subheader("Most anomalous and most normal images")
    st.caption("Each run's images ranked by its own score (the value under each image; "
               "⚠ = a true anomaly, labels used for display only). Under each row of originals, "
               "the final model's reconstructions of the same images, in the same order.")
    cols = st.columns(len(chosen))
    for col, p in zip(cols, panels):
        if p is None or p[4] is None:
            continue
        item, run, snap, data, rule = p
        score = snap[f"score_{rule}"]
        top, bottom = extremes(score, N_IMAGES)
        recon = None
        with col:
            weights = run.dir / "model.pt"
            note = None
            if weights.exists():
                try:
                    method = _restored(str(run.dir), weights.stat().st_mtime)
                    with torch.inference_mode():
                        x = data.images[np.concatenate([top, bottom])]
                        recon = method.model.decode(method.model.encode(x))
                except (RunError, OSError, ValueError, RuntimeError) as e:
                    note = f"reconstructions unavailable: {e}"
            else:
                note = ("reconstructions appear when the run has finished (weights are saved "
                        "at the end)")
            rec_imgs = display_images(recon) if recon is not None else None
            for name, sel, off in (("most anomalous", top, 0), ("most normal", bottom, N_IMAGES)):
                st.markdown(f"**{item.label} · {name} — originals**")
                st.image(display_images(data.images[sel]), width=IMAGE_PX,
                         caption=[f"{score[i]:.3g}{' ⚠' if data.is_anomaly[i] else ''}" for i in sel])
                if rec_imgs is not None:
                    st.markdown(f"**{item.label} · {name} — reconstructions**")
                    st.image(rec_imgs[off:off + N_IMAGES], width=IMAGE_PX)
            if note:
                st.caption(note)
    st.caption("Deep SVDD's decoder is frozen after pre-training, so its reconstructions only "
               "show what the encoder kept of the pre-trained code.")
    return pending


ui.poll(draw, every=2.0)
