"""Run folders are untrusted input (issue 18 §6): a crafted or damaged folder is listed as
*corrupt* with the reason, the good epochs of a folder with a damaged tail stay visible, and
neither the command line (``runs``, ``score``, ``experiment status``) nor a page of the lab
(Runs, Your images, Latent space, Train) shows a traceback. The last test writes random garbage
into every file of a run folder (hypothesis)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from iaead_core.cli.main import main  # noqa: E402
from iaead_core.runs import list_runs, load_run  # noqa: E402

GROUP = "compare-20250101-000000-abcd1234"
IMAGES_GROUP = "images-20250101-000000-abcd1234"


# ------------------------------------------------------------------------ sound runs

@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> dict[str, Path]:
    """Two real, finished tiny runs: one on a benchmark (a Train-page comparison) and one on
    a folder of images (the Your images page)."""
    from PIL import Image

    from iaead_core.config import preset_config
    from iaead_core.data.image_files import load_image_folder
    from iaead_core.training.engine import Trainer

    root = tmp_path_factory.mktemp("sound")
    cfg = preset_config("quick", method="iaead", dataset="digits", normal_class=0, epochs=2,
                        warmup_epochs=1, width=8, latent_dim=16, download=False, device="cpu",
                        extra={"group": GROUP, "kind": "compare"})
    bench = Trainer(cfg, runs_root=root / "bench", run_id="20250101-000000-iaead-digits-0-s0-good").run()
    pictures = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i in range(50):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(pictures / f"{i:02d}.png")
    images = load_image_folder(pictures, channels=1, fit="pad", rho=0.1)
    folder = Trainer(cfg.replace(extra={"group": IMAGES_GROUP, "kind": "images"}), data=images,
                     runs_root=root / "folder", run_id="20250101-000000-iaead-folder-0-s0-good").run()
    return {"bench": Path(bench.run_dir), "folder": Path(folder.run_dir), "pictures": pictures}


def _edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def _copy(src: Path, root: Path, name: str) -> Path:
    d = root / name
    shutil.copytree(src, d, symlinks=True)
    return d


def _crafted(sound: dict[str, Path], root: Path) -> dict[str, Path]:
    """Every trigger of issue 18 §7, each in its own copy of a sound run under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    out = {"good": _copy(sound["bench"], root, "20250101-000000-iaead-digits-0-s0-good"),
           "good-folder": _copy(sound["folder"], root, "20250101-000000-iaead-folder-0-s0-good")}
    d = out["nested-config"] = _copy(sound["bench"], root, "20250102-nested-config")
    (d / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    d = out["nested-status"] = _copy(sound["bench"], root, "20250102-nested-status")
    (d / "status.json").write_text('{"status": ' + "[" * 100_000 + "]" * 100_000 + "}")
    d = out["pid"] = _copy(sound["bench"], root, "20250102-huge-pid")
    _edit_json(d / "status.json", lambda s: s.update(status="running", pid=2**80))
    d = out["data-null"] = _copy(sound["bench"], root, "20250102-data-null")
    _edit_json(d / "config.json", lambda m: m.update(data=None))
    d = out["data-string"] = _copy(sound["bench"], root, "20250102-data-string")
    _edit_json(d / "config.json", lambda m: m.update(data="x"))
    d = out["extra-list"] = _copy(sound["bench"], root, "20250102-extra-list")
    _edit_json(d / "config.json", lambda m: m["config"].update(extra=[1, 2]))
    d = out["extra-folder"] = _copy(sound["folder"], root, "20250102-extra-folder")
    _edit_json(d / "config.json", lambda m: m["config"].update(extra="images"))
    d = out["zero"] = _copy(sound["bench"], root, "20250102-metrics-dev-zero")
    (d / "metrics.jsonl").unlink()
    (d / "metrics.jsonl").symlink_to("/dev/zero")
    d = out["binary-tail"] = _copy(sound["bench"], root, "20250102-binary-tail")
    with open(d / "metrics.jsonl", "ab") as f:
        f.write(b"\x00\xff\xfe\x89PNG\r\n\x1a\n{\"epoch\": 3, \"metr\xc3")
    d = out["binary-folder"] = _copy(sound["folder"], root, "20250102-binary-folder")
    with open(d / "metrics.jsonl", "ab") as f:
        f.write(os.urandom(64) + b"\n" + os.urandom(64))
    d = out["epochs-x"] = _copy(sound["bench"], root, "20250102-epochs-x")
    _edit_json(d / "config.json", lambda m: m["config"].update(epochs="x"))
    return out


@pytest.fixture
def crafted(sound, tmp_path, monkeypatch) -> dict[str, Path]:
    runs = tmp_path / "runs"
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(runs))
    monkeypatch.setenv("IAEAD_EXPERIMENTS_DIR", str(tmp_path / "experiments"))
    return _crafted(sound, runs)


