"""Streamlit pieces shared by the pages: data set / device pickers, progress, queue, errors,
and the polling fragment. Pages stay thin: they read state and call these."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence

import streamlit as st

from iaead_core.config import PRESETS
from iaead_core.data import DATASETS, OFFLINE_DEFAULT, dataset_status
from iaead_core.evaluation.analysis import METHOD_TITLES, epoch_pace, format_lambda
from . import charts, state
from .explain import AUROC_MEANS, started_words
from .jobs import JobRegistry, Starter
from .views.eta import fmt_seconds, run_eta
from .views.runs import RunItem

__all__ = ["kept", "keep_widget_state", "dataset_picker", "class_label", "device_picker", "preset_picker",
           "show_data_error", "progress_panel", "queue_panel", "failures", "poll", "PERSIST",
           "ORACLE_NOTE", "group_picker", "method_title", "starter", "stop_control",
           "RELIABILITY_NOTE", "PRESENTATION", "presentation", "presentation_toggle", "chart",
           "auroc_help"]

#: Session key of the presentation-mode toggle (per browser tab: Session State).
PRESENTATION = "presentation_mode"

#: What every page does when a run folder vanishes or is corrupt (shown where it happens).
RELIABILITY_NOTE = ("Run folders are read afresh on every refresh: a folder deleted (here or "
                    "by hand) disappears from every page, and a corrupt one is listed on the "
                    "Runs page with the reason instead of breaking a page.")

_APP_RERUN = "_rerun_whole_app"

ORACLE_NOTE = ("**Oracle monitoring.** The AUROC / AUPR curves use the ground-truth labels "
               "only to draw them: training never sees the labels, and no model is selected "
               "by them (the final model is the last epoch's, as in the paper).")

_STATUS_WORDS = {"on disk": "on disk", "embedded": "built in, offline",
                 "downloadable": "not on disk — downloads on first use",
                 "corrupt": "a file on disk is damaged"}


_KEPT = "_kept_widget_keys"


def _supports_persist() -> bool:
    import inspect

    try:
        return "persist_state" in inspect.signature(st.selectbox).parameters
    except (TypeError, ValueError):
        return False


#: Keyword arguments of every settings widget: Streamlit's own ``persist_state="session"``
#: (1.67 and later) keeps a widget's value across page switches; older versions get {} and
#: :func:`keep_widget_state` does the job by re-saving values through Session State.
PERSIST: dict[str, str] = {"persist_state": "session"} if _supports_persist() else {}


def kept(key: str, default=None) -> str:
    """Register a settings widget whose value must survive page switches; returns ``key``.

    Streamlit drops a widget's value once its page is not drawn, so a lecturer who sets λ,
    looks at the Latent page and comes back would find λ reset. The widget also takes
    ``**PERSIST`` (Streamlit's session-wide persistence); on older Streamlit,
    :func:`keep_widget_state` (run at the top of every page) re-saves the registered values.
    The widget must take its default from here (``default``), never from a
    ``value=``/``default=`` argument, which Streamlit rejects next to a value set through
    Session State.
    """
    if default is not None:
        st.session_state.setdefault(key, default)
    st.session_state.setdefault(_KEPT, set()).add(key)
    st.session_state.setdefault(_DRAWN, ("", set()))[1].add(key)
    return key


_DRAWN = "_kept_keys_drawn_last_run"


def keep_widget_state(page: str = "") -> None:
    """Re-save the :func:`kept` widget values so Streamlit's widget clean-up keeps them —
    except those the same ``page`` (its name; "" for none) drew in its previous run, which
    it draws again now. Re-saving a value through Session State makes Streamlit push it to
    the browser, which would undo a change the user made while that run was still going (a
    removed method coming back)."""
    if PERSIST:  # Streamlit keeps them itself
        return
    last_page, drawn = st.session_state.get(_DRAWN, ("", set()))
    skip = drawn if page and last_page == page else set()
    for key in st.session_state.get(_KEPT, ()):
        if key in st.session_state and key not in skip:
            st.session_state[key] = st.session_state[key]
    st.session_state[_DRAWN] = (page, set())


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
    return container.selectbox("Data set", names, format_func=label, **PERSIST, key=kept(key, default),
                               help=f"Looked for under {root} (set IAEAD_DATA_ROOT to change).")


def class_label(dataset: str, k) -> str:
    """``"3 · dress"`` for a class index (digits show just the digit; a class given by name,
    or a set that is not a benchmark, shows it as it is)."""
    spec = DATASETS.get(dataset)
    try:
        k = int(k)
    except (TypeError, ValueError):
        return str(k)
    return charts.class_name(k, spec.classes) if spec is not None else str(k)


def device_picker(key: str, container=st) -> str:
    """auto / cpu / cuda, each saying whether it is present on this machine."""
    import torch

    cuda = torch.cuda.is_available()
    auto_to = "cuda" if cuda else "cpu"
    labels = {"auto": f"auto (→ {auto_to})", "cpu": "cpu (present)",
              "cuda": f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cuda (not present here)"}
    return container.selectbox("Device", list(labels), format_func=labels.get, **PERSIST, key=kept(key))


def preset_picker(key: str, container=st) -> str:
    """quick (CPU-sized) or paper (the paper's full protocol)."""
    return container.radio(
        "Preset", sorted(PRESETS, key=lambda p: p != "quick"), horizontal=True, **PERSIST, key=kept(key),
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
            **PERSIST, key=kept(f"{key}_{preset}", PRESETS[preset]["max_samples"] or 0),
            help="A random subsample that keeps ρ (the quick preset uses 3,000; the paper uses "
                 "the whole set, capped at 12,000)."))


def show_data_error(message: str, select_key: str, container=st, key: str = "") -> None:
    """A data-set error with a one-click switch to the offline default.

    The button usually sits inside a polling fragment, where a click reruns only the
    fragment and the sidebar's data-set box would keep showing the failed set; so the click
    also asks :func:`poll` for a rerun of the whole page.
    """
    def use_offline_default() -> None:
        st.session_state[select_key] = OFFLINE_DEFAULT
        st.session_state[_APP_RERUN] = True

    container.error(message)
    container.button(f"Use the offline default ({OFFLINE_DEFAULT})", key=f"offline_{select_key}{key}",
                     on_click=use_offline_default)


def progress_panel(items: Sequence[RunItem]) -> None:
    """One progress bar per run: epoch, phase, pace and time left (counting down within an
    epoch, :func:`views.eta.run_eta`); queue places."""
    now = time.time()
    for it in items:
        done = len(it.records)
        frac = min(1.0, done / it.epochs) if it.epochs else 0.0
        if it.status == "queued":
            text = f"**{it.label}** · waiting in the queue (place {it.queue_pos})"
        elif it.status == "running":
            if it.records:
                last = it.records[-1]
                text = (f"**{it.label}** · epoch {done}/{it.epochs} ({last['phase']}) · "
                        f"{epoch_pace(it.records):.1f} s/epoch · about "  # the pace the time left uses
                        f"{fmt_seconds(run_eta(it, None, now))} left")
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
             f"(λ={format_lambda(j.cfg.effective_lam)}, seed {j.cfg.seed}) — epoch "
             f"{j.epochs_done}/{j.cfg.epochs}" for j in running]
    lines += [f"{i + 1}. {method_title(j.cfg.method)} on {j.cfg.dataset} class {j.cfg.normal_class} "
              f"(λ={format_lambda(j.cfg.effective_lam)}, seed {j.cfg.seed}) — waiting"
              for i, j in enumerate(queue[:12])]
    if len(queue) > 12:
        lines.append(f"… and {len(queue) - 12} more waiting")
    stacked = sum(1 for j in running if j.stack > 1)
    together = (f", {stacked} of them trained together as stacked networks" if stacked else "")
    with st.expander(f"Job queue: {len(running)} running{together}, {len(queue)} waiting "
                     f"({_slots_words(reg.slots)} on this device)", expanded=False):
        st.markdown("\n".join(f"- {s}" for s in lines))


