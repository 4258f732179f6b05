"""Run folders seen from outside: live status (a killed run is "interrupted", not "running"
forever), corrupt folders listed with their reason, short errors for bad weight files."""

import fractions
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from iaead_core.cli.main import main
from iaead_core.runs import (HEARTBEAT_TIMEOUT_S, LIVE_STATUSES, Run, RunError, RunWriter,
                             delete_run, list_runs, load_run)
META = {"run_id": "x", "config": {"method": "iaead", "lam": 5e-5, "preset": "quick", "epochs": 3},
        "lam": 5e-5, "nu": 1.0}


def _writer(root: Path, run_id: str = "20260101-000000-iaead-mnist-0-s0-abcd", **kw) -> RunWriter:
    return RunWriter(root, run_id, {**META, "run_id": run_id}, **kw)


def _status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid no longer exists
    return proc.pid


def test_status_json_names_the_process_and_beats(tmp_path):
    w = _writer(tmp_path, heartbeat_period=0)
    s0 = _status(w.dir)
    assert s0["status"] == "running" and s0["pid"] == os.getpid()
    assert s0["host"] == socket.gethostname() and abs(s0["heartbeat"] - time.time()) < 60
    time.sleep(0.05)
    w.append_record({"epoch": 1})  # every epoch record refreshes the heartbeat
    s1 = _status(w.dir)
    assert s1["heartbeat"] > s0["heartbeat"] and s1["status"] == "running"
    w.set_status("completed", None, epochs_done=1)
    w.close()
    s2 = _status(w.dir)
    assert s2["status"] == "completed" and s2["pid"] == os.getpid() and s2["epochs_done"] == 1
    w.heartbeat()  # a closed writer writes nothing more
    assert _status(w.dir) == s2


def test_background_heartbeat_between_epochs(tmp_path):
    w = _writer(tmp_path, heartbeat_period=0.05)
    first = _status(w.dir)["heartbeat"]
    deadline = time.time() + 10
    while _status(w.dir)["heartbeat"] == first and time.time() < deadline:
        time.sleep(0.02)
    assert _status(w.dir)["heartbeat"] > first  # beats with no epoch record at all
    w.set_status("stopped", "interrupted")
    w.close()
    final = _status(w.dir)
    time.sleep(0.2)
    assert _status(w.dir) == final and final["status"] == "stopped"


def _run(status: dict, problem=None) -> Run:
    return Run(run_id="r", dir=Path("."), meta=META, status=status, problem=problem)


def test_a_snapshot_keeps_the_shape_of_codes_shrunk_near_the_tanh_bound(tmp_path):
    """Walk 6: codes on a line of length 4e-4 at ±1, saved as plain float16 (steps of 5e-4
    there), came back as two points, and the map showed two dots beside a histogram of a
    continuous spread. Deviations from the mean in float16 keep the line."""
    import numpy as np

    rng = np.random.default_rng(0)
    t = rng.uniform(0, 4e-4, size=(3000, 1))
    z = (np.ones((3000, 64)) - t * np.full(64, 1 / 8.0)).astype(np.float32)
    w = _writer(tmp_path)
    w.save_snapshot(3, z, {"latent_mean": np.zeros(3000)}, None, 0.0)
    back = load_run(w.dir).load_snapshot(3)
    assert set(back) == {"z", "score_latent_mean", "R"} and back["z"].dtype == np.float32
    assert len(np.unique(z.astype(np.float16), axis=0)) <= 3  # what plain float16 kept
    assert len(np.unique(back["z"], axis=0)) >= 0.9 * len(np.unique(z, axis=0)) > 500  # float32's own steps
    err = np.abs(back["z"] - z).max()
    assert err < 1e-3 * np.ptp(z)  # three digits of the deviations
    assert np.corrcoef(back["z"][:, 0], z[:, 0])[0, 1] > 0.999


def test_live_status_rules():
    now = time.time()
    here = socket.gethostname()
    alive = {"status": "running", "pid": os.getpid(), "host": here, "heartbeat": now}
    assert _run(alive).live_status == "running" and _run(alive).status_note == ""
    dead = {**alive, "pid": _dead_pid()}
    assert _run(dead).live_status == "interrupted"
    assert f"its process {dead['pid']} on this host is gone" in _run(dead).status_note
    # Another machine (a shared runs folder): its pid means nothing here; the heartbeat decides.
    remote = {**alive, "host": "elsewhere", "pid": _dead_pid()}
    assert _run(remote).live_status == "running"
    stale = {**remote, "heartbeat": now - HEARTBEAT_TIMEOUT_S - 60}
    assert _run(stale).live_status == "interrupted" and "no heartbeat for 11 min" in _run(stale).status_note
    # A run written before pid/host/heartbeat existed: only its "updated" time is known.
    assert _run({"status": "running", "updated": now - 2 * HEARTBEAT_TIMEOUT_S}).live_status == "interrupted"
    for final in ("completed", "stopped", "failed"):
        assert _run({**dead, "status": final}).live_status == final  # a closed run stays as it is
    assert _run({"status": "exploded"}).live_status == "corrupt"
    assert _run(alive, problem="config.json is missing").live_status == "corrupt"
    assert set(LIVE_STATUSES) == {"running", "completed", "stopped", "failed", "interrupted", "corrupt"}