REASONS = {
    "nested-config": "config.json is corrupt (JSON nested deeper than the limit of 64 levels)",
    "nested-status": "status.json is corrupt (JSON nested deeper than the limit of 64 levels)",
    "pid": "status.json: pid must be a process id",
    "data-null": "config.json: data must be an object, not null",
    "data-string": "config.json: data must be an object, not a string",
    "extra-list": "config.json: config.extra must be an object or null, not a list",
    "extra-folder": "config.json: config.extra must be an object or null, not a string",
    "zero": "metrics.jsonl is unreadable (metrics.jsonl is a device, not a regular file)",
    "epochs-x": "config.json: config.epochs must be a whole number, not a string",
}


def test_crafted_folders_are_listed_as_corrupt_with_the_reason(crafted, capsys):
    """Before: RecursionError, OverflowError, AttributeError or MemoryError from `runs`, and
    bytes at the end of metrics.jsonl hid every epoch."""
    runs = {r.run_id: r for r in list_runs()}
    assert set(runs) == {d.name for d in crafted.values()}
    for key, reason in REASONS.items():
        run = runs[crafted[key].name]
        assert run.live_status == "corrupt", key
        assert reason in run.status_note, (key, run.status_note)
    for key in ("binary-tail", "binary-folder"):  # a damaged tail: the good epochs stay
        run = runs[crafted[key].name]
        assert run.live_status == "completed" and len(run.records) == 2, key
        assert run.problem is None and "unreadable line(s) at the end skipped" in run.notes[0]
    assert runs[crafted["good"].name].live_status == "completed"

    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    for key, reason in REASONS.items():
        assert f"    corrupt: {reason}" in out, key
    assert main(["runs", "--json"]) == 0
    listed = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[crafted["binary-tail"].name]["epochs_done"] == 2
    assert listed[crafted["pid"].name]["status"] == "corrupt"


def test_score_and_experiment_status_say_why_a_folder_is_unusable(crafted, sound, tmp_path,
                                                                   capsys):
    """Before: `score` on a run whose "data" is a string gave an AttributeError traceback."""
    for key in ("data-string", "data-null", "nested-config"):
        code = main(["score", str(crafted[key]), "--images", str(sound["pictures"]),
                     "--csv", str(tmp_path / "s.csv")])
        err = capsys.readouterr().err
        assert code == 2 and REASONS[key] in err, (key, err)
    assert not (tmp_path / "s.csv").exists()

    # An experiment whose run folders are crafted: status lists them as corrupt.
    from iaead_core.experiments import load_spec, plan_experiment

    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text('name = "tiny"\ndatasets = ["digits"]\nclasses = [0]\n'
                         'methods = ["iaead"]\nseeds = 2\n[config]\nepochs = 2\n')
    plan = plan_experiment(load_spec(str(spec_file)), tmp_path / "experiments")
    for p, key in zip(plan.runs, ("pid", "zero")):
        shutil.copytree(crafted[key], plan.folder.runs_dir / p.run_id, symlinks=True)
    assert main(["experiment", "status", str(spec_file), "--out",
                 str(tmp_path / "experiments")]) == 0
    out = capsys.readouterr().out
    assert "0/2 completed; corrupt 2" in out and REASONS["pid"] in out and REASONS["zero"] in out


def test_no_lab_page_shows_a_traceback_for_crafted_folders(crafted):
    """Before: the Runs, Your images, Latent space and Train pages showed tracebacks."""
    from streamlit.testing.v1 import AppTest

    from app import state

    def page(name: str) -> AppTest:
        return AppTest.from_file(str(ROOT / "app" / "pages" / f"{name}.py"), default_timeout=120)

    try:
        for name in ("runs", "images", "latent", "train"):
            at = page(name).run()
            assert not at.exception, (name, [e.value for e in at.exception])
            if name == "runs":
                table = at.dataframe[0].value.set_index("run_id")
                for key, reason in REASONS.items():
                    row = table.loc[crafted[key].name]
                    assert row["status"] == "corrupt" and reason in row["error"], key
                assert table.loc[crafted["binary-tail"].name, "status"] == "completed"
                assert table.loc[crafted["binary-tail"].name, "epochs_done"] == 2
        # Every crafted folder of the comparison, shown one after the other on Train and
        # Latent space, and the folder runs on Your images.
        at = page("train").run()
        assert not at.exception, [e.value for e in at.exception]
        at = page("images").run()
        assert not at.exception, [e.value for e in at.exception]
    finally:
        state._registry(str(Path(os.environ["IAEAD_RUNS_DIR"]).resolve())).shutdown()


