"""One experiment lock for the command line, the lab and Ray drivers (issue 18 §5), and an
experiment folder outside the default root (§11)."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iaead_core.cli.main import main  # noqa: E402

ROUNDS = 100
SPEC = ('name = "tiny"\ndatasets = ["digits"]\nclasses = [0]\nmethods = ["iaead"]\n'
        '[config]\nepochs = 2\nwarmup_epochs = 1\nwidth = 8\nlatent_dim = 16\n')


# ------------------------------------------------------------- the two racing drivers

def _cli_driver(spec_file: str, root: str, barrier, results, rounds: int) -> None:
    """What `experiment run` does: run_experiment, whose executor holds on until both drivers
    have tried."""
    from iaead_core.experiments import ExperimentBusyError, load_spec, run_experiment
    from iaead_core.experiments.executor_base import Executor

    class Hold(Executor):
        name = "hold"

        def __init__(self, r: int) -> None:
            self.r, self.waited = r, False

        def run(self, plans, runs_root, on_done, stop_event, install=None):
            results.put(("cli", self.r, True, ""))
            self.waited = True
            barrier.wait()  # both tried; we still hold the lock

    spec = load_spec(spec_file)
    rng = random.Random(1)
    for r in range(rounds):
        barrier.wait()
        time.sleep(rng.random() * 0.02)
        hold = Hold(r)
        try:
            run_experiment(spec, hold, root=root)
        except ExperimentBusyError as e:
            results.put(("cli", r, False, str(e)))
        except Exception as e:  # a crash is a result too (the old lock's shared .tmp file)
            results.put(("cli", r, None, repr(e)))
        if not hold.waited:
            barrier.wait()
        barrier.wait()  # the winner has let go
    _end(results)


def _end(results) -> None:
    """End a driver process once its results are flushed, skipping interpreter teardown: in
    one of about four full-suite runs a native library's thread (torch and pyarrow are loaded)
    aborted both drivers at teardown ("terminate called without an active exception"), after
    every round had been reported. The exit code still says the rounds ran to the end."""
    results.close()
    results.join_thread()
    os._exit(0)


class _Registry:
    """The parts of app.jobs.JobRegistry that experiment_progress.start uses; the queued jobs
    "end" (and the lock is let go) when the round is over."""

    def __init__(self) -> None:
        self.locks: dict = {}

    def held(self, group):
        return self.locks.get(group)

    def hold(self, group, lock) -> None:
        self.locks[group] = lock

    def jobs(self, group=None):
        return []

    def submit(self, cfg, group="", kind="single", **place):
        return None

    def end_all(self) -> None:
        for lock in self.locks.values():
            lock.release()
        self.locks.clear()


def _lab_driver(spec_file: str, root: str, barrier, results, rounds: int) -> None:
    """What the lab's Start does: experiment_progress.start on the page's plan."""
    from app.views import experiment_progress as xprog
    from iaead_core.experiments import ExperimentBusyError, load_spec, plan_experiment

    spec = load_spec(spec_file)
    reg = _Registry()
    rng = random.Random(2)
    for r in range(rounds):
        barrier.wait()
        time.sleep(rng.random() * 0.02)
        try:
            plan = plan_experiment(spec, root)
            xprog.start(reg, plan)
            results.put(("lab", r, True, ""))
        except ExperimentBusyError as e:
            results.put(("lab", r, False, str(e)))
        except Exception as e:  # a crash is a result too
            results.put(("lab", r, None, repr(e)))
        barrier.wait()
        reg.end_all()
        barrier.wait()
    _end(results)


def test_the_command_line_and_a_lab_job_racing_100_times_give_exactly_one_driver(tmp_path):
    """Before: the lab never took the lock and the command line's was check-then-write: both
    drove one experiment (191 of 300 races), and calls crashed on a shared driver.json.tmp."""
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(SPEC)
    root = str(tmp_path / "experiments")
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2, timeout=60), ctx.Queue()
    procs = [ctx.Process(target=f, args=(str(spec_file), root, barrier, results, ROUNDS))
             for f in (_cli_driver, _lab_driver)]
    t0 = time.time()
    try:
        for p in procs:
            p.start()
        got = [results.get(timeout=120) for _ in range(2 * ROUNDS)]
        for p in procs:
            p.join(timeout=300)  # a loaded machine can take long to tear a process down
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    seconds = time.time() - t0
    by_round: dict[int, list] = {}
    for side, r, won, message in got:
        by_round.setdefault(r, []).append((side, won, message))
    crashes = [(r, side, message) for r, v in by_round.items() for side, won, message in v
               if won is None]
    winners = {r: [side for side, won, _ in v if won] for r, v in by_round.items()}
    assert crashes == [] and all(len(w) == 1 for w in winners.values()), \
        (crashes[:5], sum(len(w) == 2 for w in winners.values()), "rounds with two drivers")
    assert len(winners) == ROUNDS and [p.exitcode for p in procs] == [0, 0]
    wins = {side: sum(w == [side] for w in winners.values()) for side in ("cli", "lab")}
    assert wins["cli"] > 0 and wins["lab"] > 0, wins  # a race both sides won
    for v in by_round.values():
        for side, won, message in v:
            if not won:
                assert "is being run by process" in message and (
                    "(run_experiment (hold executor)" in message or "(the lab" in message), message
    print(f"\n{ROUNDS} races: exactly one driver each time; command line won {wins['cli']}, "
          f"lab {wins['lab']}; {seconds:.1f} s")


# ------------------------------------------------------------- the lab keeps its lock

def test_the_lab_holds_the_lock_while_its_jobs_run_and_lets_go_after(tmp_path, monkeypatch):
    """The lock the lab takes lives as long as the experiment's jobs: the command line is
    refused meanwhile with who runs it, and gets it once they have ended."""
    from app.jobs import JobRegistry
    from app.views import experiment_progress as xprog
    from iaead_core.experiments import (ExperimentBusyError, ExperimentFolder, load_spec,
                                        plan_experiment)

    monkeypatch.setattr("iaead_core.training.stacked.stacking_pays", lambda *a, **k: False)
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(SPEC)
    plan = plan_experiment(load_spec(str(spec_file)), tmp_path / "experiments")
    reg = JobRegistry(tmp_path / "runs", slots=1)
    try:
        group, n = xprog.start(reg, plan)
        assert n == 1 and reg.held(group) is not None
        assert xprog.start(reg, plan)[1] == 0  # Start again: the same lab, no error
        folder = ExperimentFolder(plan.folder.dir)
        with pytest.raises(ExperimentBusyError, match=r"being run by process \d+ on .* \(the lab"):
            folder.acquire_driver()
        assert folder.other_driver() is None  # the lab's own process: not "the command line"
        deadline = time.time() + 120
        while reg.group_active(group) and time.time() < deadline:
            time.sleep(0.1)
        assert not reg.group_active(group) and reg.held(group) is None
        with folder.driving("the command line"):
            assert folder.driver()["by"] == "the command line"
        assert not (plan.folder.dir / "driver.json").exists()
    finally:
        reg.shutdown()


# ------------------------------------------------------- §11 a folder anywhere

def test_status_and_run_of_an_experiment_folder_outside_the_default_root(tmp_path, monkeypatch,
                                                                        capsys):
    """Before: `experiment status <folder>` read ./experiments and reported 0/2 completed,
    and `run <folder>` would have trained them again there."""
    from iaead_core.experiments import load_spec, plan_experiment
    from iaead_core.runs import RunWriter

    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(SPEC.replace('methods = ["iaead"]', 'methods = ["iaead"]\nseeds = 2'))
    plan = plan_experiment(load_spec(str(spec_file)), tmp_path / "elsewhere")
    plan.folder.save_spec(plan.spec)
    for p in plan.runs:  # two finished runs, written by hand
        w = RunWriter(plan.folder.runs_dir, p.run_id, {"run_id": p.run_id,
                                                       "config": p.config.to_dict()},
                      heartbeat_period=0)
        w.append_record({"epoch": 1, "elapsed": 1.0, "primary_score": "latent_mean",
                         "metrics": {"latent_mean": {"auroc": 0.9, "aupr_in": 0.9,
                                                     "aupr_out": 0.9}}})
        w.set_status("completed", epochs_done=2)
        w.close()
    folder = plan.folder.dir
    monkeypatch.chdir(tmp_path)  # ./experiments is not where the folder is
    monkeypatch.delenv("IAEAD_EXPERIMENTS_DIR", raising=False)
    assert main(["experiment", "status", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "2/2 completed" in out, out
    assert main(["experiment", "run", str(folder), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"folder: {folder}" in out and "to run: 0" in out, out
    assert not (tmp_path / "experiments").exists()
