"""The expected spread of a run's AUROC across seeds (issue 19): the core function on hand-made
cases, the table that ships in the package, the benchmark script on a tiny case, and the docs'
table that script produced."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import stability as bench  # noqa: E402
from iaead_core.config import preset_config  # noqa: E402
from iaead_core.evaluation import stability as st  # noqa: E402

# A hand-made table: the quick preset's IAEAD measured on two MNIST classes and one
# Fashion-MNIST class, 3 seeds × threads 1, 2.
TABLE = {
    "preset": "quick", "variant": "hand-made", "seeds": [0, 1, 2], "threads": [1, 2],
    "measured": {"command": "python benchmarks/stability.py", "date": "2026-01-01 00:00 UTC",
                 "machine": "a test"},
    "settings": {"iaead": st.setting_of(preset_config("quick", "iaead")),
                 "cae": st.setting_of(preset_config("quick", "cae"))},
    "methods": {
        "iaead": {"rule": "latent_mean", "pooled": {"std": 0.02, "spread": 0.06},
                  "cases": {"mnist:2": {"mean": 0.8, "std": 0.01, "spread": 0.03, "n": 6},
                            "mnist:5": {"mean": 0.7, "std": 0.03, "spread": 0.08, "n": 6},
                            "fashion-mnist:6": {"mean": 0.75, "std": 0.05, "spread": 0.12,
                                                "n": 6}}},
        "cae": {"rule": "reconstruction", "pooled": {"std": 0.004, "spread": 0.01},
                "cases": {"mnist:2": {"mean": 0.6, "std": 0.004, "spread": 0.01, "n": 6}}}},
}


def cfg(**changes):
    return preset_config("quick", changes.pop("method", "iaead"), **changes)


def metrics(auroc: float, rule: str = "latent_mean", degenerate: bool = False) -> dict:
    return {rule: {"auroc": auroc, "aupr_in": 0.9, "aupr_out": 0.4, "degenerate": degenerate}}


def test_measured_on_the_spot_from_runs_of_the_same_setting():
    me = cfg(dataset="mnist", normal_class=2, seed=0)
    runs = [(me.to_dict(), metrics(0.70)),
            (cfg(dataset="mnist", normal_class=2, seed=1, device="cpu",
                 extra={"group": "compare-x", "kind": "compare"}).to_dict(), metrics(0.74)),
            (cfg(dataset="mnist", normal_class=2, seed=2, data_root="/elsewhere").to_dict(),
             metrics(0.78)),
            # other settings never count: another λ, another class, another method
            (cfg(dataset="mnist", normal_class=2, seed=3, lam=5e-3).to_dict(), metrics(0.10)),
            (cfg(dataset="mnist", normal_class=3, seed=4).to_dict(), metrics(0.20)),
            (cfg(dataset="mnist", normal_class=2, seed=5, method="cae").to_dict(),
             metrics(0.30))]
    got = st.expected_spread(me, "latent_mean", runs, table=TABLE)
    assert got.source == "measured" and got.n == 3
    assert got.std == pytest.approx(0.04) and got.spread == pytest.approx(0.08)
    assert got.detail == "3 seeds of this setting at hand"
    # the same seed listed twice counts once (its last value): 0.70 → 0.72
    again = runs[:3] + [(me.to_dict(), metrics(0.72))]
    got = st.expected_spread(me, "latent_mean", again, table=None)
    assert got.n == 3 and got.spread == pytest.approx(0.06)
    mean = (0.72 + 0.74 + 0.78) / 3
    assert got.std == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in (0.72, 0.74, 0.78)) / 2))
    assert got.std == pytest.approx(0.030551, abs=1e-6)
    # another rule's AUROC is not this one's
    assert st.expected_spread(me, "reconstruction", runs, table=None) is None


def test_one_seed_at_hand_falls_back_to_the_table():
    me = cfg(dataset="mnist", normal_class=2, seed=0)
    got = st.expected_spread(me, "latent_mean", [(me.to_dict(), metrics(0.70))], table=TABLE)
    assert got == st.SeedSpread(0.01, 0.03, 6, "table", got.detail)
    assert got.detail == ("stability table of the quick preset, mnist class 2: 3 seeds × 2 "
                          "thread counts (1, 2), measured 2026-01-01 00:00 UTC")
    # a class the table did not measure: the mean std and the largest spread of its data set
    pooled = st.expected_spread(cfg(dataset="mnist", normal_class=0), "latent_mean", (), TABLE)
    assert pooled.std == pytest.approx(0.02) and pooled.spread == pytest.approx(0.08)
    assert pooled.n == 12 and "pooled over the 2 measured mnist classes" in pooled.detail
    # the method's own rule is the default; the CAE's λ is 0 whatever the config says
    assert st.expected_spread(cfg(method="cae", dataset="mnist", normal_class=2, lam=0.5),
                              table=TABLE).std == 0.004


@pytest.mark.parametrize("config, rule", [
    (cfg(dataset="mnist", normal_class=2, epochs=31), "latent_mean"),       # another setting
    (cfg(dataset="mnist", normal_class=2, lr=0.05), "latent_mean"),
    (cfg(dataset="mnist", normal_class=2, rho=0.2), "latent_mean"),
    (cfg(dataset="mnist", normal_class=2, lam=5e-4), "latent_mean"),
    (cfg(dataset="mnist", normal_class=2), "latent_c"),                      # not measured
    (cfg(dataset="cifar10", normal_class=0), "latent_mean"),                 # no such data set
    (preset_config("paper", "iaead", dataset="mnist", normal_class=2), "latent_mean"),
    (cfg(method="deep-svdd", dataset="mnist", normal_class=2), "svdd"),
])
def test_no_spread_is_claimed_for_what_was_not_measured(config, rule):
    assert st.expected_spread(config, rule, (), TABLE) is None


def test_text_beside_an_auroc():
    s = st.SeedSpread(0.0123, 0.031, 3, "measured", "3 seeds of this setting at hand")
    assert st.spread_text(s, short=True) == "± 0.012"
    assert st.spread_text(s) == ("± 0.012 over seeds (range 0.031; 3 seeds of this setting "
                                 "at hand)")
    assert st.spread_text(None) == ""
    assert st.measured_spread([0.7]) is None and st.measured_spread([0.7, float("nan")]) is None


def test_only_completed_runs_enter_a_spread():
    from types import SimpleNamespace as Run

    cfg = {"method": "iaead", "seed": 0}
    runs = [Run(config=cfg, final_metrics={"a": 1}, live_status="completed"),
            Run(config=cfg, final_metrics={"a": 2}, live_status="stopped"),
            Run(config=cfg, final_metrics={"a": 3}, live_status="interrupted"),
            Run(config={}, final_metrics={"a": 4}, live_status="completed"),  # unreadable
            Run(config=cfg, final_metrics={"a": 5}, live_status="completed")]
    assert st.completed_runs(runs) == [(cfg, {"a": 1}), (cfg, {"a": 5})]


def test_mean_and_std_over_seeds_on_hand_made_metrics():
    def m(auroc, degenerate=False):
        return {"auroc": auroc, "aupr_in": 0.9, "aupr_out": auroc / 2, "degenerate": degenerate}

    runs = [{"latent_mean": m(0.7), "reconstruction": m(0.5, True)},
            {"latent_mean": m(0.8), "reconstruction": m(0.5, True)},
            {"latent_mean": m(0.9)},  # a rule another run does not report
            {}]  # a run that failed before its first epoch
    out = st.seed_summary(runs)
    assert list(out) == ["latent_mean", "reconstruction"]
    auroc = out["latent_mean"]["auroc"]
    assert auroc.mean == pytest.approx(0.8) and auroc.std == pytest.approx(0.1)
    assert (auroc.n, auroc.degenerate) == (3, 0)
    assert out["latent_mean"]["aupr_in"].std == 0.0
    assert out["latent_mean"]["aupr_out"].mean == pytest.approx(0.4)
    rec = out["reconstruction"]["auroc"]
    assert (rec.mean, rec.std, rec.n, rec.degenerate) == (0.5, 0.0, 2, 2)
    assert st.mean_std_text(auroc) == "0.800 ± 0.100 (3 seeds)"
    assert st.mean_std_text(rec) == "0.500 ± 0.000 (2 seeds, 2 degenerate)"
    assert st.mean_std_text(st.seed_summary([runs[0]])["latent_mean"]["auroc"]) == "0.700 (1 seed)"
    assert st.mean_std_text(None) == "" and st.seed_summary([]) == {}


def test_the_shipped_table_is_the_current_quick_presets():
    """The table in the package was measured at the quick preset as it is now: a change of the
    preset without a new measurement fails here (run benchmarks/stability.py --package)."""
    table = st.load_table()
    assert table is not None and table["preset"] == "quick"
    assert set(table["methods"]) == {"iaead", "cae"}
    assert table["seeds"] == [0, 1, 2] and table["threads"] == [1, 2]
    for method, rule in (("iaead", "latent_mean"), ("cae", "reconstruction")):
        assert table["methods"][method]["rule"] == rule
        assert table["settings"][method] == st.setting_of(preset_config("quick", method))
        assert set(table["methods"][method]["cases"]) == set(bench.DEFAULT_CASES)
        got = st.expected_spread(cfg(method=method, dataset="fashion-mnist", normal_class=6))
        case = table["methods"][method]["cases"]["fashion-mnist:6"]
        assert (got.std, got.spread, got.n, got.source) == (case["std"], case["spread"], 6,
                                                            "table")
    assert st.load_table(ROOT / "no-such-table.json") is None


def test_the_benchmark_runs_on_a_tiny_case(real_digits, tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"before\n{bench.BEGIN}\nold\n{bench.END}\nafter\n", encoding="utf-8")
    raw = tmp_path / "stability.json"
    case = f"{real_digits.dataset}:2"
    argv = ["--tiny", "--data-root", str(real_digits.data_root), "--cases", case,
            "--methods", "iaead", "--seeds", "0", "--jobs", "2", "--variant", "smoke",
            "--json", str(raw), "--out", str(page)]
    assert bench.main(argv) == 0
    store = json.loads(raw.read_text())
    runs = store["variants"]["smoke"]["runs"]
    assert [(r["seed"], r["threads"], r["torch_threads"]) for r in runs] == [(0, 1, 1), (0, 2, 2)]
    for r in runs:
        assert len(r["curve"]) == 3 and r["final"] == r["curve"][-1]
        assert r["settings"]["epochs"] == 3 and r["settings"]["width"] == 4
    row = bench.summarize(runs)[0]
    assert row["spread"] == pytest.approx(abs(runs[0]["final"] - runs[1]["final"]))
    assert row["parts"][0] == bench.part_epoch(runs[0]["curve"], runs[1]["curve"], 0.01)
    text = page.read_text()
    assert text.startswith(f"before\n{bench.BEGIN}\n#### Variant `smoke`") and text.endswith(
        f"{bench.END}\nafter\n")
    assert "old" not in text and "its numbers mean nothing" in text
    assert f"| {case} | iaead (latent_mean) | {runs[0]['final']:.3f} | {runs[1]['final']:.3f} |" in text


def test_the_worker_gives_what_a_run_in_this_process_gives(real_digits):
    """A run of the script is the engine's run at the same settings (threads aside)."""
    import torch

    from iaead_core.training.engine import train

    spec = {"case": f"{real_digits.dataset}:2", "method": "iaead", "seed": 0,
            "threads": torch.get_num_threads(), "preset": "quick", "overrides": bench.TINY,
            "data_root": str(real_digits.data_root)}
    got = bench.run_one(spec)
    result = train(preset_config("quick", "iaead", dataset=real_digits.dataset, normal_class=2,
                                 device="cpu", data_root=str(real_digits.data_root),
                                 download=False, **bench.TINY), runs_root=False)
    assert got["curve"] == [r["metrics"]["latent_mean"]["auroc"] for r in result.records]