# ------------------------------------------------------------------------------ fuzzing

def _json_values():
    from hypothesis import strategies as st

    scalars = (st.none() | st.booleans() | st.integers(min_value=-2**100, max_value=2**100)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def _paths(obj, prefix=()):
    """Every key path into a parsed JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _garbage(draw, original: bytes, name: str):
    """Bytes to put in place of a file (None: delete it; "zero": a link to /dev/zero): the
    file kept, deleted, random bytes, a random JSON value, one field of one JSON document
    replaced by a random value or left out, random bytes appended, deep nesting, a link to
    /dev/zero."""
    from hypothesis import strategies as st

    kind = draw(st.sampled_from(["keep", "keep", "delete", "bytes", "json", "mutate", "mutate",
                                 "mutate", "drop", "tail", "deep", "zero"]))
    if kind == "keep":
        return original
    if kind == "delete":
        return None
    if kind == "zero":
        return "zero"
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        n = draw(st.integers(min_value=60, max_value=5000))
        return (draw(st.sampled_from(["[", '{"a":'])) * n).encode()
    if kind == "tail":
        return original + draw(st.binary(min_size=1, max_size=100))
    value = draw(_json_values())
    if kind == "json" or not name.endswith((".json", ".jsonl")):
        return json.dumps(value).encode()
    lines = original.decode().splitlines() if name.endswith(".jsonl") else [original.decode()]
    i = draw(st.integers(min_value=0, max_value=max(0, len(lines) - 1)))
    doc = json.loads(lines[i])
    paths = list(_paths(doc))
    if paths:
        path = draw(st.sampled_from(paths))
        target = doc
        for k in path[:-1]:
            target = target[k]
        if kind == "drop":  # a field left out
            del target[path[-1]]
        else:
            target[path[-1]] = value
    else:
        doc = value
    lines[i] = json.dumps(doc)
    return "\n".join(lines).encode() + b"\n"


FILES = ("config.json", "status.json", "metrics.jsonl", "final.npz", "model.pt",
         "snapshots/epoch_0001.npz", "images.csv")


def test_random_garbage_in_any_file_of_a_run_folder_never_breaks_a_listing(sound, tmp_path,
                                                                            monkeypatch, capsys):
    """Hypothesis writes garbage (random bytes, random JSON, one field replaced by a random
    value, a damaged tail, deep nesting, a link to /dev/zero) into each file of a sound run
    folder: `runs` (the CLI, list_runs) and the lab's Runs page list it without an exception.
    Every example is also kept in one runs folder that the Runs page renders at the end."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from app.views.runs import RunIndex

    t0 = time.time()
    everything = tmp_path / "all"
    everything.mkdir()
    counter = iter(range(10**6))
    originals = {}
    for src in (sound["bench"], sound["folder"]):
        originals[src] = {name: (src / name).read_bytes() for name in FILES if (src / name).exists()}

    @st.composite
    def folders(draw):
        src = draw(st.sampled_from(sorted(originals)))
        names = sorted(originals[src])
        return src, {name: _garbage(draw, originals[src][name], name) for name in names}

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(folders())
    def one(case):
        src, files = case
        k = next(counter)
        d = tmp_path / f"example-{k}" / f"20250101-{k:06d}-fuzz"
        shutil.copytree(src, d, symlinks=True)
        for name, content in files.items():
            p = d / name
            p.unlink()
            if content == "zero":
                p.symlink_to("/dev/zero")
            elif content is not None:
                p.write_bytes(content)
        root = d.parent
        listed = {r.run_id: r for r in list_runs(root)}
        run = listed.get(d.name)
        if run is not None:  # a folder left without any run file is not a run at all
            assert run.live_status in ("completed", "corrupt", "running", "interrupted",
                                       "stopped", "failed")
            _ = run.status_note, run.final_metrics, run.snapshot_epochs()
        rows = RunIndex(root).rows()
        assert any(r["run_id"] == d.name for r in rows) or run is None
        assert main(["runs", "--out", str(root)]) == 0
        assert main(["runs", "--out", str(root), "--json"]) == 0
        capsys.readouterr()
        d.rename(everything / d.name)

    one()
    # The lab's Runs page over every folder generated above.
    from streamlit.testing.v1 import AppTest

    from app import state

    monkeypatch.setenv("IAEAD_RUNS_DIR", str(everything))
    try:
        at = AppTest.from_file(str(ROOT / "app" / "pages" / "runs.py"), default_timeout=120).run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.dataframe[0].value) >= 100
    finally:
        state._registry(str(everything.resolve())).shutdown()
    assert time.time() - t0 < 60, f"the fuzz test took {time.time() - t0:.0f} s"
