"""Train: run any of the eight methods on one data draw and watch them live."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app import charts, explain, state, ui
from app.views.eta import fmt_seconds, group_eta, observe_items
from app.views.latent import coincide_late
from app.views.runs import (SEEN_RUNS, deleted_items, deleted_note, group_items, item_label,
                            known_groups,
                            group_status, metrics_heading,
                            remember, seed_spread)

from iaead_core.config import MAX_SEEDS, METHOD_NAMES, PRESETS, default_seeds, scaled_config
from iaead_core.data import DATASETS
from iaead_core.evaluation.analysis import LAMBDA_CHOICES, METRIC_NAMES, format_lambda
from iaead_core.evaluation.paper import PAPER_BEST_LAM
from iaead_core.evaluation.stability import mean_std_text, seed_summary, spread_text
from iaead_core.training.engine import select_device

METHODS = list(METHOD_NAMES)  # all eight, in the registry's order
DEFAULT_METHODS = ["iaead", "cae", "deep-svdd"]  # the paper's story; any subset can be chosen
COINCIDE_TOL = 0.02  # AUROC gap below which two curves read as one on the chart
RHOS = [5, 10, 15, 20, 25]

reg = state.registry()
index = state.run_index()
sb = st.sidebar
ui.keep_widget_state("train")  # settings survive page switches

# Runs shown in this browser session, so that a run deleted since (on the Runs page, in
# another tab or by hand) is still named, with its settings, in a note.
seen = st.session_state.setdefault(SEEN_RUNS, {})


def group_configs(g: str) -> list[dict]:
    """The run configs of a comparison: its runs, then those whose folder was deleted since
    (their settings stay known from the job registry or this session)."""
    items = group_items(reg, index, g)
    remember(seen, items)
    return [i.config for i in items] + [d.config for d in deleted_items(reg, g, seen.values())]


def group_titles(gs: list[str]) -> dict[str, str]:
    """Picker titles: the settings of each comparison, and which of its runs were deleted."""
    out = {}
    for g in gs:
        gone = deleted_items(reg, g, seen.values())
        out[g] = (explain.group_title(g, group_configs(g), "compare",
                                      group_status(group_items(reg, index, g)))
                  + (f" · {', '.join(d.label for d in gone)} deleted" if gone else ""))
    return out


groups = known_groups(reg, index, "compare")
titles = group_titles(groups)
# The comparison this tab showed last, if every run folder of it has been deleted since: the
# picker no longer offers it, and a note says so (kept until the next Start).
_last = st.session_state.get("train_group")
if _last and _last not in groups:
    _gone = deleted_items(reg, _last, seen.values())
    if _gone:
        st.session_state["_train_gone_note"] = (
            f"**The comparison {explain.group_title(_last, [d.config for d in _gone], 'compare')} "
            "is no longer offered.** " + deleted_note(_gone))
shown = ui.shown_group(groups, "train_group")


def sidebar_settings(configs: list[dict]) -> dict:
    """Sidebar widget values that reproduce a comparison's settings (those a widget offers)."""
    if not configs:
        return {}
    c0 = next((c for c in configs if c.get("method") == "iaead"), configs[0])
    ds, preset = c0.get("dataset"), c0.get("preset")
    out = {}
    if ds in DATASETS and str(c0.get("normal_class", 0)).isdigit():
        out["train_ds"] = ds
        out[f"train_cls_{ds}"] = int(c0.get("normal_class", 0))
    if round(float(c0.get("rho", 0)) * 100) in RHOS:
        out["train_rho"] = round(float(c0.get("rho", 0)) * 100)
    out["train_methods"] = [m for m in METHODS if any(c.get("method") == m for c in configs)]
    if c0.get("method") == "iaead":
        lam = next((v for v in LAMBDA_CHOICES if math.isclose(v, float(c0.get("lam", -1)),
                                                              rel_tol=1e-9, abs_tol=0.0)), None)
        if lam is not None:
            out["train_lam"] = lam
        nu = c0.get("nu")
        out["train_nu"] = 1.0 if nu is None else round(float(nu) / 0.05) * 0.05
    svdd = next((c for c in configs if c.get("method") == "deep-svdd"), None)
    if svdd is not None:
        out["train_unreg"] = bool(svdd.get("svdd_bias"))
    if preset in PRESETS:
        out["train_preset"] = preset
        out[f"train_epochs_{preset}"] = int(c0.get("epochs", PRESETS[preset]["epochs"]))
        out[f"train_max_{preset}"] = int(c0.get("max_samples") or 0)
    seeds = sorted({int(c.get("seed", 0)) for c in configs if c.get("method") == c0.get("method")})
    out["train_seed"] = seeds[0] if seeds else int(c0.get("seed", 0))
    if preset in PRESETS and seeds:
        out[f"train_seeds_{preset}"] = len(seeds)
    return out