def _slots_words(slots: int) -> str:
    return "one training slot" if slots == 1 else f"{slots} training slots"


def shown_group(groups: Sequence[str], session_key: str) -> str | None:
    """The group a page shows: the one this tab chose or started, else the newest."""
    if not groups:
        return None
    current = st.session_state.get(session_key)
    return current if current in groups else groups[0]


def group_picker(groups: Sequence[str], session_key: str, label: str, container=st,
                 titles: dict[str, str] | None = None) -> str | None:
    """Choose which group (comparison / sweep) to show, each named by its settings
    (``titles``: group id → :func:`app.explain.group_title`); defaults to
    :func:`shown_group`. Returns None when there is none yet."""
    chosen = shown_group(groups, session_key)
    if chosen is None:
        return None
    titles = titles or {}
    chosen = container.selectbox(label, list(groups), index=list(groups).index(chosen),
                                 format_func=lambda g: titles.get(g, g))
    st.session_state[session_key] = chosen
    return chosen


def _browser() -> str:
    """``"Chrome on 127.0.0.1"`` for this session, from its request (may be "")."""
    try:
        agent = st.context.headers.get("User-Agent", "") or ""
        ip = st.context.ip_address or ""
    except Exception:  # no request behind this session (tests)
        return ""
    if not isinstance(agent, str) or not isinstance(ip, str):  # a test runner's stand-in
        return ""
    ip = ip.removeprefix("::ffff:")  # an IPv4 address seen through IPv6
    name = next((n for n in ("Edg", "Firefox", "Chrome", "Safari") if re.search(n + r"/", agent)), "")
    name = {"Edg": "Edge", "Chrome": "Chromium" if "Chromium" in agent else "Chrome"}.get(name, name)
    return " on ".join(p for p in (name, ip) if p)


