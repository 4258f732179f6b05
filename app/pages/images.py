"""Your images: train on a folder of unlabelled images, rank them (the odd ones out first),
move the threshold, and score a second folder with the trained model."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import streamlit as st

from app import charts, explain, state, ui
from app.views import images as xi
from app.views.runs import group_items, run_status

from iaead_core.config import PRESETS
from iaead_core.data.image_set import FITS, MIN_IMAGES
from iaead_core.detector import flag
from iaead_core.methods import METHODS
from iaead_core.runs import RunError

reg, index, tasks = state.registry(), state.run_index(), state.tasks()
sb = st.sidebar
ui.keep_widget_state("images")  # settings survive page switches

PER_PAGE = 24
RHO_GUESSES = [1, 2, 5, 10, 15, 20, 25, 30]  # % of the images guessed anomalous
HOW = {"zip": "a .zip uploaded from here", "folder": "a folder (or .zip) on this server"}
CHANNELS = {"auto": "auto (colour if any image is)", 1: "1 (grey)", 3: "3 (colour)"}
FIT_WORDS = {"pad": "pad: keep the aspect, black borders", "crop": "crop: keep the aspect, cut the centre"}


def source_from(how: str, path: str, upload, channels, fit: str, labels: str) -> xi.Source:
    """A :class:`~app.views.images.Source` from the widgets (an upload is kept on the server
    first). A typed path must lie under the lab's allowed folders (:func:`~app.views.images.
    server_path`). Raises ValueError / ImageFolderError in words."""
    if how == "folder":
        if not (path or "").strip():
            raise ValueError("Give the path of a folder of images (or of a .zip) on this server.")
        shown = path.strip()
        p = xi.server_path(shown, "Folder or .zip")
    else:
        if upload is None:
            raise ValueError("Choose a .zip file to upload first.")
        p, shown = str(xi.save_upload(upload.name, upload.getvalue(), state.runs_root())), upload.name
    label_file = xi.server_path(labels, "Labels CSV") if (labels or "").strip() else None
    return xi.Source(p, channels, fit, label_file, shown, time.time())


# ---------------------------------------------------------------- the images (sidebar)
sb.header("Your images")
how = sb.radio("Images from", list(HOW), format_func=HOW.get, key=ui.kept("img_how", "zip"),
               **ui.PERSIST)
if how == "folder":
    path = sb.text_input("Folder or .zip on the server", key=ui.kept("img_path", ""), **ui.PERSIST,
                         placeholder="/data/my-images",
                         help="PNG, JPEG, BMP or TIFF files, nested folders allowed; at least "
                              f"{MIN_IMAGES} readable images. Only folders under "
                              f"{', '.join(str(r) for r in xi.allowed_roots())} are read (the "
                              f"setting {xi.ENV_LAB_PATHS} lists others).")
    upload = None
else:
    path = ""
    upload = sb.file_uploader("A .zip of a folder of images", type=["zip"], key="img_zip")
channels = sb.selectbox("Channels", list(CHANNELS), format_func=CHANNELS.get,
                        key=ui.kept("img_channels", "auto"), **ui.PERSIST)
fit = sb.radio("Make them 32×32 by", list(FITS), format_func=FIT_WORDS.get,
               key=ui.kept("img_fit", "pad"), **ui.PERSIST)
labels = sb.text_input("Labels CSV (optional)", key=ui.kept("img_labels", ""), **ui.PERSIST,
                       help="A CSV of filename,label (normal / anomaly), only to compute metrics. "
                            "Sub-folders named normal/ and anomaly/ give labels too. Without "
                            "labels you get rankings, no metrics.")
if sb.button("Read the images", type="primary", key="img_read", width="stretch"):
    st.session_state.pop("img_read_error", None)
    try:
        st.session_state["img_source"] = source_from(how, path, upload, channels, fit, labels)
    except (ValueError, OSError) as e:
        st.session_state["img_read_error"] = str(e)
if st.session_state.get("img_read_error"):
    sb.error(st.session_state["img_read_error"])

# ---------------------------------------------------------------- main area
st.title("Your images")
st.caption("Train an anomaly detector on a folder of your own images, without labels, and see "
           "them ranked: the odd ones out first. Images become 32×32 (1 or 3 channels) in "
           "[−1, 1], like the benchmark sets. The run is saved like any other (Runs page); the "
           "command line does the same with `python -m iaead_core train --images PATH` and "
           "`score RUN_ID --images PATH`.")


def images_section() -> tuple[object, bool]:
    """Read state of the chosen images: their counts, the files left out and why, a preview.
    Returns (the ImageSet or None, still reading)."""
    st.subheader("1 · The images")
    src = st.session_state.get("img_source")
    if src is None:
        st.write("Point to a folder on the server or upload a .zip in the sidebar, then press "
                 "**Read the images**.")
        return None, False
    status, value = tasks.get(src.key(), lambda: xi.read_images(src))
    if status == "working":
        st.info(f"Reading {src.shown} … ({value:.0f} s)")
        return None, True
    if status == "error":  # read_images answers bad input itself; this is a crash, in words
        st.error(f"Reading {src.shown} failed: {value}")
        return None, False
    loaded: xi.Loaded = value
    if loaded.error:
        st.error(f"**{src.shown} cannot be used.** {loaded.error}")
        if loaded.skipped or loaded.ignored:
            st.dataframe(xi.skipped_frame(loaded.skipped, loaded.ignored), hide_index=True,
                         width="stretch")
        return None, False
    s = loaded.images
    c = st.columns(5)
    c[0].metric("images used", f"{len(s):,}")
    c[1].metric("unreadable, skipped", len(s.skipped))
    c[2].metric("other files, ignored", len(s.ignored))
    c[3].metric("channels", s.channels)
    c[4].metric("labels", f"{s.n_normal} normal + {s.n_anomalies} anomalies" if s.labelled
                else "none")
    st.caption(f"{src.shown}: {s.n_files:,} image files found, read in {loaded.seconds:.1f} s; "
               f"made 32×32 by {s.fit}. "
               + ("Labels from " + s.label_source + ": metrics are computed as for the "
                  "benchmarks (oracle monitoring: training never sees them)." if s.labelled
                  else "No labels: you get rankings, no metrics."))
    for note in s.warnings:
        st.warning(note)
    if s.skipped or s.ignored:
        with st.expander(f"Files not used ({len(s.skipped)} unreadable, {len(s.ignored)} not "
                         "images), and why", expanded=True):
            st.dataframe(xi.skipped_frame(s.skipped, s.ignored), hide_index=True, width="stretch")
    n = min(PER_PAGE, len(s))
    st.image(xi.thumbnails(s.images, range(n)), caption=[Path(p).name for p in s.paths[:n]],
             width=96, output_format="PNG")
    st.caption(f"The first {n} of {len(s):,} images, as the network sees them (32×32).")
    return s, False


def train_section(images) -> bool:
    """Settings, Start / Stop, progress and live curves of the training on these images.
    Returns True while it is queued or running."""
    st.subheader("2 · Train")
    if images is None:
        st.write("Read a folder of images first.")
    else:
        c = st.columns(4)
        method = c[0].selectbox("Method", list(METHODS), key=ui.kept("img_method", "iaead"),
                                format_func=lambda m: getattr(METHODS[m], "title", m), **ui.PERSIST)
        preset = c[1].radio("Preset", sorted(PRESETS, key=lambda p: p != "quick"),
                            key=ui.kept("img_preset", "quick"), horizontal=True, **ui.PERSIST)
        epochs = c[2].number_input("Epochs", 2, 1000, key=ui.kept(f"img_epochs_{preset}",
                                                                  PRESETS[preset]["epochs"]),
                                   **ui.PERSIST)
        rho = c[3].select_slider("Guessed share of anomalies ρ", RHO_GUESSES,
                                 format_func=lambda v: f"{v} %",
                                 key=ui.kept("img_rho_guess", 10), **ui.PERSIST,
                                 help="The contamination guess: the top ρ of the ranking are "
                                      "flagged at first (move the threshold after training).") / 100
        st.caption(getattr(METHODS[method], "description", ""))
        start_col, stop_col, _ = st.columns([1, 1, 4])
        if start_col.button("Start training", type="primary", key="img_start"):
            try:
                cfg = xi.folder_config(method, preset, int(epochs), float(rho), 0, "auto", images)
                st.session_state["img_group"] = xi.submit_training(reg, cfg, images)
                st.session_state.pop("img_train_error", None)
            except ValueError as e:
                st.session_state["img_train_error"] = str(e)
        if stop_col.button("Stop", key="img_stop"):
            g = st.session_state.get("img_group")
            if g and reg.group_active(g):
                reg.stop_group(g)
        if st.session_state.get("img_train_error"):
            st.error(st.session_state["img_train_error"])
    group = st.session_state.get("img_group")
    if not group:
        return False
    items = group_items(reg, index, group)
    if not items:
        return False
    ui.progress_panel(items)
    ui.failures(items)
    if any(i.records for i in items):
        labelled = any((r.get("metrics") or {}) for i in items for r in i.records)
        if labelled:
            ui.chart(charts.auroc_chart(items, own_only=not ui.all_rules()), key="img_auroc")
        else:
            st.caption("No labels: the curves show the losses only (there is nothing to "
                       "compute an AUROC from).")
        ui.chart(charts.loss_chart(items), key="img_loss")
    return any(i.active for i in items)


@st.cache_resource(show_spinner=False, max_entries=8)
def _ranking(run_dir: str, stamp: tuple):
    from iaead_core.runs import load_run

    return xi.load_ranking(load_run(run_dir))


def _stamp(d: Path) -> tuple:
    try:
        s = (d / "status.json").stat()
        return (s.st_mtime_ns, s.st_size)
    except OSError:
        return ()


def run_label(run) -> str:
    cfg, data = run.config, run.meta.get("data") or {}
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.meta.get("created") or 0))
    title = getattr(METHODS.get(cfg.get("method")), "title", cfg.get("method"))
    return (f"{title} on {Path(str(data.get('root') or '?')).name} ({data.get('n', '?')} "
            f"images) · {when} · {run_status(run)}")


def threshold_controls(r: xi.Ranking, prefix: str):
    """Threshold kind and value; returns (Threshold, the training scores it applies to) or
    (None, None) with the reason shown."""
    kinds = ["contamination", "quantile"] + (["radius"] if r.has_radius else [])
    c1, c2 = st.columns([2, 3])
    kind = c1.radio("Threshold by", kinds, format_func=xi.THRESHOLD_TITLES.get,
                    key=f"{prefix}_thr_kind")
    param = None
    if kind == "contamination":
        param = c2.slider("ρ: share of the training images to flag", 0.005, 0.5, step=0.005,
                          value=float(min(0.5, max(0.005, r.detector.contamination))),
                          key=f"{prefix}_thr_rho", format="%.3f")
    elif kind == "quantile":
        param = c2.slider("q: flag scores above this quantile of the training scores", 0.5,
                          0.999, value=0.9, step=0.001, key=f"{prefix}_thr_q", format="%.3f")
    else:
        c2.caption(f"R = {r.detector.method_.R:.4g}: flag the images whose code lies outside "
                   "the hypersphere of radius R around c (eq. 7).")
    try:
        thr, scores = xi.threshold(r, kind, param)
    except ValueError as e:
        st.error(str(e))
        return None, None
    if kind == "radius":
        nu = r.run.meta.get("nu", r.run.config.get("nu"))  # the ν the run trained with
        warn = explain.radius_warning(nu, int(flag(scores, thr.value).sum()), len(scores))
        if warn:
            c2.warning(warn)
    return thr, scores


def ranking_section(loaded) -> bool:
    """The ranked training images of a trained run, the histogram with the threshold line,
    the flagged count, pages, and the CSV. True while its images are being read."""
    st.subheader("3 · Ranking")
    runs = [r for r in xi.folder_runs(index.runs()) if r.records]
    if not runs:
        st.write("Train on your images first: the ranking appears when the training ends.")
        return False
    ids = [r.run_id for r in runs]
    group = st.session_state.get("img_group")
    mine = next((i.run_id for i in group_items(reg, index, group) if i.run_id), None) if group else None
    if mine in ids and st.session_state.get("img_run_for") != group:  # a new training: show it
        st.session_state["img_run"], st.session_state["img_run_for"] = mine, group
    if st.session_state.get("img_run") not in ids:
        st.session_state["img_run"] = ids[0]
    by_id = {r.run_id: r for r in runs}
    run_id = st.selectbox("Trained run", ids, format_func=lambda i: run_label(by_id[i]),
                          key="img_run")
    run = by_id[run_id]
    if run_status(run) == "running" or reg.is_running_dir(run.dir):
        st.info("This run is still training: the ranking appears when it ends.")
        return False
    try:
        r = _ranking(str(run.dir), _stamp(run.dir))
    except (RunError, ValueError, OSError) as e:
        st.error(f"This run cannot be ranked: {e}")
        return False
    thr, scores = threshold_controls(r, "img")
    if thr is None:
        return False
    n_flag = int(flag(scores, thr.value).sum())
    c = st.columns(3)
    c[0].metric("flagged", f"{n_flag:,} of {len(scores):,}")
    c[1].metric("threshold", f"{thr.value:.4g}")
    c[2].metric("score", thr.rule)
    if r.detector.degenerate_:
        st.warning("The training scores differ only by float noise (a collapsed latent space?): "
                   "the ranking and the flags carry no information.")
    known = r.labels if (r.labels >= 0).all() and len(set(r.labels.tolist())) == 2 else None
    ui.chart(xi.histogram(scores, thr, known), key="img_hist")
    final = (run.records[-1].get("metrics") or {}).get(thr.rule)
    if final:
        st.caption(f"With the labels: AUROC {final['auroc']:.3f}, AUPR-in {final['aupr_in']:.3f}, "
                   f"AUPR-out {final['aupr_out']:.3f} (final epoch; labels used only for these "
                   "numbers).")
    frame = xi.ranking_frame(r.paths, scores, r.labels, thr)
    st.download_button("Download the ranking (CSV)", data=frame.drop(columns="index").to_csv(index=False),
                       file_name=f"{run.run_id}-ranking.csv", mime="text/csv", key="img_csv",
                       on_click="ignore", icon=":material/download:")
    status, value = tasks.get(("images", str(run.dir)), lambda: xi.images_for_run(run, loaded))
    if status == "working":
        st.info("Reading the images of this run …")
        return True
    if status == "error":
        st.error(f"The ranking is above, but its images cannot be shown: {value}")
        return False
    pages = max(1, math.ceil(len(frame) / PER_PAGE))
    page = int(st.number_input(f"Page (of {pages}; most anomalous first)", 1, pages, 1,
                               key="img_page"))
    part = frame.iloc[(page - 1) * PER_PAGE: page * PER_PAGE]
    captions = [f"#{row.rank} · {row.score:.3g}" + (" · flagged" if row.flagged else "")
                + (f" · {row.label}" if row.label else "") for row in part.itertuples()]
    st.image(xi.thumbnails(value.images, part["index"].to_numpy()), caption=captions, width=96,
             output_format="PNG")
    st.caption(f"Images {(page - 1) * PER_PAGE + 1}–{(page - 1) * PER_PAGE + len(part)} of "
               f"{len(frame):,}, ranked by score ({thr.rule}), higher = more anomalous.")
    st.session_state["img_ranking"] = (run.run_id, str(run.dir), thr.kind, thr.param)
    return False


def score_section() -> bool:
    """Score a second folder with the run shown in the ranking and its threshold. True while
    it is being scored."""
    st.subheader("4 · Score new images")
    shown = st.session_state.get("img_ranking")
    if not shown:
        st.write("Train (or pick) a run above first; new images are scored with its model and "
                 "its threshold.")
        return False
    run_id, run_dir, kind, param = shown
    how_new = st.radio("New images from", list(HOW), format_func=HOW.get, key="img_new_how",
                       horizontal=True)
    if how_new == "folder":
        new_path = st.text_input("Folder or .zip of new images on the server", key="img_new_path")
        new_upload = None
    else:
        new_path, new_upload = "", st.file_uploader("A .zip of new images", type=["zip"],
                                                    key="img_new_zip")
    new_labels = st.text_input("Labels CSV of the new images (optional)", key="img_new_labels")
    if st.button(f"Score them with {run_id}", key="img_score"):
        try:
            src = source_from(how_new, new_path, new_upload, "auto", "pad", new_labels)
            st.session_state["img_scoring"] = (run_dir, src, kind, param)
            st.session_state.pop("img_score_error", None)
        except (ValueError, OSError) as e:
            st.session_state["img_score_error"] = str(e)
    if st.session_state.get("img_score_error"):
        st.error(st.session_state["img_score_error"])
    job = st.session_state.get("img_scoring")
    if not job:
        return False
    run_dir, src, kind, param = job
    from iaead_core.runs import load_run

    key = ("score", run_dir, src.key(), kind, param)
    status, value = tasks.get(key, lambda: xi.score_new(load_run(run_dir), src, kind, param))
    if status == "working":
        st.info(f"Scoring {src.shown} …")
        return True
    if status == "error" or value.error:
        st.error(f"**{src.shown} could not be scored.** {value if status == 'error' else value.error}")
        return False
    rep = value.report
    thr = rep.threshold
    st.markdown(f"**{len(rep.paths):,} new images** from {src.shown} scored with "
                f"{Path(run_dir).name}: **{rep.n_flagged} flagged** (threshold "
                f"{thr.describe()} = {thr.value:.4g} on the training scores).")
    if rep.skipped or rep.ignored:
        st.dataframe(xi.skipped_frame(rep.skipped, rep.ignored), hide_index=True, width="stretch")
    if rep.degenerate:
        st.warning("The model's training scores differ only by float noise: these flags carry "
                   "no information.")
    if rep.metrics:
        st.caption(f"With their labels: AUROC {rep.metrics['auroc']:.3f}, AUPR-in "
                   f"{rep.metrics['aupr_in']:.3f}, AUPR-out {rep.metrics['aupr_out']:.3f}.")
    ui.chart(xi.histogram(rep.scores, thr, title="Scores of the new images (the "
                          "threshold comes from the training images)"), key="img_new_hist")
    order = np.argsort(rep.ranks, kind="stable")[:PER_PAGE]
    st.image(xi.thumbnails(value.images, order),
             caption=[f"#{rep.ranks[i]} · {rep.scores[i]:.3g}" + (" · flagged" if rep.flagged[i] else "")
                      for i in order], width=96, output_format="PNG")
    st.download_button("Download the scores (CSV)", data=Path(rep.csv_path).read_bytes(),
                       file_name=Path(rep.csv_path).name, mime="text/csv", key="img_new_csv",
                       on_click="ignore", icon=":material/download:")
    st.caption(f"The CSV (new images first, then the training images for reference) is also "
               f"kept in the run folder: `{rep.csv_path}`.")
    return False


def live() -> bool:
    """Every section; True while something is being read, trained or scored."""
    ui.queue_panel()
    loaded, reading = images_section()
    training = train_section(loaded)
    restoring = ranking_section(loaded)
    scoring = score_section()
    return reading or training or restoring or scoring


ui.poll(live, every=1.5)