def adopt(group: str | None) -> None:
    """Put the settings of a comparison into the sidebar (before its widgets are drawn, or
    from a button's callback)."""
    if group:
        st.session_state.update(sidebar_settings(group_configs(group)))


# After a reload (a new session) the sidebar starts from the comparison on screen, so the
# settings beside a result are the ones that produced it.
if not st.session_state.get("_train_adopted"):
    st.session_state["_train_adopted"] = True
    adopt(shown)

# ---------------------------------------------------------------- settings (sidebar)
sb.header("Experiment")
dataset = ui.dataset_picker("train_ds", sb)
classes = DATASETS[dataset].classes
normal_class = sb.selectbox("Normal class", range(len(classes)), **ui.PERSIST, key=ui.kept(f"train_cls_{dataset}"),
                            format_func=lambda k: ui.class_label(dataset, k))
rho = sb.select_slider("Anomaly ratio ρ", options=RHOS,
                       format_func=lambda v: f"{v} %", **ui.PERSIST, key=ui.kept("train_rho", 10))
methods = sb.multiselect("Methods (same data draw, same seed)", METHODS,
                         format_func=ui.method_title, **ui.PERSIST, key=ui.kept("train_methods", list(DEFAULT_METHODS)))
lam = sb.select_slider("λ (IAEAD's SVDD weight, log scale)", options=list(LAMBDA_CHOICES),
                       format_func=format_lambda, **ui.PERSIST, key=ui.kept("train_lam", PAPER_BEST_LAM),
                       help="λ = 0 is a plain CAE scored in the latent space; the paper's best "
                            f"is {format_lambda(PAPER_BEST_LAM)}; very large λ collapses the "
                            "latent space.")
nu = sb.slider("ν (IAEAD soft boundary)", 0.05, 1.0, None, 0.05, **ui.PERSIST, key=ui.kept("train_nu", 1.0),
               help="ν = 1 (the paper) makes R the smallest batch distance.")
unregularised = sb.checkbox(
    "Unregularised Deep SVDD (biases on)", **ui.PERSIST, key=ui.kept("train_unreg"),
    help="Turns on the biases and affine BatchNorm that Ruff et al. remove so that mapping "
         "every image onto c is not reachable. Within the quick budget its codes contract "
         "faster but do not fully collapse; for total collapse, give IAEAD a very large λ.")
preset = ui.preset_picker("train_preset", sb)
epochs = sb.number_input("Epochs", 2, 1000,
                         **ui.PERSIST, key=ui.kept(f"train_epochs_{preset}", PRESETS[preset]["epochs"]))
seed = sb.number_input("Seed", 0, 10_000, **ui.PERSIST, key=ui.kept("train_seed", 0))
n_seeds = sb.number_input(
    "Seeds per method", 1, MAX_SEEDS, **ui.PERSIST,
    key=ui.kept(f"train_seeds_{preset}", default_seeds(preset)),
    help="Each method trains with seeds Seed, Seed + 1, …, and the table gives the mean ± std "
         f"over them ({default_seeds('quick')} by default at the quick preset: one quick run's "
         "AUROC moves with the seed, and even with the CPU's thread count, by more than the "
         "differences between settings it is read for; 1 gives one run per method).")
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
    st.session_state.pop("train_stopped_note", None)
    st.session_state.pop("_train_gone_note", None)
    try:
        if not methods:
            raise ValueError("Choose at least one method to train.")
        select_device(device)  # a missing accelerator is refused here, in words
        cfgs = [scaled_config(preset, m, int(epochs), dataset=dataset,
                              normal_class=int(normal_class), rho=rho / 100,
                              seed=int(seed) + k, device=device, data_root=str(state.data_root()),
                              download=True, max_samples=int(max_samples),
                              **({"lam": float(lam), "nu": float(nu)} if m == "iaead" else {}),
                              **({"svdd_bias": unregularised} if m == "deep-svdd" else {}))
                for m in METHODS if m in methods for k in range(int(n_seeds))]
        st.session_state["train_group"] = reg.submit_group(cfgs, "compare", ui.starter())
        groups = known_groups(reg, index, "compare")
        titles = group_titles(groups)
    except ValueError as e:
        st.session_state["train_error"] = ("input", str(e))