def starter() -> Starter:
    """This browser session as a job starter (its id lives in Session State)."""
    sid = st.session_state.setdefault("_session_id", uuid.uuid4().hex[:8])
    return Starter(session=sid, where=_browser())


def stop_control(reg: JobRegistry, group: str | None, pressed: bool, prefix: str,
                 container=st, what: str = "comparison") -> None:
    """Handle a Stop button: stop the group on screen if this tab started it; otherwise ask
    for confirmation, saying who started it and when. Nothing running: say so."""
    pending_key, note_key = f"{prefix}_confirm_stop", f"{prefix}_stopped_note"
    if pressed:
        st.session_state.pop(note_key, None)
        if group is None or not reg.group_active(group):
            container.info(f"Nothing of the {what} shown is queued or running.")
        elif any(s.session == starter().session for s in reg.starters(group)):
            _stop_with_note(reg, group, note_key, what)
        else:
            st.session_state[pending_key] = group
    note = st.session_state.get(note_key)  # (time, words) of this tab's last Stop
    if note and not (group is not None and any(s.at > note[0] for s in reg.starters(group))):
        container.info(note[1])  # at once, while a running run finishes its batch (walk 5)
    elif group is not None and not note and not reg.group_active(group):
        _stopped_elsewhere(reg, group, container, what)
    pending = st.session_state.get(pending_key)
    if not pending:
        return
    if not reg.group_active(pending):
        st.session_state.pop(pending_key, None)
        return
    known = reg.starters(pending)
    who = (started_words(known[-1]) if known else
           "a session this server no longer knows")
    container.warning(f"This {what} was started by {who}, not by this tab. Stop it anyway?")
    yes, no = container.columns(2)
    if yes.button("Stop it", key=f"{prefix}_stop_yes", type="primary"):
        _stop_with_note(reg, pending, note_key, what)
        st.session_state.pop(pending_key, None)
        st.rerun()
    if no.button("Keep it", key=f"{prefix}_stop_no"):
        st.session_state.pop(pending_key, None)
        st.rerun()