def _age(path: Path, seconds: float = 3600) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_corrupt_folders_are_listed_with_the_reason(tmp_path, capsys):
    good = _writer(tmp_path, "a-good")
    good.append_record({"epoch": 1, "metrics": {"latent_mean": {"auroc": 0.9, "aupr_in": 0.99,
                                                                "aupr_out": 0.5}}})
    good.set_status("completed")
    good.close()
    broken = _writer(tmp_path, "b-broken-config")
    broken.append_record({"epoch": 1, "metrics": {}})
    broken.set_status("completed")
    broken.close()
    (broken.dir / "config.json").write_text("{ torn")
    missing = tmp_path / "c-no-config"
    missing.mkdir()
    (missing / "metrics.jsonl").write_text('{"epoch": 1}\n')
    _age(missing)
    young = tmp_path / "d-being-created"
    (young / "snapshots").mkdir(parents=True)  # RunWriter's first step: not reported yet
    (tmp_path / "e-not-a-run").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "status.json").write_text("{}")

    runs = {r.run_id: r for r in list_runs(tmp_path)}
    # Before: the broken folder silently disappeared from the listing.
    assert set(runs) == {"a-good", "b-broken-config", "c-no-config"}
    assert runs["a-good"].live_status == "completed" and runs["a-good"].problem is None
    b = runs["b-broken-config"]
    assert b.live_status == "corrupt" and b.problem.startswith("config.json is corrupt")
    assert len(b.records) == 1 and b.config == {}  # what was computed is kept
    c = runs["c-no-config"]
    assert c.live_status == "corrupt" and "config.json is missing" in c.problem
    assert "status.json is missing" in c.problem

    with pytest.raises(RunError, match="config.json is corrupt"):
        load_run(b.dir)
    assert main(["runs", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "b-broken-config" in out and "    corrupt: config.json is corrupt" in out
    assert main(["runs", "--out", str(tmp_path), "--json"]) == 0
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["c-no-config"]["status"] == "corrupt" and "missing" in listed["c-no-config"]["problem"]

    delete_run(b.dir)  # a corrupt run can be deleted ...
    assert not b.dir.exists()
    with pytest.raises(RunError, match="not an iaead run folder"):
        delete_run(tmp_path / "e-not-a-run")  # ... a folder that is not a run cannot
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "gone")


def test_weights_errors_are_short(tmp_path):
    w = _writer(tmp_path, heartbeat_period=0)
    w.close()
    run = load_run(w.dir)
    torch.save({"method": "iaead", "model": {}, "note": fractions.Fraction(1, 3)}, w.dir / "model.pt")
    with pytest.raises(RunError) as info:
        run.load_weights()
    msg = str(info.value)
    # Before: torch's paragraph advising weights_only=False ("... do those steps only if you trust
    # the source of the checkpoint ...") was repeated to the user.
    assert "holds Python objects besides tensors" in msg
    assert "weights_only" not in msg and "trust" not in msg and len(msg) < 300 + len(str(w.dir))
    (w.dir / "model.pt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(RunError, match="truncated, corrupt or not a torch file"):
        run.load_weights()


@pytest.mark.slow
def test_killed_training_is_reported_interrupted(tmp_path, capsys):
    """A real training process killed with SIGKILL leaves status.json saying "running"; the
    live status must say "interrupted" (before: "running" forever)."""
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "iaead_core", "train", "--seeds", "1", "--dataset", "mnist-5k", "--max-samples",
         "300", "--epochs", "10000", "--warmup-epochs", "1", "--out", str(out), "--json",
         "--no-download", "--device", "cpu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        metrics = None
        while time.time() < deadline and proc.poll() is None:
            found = list(out.glob("*/metrics.jsonl"))
            if found and found[0].read_text().count("\n") >= 1:
                metrics = found[0]
                break
            time.sleep(0.2)
        assert metrics is not None, proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "timeout"
        (run,) = list_runs(out)
        assert run.live_status == "running" and run.status["pid"] == proc.pid
        proc.kill()  # SIGKILL: no handler runs, status.json keeps "running"
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (run,) = list_runs(out)
    assert run.status["status"] == "running"  # what the folder says ...
    assert run.live_status == "interrupted"  # ... and the truth
    assert f"its process {proc.pid} on this host is gone" in run.status_note
    assert len(run.records) >= 1
    assert main(["runs", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith(run.run_id))
    assert row.split()[1] == "interrupted"
    assert "completed epoch(s) are kept" in text