shown = ui.shown_group(groups, "train_group")
ui.stop_control(reg, shown, stop, "train", problems)

err = st.session_state.get("train_error")
if err:
    problems.error(err[1])

# The sidebar against the comparison on screen: say where they differ.
if shown:
    shown_cfgs = group_configs(shown)
    wanted = sidebar_settings(shown_cfgs)
    sidebar_now = {"dataset": dataset, "normal_class": normal_class, "rho": rho / 100,
                   "methods": methods, "lam": float(lam), "nu": float(nu),
                   "svdd_bias": bool(unregularised), "preset": preset, "epochs": int(epochs),
                   "seed": int(seed), "max_samples": int(max_samples),
                   "seeds": int(n_seeds)}
    c0 = next((c for c in shown_cfgs if c.get("method") == "iaead"), shown_cfgs[0] if shown_cfgs else {})
    on_screen = {"dataset": c0.get("dataset"), "normal_class": c0.get("normal_class"),
                 "rho": c0.get("rho"), "methods": wanted.get("train_methods", []),
                 "preset": c0.get("preset"), "epochs": c0.get("epochs"),
                 "seed": wanted.get("train_seed"), "max_samples": int(c0.get("max_samples") or 0),
                 "seeds": wanted.get(f"train_seeds_{c0.get('preset')}", 1)}
    if c0.get("method") == "iaead":
        on_screen.update(lam=c0.get("lam"), nu=1.0 if c0.get("nu") is None else c0.get("nu"))
    if any(c.get("method") == "deep-svdd" for c in shown_cfgs):
        on_screen["svdd_bias"] = wanted.get("train_unreg", False)
    diffs = explain.sidebar_differences(sidebar_now, on_screen) if shown_cfgs else []
    if diffs:
        problems.info("**The sidebar differs from the comparison shown** — "
                      + "; ".join(diffs) + ".")
        problems.button("Put its settings in the sidebar", key="train_adopt",
                        on_click=adopt, args=(shown,))

# ---------------------------------------------------------------- main area
st.title("Train")
st.caption("IAEAD = convolutional autoencoder + λ · Deep SVDD loss, scored by the distance to "
           "the mean latent code. CAE and Deep SVDD train on the very same contaminated set.")
st.info(ui.ORACLE_NOTE)
if st.session_state.get("_train_gone_note"):
    st.info(st.session_state["_train_gone_note"] + " " + ui.RELIABILITY_NOTE)
group = ui.group_picker(groups, "train_group", "Comparison shown", titles=titles)


def final_table(items) -> tuple[pd.DataFrame, list[str]]:
    """The last epoch's metrics per run × rule, with the settings that produced them, the
    expected spread across seeds of each run's own AUROC (the core's, with where each comes
    from, returned as notes) and the paper's value only where the run's setting is the
    paper's."""
    parts, notes = [], []
    for it in items:
        if not it.records:
            continue
        last = it.records[-1]
        metrics = last.get("metrics") or {}
        if not metrics:
            continue  # a set without labels: rankings, no metrics
        primary = last.get("primary_score")
        rules = list(metrics)
        s = explain.settings(it.config)
        spread = seed_spread(it, index)
        if spread is not None:
            notes.append(f"{it.label}: {spread_text(spread)}")
        t = pd.DataFrame({
            "run": it.label, "λ": s["λ"], "ν": s["ν"],
            "score": [explain.rule_name(r, it.method) + (" (its own)" if r == primary else "")
                      for r in rules],
            **{METRIC_NAMES[k]: [explain.metric_text(metrics[r], k, why=False)
                                 for r in rules] for k in METRIC_NAMES},
            "± over seeds": [spread_text(spread, short=True)
                             if r == primary and not metrics[r].get("degenerate") else ""
                             for r in rules],
            "paper AUROC": [explain.paper_cell(it.config) if r == primary else "" for r in rules],
            "preset": s["preset"], "init": s["init"], "epoch": last.get("epoch")})
        parts.append(t)
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()), notes


