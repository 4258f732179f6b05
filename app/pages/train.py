"""Train: run IAEAD, CAE and Deep SVDD on one data draw and watch them live."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, state, ui
from app.views import fmt_seconds, group_items, known_groups
from iaead_core.analysis import LAMBDA_CHOICES, final_frame, format_lambda, scaled_config
from iaead_core.config import PRESETS
from iaead_core.data import DATASETS
from iaead_core.engine import select_device
from iaead_core.paper import PAPER_BEST_LAM

reg = state.registry()
index = state.run_index()
sb = st.sidebar
ui.keep_widget_state()  # settings survive page switches

# ---------------------------------------------------------------- settings (sidebar)
sb.header("Experiment")
dataset = ui.dataset_picker("train_ds", sb)
classes = DATASETS[dataset].classes
normal_class = sb.selectbox("Normal class", range(len(classes)), key=ui.kept(f"train_cls_{dataset}"),
                            format_func=lambda k: ui.class_label(dataset, k))
rho = sb.select_slider("Anomaly ratio ρ", options=[5, 10, 15, 20, 25],
                       format_func=lambda v: f"{v} %", key=ui.kept("train_rho", 10))
methods = sb.multiselect("Methods (same data draw, same seed)", ["iaead", "cae", "deep-svdd"],
                         format_func=ui.method_title,
                         key=ui.kept("train_methods", ["iaead", "cae", "deep-svdd"]))
lam = sb.select_slider("λ (IAEAD's SVDD weight, log scale)", options=list(LAMBDA_CHOICES),
                       format_func=format_lambda, key=ui.kept("train_lam", PAPER_BEST_LAM),
                       help="λ = 0 is a plain CAE scored in the latent space; the paper's best "
                            "is 5e-5; very large λ collapses the latent space.")
nu = sb.slider("ν (IAEAD soft boundary)", 0.05, 1.0, None, 0.05, key=ui.kept("train_nu", 1.0),
               help="ν = 1 (the paper) makes R the smallest batch distance.")
unregularised = sb.checkbox(
    "Unregularised Deep SVDD (biases on)", key=ui.kept("train_unreg"),
    help="Turns on the biases and affine BatchNorm that Ruff et al. remove so that mapping "
         "every image onto c is not reachable. Within the quick budget its codes contract "
         "faster but do not fully collapse; for total collapse, give IAEAD λ = 50.")
preset = ui.preset_picker("train_preset", sb)
epochs = sb.number_input("Epochs", 2, 1000,
                         key=ui.kept(f"train_epochs_{preset}", PRESETS[preset]["epochs"]))
seed = sb.number_input("Seed", 0, 10_000, key=ui.kept("train_seed", 0))
device = ui.device_picker("train_device", sb)
max_samples = ui.images_picker("train_max", preset, sb)
if preset == "paper":
    sb.warning("The paper preset trains the full network on the full set for 250 epochs: "
               "hours per method on a CPU.")

start_col, stop_col = sb.columns(2)
start = start_col.button("Start", type="primary", width="stretch", key="train_start")
stop = stop_col.button("Stop", width="stretch", key="train_stop")
problems = sb.container()

if start:
    st.session_state.pop("train_error", None)
    try:
        if not methods:
            raise ValueError("Choose at least one method to train.")
        select_device(device)  # a missing accelerator is refused here, in words
        cfgs = [scaled_config(preset, m, int(epochs), dataset=dataset,
                              normal_class=int(normal_class), rho=rho / 100,
                              seed=int(seed), device=device, data_root=str(state.data_root()),
                              download=True, max_samples=int(max_samples),
                              **({"lam": float(lam), "nu": float(nu)} if m == "iaead" else {}),
                              **({"svdd_bias": unregularised} if m == "deep-svdd" else {}))
                for m in ["iaead", "cae", "deep-svdd"] if m in methods]
        st.session_state["train_group"] = reg.submit_group(cfgs, "compare")
    except ValueError as e:
        st.session_state["train_error"] = ("input", str(e))

groups = known_groups(reg, index, "compare")
if stop and st.session_state.get("train_group", groups[0] if groups else None):
    reg.stop_group(st.session_state.get("train_group") or groups[0])

err = st.session_state.get("train_error")
if err:
    problems.error(err[1])

# ---------------------------------------------------------------- main area
st.title("Train")
st.caption("IAEAD = convolutional autoencoder + λ · Deep SVDD loss, scored by the distance to "
           "the mean latent code. CAE and Deep SVDD train on the very same contaminated set.")
st.info(ui.ORACLE_NOTE)
group = ui.group_picker(groups, "train_group", "Comparison shown")


def live() -> bool:
    """Draw the chosen comparison; True while any of its runs is queued or running."""
    ui.queue_panel()  # inside the polling fragment, so it stays current
    if group is None:
        st.write("Choose the settings in the sidebar and press **Start**. The first AUROC "
                 "point appears after the first epoch (a few seconds with the quick preset).")
        return False
    items = group_items(reg, index, group)
    if not items:
        st.write("This comparison has no runs left (they were deleted).")
        return False
    active = any(i.active for i in items)
    cfg = items[0].config
    st.markdown(f"**{DATASETS[cfg['dataset']].title}**, normal class "
                f"**{ui.class_label(cfg['dataset'], int(cfg['normal_class']))}**, ρ = "
                f"{cfg['rho'] * 100:g} %, seed {cfg['seed']}, preset {cfg['preset']}, "
                f"{cfg['epochs']} epochs")
    if active:
        st.caption(f"About {fmt_seconds(ui.group_eta(items))} left for this comparison.")
    ui.progress_panel(items)
    ui.failures(items, "train_ds")
    if any(i.records for i in items):
        st.plotly_chart(charts.auroc_chart(items), width="stretch", key="train_auroc")
        st.plotly_chart(charts.loss_chart(items), width="stretch", key="train_loss")
        table = pd.concat([final_frame(i.records, i.config, i.label) for i in items if i.records],
                          ignore_index=True)
        table["paper_auroc"] = [f"{v:.3f}" if pd.notna(v) else "—" for v in table["paper_auroc"]]
        st.subheader("Final metrics" if not active else "Metrics at the latest epoch")
        st.dataframe(table.drop(columns=["primary"]).style.format(
            {"auroc": "{:.3f}", "aupr_in": "{:.3f}", "aupr_out": "{:.3f}"}), hide_index=True, width="stretch")
        st.caption("paper_auroc: the paper's AUROC for this data set, class and ρ (Table 3, "
                   "full protocol, mean of 5 seeds), shown beside each method's own score. "
                   "The quick preset uses a smaller network and set, so it is a guide, not a "
                   "target. AUPR is scikit-learn's average precision.")
    return active


ui.poll(live, every=1.5)
