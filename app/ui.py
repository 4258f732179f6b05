"""Streamlit pieces shared by the pages: data set / device pickers, progress, queue, errors,
and the polling fragment. Pages stay thin: they read state and call these."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from iaead_core.analysis import METHOD_TITLES, time_left
from iaead_core.config import PRESETS
from iaead_core.data import DATASETS, OFFLINE_DEFAULT, dataset_status

from . import charts, state
from .views import RunItem, fmt_seconds

__all__ = ["kept", "keep_widget_state", "dataset_picker", "class_label", "device_picker", "preset_picker",
           "show_data_error", "progress_panel", "queue_panel", "failures", "poll",
           "ORACLE_NOTE", "group_picker", "method_title"]

ORACLE_NOTE = ("**Oracle monitoring.** The AUROC / AUPR curves use the ground-truth labels "
               "only to draw them: training never sees the labels, and no model is selected "
               "by them (the final model is the last epoch's, as in the paper).")

_STATUS_WORDS = {"on disk": "on disk", "embedded": "built in, offline",
                 "downloadable": "not on disk — downloads on first use"}


_KEPT = "_kept_widget_keys"


def kept(key: str, default=None) -> str:
    """Register a settings widget whose value must survive page switches; returns ``key``.

    Streamlit drops a widget's value once its page is not drawn, so a lecturer who sets λ,
    looks at the Latent page and comes back would find λ reset. :func:`keep_widget_state`
    (run at the top of every page) re-saves the registered values. The widget must
    take its default from here (``default``), never from a ``value=``/``default=`` argument,
    which Streamlit rejects next to a value set through Session State.
    """
    if default is not None:
        st.session_state.setdefault(key, default)
    st.session_state.setdefault(_KEPT, set()).add(key)
    return key


def keep_widget_state() -> None:
    """Re-save every :func:`kept` widget value so Streamlit's widget clean-up keeps it."""
    for key in st.session_state.get(_KEPT, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def method_title(method: str) -> str:
    """``"deep-svdd"`` → ``"Deep SVDD"``."""
    return METHOD_TITLES.get(method, method)


def dataset_picker(key: str, container=st) -> str:
    """Select box of every data set, each labelled with its availability here."""
    root = state.data_root()

    def label(name: str) -> str:
        status = _STATUS_WORDS[dataset_status(name, root)]
        extra = " · offline default" if name == OFFLINE_DEFAULT else ""
        return f"{DATASETS[name].title} ({status}{extra})"

    names = list(DATASETS)
    default = "mnist" if dataset_status("mnist", root) == "on disk" else OFFLINE_DEFAULT
    return container.selectbox("Data set", names, format_func=label, key=kept(key, default),
                               help=f"Looked for under {root} (set IAEAD_DATA_ROOT to change).")


def class_label(dataset: str, k: int) -> str:
    """``"3 · dress"`` for a class index (digits show just the digit)."""
    return charts.class_name(k, DATASETS[dataset].classes)


def device_picker(key: str, container=st) -> str:
    """auto / cpu / cuda, each saying whether it is present on this machine."""
    import torch

    cuda = torch.cuda.is_available()
    auto_to = "cuda" if cuda else "cpu"
    labels = {"auto": f"auto (→ {auto_to})", "cpu": "cpu (present)",
              "cuda": f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cuda (not present here)"}
    return container.selectbox("Device", list(labels), format_func=labels.get, key=kept(key))


def preset_picker(key: str, container=st) -> str:
    """quick (CPU-sized) or paper (the paper's full protocol)."""
    return container.radio(
        "Preset", sorted(PRESETS, key=lambda p: p != "quick"), horizontal=True, key=kept(key),
        format_func={"quick": "quick (CPU, ~3,000 images, small net)",
                     "paper": "paper (full protocol)"}.get,
        help="quick: width-16 network, 3,000-image subsample, 30 epochs — not the paper's "
             "network, but it shows the same effects in minutes on a CPU. paper: the full "
             "network, full contaminated set, 250 epochs (hours on a CPU).")


def images_picker(key: str, preset: str, container=st) -> int:
    """Size of the contaminated set (0 = the whole set), in an "Advanced" expander."""
    with container.expander("Advanced"):
        return int(st.number_input(
            "Images in the set (0 = all)", 0, 12_000, step=500,
            key=kept(f"{key}_{preset}", PRESETS[preset]["max_samples"] or 0),
            help="A random subsample that keeps ρ (the quick preset uses 3,000; the paper uses "
                 "the whole set, capped at 12,000)."))


def show_data_error(message: str, select_key: str, container=st, key: str = "") -> None:
    """A data-set error with a one-click switch to the offline default."""
    container.error(message)
    container.button(f"Use the offline default ({OFFLINE_DEFAULT})", key=f"offline_{select_key}{key}",
                     on_click=lambda: st.session_state.update({select_key: OFFLINE_DEFAULT}))


def group_eta(items: Sequence[RunItem]) -> float | None:
    """Seconds left for a group: running jobs from their own pace, queued ones from the pace
    of the group's runs so far (None when nothing has a pace yet)."""
    paces = [it.records[-1]["elapsed"] / it.records[-1]["epoch"] for it in items if it.records]
    pace = sum(paces) / len(paces) if paces else None
    total = 0.0
    for it in items:
        if it.status == "running":
            left = time_left(it.records, it.epochs)
            if left is None:
                if pace is None:
                    return None
                left = pace * it.epochs
            total += left
        elif it.status == "queued":
            if pace is None:
                return None
            total += pace * it.epochs
    return total


def progress_panel(items: Sequence[RunItem]) -> None:
    """One progress bar per run: epoch, phase, pace and time left; queue places."""
    for it in items:
        done = len(it.records)
        frac = min(1.0, done / it.epochs) if it.epochs else 0.0
        if it.status == "queued":
            text = f"**{it.label}** · waiting in the queue (place {it.queue_pos})"
        elif it.status == "running":
            if it.records:
                last = it.records[-1]
                text = (f"**{it.label}** · epoch {done}/{it.epochs} ({last['phase']}) · "
                        f"{last['seconds']:.1f} s/epoch · about "
                        f"{fmt_seconds(time_left(it.records, it.epochs))} left")
            else:
                text = f"**{it.label}** · preparing data and the first epoch…"
        else:
            text = f"**{it.label}** · {it.status} after {done}/{it.epochs} epochs"
        st.progress(frac, text=text)


def failures(items: Sequence[RunItem], select_key: str | None = None) -> None:
    """Failed runs, in words, where the user looks: a diverged run names the epoch and keeps
    its curves; a missing data set offers the offline default."""
    for it in items:
        if it.status != "failed" or not it.error:
            continue
        if it.error_kind == "data" and select_key:
            show_data_error(f"{it.label}: {it.error}", select_key, key=it.job_key or it.run_id or "")
        elif it.error_kind == "diverged":
            st.error(f"**{it.label} diverged.** {it.error} Its curves up to then are kept below "
                     "and in its run folder.")
        else:
            st.error(f"**{it.label} failed.** {it.error}")


def queue_panel() -> None:
    """What every worker slot runs and what waits, across all pages and tabs."""
    reg = state.registry()
    running, queue = reg.running(), reg.queue()
    if not running and not queue:
        return
    lines = [f"▶ {method_title(j.cfg.method)} on {j.cfg.dataset} class {j.cfg.normal_class} "
             f"(λ={j.cfg.lam:g}, seed {j.cfg.seed}) — epoch {j.epochs_done}/{j.cfg.epochs}"
             for j in running]
    lines += [f"{i + 1}. {method_title(j.cfg.method)} on {j.cfg.dataset} class {j.cfg.normal_class} "
              f"(λ={j.cfg.lam:g}, seed {j.cfg.seed}) — waiting"
              for i, j in enumerate(queue[:12])]
    if len(queue) > 12:
        lines.append(f"… and {len(queue) - 12} more waiting")
    with st.expander(f"Job queue: {len(running)} running, {len(queue)} waiting "
                     f"({reg.slots} at a time on this device)", expanded=False):
        st.markdown("\n".join(f"- {s}" for s in lines))


def group_picker(groups: Sequence[str], session_key: str, label: str, container=st) -> str | None:
    """Choose which group (comparison / sweep) to show; defaults to the one this tab started,
    else the newest. Returns None when there is none yet."""
    if not groups:
        return None
    current = st.session_state.get(session_key)
    index = groups.index(current) if current in groups else 0

    def fmt(g: str) -> str:
        parts = g.split("-")
        return f"{parts[0]} started {parts[1][:4]}-{parts[1][4:6]}-{parts[1][6:]} {parts[2][:2]}:{parts[2][2:4]}:{parts[2][4:6]}" \
            if len(parts) >= 3 and len(parts[1]) == 8 else g

    chosen = container.selectbox(label, groups, index=index, format_func=fmt)
    st.session_state[session_key] = chosen
    return chosen


def poll(draw: Callable[[], bool], every: float = 1.0) -> None:
    """Run ``draw`` in a fragment that re-runs every ``every`` seconds while ``draw`` reports
    something live (it returns True), so only this part of the page refreshes and the
    widgets stay responsive. When the live state ends (or starts), the whole page reruns
    once to switch polling off (or on)."""
    live_key = f"_poll_live_{draw.__code__.co_filename}_{draw.__qualname__}"
    was_live = st.session_state.get(live_key, False)

    def body() -> None:
        live = draw()
        if live != st.session_state.get(live_key, False):
            st.session_state[live_key] = live
            st.rerun()

    st.fragment(body, run_every=every if was_live else None)()