def seed_table(items) -> pd.DataFrame:
    """Mean ± std over seeds of the last epoch's metrics, per method × scoring rule (the
    core's :func:`~iaead_core.evaluation.stability.seed_summary`), for a comparison trained
    with several seeds per method; each method's own rule first. Empty when no method has
    two seeds with records."""
    by_method: dict[str, list] = {}
    for it in items:
        if it.records and (it.records[-1].get("metrics") or {}):
            by_method.setdefault(item_label(it.config, "compare"), []).append(it)
    if not any(len(runs) > 1 for runs in by_method.values()):
        return pd.DataFrame()
    rows = []
    for name, runs in by_method.items():
        primary = runs[0].records[-1].get("primary_score")
        summary = seed_summary([r.records[-1]["metrics"] for r in runs])
        for rule in sorted(summary, key=lambda r: r != primary):
            row = summary[rule]
            rows.append({
                "method": name,
                "score": explain.rule_name(rule, runs[0].method)
                         + (" (its own)" if rule == primary else ""),
                **{METRIC_NAMES[k]: mean_std_text(row.get(k)) for k in METRIC_NAMES},
                "seeds": ", ".join(str(r.config.get("seed")) for r in runs),
                "epochs": ", ".join(sorted({str(r.records[-1].get("epoch")) for r in runs}))})
    return pd.DataFrame(rows)


def final_curves(items, own_only: bool = False) -> list[tuple[str, str, float]]:
    """(run label, rule name, final AUROC) of every non-degenerate curve on the AUROC chart
    (only each run's own score when ``own_only``), for the below-chance sentence."""
    out = []
    for it in items:
        if not it.records:
            continue
        own = charts.own_rule(it)
        for rule, m in (it.records[-1].get("metrics") or {}).items():
            if own_only and own is not None and rule != own:
                continue
            if isinstance(m, dict) and not m.get("degenerate") and isinstance(m.get("auroc"), (int, float)):
                out.append((it.label, explain.rule_name(rule, it.method), float(m["auroc"])))
    return out


def coincidence(items) -> str | None:
    """The sentence about IAEAD's and CAE's latent curves when they coincide."""
    by_method = {}  # the first seed of each method
    for it in items:
        if it.records:
            by_method.setdefault(it.method, it)
    if "iaead" not in by_method or "cae" not in by_method:
        return None
    curves, finals = {}, {}
    for m, it in by_method.items():
        for rule in ("latent_mean", "reconstruction"):
            pts = [(r["epoch"], (r.get("metrics") or {}).get(rule, {}).get("auroc"))
                   for r in it.records]
            curves[(m, rule)] = pts
            last = (it.records[-1].get("metrics") or {}).get(rule) or {}
            if isinstance(last.get("auroc"), (int, float)):
                finals[(m, rule)] = float(last["auroc"])
    late = coincide_late(curves[("iaead", "latent_mean")], curves[("cae", "latent_mean")],
                         tol=COINCIDE_TOL)
    return None if late is None else explain.coincidence_sentence(finals, late[0], late[1])


def seeds_words(items) -> str:
    """``"seed 0"`` or ``"seeds 0, 1, 2"``: the seeds of a comparison's runs."""
    seeds = sorted({int(i.config.get("seed", 0)) for i in items})
    return (f"seed {seeds[0]}" if len(seeds) == 1
            else "seeds " + ", ".join(map(str, seeds)))


