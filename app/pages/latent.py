"""Latent space: IAEAD, CAE and Deep SVDD side by side at one epoch snapshot."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from app import charts, state, ui
from app.views import RunItem, group_items, known_groups
from iaead_core.analysis import (RULE_TITLES, centre_distances, display_images, extremes, pca_2d,
                                 snapshot_diagnostics, snapshot_for_epoch, subsample_index, umap_2d)
from iaead_core.data import DATASETS
from iaead_core.runs import RunError, load_run

MAX_POINTS = 3000  # per projection: enough to see the structure, fast to draw and to embed
N_IMAGES = 6

reg, index, tasks = state.registry(), state.run_index(), state.tasks()
sb = st.sidebar
ui.keep_widget_state()  # settings survive page switches


@st.cache_data(show_spinner=False, max_entries=32)
def _snapshot(run_dir: str, epoch: int) -> dict[str, np.ndarray]:
    return load_run(run_dir).load_snapshot(epoch)


@st.cache_resource(show_spinner=False, max_entries=3)
def _restored(run_dir: str, mtime: float):
    """The final trained model of a run (CPU); ``mtime`` of model.pt invalidates it."""
    return load_run(run_dir).load_method("cpu")


st.title("Latent space")
st.caption("Where each method puts the images. A healthy latent space keeps normal images "
           "together and anomalies apart; a **collapsed** one maps everything to (almost) one "
           "point, so every distance-based score becomes noise.")

groups = known_groups(reg, index, "compare") + known_groups(reg, index, "sweep")
group = ui.group_picker(groups, "latent_group", "Runs from", sb)
colour_by = sb.radio("Colour by", ["anomaly", "class"], horizontal=True, key=ui.kept("latent_colour"),
                     format_func={"anomaly": "normal vs anomaly", "class": "original class"}.get)
view = sb.radio("Projection", ["umap", "pca"], horizontal=True, key=ui.kept("latent_view"),
                format_func=str.upper,
                help="PCA is shown at once; UMAP computes in the background (its first call "
                     "compiles for tens of seconds) and is cached per run and epoch.")

if group is None:
    st.write("No runs yet: start a comparison on the **Train** page.")
    st.stop()

items = [i for i in group_items(reg, index, group) if i.run_dir is not None]
by_label = {i.label: i for i in items}
chosen = sb.multiselect("Runs side by side", list(by_label), default=list(by_label)[:3],
                        key=f"latent_runs_{group}")
if not chosen:
    st.info("Choose at least one run in the sidebar.")
    st.stop()

runs = {lab: load_run(by_label[lab].run_dir) for lab in chosen}
epochs = sorted({e for r in runs.values() for e in r.snapshot_epochs()})
if not epochs:
    st.info("No latent snapshot yet: the first one is saved after epoch 1.")
    epoch = None
elif len(epochs) == 1:
    epoch = epochs[0]
    sb.caption(f"Epoch snapshot: {epoch}")
else:
    epoch = sb.select_slider("Epoch snapshot", epochs, value=epochs[-1], key=f"latent_epoch_{group}")


def _score_rule(item: RunItem, snap: dict) -> str | None:
    primary = {"iaead": "latent_mean", "cae": "reconstruction", "deep-svdd": "svdd"}.get(item.method)
    rules = [k[6:] for k in snap if k.startswith("score_")]
    return primary if primary in rules else (rules[0] if rules else None)


def _projection(label: str, ep: int, z: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, str]:
    """UMAP if ready (else PCA with a note of progress), or PCA when chosen."""
    pca = pca_2d(z[idx])
    if view == "pca":
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


def draw() -> bool:
    """Draw the chosen runs; True while something is still coming (a run or a UMAP)."""
    ui.queue_panel()  # inside the polling fragment, so it stays current
    pending = any(by_label[lab].active for lab in chosen)
    if epoch is None:
        return pending
    cols = st.columns(len(chosen))
    panels = []
    for col, lab in zip(cols, chosen):
        item, run = by_label[lab], runs[lab]
        ep = snapshot_for_epoch(run.snapshot_epochs(), epoch)
        with col:
            st.subheader(lab)
            if ep is None:
                st.caption("no snapshot yet")
                panels.append(None)
                continue
            try:
                snap = _snapshot(str(run.dir), ep)
                data = state.contaminated(run.config)
            except (RunError, ValueError, RuntimeError) as e:
                st.error(f"Cannot read this run: {e}")
                panels.append(None)
                continue
            z = snap["z"]
            rule = _score_rule(item, snap)
            rec = next((r for r in item.records if r["epoch"] == ep), None)
            auroc = rec["metrics"].get(rule, {}).get("auroc") if rec and rule else None
            st.caption(f"epoch {ep} · score: {RULE_TITLES.get(rule, rule)}"
                       + (f" · AUROC {auroc:.3f}" if auroc is not None else ""))
            diag = snapshot_diagnostics(snap)
            if diag["collapsed"]:
                st.error(f"**Feature collapse.** Codes spread {diag['spread']:.2g} around a centre "
                         f"at distance {diag['centre_norm']:.2g}: every image maps to almost "
                         "the same point.")
            else:
                st.success(f"No collapse: spread {diag['spread']:.3g}, collapse ratio "
                           f"{diag['collapse_ratio']:.3g}")
            m1, m2, m3 = st.columns(3)
            m1.metric("effective rank", f"{diag['effective_rank']:.1f}", help="of the centred codes; 0 = all equal")
            m2.metric("dead dims", f"{diag['dead_dims']:.0%}", help="dimensions with std < 1e-4")
            m3.metric("collapse ratio", f"{diag['collapse_ratio']:.2g}", help="spread / ‖c‖; < 0.01 = collapsed")
            idx = subsample_index(len(z), MAX_POINTS, seed=0)
            xy, name = _projection(lab, ep, z, idx)
            pending |= name.endswith("pending)")
            st.plotly_chart(charts.projection_chart(
                xy, data.is_anomaly[idx], data.labels[idx], DATASETS[data.dataset].classes,
                colour_by, f"{name} of the latent codes"), width="stretch", key=f"proj_{lab}")
            centre = snap.get("centre")
            has_c = centre is not None and np.size(centre) > 0
            dist = centre_distances(z, centre if has_c else None)
            R = float(snap.get("R", 0.0))
            st.plotly_chart(charts.hypersphere_chart(dist, data.is_anomaly, R if has_c else None,
                                                     "c" if has_c else "the mean code"),
                            width="stretch", key=f"sphere_{lab}")
            panels.append((item, run, snap, data, rule))
    st.subheader("Most anomalous and most normal images")
    cols = st.columns(len(chosen))
    for col, panel in zip(cols, panels):
        if panel is None or panel[4] is None:
            continue
        item, run, snap, data, rule = panel
        score = snap[f"score_{rule}"]
        top, bottom = extremes(score, N_IMAGES)
        with col:
            st.caption(f"{item.label}: most anomalous (score; ⚠ = true anomaly)")
            st.image(display_images(data.images[top]), width=56,
                     caption=[f"{score[i]:.3g}{' ⚠' if data.is_anomaly[i] else ''}" for i in top])
            st.caption("most normal")
            st.image(display_images(data.images[bottom]), width=56,
                     caption=[f"{score[i]:.3g}{' ⚠' if data.is_anomaly[i] else ''}" for i in bottom])
            weights = run.dir / "model.pt"
            if weights.exists():
                try:
                    method = _restored(str(run.dir), weights.stat().st_mtime)
                    with torch.inference_mode():
                        x = data.images[np.concatenate([top, bottom])]
                        recon = method.model.decode(method.model.encode(x))
                    st.caption("reconstructions by the final model (same order)")
                    st.image(display_images(recon), width=56)
                except (RunError, ValueError, RuntimeError) as e:
                    st.caption(f"reconstructions unavailable: {e}")
            else:
                st.caption("reconstructions appear when the run has finished (weights are "
                           "saved at the end)")
    st.caption("⚠ marks a true anomaly (labels used for display only). Deep SVDD's decoder "
               "is frozen after pre-training, so its reconstructions only show what the encoder "
               "kept of the pre-trained code.")
    return pending


ui.poll(draw, every=2.0)
