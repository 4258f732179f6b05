"""Experiments: spec expansion, content-hash run ids, resume after kill -9, local vs Ray,
failure isolation and reports.

The training tests use tiny specs (MNIST, 200 images, 2 epochs, a narrow network) so that the
file stays well under three minutes; they check bookkeeping (which runs ran, what the tables
say), not detection quality.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iaead_core.config import preset_config
from iaead_core.experiments import (ExperimentSpec, builtin_spec, expand, load_spec,
                                    plan_experiment, run_experiment, run_id_for)
from iaead_core.experiments.local_executor import (MAX_GPU_SLOTS, LocalExecutor, gpu_slots,
                                                   run_memory_bytes)
from iaead_core.experiments.ray_executor import RayExecutor, TEST_CRASH_ENV
from iaead_core.experiments.report import write_report
from iaead_core.experiments.tables import aggregate, cell_text, results_frame
from iaead_core.methods import METHODS
REPO = Path(__file__).resolve().parents[1]

# Tiny runs: 200 images (20 anomalies at ρ = 0.1), 2 epochs, a narrow network. PyTorch's
# default init keeps the codes from collapsing in 2 epochs, so the scores carry information.
TINY_CONFIG = {"epochs": 2, "max_samples": 200, "width": 8, "latent_dim": 16, "batch_size": 50,
               "init": "pytorch"}


def tiny_spec(name="tiny", classes=(0, 1), seeds=1, **axes):
    d = {"name": name, "kind": "custom", "datasets": ["mnist"], "classes": list(classes),
         "rho": [0.1], "methods": ["cae", "iaead"], "seeds": seeds, "config": dict(TINY_CONFIG)}
    d.update(axes)
    return ExperimentSpec.from_dict(d)


# ------------------------------------------------------------------------------ expansion

def test_builtin_expansion_counts_follow_the_registry():
    n_methods = len(METHODS)  # never hard-coded: the registry grows
    assert len(expand(builtin_spec("table2", "quick"))) == n_methods * 2 * 10 * 2 * 5
    # 11 λ values × MNIST and Fashion-MNIST × 10 classes × 5 seeds, IAEAD only.
    assert len(expand(builtin_spec("fig4-lambda", "quick"))) == 11 * 2 * 10 * 5
    one_seed = builtin_spec("fig2-rho", "quick").narrowed(seeds=[0])
    assert builtin_spec("fig2-rho", "quick").seeds == [0, 1, 2, 3, 4]
    assert len(expand(one_seed)) == n_methods * 5 * 2 * 10
    # Ablation per (class, seed): 2 inits × (λ = 0: ν has no effect → 1 run; λ = 5e-5: 2 ν),
    # 3 seeds at quick scale (one quick run's AUROC moves with the seed).
    abl = expand(builtin_spec("ablation", "quick"))
    assert len(abl) == 6 * (3 + 2) * 3
    assert builtin_spec("ablation", "quick").seeds == [0, 1, 2]
    assert all(p.point["nu"] is None for p in abl if p.point["lam"] == 0.0)
    assert {p.point["init"] for p in abl} == {"released", "pytorch"}
    paper = builtin_spec("table2", "paper")
    assert paper.datasets == ["mnist", "fashion-mnist", "svhn", "cifar10", "cifar100"]
    assert paper.seeds == [0, 1, 2, 3, 4]
    # One seed: 4 data sets of 10 classes and CIFAR-100's 20 superclasses, 2 ρ, every method.
    runs = expand(paper.narrowed(seeds=[0]))
    assert len(runs) == n_methods * (4 * 10 + 20) * 2
    assert {p.config.epochs for p in runs if p.config.method == "iaead"} == {250}


def test_methods_that_ignore_lambda_get_one_run_per_draw():
    spec = tiny_spec(lam=[0.0, 5e-5, 0.5], nu=[0.1, 1.0], classes=[0], seeds=2)
    runs = expand(spec)
    per_method = {m: [p for p in runs if p.point["method"] == m] for m in ("cae", "iaead")}
    assert len(per_method["cae"]) == 2  # one per seed: λ and ν ignored
    assert all(p.point["lam"] is None and p.point["nu"] is None for p in per_method["cae"])
    # IAEAD: λ = 0 (ν has no effect) + 2 λ > 0 × 2 ν, per seed.
    assert len(per_method["iaead"]) == 2 * (1 + 2 * 2)
    assert len({p.run_id for p in runs}) == len(runs)
    svdd = ExperimentSpec.from_dict({"name": "s", "methods": ["deep-svdd"], "classes": [0],
                                     "lam": [0.0, 1.0], "nu": [0.1, 0.5]})
    assert len(expand(svdd)) == 1  # one-class Deep SVDD ignores λ and ν
    soft = ExperimentSpec.from_dict({"name": "s", "methods": ["deep-svdd"], "classes": [0],
                                     "nu": [0.1, 0.5], "config": {"objective": "soft-boundary"}})
    assert len(expand(soft)) == 2  # the soft-boundary objective uses ν


def test_per_method_config_and_scaled_warmup():
    spec = tiny_spec(classes=[0], methods=["iaead", "deep-svdd"],
                     config={**TINY_CONFIG, "epochs": 6, "deep-svdd": {"warmup_epochs": 2}})
    by = {p.config.method: p.config for p in expand(spec)}
    assert by["deep-svdd"].warmup_epochs == 2 and by["deep-svdd"].epochs == 6
    assert by["iaead"].warmup_epochs == 1  # quick: 5 of 30 warm-up epochs → 1 of 6
    assert all(c.max_samples == 200 and c.width == 8 for c in by.values())


def test_run_id_is_a_content_hash():
    a = preset_config("quick", "iaead", normal_class=0, seed=3, data_root="/a", device="cpu")
    same = [a.replace(data_root="/elsewhere", device="auto", eval_batch_size=77, preset="x"),
            a.replace(nu=1.0), a.replace(nu=1), a.replace(extra={"note": "bookkeeping"})]
    assert {run_id_for(c) for c in same} == {run_id_for(a)}
    assert run_id_for(a).startswith("iaead-mnist-0-s3-")
    fm = preset_config("quick", "iaead", dataset="fashion-mnist", normal_class=0)
    assert run_id_for(fm.replace(normal_class="t-shirt")) == run_id_for(fm)
    different = [a.replace(lr=0.05), a.replace(seed=4), a.replace(lam=5e-4), a.replace(rho=0.2),
                 a.replace(nu=0.5), a.replace(init="pytorch"), a.replace(max_samples=2000)]
    assert len({run_id_for(c) for c in [a, *different]}) == 1 + len(different)
    # The same id in a fresh interpreter with another string-hash seed.
    code = ("from iaead_core.config import preset_config; from iaead_core.experiments import run_id_for;"
            "print(run_id_for(preset_config('quick', 'iaead', normal_class=0, seed=3)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONHASHSEED": "123"}, timeout=120)
    assert out.stdout.strip() == run_id_for(a), out.stderr
    # Expanding twice gives the same ids in the same order.
    assert [p.run_id for p in expand(tiny_spec())] == [p.run_id for p in expand(tiny_spec())]


def test_spec_from_toml_and_bad_specs(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('kind = "fig4-lambda"\ndatasets = ["fashion-mnist"]\nclasses = ["t-shirt", 6]\n'
                    'methods = ["iaead"]\nlam = [0, 5e-5]\nseeds = 2\n\n[axes]\ninit = ["released", "pytorch"]\n'
                    '\n[config]\nepochs = 4\n')
    spec = load_spec(path)
    assert spec.name == "study" and spec.classes_for("fashion-mnist") == [0, 6]
    assert spec.seeds == [0, 1] and len(expand(spec)) == 2 * 2 * (1 + 1) * 2
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec
    for bad, needle in [({"name": "x", "methods": ["nope"]}, "registered"),
                        ({"name": "x", "colour": 1}, "unknown spec key"),
                        ({"name": "x", "axes": {"banana": [1]}}, "banana"),
                        ({"name": "x", "classes": [12]}, "12"),
                        ({"name": "x", "preset": "huge"}, "huge"),
                        ({"name": "x", "config": {"max_samples": 5}}, "max_samples"),
                        ({"name": "a/b"}, "folder")]:
        with pytest.raises(ValueError, match=needle):
            expand(ExperimentSpec.from_dict(bad))


# ------------------------------------------------- hostile specs: counted first (issue 18)

def test_a_huge_spec_is_counted_and_refused_before_anything_is_built(monkeypatch):
    from iaead_core.experiments import spec as spec_mod

    monkeypatch.setattr(spec_mod, "_plan", lambda *a, **k: pytest.fail("a run was built"))
    huge = {"name": "huge", "datasets": ["mnist", "fashion-mnist"], "classes": "all",
            "rho": [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45], "methods": "all",
            "seeds": 1000}
    # Before: accepted, and `--dry-run` of its 1.44M runs hung for minutes.
    with pytest.raises(ValueError) as info:
        ExperimentSpec.from_dict(huge)
    msg = str(info.value)
    assert msg.startswith("experiment 'huge' expands to 1,440,000 runs (20 classes × 9 ρ values "
                          "× 1,000 seeds × 8 methods), more than the cap of 100,000 runs")
    assert "IAEAD_MAX_RUNS" in msg and "narrow an axis" in msg
    # Before: list(range(1000000000)) was built first (gigabytes).
    with pytest.raises(ValueError, match=r"seeds = 1000000000: give a count from 1 to 1,000"):
        ExperimentSpec.from_dict({"name": "x", "seeds": 1_000_000_000})
    for seeds, needle in ((list(range(1001)), "lists 1,001 seeds"), ([0, -1], "-1 is not a seed"),
                          ([True], "True is not a seed"), (0, "seeds = 0"), ([], "empty")):
        with pytest.raises(ValueError, match=needle):
            ExperimentSpec.from_dict({"name": "x", "seeds": seeds})
    # The cap is a setting.
    monkeypatch.setenv("IAEAD_MAX_RUNS", "3")
    with pytest.raises(ValueError, match=r"expands to 4 runs \(2 classes × 2 seeds\), more than "
                                         r"the cap of 3 runs"):
        ExperimentSpec.from_dict({"name": "x", "classes": [0, 1], "seeds": 2})
    monkeypatch.setenv("IAEAD_MAX_RUNS", "many")
    with pytest.raises(ValueError, match="IAEAD_MAX_RUNS must be a whole number"):
        ExperimentSpec.from_dict({"name": "x"})


def test_empty_axes_and_wrong_types_in_a_spec_are_errors(tmp_path, capsys):
    from iaead_core.cli.main import main

    # Before: `classes = []` gave 0 runs and exit 0.
    with pytest.raises(ValueError, match="classes is empty for data set 'mnist'"):
        ExperimentSpec.from_dict({"name": "x", "classes": []})
    with pytest.raises(ValueError, match="classes is empty for data set 'fashion-mnist'"):
        ExperimentSpec.from_dict({"name": "x", "datasets": ["fashion-mnist"],
                                  "classes": {"fashion-mnist": []}})
    with pytest.raises(ValueError, match="axis 'methods' is empty"):
        ExperimentSpec.from_dict({"name": "x", "methods": []})
    argv = ["--out", str(tmp_path / "exp"), "--data-root", str(tmp_path)]
    cases = {
        "empty.toml": ('classes = []\n', "classes is empty"),
        "typed.toml": ('classes = [0]\n[config]\nepochs = "x"\n', "epochs must be a whole number"),
        "list.json": ('[1, 2]', "not a spec: it holds a list"),
        "deep.json": ('[' * 100_000 + ']' * 100_000, "nested too deeply"),
    }
    for name, (text, needle) in cases.items():
        (tmp_path / name).write_text(text)
        # Before: exit 0 with 0 runs, or a traceback (TypeError, AttributeError, RecursionError).
        assert main(["experiment", "run", str(tmp_path / name), "--dry-run", *argv]) == 2, name
        assert needle in capsys.readouterr().err, name
    assert main(["experiment", "run", "fig4-lambda", "--classes", "", "--dry-run", *argv]) == 2
    assert "classes is empty" in capsys.readouterr().err


@pytest.mark.parametrize("args, needle", [
    (["--slots", "-2"], "--slots must be a whole number from 1 to 64; got '-2'"),
    (["--slots", "0"], "--slots must be a whole number from 1 to 64"),
    (["--threads", "100000"], "--threads must be a whole number from 1 to 1,024"),
    (["--cpus-per-run", "nan"], "--cpus-per-run must be a number in (0, 1024]"),
    (["--seeds", "1000000000"], "--seeds = 1000000000: give a count from 1 to 1,000"),
    (["--seeds", "0,5,-1"], "--seeds: -1 is not a seed"),
])
def test_experiment_counts_have_limits_in_the_cli(tmp_path, capsys, args, needle):
    from iaead_core.cli.main import main

    # Before: `--slots -2` ran on to "max_workers must be greater than 0"; --seeds 1e9 built
    # a list of a billion seeds.
    with pytest.raises(SystemExit) as info:
        main(["experiment", "run", "fig4-lambda", "--dry-run", "--out", str(tmp_path), *args])
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


def test_the_local_executor_refuses_a_slot_count_below_one():
    # Before: ThreadPoolExecutor's "max_workers must be greater than 0", when the runs started.
    for bad in (-2, 0, 1.5, True):
        with pytest.raises(ValueError, match="slots must be a whole number ≥ 1"):
            LocalExecutor(slots=bad)


def test_default_slots_are_one_on_a_cpu_and_by_memory_up_to_ten_on_a_gpu():
    from iaead_core.experiments.local_executor import DEFAULT_GPU_SLOTS, slots_for

    runs = expand(tiny_spec(classes=[0]))
    plenty = 2**40
    assert slots_for(None, "cpu", runs, plenty) == 1
    assert slots_for(3, "cpu", runs, plenty) == 3
    assert slots_for(None, "cuda", runs, plenty) == DEFAULT_GPU_SLOTS == 10
    assert slots_for("auto", "cuda", runs, plenty) == MAX_GPU_SLOTS
    assert slots_for(None, "cuda", runs, 0) == 1  # memory binds first
    assert slots_for(2, "cuda", runs, plenty) == 2


def test_gpu_slots_from_memory():
    runs = expand(tiny_spec(classes=[0]))
    need = max(run_memory_bytes(p.config) for p in runs)
    # 200 images + 1,024-image eval batches of an 8-channel net + 256 MiB: about half a GiB.
    assert 256 * 2**20 < need < 2**30
    assert gpu_slots(runs, 0) == 1
    assert gpu_slots(runs, int(5 * need / 0.8) + 1) == 5  # 80 % of the free memory is used
    assert gpu_slots(runs, 2**40) == MAX_GPU_SLOTS == 16  # at most MAX_GPU_SLOTS
    paper = expand(builtin_spec("table2", "paper").narrowed(datasets=["mnist"], classes=[0], seeds=[0]))
    assert 1 <= gpu_slots(paper, 8 * 2**30) < gpu_slots(runs, 8 * 2**30)


def test_time_estimates_prefer_finished_runs():
    from iaead_core.experiments.estimate import MEASURED_RATES, learn_rates, run_seconds
    from iaead_core.experiments.store import RunInfo

    quick = preset_config("quick", "iaead")
    rate = MEASURED_RATES[("cpu", 16, 64)]["iaead"]
    assert run_seconds(quick) == pytest.approx(30 * 3000 / 1000 * rate + 3.0)
    # Each method has its own measured rate; the paper's network has its own row.
    memae = preset_config("quick", "memae").replace(epochs=30)
    assert run_seconds(memae) == pytest.approx(90 * MEASURED_RATES[("cpu", 16, 64)]["memae"] + 3.0)
    paper = preset_config("paper", "iaead", max_samples=3000).replace(epochs=30)
    assert run_seconds(paper) == pytest.approx(90 * MEASURED_RATES[("cpu", 64, 256)]["iaead"] + 3.0)
    # A network size without a row is scaled from the nearest width by the width ratio squared
    # (width 32: 4× the quick net's 16).
    wide = quick.replace(width=32, latent_dim=128)
    assert run_seconds(wide) - 3.0 == pytest.approx(4 * (run_seconds(quick) - 3.0))
    # A finished run of the same method and size: 45 s for 3 epochs of 1,500 images.
    plan = expand(tiny_spec(classes=[0], methods=["iaead"]))[0]
    info = RunInfo(plan.run_id, "completed", seconds=45.0, epochs_done=3, n_images=1500,
                   device="cpu")
    learned = learn_rates([plan], {plan.run_id: info})
    assert learned == {("iaead", 8, 16, "cpu"): pytest.approx(10.0)}
    assert run_seconds(plan.config, "cpu", learned) == pytest.approx(2 * 200 / 1000 * 10.0 + 3.0)
    assert run_seconds(plan.config, "cuda", learned) != run_seconds(plan.config, "cpu", learned)


# ----------------------------------------------------------------------- local training

def _states(folder):
    out = {}
    for d in sorted((folder / "runs").iterdir()):
        try:
            out[d.name] = json.loads((d / "status.json").read_text())["status"]
        except (OSError, ValueError):
            out[d.name] = "unreadable"
    return out


@pytest.mark.slow
def test_resume_after_kill_9_runs_only_missing_runs(shared_data_root, tmp_path):
    spec_path = tmp_path / "killme.toml"
    spec_path.write_text(
        'name = "killme"\ndatasets = ["mnist"]\nclasses = [0, 1]\nmethods = ["cae", "iaead"]\n'
        'lam = [5e-5]\nseeds = 2\n[config]\n' + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in TINY_CONFIG.items()))
    out = tmp_path / "exp"
    cmd = [sys.executable, "-m", "iaead_core", "experiment", "run", str(spec_path),
           "--out", str(out), "--data-root", str(shared_data_root), "--threads", "1", "--stack", "off",
           "--no-report"]
    folder = out / "killme-quick"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 150
        while time.time() < deadline:
            states = _states(folder) if (folder / "runs").is_dir() else {}
            if sum(s == "completed" for s in states.values()) >= 2:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _states(folder)
    finished = {r for r, s in before.items() if s == "completed"}
    assert 2 <= len(finished) < 8, before  # killed midway
    stamps = {r: (folder / "runs" / r / "status.json").stat().st_mtime_ns for r in finished}

    spec = load_spec(spec_path)
    summary = run_experiment(spec, LocalExecutor(threads=1, stack=False), root=out, data_root=str(shared_data_root))
    assert summary.total == 8 and summary.skipped == len(finished)
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    starts = [i for i, e in enumerate(log) if e["event"] == "start"]
    assert len(starts) == 2 and log[starts[1]]["to_run"] == 8 - len(finished)
    rerun = [e["run_id"] for e in log[starts[1]:] if e["event"] == "run"]
    all_ids = {p.run_id for p in expand(spec)}
    assert sorted(rerun) == sorted(all_ids - finished)  # only the missing runs ran
    # A run the kill caught mid-way was cleared (as interrupted) before it ran again.
    cleared = [e for e in log[starts[1]:] if e["event"] == "cleared"]
    assert {e["run_id"] for e in cleared} == {r for r, s in before.items() if s != "completed"}
    assert all(e["previous"] in ("interrupted", "corrupt") for e in cleared)
    after = _states(folder)
    assert set(after) == all_ids and set(after.values()) == {"completed"}  # no duplicates
    assert all((folder / "runs" / r / "status.json").stat().st_mtime_ns == t for r, t in stamps.items())
    # A third run has nothing to do.
    again = run_experiment(spec, LocalExecutor(threads=1, stack=False), root=out, data_root=str(shared_data_root))
    assert again.ran == 0 and again.skipped == 8


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_rest_continue(shared_data_root, tmp_path):
    # lr = 1e30 makes the loss overflow in the first epoch: NonFiniteLossError.
    spec = tiny_spec(name="fails", classes=[0], methods=["cae"], axes={"lr": [0.1, 1e30]})
    summary = run_experiment(spec, LocalExecutor(threads=1, stack=False), root=tmp_path,
                             data_root=str(shared_data_root))
    assert (summary.completed, summary.failed) == (1, 1)
    plan = plan_experiment(spec, tmp_path)
    states = {p.point["lr"]: plan.infos[p.run_id] for p in plan.runs}
    assert states[0.1].state == "completed"
    assert states[1e30].state == "failed" and "diverged" in states[1e30].error
    res = results_frame(plan)
    cells = aggregate(res, plan)
    text = {r["lr"]: cell_text(r) for _, r in cells.iterrows()}
    assert text[1e30].startswith("0/1 runs (1 failed")
    assert text[0.1][0].isdigit() and "runs" not in text[0.1]


@pytest.mark.slow
def test_stacked_runs_keep_their_content_hash_ids(shared_data_root, tmp_path):
    # One data draw: IAEAD at three λ and the CAE train as one stack of four models.
    spec = tiny_spec(name="stacked", classes=[0], lam=[0.0, 5e-5, 0.5])
    summary = run_experiment(spec, LocalExecutor(threads=1, stack=True), root=tmp_path,
                             data_root=str(shared_data_root))
    assert (summary.completed, summary.failed) == (4, 0)
    plan = plan_experiment(spec, tmp_path)
    runs_dir = plan.folder.runs_dir
    assert sorted(d.name for d in runs_dir.iterdir()) == sorted(p.run_id for p in plan.runs)
    for p in plan.runs:
        meta = json.loads((runs_dir / p.run_id / "config.json").read_text())
        assert meta["config"]["extra"]["stacked"] == 4  # trained in the stack
        assert plan.infos[p.run_id].state == "completed" and plan.infos[p.run_id].epochs_done == 2
        # Each run's share of the stack's time prices later runs, not the whole stack's time.
        last = json.loads((runs_dir / p.run_id / "metrics.jsonl").read_text().splitlines()[-1])
        assert plan.infos[p.run_id].seconds == pytest.approx(last["elapsed"] / 4)
    again = run_experiment(spec, LocalExecutor(threads=1, stack=True), root=tmp_path,
                           data_root=str(shared_data_root))
    assert again.ran == 0 and again.skipped == 4


# ---------------------------------------------------------------------------- local vs Ray

@pytest.fixture(scope="module")
def ray_and_local(shared_data_root, tmp_path_factory):
    """The same tiny spec through both executors. On Ray the workers training class 2 end
    their own process after one epoch (the test-only crash hook)."""
    pytest.importorskip("ray")
    root = tmp_path_factory.mktemp("exp")
    spec3 = tiny_spec(name="both", classes=[0, 1, 2], lam=[0.0, 5e-5])
    spec2 = spec3.narrowed(classes=[0, 1])
    local_root, ray_root = root / "local", root / "ray"
    local = run_experiment(spec2, LocalExecutor(threads=1, stack=False), root=local_root,
                           data_root=str(shared_data_root))
    os.environ[TEST_CRASH_ENV] = "normal_class=2"
    try:
        ray_exec = RayExecutor(cpus_per_run=1, init_kwargs={"num_cpus": 2,
                                                            "object_store_memory": 100 * 2**20})
        ray_summary = run_experiment(spec3, ray_exec, root=ray_root, data_root=str(shared_data_root))
    finally:
        del os.environ[TEST_CRASH_ENV]
    return dict(spec2=spec2, spec3=spec3, local_root=local_root, ray_root=ray_root, local=local,
                ray=ray_summary, data_root=str(shared_data_root))


@pytest.mark.slow
def test_local_and_ray_give_the_same_table(ray_and_local):
    r = ray_and_local
    assert r["local"].completed == 6 and r["local"].failed == 0
    local_plan = plan_experiment(r["spec2"], r["local_root"])
    # The runs of classes 0 and 1 in the Ray experiment have the same content-hash ids.
    ray_plan = plan_experiment(r["spec2"], r["ray_root"])
    assert all(i.state == "completed" for i in ray_plan.infos.values())
    cols = ["method", "lam", "rule", "k", "n", "auroc_mean", "aupr_in_mean", "aupr_out_mean"]
    a = aggregate(results_frame(local_plan), local_plan)[cols]
    b = aggregate(results_frame(ray_plan), ray_plan)[cols]
    assert len(a) == 3  # CAE, IAEAD λ = 0, IAEAD λ = 5e-5
    assert a.equals(b), (a, b)
    per_class_a = aggregate(results_frame(local_plan), local_plan, by_class=True)["auroc_mean"]
    per_class_b = aggregate(results_frame(ray_plan), ray_plan, by_class=True)["auroc_mean"]
    assert per_class_a.tolist() == per_class_b.tolist()
    assert a["auroc_mean"].between(0, 1).all()


@pytest.mark.slow
def test_several_runs_at_once_give_the_same_table(ray_and_local, tmp_path):
    # Two slots (what a GPU gets when runs fit): threads share the process, one engine each.
    r = ray_and_local
    two = run_experiment(r["spec2"], LocalExecutor(threads=1, slots=2, stack=False), root=tmp_path,
                         data_root=r["data_root"])
    assert (two.completed, two.failed) == (6, 0)
    cols = ["method", "lam", "k", "n", "auroc_mean", "aupr_in_mean", "aupr_out_mean"]
    plans = [plan_experiment(r["spec2"], root) for root in (r["local_root"], tmp_path)]
    a, b = (aggregate(results_frame(p), p)[cols] for p in plans)
    assert a.equals(b), (a, b)


@pytest.mark.slow
def test_a_dead_ray_worker_fails_only_its_run_and_a_rerun_retries_it(ray_and_local):
    r = ray_and_local
    assert (r["ray"].completed, r["ray"].failed) == (6, 3)
    plan = plan_experiment(r["spec3"], r["ray_root"])
    for p in plan.runs:
        info = plan.infos[p.run_id]
        if p.point["normal_class"] == 2:
            assert info.state == "failed" and "Ray worker" in info.error and "died" in info.error
        else:
            assert info.state == "completed" and info.epochs_done == 2
            run_dir = plan.folder.runs_dir / p.run_id
            assert {"config.json", "metrics.jsonl", "final.npz", "model.pt"} <= {f.name for f in run_dir.iterdir()}
    # Report while class 2 is missing: its cells say how many runs they have.
    paths = write_report(plan)
    t2 = paths["table2.md"].read_text()
    # CAE on MNIST 0, 1, 2 at ρ = 10 %: the mean of Table 3's values for those three classes
    # (35.04, 97.21, 45.55), not Table 2's average over all ten
    assert "2/3 runs (1 failed; paper, different protocol 59.27)" in t2
    assert "Not the paper's protocol" in t2
    t3 = paths["table3.md"].read_text()
    assert "0/1 runs (1 failed" in t3
    # Rerun on this machine: only the three failed runs train.
    again = run_experiment(r["spec3"], LocalExecutor(threads=1, stack=False), root=r["ray_root"],
                           data_root=r["data_root"])
    assert (again.skipped, again.ran, again.completed) == (6, 3, 3)


@pytest.mark.slow
def test_report_files_with_paper_values(ray_and_local):
    r = ray_and_local
    plan = plan_experiment(r["spec2"], r["local_root"])
    paths = write_report(plan)
    for name in ("runs.csv", "results.csv", "table2.csv", "table3.csv", "table2.md", "table3.md",
                 "report.html"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    t2 = paths["table2.md"].read_text()
    # Named by its folder, as the lab and `experiment status` name it (walk 3: "fig4-lambda"
    # in the report, "fig4-lambda-quick" in the lab).
    assert t2.startswith("# both-quick: Table 2") and "Experiment **both-quick**" in t2
    # CAE's cell (digits 0 and 1): our value, then the paper's mean over those two classes
    # (Table 3: 35.04 and 97.21) and the difference; never Table 2's ten-class 56.56.
    cae = next(line for line in t2.splitlines() if line.startswith("| MNIST | AUROC"))
    assert f"(paper, different protocol {(35.04 + 97.21) / 2:.2f}, Δ " in cae and "56.56" not in cae
    # IAEAD at the paper's λ gets the paper's (96.59 + 99.32) / 2; at λ = 0 the paper has none.
    assert cae.count(f"different protocol {(96.59 + 99.32) / 2:.2f}") == 1 and "92.05" not in cae
    t3 = paths["table3.md"].read_text()
    assert "protocol 96.59" in t3 and "protocol 99.32" in t3  # IAEAD, digits 0 and 1 (Table 3)
    html = paths["report.html"].read_text()
    assert "plotly" in html.lower() and "(Fig. 4)" in html  # the λ curve (λ is JSON-escaped)
    # Its λ axis writes λ as the lab does ("1e-5"), not in plotly's own "1e−5" or "10µ".
    from iaead_core.experiments.figures import figure_lambda

    results = results_frame(plan)
    fig = figure_lambda(aggregate(results, plan), results, plan)
    assert list(fig.layout.xaxis2.ticktext) == ["1e-5", "1e-4"] and fig.layout.xaxis2.type == "log"
    iaead = next(t for t in fig.data if t.xaxis == "x2" and t.customdata is not None)
    assert iaead.customdata[0][0] == "5e-5" and "λ = %{customdata[0]}" in iaead.hovertemplate  # not "50µ"
    import pandas as pd

    runs = pd.read_csv(paths["runs.csv"])
    assert len(runs) == 6 and set(runs["state"]) == {"completed"}
    cells = pd.read_csv(paths["table2.csv"])
    assert len(cells) == 3 and (cells["n"] == 2).all() and cells["complete"].all()


def test_cli_dry_run_status_and_report(shared_data_root, tmp_path, capsys):
    from iaead_core.cli.main import main

    argv = ["--out", str(tmp_path), "--data-root", str(shared_data_root)]
    assert main(["experiment", "run", "fig4-lambda", "--dry-run", "--seeds", "3", "--dataset",
                 "mnist", "--classes", "0", *argv]) == 0
    text = capsys.readouterr().out
    assert "33 runs" in text and "estimated time" in text and "missing 33" in text
    assert not (tmp_path / "fig4-lambda-quick").exists()  # a dry run writes nothing
    assert main(["experiment", "status", "ablation", *argv]) == 0
    assert "0/90 completed" in capsys.readouterr().out  # 30 settings × 3 seeds (quick)
    assert main(["experiment", "run", "nosuch", *argv]) == 2
    assert "built-in" in capsys.readouterr().err


@pytest.mark.slow
def test_several_slots_train_in_worker_processes_with_the_same_numbers(shared_data_root, tmp_path):
    """Issue 16: with several slots each run trains in a worker process of its own. Two
    workers give exactly the numbers of one run at a time (same seeds, one torch thread each),
    a worker that dies fails only its own run, and the others complete."""
    spec = tiny_spec(classes=[0, 1, 2], methods=["iaead"], lam=[5e-5])
    one = run_experiment(spec, LocalExecutor(threads=1, slots=1), root=tmp_path / "one",
                         data_root=str(shared_data_root))
    two = run_experiment(spec, LocalExecutor(threads=1, slots=2), root=tmp_path / "two",
                         data_root=str(shared_data_root))
    assert one.completed == two.completed == 3

    def finals(root):
        out = {}
        for d in sorted((root / "tiny-quick" / "runs").iterdir()):
            out[d.name] = json.loads((d / "metrics.jsonl").read_text().splitlines()[-1])["metrics"]
        return out

    assert finals(tmp_path / "one") == finals(tmp_path / "two")
    os.environ[TEST_CRASH_ENV] = "normal_class=1"
    try:
        crash = run_experiment(spec, LocalExecutor(threads=1, slots=2), root=tmp_path / "crash",
                               data_root=str(shared_data_root))
    finally:
        del os.environ[TEST_CRASH_ENV]
    states = _states(tmp_path / "crash" / "tiny-quick")
    assert sorted(states.values()) == ["completed", "completed", "failed"]
    [dead] = [rid for rid, s in states.items() if s == "failed"]
    status = json.loads((tmp_path / "crash" / "tiny-quick" / "runs" / dead / "status.json").read_text())
    assert "worker process died" in status["error"] and crash.failed == 1


def test_workers_option_reaches_the_local_executor():
    """``experiment run --workers thread`` (issue 16: on a GPU each run then has its own CUDA
    stream in one process) reaches the executor; worker processes stay the default."""
    from iaead_core.cli.experiments import _executor
    from iaead_core.cli.parser import build_parser

    args = build_parser().parse_args(["experiment", "run", "s.json", "--slots", "2",
                                      "--workers", "thread"])
    ex = _executor(args)
    assert (ex.workers, ex.requested_slots) == ("thread", 2)
    assert _executor(build_parser().parse_args(["experiment", "run", "s.json"])).workers == "process"