def _stopped_elsewhere(reg: JobRegistry, group: str, container, what: str) -> None:
    """Tell the tab that started a group that another tab stopped it after that (else this
    tab's last word would still be "queued …")."""
    stop, me = reg.last_stop(group), starter().session
    if stop is None or stop.session == me:
        return
    if any(s.session == me and s.at <= stop.at for s in reg.starters(group)):
        container.info(f"The {what} was stopped by {started_words(stop)}, not by this tab. Waiting runs were "
                       "dropped and a running one stopped after its batch, keeping its "
                       "completed epochs.")


def _stop_with_note(reg: JobRegistry, group: str, note_key: str, what: str) -> None:
    """Stop a group and keep a sentence saying so for this tab (shown until the next Start)."""
    me = starter()
    reg.stop_group(group, by=me)
    st.session_state[note_key] = (me.at, (
        f"{time.strftime('%H:%M:%S', time.localtime(me.at))}: the {what} was stopped. Waiting "
        "runs were dropped and a running one stops after its batch, keeping its completed "
        "epochs."))


def poll(draw: Callable[[], bool], every: float = 1.0, idle_every: float | None = None) -> None:
    """Run ``draw`` in a fragment that re-runs every ``every`` seconds while ``draw`` reports
    something live (it returns True), so only this part of the page refreshes and the
    widgets stay responsive; while nothing is live, every ``idle_every`` seconds (None: not
    at all), so a page sees what another tab or the command line starts. When the live state
    ends (or starts), the whole page reruns once to switch the pace."""
    live_key = f"_poll_live_{draw.__code__.co_filename}_{draw.__qualname__}"
    was_live = st.session_state.get(live_key, False)

    def body() -> None:
        if st.session_state.pop(_APP_RERUN, False):  # e.g. a data-set switch from a button here
            st.rerun(scope="app")
        live = draw()
        if live != st.session_state.get(live_key, False):
            st.session_state[live_key] = live
            st.rerun()

    st.fragment(body, run_every=every if was_live else idle_every)()


# ----------------------------------------------------------------------- presentation mode

def presentation() -> bool:
    """Whether this browser tab is in presentation mode (:func:`presentation_toggle`)."""
    return bool(st.session_state.get(PRESENTATION, False))


def presentation_toggle() -> None:
    """The sidebar's presentation-mode switch and, when on, its options: every rule or only
    each method's own score, and the export format. Drawn by ``app/main.py`` on every page;
    remembered per tab (Session State)."""
    sb = st.sidebar
    sb.toggle("Presentation mode", key=PRESENTATION,
              help="For a projector: chart text at 20 px, thick lines, only each method's own "
                   "score (unless asked), the story first, charts exported at slide size.")
    if presentation():
        sb.checkbox("Show every scoring rule", key="presentation_all_rules",
                    help="Off: only each method's own score (the one its tables report).")
        sb.radio("Export charts as", ["png", "svg"], horizontal=True, key="presentation_fmt",
                 format_func=str.upper, help="The camera button of a chart's toolbar saves it "
                 "at 1920×1080 in this format.")


def all_rules() -> bool:
    """Whether an AUROC chart shows every scoring rule (always, outside presentation mode)."""
    return not presentation() or bool(st.session_state.get("presentation_all_rules"))


def chart(fig, key: str, container=st) -> None:
    """Draw a plotly figure: restyled for a projector in presentation mode
    (:func:`app.charts.presentation`), its toolbar's export at slide size in the chosen
    format (:func:`app.charts.export_config`)."""
    on = presentation()
    if on:
        charts.presentation(fig)
    fmt = st.session_state.get("presentation_fmt", "png") if on else "png"
    container.plotly_chart(fig, width="stretch", key=key,
                           config=charts.export_config(fmt, name=key))


def auroc_help(container=st, key: str = "auroc_help") -> None:
    """The "What AUROC means" popover (:data:`app.explain.AUROC_MEANS`), beside an AUROC."""
    with container.popover("What AUROC means", icon=":material/help:", key=key):
        st.markdown(AUROC_MEANS)