def live() -> bool:
    """Draw the chosen comparison; True while any of its runs is queued or running."""
    ui.queue_panel()  # inside the polling fragment, so it stays current
    if group is None:
        st.write("Choose the settings in the sidebar and press **Start**. The first AUROC "
                 "point appears after the first epoch (a few seconds with the quick preset).")
        return False
    items = group_items(reg, index, group)
    remember(seen, items)
    gone = deleted_items(reg, group, seen.values())
    if gone:  # which runs of the comparison were deleted, with their settings
        st.info(deleted_note(gone) + " " + ui.RELIABILITY_NOTE)
    if not items:
        if not gone:
            st.warning("This comparison has no runs left: their folders were deleted. "
                       + ui.RELIABILITY_NOTE)
        return False
    active = any(i.active for i in items)
    # λ and ν are IAEAD's: from its run, or from its deleted run where the registry or this
    # session still knows its settings.
    lam_item = next((i for i in items + gone if i.method == "iaead"), items[0])
    cfg = lam_item.config
    s = explain.settings(cfg)
    lam_nu = (f"IAEAD **λ = {s['λ']}**, **ν = {s['ν']}**"
              + (" (its run folder was deleted)" if lam_item.status == "deleted" else "")
              if cfg.get("method") == "iaead" else "no IAEAD run (λ, ν unused)")
    st.markdown(f"**{explain.dataset_title(cfg.get('dataset', '?'))}**, normal class "
                f"**{ui.class_label(cfg.get('dataset', ''), cfg.get('normal_class', 0))}**, "
                f"ρ = {float(cfg.get('rho', 0)) * 100:g} %, {seeds_words(items)}, "
                f"{cfg.get('epochs')} epochs · {lam_nu} · preset **{s['preset']}** · "
                f"init {s['init']}")
    if active:
        meter = state.pace_meter()
        observe_items(meter, items)
        eta = group_eta(items, slots=reg.slots, rates=meter.rates())
        st.caption("Time left for this comparison: known after the first epoch." if eta is None
                   else f"About {fmt_seconds(eta)} left for this comparison "
                        f"({explain.pace_words()}).")
    ui.progress_panel(items)
    ui.failures(items, "train_ds")
    if any(i.records for i in items):
        ui.chart(charts.auroc_chart(items, own_only=not ui.all_rules()), key="train_auroc")
        ui.auroc_help(key="train_auroc_help")
        sentence = coincidence(items)
        if sentence:
            st.markdown(sentence)
        low = explain.below_chance_sentence(final_curves(items, own_only=not ui.all_rules()))
        if low:
            st.caption(low)
        ui.chart(charts.loss_chart(items), key="train_loss")
        for it in items:
            lines = explain.alert_lines(it.records[-1] if it.records else None)
            if lines:
                st.warning(f"**{it.label}, epoch {it.records[-1]['epoch']}:**\n"
                           + "\n".join(f"- {line}" for line in lines))
        table, spread_notes = final_table(items)
        st.subheader(metrics_heading(items))
        means = seed_table(items)
        if not means.empty:
            st.markdown("**Mean ± std over seeds** (sample std; the runs of each method differ "
                        "only in the seed). Read a comparison from these rows: one quick run's "
                        "AUROC moves with the seed by more than many differences between "
                        "settings.")
            st.dataframe(means, hide_index=True, width="stretch")
        runs_box = st.expander("Each run", expanded=False) if not means.empty else st.container()
        small = {c: st.column_config.TextColumn(c, width="small")
                 for c in ("run", "λ", "ν", "preset", "init")}
        runs_box.dataframe(table, hide_index=True, width="stretch", column_config={
            **small, "score": st.column_config.TextColumn("score", width="medium"),
            "AUROC": st.column_config.TextColumn("AUROC", width="medium"),
            "± over seeds": st.column_config.TextColumn("± over seeds", width="small"),
            "paper AUROC": st.column_config.TextColumn("paper AUROC", width="large"),
            "epoch": st.column_config.NumberColumn("epoch", width="small")})
        st.caption("Each run's own score is marked. *degenerate*: the scores differ only by "
                   "float noise, so the metric is reported at chance (AUROC 0.5, AUPR = the "
                   "share of that class); *raw* is scikit-learn's value on the noise. paper "
                   "AUROC: the paper's value (Table 3, mean of 5 seeds) where Table 3 has one "
                   "for the data set, class and method and the run's setting is the paper's "
                   f"(ρ = 10 %; IAEAD at λ = {format_lambda(PAPER_BEST_LAM)} and ν = 1; Deep "
                   "SVDD without biases; the CAE and the other baselines at their defaults); "
                   "else — with the reason. *different protocol* marks a run trained shorter "
                   "or smaller than the paper (e.g. the quick preset). AUPR is scikit-learn's "
                   "average precision.")
        if spread_notes:
            st.caption("**How much the own AUROC moves with the seed** (± std over seeds; "
                       "one run is one draw, and at the quick preset even the CPU's thread "
                       "count changes it): " + " · ".join(spread_notes) + ".")
        for line in explain.protocol_lines(items):
            st.caption(line)
    return active


ui.poll(live, every=1.5)