def test_part_epoch_and_overrides():
    assert bench.part_epoch([0.5, 0.6, 0.7], [0.5, 0.605, 0.72], 0.01) == 3
    assert bench.part_epoch([0.5, 0.6], [0.5, 0.6], 0.01) is None
    assert bench.parse_overrides("lr=0.05, epochs=40,init=pytorch,max_samples=none") == {
        "lr": 0.05, "epochs": 40, "init": "pytorch", "max_samples": None}
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        bench.parse_overrides("lr")


def test_the_docs_carry_the_tables_the_script_produced():
    page = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    produced = page.split(bench.BEGIN, 1)[1].split(bench.END, 1)[0]
    store = json.loads((ROOT / "docs" / "stability.json").read_text(encoding="utf-8"))
    # the quick preset as it ships, and the candidates tried on the worst case
    assert set(store["variants"]) == {"before", "full12-lr0.1", "full12-lr0.05"}
    assert store["variants"]["before"]["overrides"] == {
        "epochs": 30, "warmup_epochs": 5, "lr": 0.1, "lr_step": 10, "lr_gamma": 0.5,
        "batch_size": 64, "max_samples": 3000}
    for name, v in store["variants"].items():
        assert not v["tiny"]
        assert f"#### Variant `{name}`" in produced and v["command"] in produced
        assert bench.variant_markdown(name, v) in produced  # the numbers are the JSON's
    assert "Machine: CPU" in produced
    # the shipped table is the 'before' variant's, i.e. the quick preset's own
    assert bench.package_table("before", store["variants"]["before"]) == st.load_table()
