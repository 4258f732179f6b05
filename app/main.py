"""Entry point of the IAEAD lab: ``streamlit run app/main.py`` (navigation only)."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts app/ on sys.path, not the repository root that holds iaead_core and app.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# UMAP's kernels compile (or load from numba's cache) in the background from the start; this
# also sets numba's cache folder, so it comes before anything imports umap. Idempotent.
from iaead_core.evaluation.projection import warm_up as warm_up_umap  # noqa: E402

warm_up_umap()

import streamlit as st  # noqa: E402

st.set_page_config(page_title="IAEAD lab", page_icon=":material/search:", layout="wide")

from app import ui  # noqa: E402

ui.presentation_toggle()  # on every page, remembered per tab

PAGES = Path(__file__).parent / "pages"
nav = st.navigation([
    st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page(PAGES / "latent.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page(PAGES / "sensitivity.py", title="λ sensitivity", icon=":material/show_chart:"),
    st.Page(PAGES / "runs.py", title="Runs", icon=":material/folder_open:"),
    st.Page(PAGES / "experiments.py", title="Experiments", icon=":material/science:"),
    st.Page(PAGES / "images.py", title="Your images", icon=":material/photo_library:"),
])
nav.run()
