"""Writes that never clobber, a full or read-only disk, and checkpoints (issue 18 §1, §7, §10,
§14).

Disk full and read-only folders are *simulated by monkeypatching*, since these tests run as
root (``chmod`` does not stop root) and may not mount file systems:

* disk full: once the first epoch record is written, every array written by numpy (snapshots,
  final.npz) fails with ``ENOSPC`` as on a full disk, while the small JSON files still fit;
* read-only: ``os.mkdir``, ``os.open`` and ``open`` of a new file under the folder fail with
  ``EROFS``, as on a read-only file system.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from iaead_core.cli.main import main
from iaead_core.runs import RunWriter, list_runs, load_run

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------- helpers

def _tiny_cfg(epochs: int = 2):
    from iaead_core.config import preset_config

    return preset_config("quick", method="iaead", dataset="digits", normal_class=0,
                         epochs=epochs, warmup_epochs=1, width=8, latent_dim=16,
                         download=False, device="cpu")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One tiny finished run (digits, 2 epochs) to score with."""
    from iaead_core.training.engine import Trainer

    root = tmp_path_factory.mktemp("runs")
    result = Trainer(_tiny_cfg(), runs_root=root).run()
    return Path(result.run_dir)


@pytest.fixture(scope="module")
def new_images(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("new-images")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _no_leftovers(folder: Path) -> list[str]:
    """Temporary or empty files left in a folder tree."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and (p.name.endswith(".tmp") or p.stat().st_size == 0
                                      or ".tmp." in p.name))


def _score(run: Path, images: Path, target, capsys) -> tuple[int, str]:
    code = main(["score", str(run), "--images", str(images), "--csv", str(target),
                 "--device", "cpu"])
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ §1 never clobber

def test_score_csv_refuses_a_fifo_a_folder_a_symlink_and_a_device_before_any_work(
        trained_run, new_images, tmp_path, capsys, monkeypatch):
    """Before: `--csv PATH` wrote PATH.tmp and os.replace'd it onto whatever PATH was: a FIFO
    or a device node became a plain file, a symlink was replaced, a folder gave a traceback
    and left `<folder>.tmp` behind."""
    import iaead_core.detector.new_images as new_images_module

    def no_work(*a, **k):
        raise AssertionError("images were read although the output path is refused")
    monkeypatch.setattr(new_images_module, "load_image_folder", no_work)

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    target = tmp_path / "kept.csv"
    target.write_text("do not touch\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    cases = [(fifo, stat.S_ISFIFO, "a FIFO"), (folder, stat.S_ISDIR, "a folder"),
             (link, stat.S_ISLNK, "a symbolic link")]
    try:  # a device node like /dev/null (needs root; never the real /dev/null)
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        cases.append((device, stat.S_ISCHR, "a device"))
    except (PermissionError, OSError):
        pass
    for path, still, what in cases:
        code, err = _score(trained_run, new_images, path, capsys)
        assert code == 5, (path, err)
        assert f"refusing to write {path}: it is {what}" in err, err
        assert still(os.lstat(path).st_mode), f"{path} was replaced"
    assert target.read_text() == "do not touch\n"  # the link's target is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["pipe", "a-folder", "kept.csv", "link.csv"] + (["null"] if len(cases) == 4 else []))


def test_score_csv_onto_a_regular_file_replaces_it_atomically(trained_run, new_images, tmp_path,
                                                                capsys):
    target = tmp_path / "out" / "scores.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    os.chmod(target, 0o640)
    code, err = _score(trained_run, new_images, target, capsys)
    assert code == 0, err
    assert target.read_text().startswith("path,score,rank,flagged")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file keeps its permissions
    assert _no_leftovers(target.parent) == []


def test_atomic_writes_use_unique_temporary_files(tmp_path):
    """Before: every writer of a file used `<file>.tmp`, so two writers at once crashed on it
    (7 crashed `experiment run` calls on the shared driver.json.tmp)."""
    from iaead_core.storage import StorageError, atomic_output, write_json

    path = tmp_path / "shared.json"
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(40):
                write_json(path, {"writer": k, "i": i, "pad": "x" * 2000}, sync=False)
        except BaseException as e:  # noqa: BLE001 - any crash fails the test
            errors.append(e)
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(path.read_text())["i"] == 39 and _no_leftovers(tmp_path) == []

    path.write_text("old")  # a write that fails half-way leaves the old file and no temp
    with pytest.raises(RuntimeError):
        with atomic_output(path) as f:
            f.write("new, half")
            raise RuntimeError("boom")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["shared.json"]
    with pytest.raises(StorageError, match="it is a folder"):
        write_json(tmp_path, {})
    # torch.save reports a full disk as a RuntimeError whose context is the OSError
    with pytest.raises(StorageError, match=r"the disk holding .* is full \(no space left"):
        with atomic_output(tmp_path / "model.pt", "wb") as f:
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.json"]


# ------------------------------------------------------------------ §7 disk full, read-only

@pytest.fixture
def disk_fills_after_first_epoch(monkeypatch):
    """Simulated full disk (see the module docstring): after the first epoch record, numpy's
    array writes fail with ENOSPC."""
    import numpy.lib.format as npformat

    full = threading.Event()
    real_write_array, real_append = npformat.write_array, RunWriter.append_record

    def write_array(*a, **k):
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_array(*a, **k)

    def append_record(self, record):
        real_append(self, record)
        full.set()
    monkeypatch.setattr(npformat, "write_array", write_array)
    monkeypatch.setattr(RunWriter, "append_record", append_record)
    return full


def test_train_on_a_full_disk_fails_cleanly(disk_fills_after_first_epoch, tmp_path, capsys):
    """Before: a traceback with exit status 1, status.json left at "running", and a 0-byte /
    partial final.npz."""
    out = tmp_path / "runs"
    code = main(["train", "--seeds", "1", "--dataset", "digits", "--epochs", "3", "--warmup-epochs", "1",
                 "--width", "8", "--latent-dim", "16", "--device", "cpu", "--no-download",
                 "--out", str(out), "--json"])
    err = capsys.readouterr().err
    assert code == 5, err
    (run_dir,) = list(out.iterdir())
    assert "no space left on device" in err and str(run_dir) in err and "--out" in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "no space left on device" in status["error"]
    assert _no_leftovers(run_dir) == []  # no 0-byte or half-written result file
    assert not (run_dir / "final.npz").exists() and not list((run_dir / "snapshots").iterdir())
    (run,) = list_runs(out)
    assert run.live_status == "failed" and len(run.records) == 1


def test_a_full_disk_during_overlapped_bookkeeping_fails_the_run_cleanly(
        disk_fills_after_first_epoch, tmp_path):
    """The same with the bookkeeping on its worker thread (the default on a GPU): the error
    comes back from that thread, the run folder says "failed" with it."""
    from iaead_core.storage import StorageError
    from iaead_core.training.engine import Trainer

    trainer = Trainer(_tiny_cfg(epochs=3), runs_root=tmp_path, overlap=True, checkpoint_every=1)
    with pytest.raises(StorageError, match="no space left on device"):
        trainer.run()
    status = json.loads((trainer.run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "no space left on device" in status["error"]
    assert _no_leftovers(trainer.run_dir) == [] and not (trainer.run_dir / "final.npz").exists()


def _read_only(monkeypatch, folder: Path) -> None:
    """Simulated read-only file system under ``folder`` (see the module docstring)."""
    folder = folder.resolve()

    def inside(path) -> bool:
        try:
            return Path(os.path.abspath(os.fspath(path))).is_relative_to(folder)
        except TypeError:  # a file descriptor
            return False
    real_mkdir, real_open, real_builtin_open = os.mkdir, os.open, builtins.open

    def mkdir(path, *a, **k):
        if inside(path):
            if os.path.exists(path):
                raise FileExistsError(errno.EEXIST, "File exists", str(path))
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *a, **k)

    def os_open(path, flags, *a, **k):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    def open_(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and inside(file) and set(mode) & set("wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return real_builtin_open(file, mode, *a, **k)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)


def _tiny_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\ndatasets = ["digits"]\nclasses = [0]\nmethods = ["iaead"]\n'
                    '[config]\nepochs = 2\nwarmup_epochs = 1\nwidth = 8\nlatent_dim = 16\n')
    return spec


@pytest.mark.parametrize("command", ["train", "score", "report", "run"])
def test_a_read_only_folder_gives_exit_status_5_naming_it(command, trained_run, new_images,
                                                           tmp_path, monkeypatch, capsys):
    """Before: a traceback (exit status 1) for each of train, score, report and run."""
    ro = tmp_path / "read-only"
    ro.mkdir()
    spec = _tiny_spec(tmp_path)
    argv = {
        "train": ["train", "--dataset", "digits", "--epochs", "1", "--out", str(ro),
                  "--no-download", "--device", "cpu"],
        "score": ["score", str(trained_run), "--images", str(new_images), "--csv",
                  str(ro / "scores.csv"), "--device", "cpu"],
        "report": ["experiment", "report", str(spec), "--out", str(ro)],
        "run": ["experiment", "run", str(spec), "--out", str(ro), "--device", "cpu"],
    }[command]
    _read_only(monkeypatch, ro)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 5, err
    assert "read-only file system" in err and str(ro) in err and "hint:" in err
    assert list(ro.iterdir()) == []


def test_the_experiment_driver_survives_its_heartbeat_failing(tmp_path, monkeypatch):
    """Before: the driver crashed in its own heartbeat (driver.json) on a full disk."""
    from iaead_core.experiments import load_spec, run_experiment
    from iaead_core.experiments.executor_base import Executor, RunOutcome

    full = threading.Event()
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if full.is_set() and Path(dst).name == "driver.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *a, **k)
    monkeypatch.setattr(os, "replace", replace)

    class Instant(Executor):
        name = "instant"

        def run(self, plans, runs_root, on_done, stop_event, install=None):
            full.set()  # the disk fills once the experiment is under way
            for p in plans:
                on_done(p, RunOutcome(p.run_id, "completed", None, 0.1))

    lines = []
    spec = load_spec(str(_tiny_spec(tmp_path)))
    summary = run_experiment(spec, Instant(), root=tmp_path / "exp",
                             progress=lambda line, prog: lines.append(line))
    assert summary.ran == 1 and summary.completed == 1
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "heartbeat (driver.json)" in warnings[0]
    assert "no space left on device" in warnings[0] and "the runs go on" in warnings[0]


# ------------------------------------------------------------------ §10, §14 checkpoints

def test_model_pt_is_written_during_training(tmp_path):
    """Before: model.pt was written only when the run ended."""
    from iaead_core.training.engine import Trainer

    trainer = Trainer(_tiny_cfg(epochs=3), runs_root=tmp_path, checkpoint_every=1)
    seen = []
    for record in trainer.epochs():
        status = json.loads((trainer.run_dir / "status.json").read_text())
        seen.append((record["epoch"], (trainer.run_dir / "model.pt").exists(),
                     (trainer.run_dir / "final.npz").exists(), status.get("checkpoint")))
    # Each epoch's checkpoint is written with its record (the epoch's bookkeeping); the last
    # epoch's model is written by the end of the run.
    assert seen == [(1, True, True, 1), (2, True, True, 2), (3, True, True, 2)]
    run = load_run(trainer.run_dir)
    assert run.status["checkpoint"] == 3 and run.load_weights()["method"] == "iaead"
    assert _no_leftovers(trainer.run_dir) == []


def test_kill_9_during_train_leaves_a_scorable_model(new_images, tmp_path, capsys):
    """Before: a `kill -9` during train left no model.pt, so the kept epochs could be neither
    scored nor restored."""
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "iaead_core", "train", "--seeds", "1", "--dataset", "digits", "--epochs", "20",
         "--warmup-epochs", "1", "--width", "8", "--latent-dim", "16", "--out", str(out),
         "--no-download", "--device", "cpu", "--json"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            metrics = list(out.glob("*/metrics.jsonl"))
            if metrics and metrics[0].read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (run,) = list_runs(out)
    assert run.live_status == "interrupted" and len(run.records) >= 3
    assert (run.dir / "model.pt").is_file() and (run.dir / "final.npz").is_file()
    assert 2 <= run.status["checkpoint"] <= len(run.records)  # every 2 epochs (20 // 10)
    assert run.load_weights()["method"] == "iaead"
    assert main(["score", str(run.dir), "--images", str(new_images), "--json",
                 "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 3
