"""The Your images page through streamlit.testing.v1.AppTest, on folders written from real
Fashion-MNIST: read (counts, files skipped and why, preview), train (losses only without
labels, AUROC with them), rank with a moving threshold, download, score a second folder, a
zip upload, and bad input in words. Needs the real Fashion-MNIST files."""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from app import state  # noqa: E402
from iaead_core.detector import Detector, score_images  # noqa: E402
from iaead_core.data.image_files import load_image_folder  # noqa: E402
from iaead_core.runs import load_run  # noqa: E402

PAGE = ROOT / "app" / "pages" / "images.py"
SNEAKER, BAG = 7, 8  # Fashion-MNIST classes


@pytest.fixture(scope="module")
def fashion(shared_data_root):
    from iaead_core.data import load_pool

    return load_pool("fashion-mnist", shared_data_root)


def write_pngs(folder: Path, images: np.ndarray, prefix: str, resize_every: int = 0) -> None:
    """One PNG per image; every ``resize_every``-th one enlarged to 40×40 (mixed sizes)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for j, a in enumerate(images):
        im = Image.fromarray(a[0])
        if resize_every and j % resize_every == 0:
            im = im.resize((40, 40))
        im.save(folder / f"{prefix}_{j:03d}.png")


def pick(fashion, cls: int, n: int, seed: int, other: bool = False) -> np.ndarray:
    x, y = fashion
    rng = np.random.default_rng(seed)
    return x[rng.choice(np.flatnonzero((y != cls) if other else (y == cls)), n, replace=False)]


@pytest.fixture
def lab(tmp_path, monkeypatch, shared_data_root):
    """A fresh runs folder (so a fresh job registry); its jobs are stopped afterwards."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(runs))
    monkeypatch.setenv("IAEAD_DATA_ROOT", str(shared_data_root))
    monkeypatch.setenv("IAEAD_LAB_PATHS", str(tmp_path))  # the test's folders may be read
    yield tmp_path
    state._registry(str(runs.resolve())).shutdown()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def settle(at: AppTest, busy=lambda a: any(w in i.value for i in a.info for w in ("Reading", "Scoring")),
           timeout: float = 120.0) -> AppTest:
    """Re-run (as the polling fragment does) until nothing is being read or scored."""
    end = time.time() + timeout
    while True:
        ok(at.run())
        if not busy(at):
            return at
        assert time.time() < end, [i.value for i in at.info]
        time.sleep(0.3)


def read_folder(at: AppTest, path: Path) -> AppTest:
    at.radio(key="img_how").set_value("folder").run()  # an upload is the default
    at.text_input(key="img_path").set_value(str(path))
    at.button(key="img_read").click()
    return settle(at)


def train(at: AppTest, method: str, epochs: int, runs: Path) -> AppTest:
    at.selectbox(key="img_method").set_value(method)
    at.number_input(key="img_epochs_quick").set_value(epochs)
    at.button(key="img_start").click()
    end = time.time() + 150
    while True:
        ok(at.run())
        if any("completed after" in p.proto.text for p in at.get("progress")):
            return settle(at, lambda a: any("Reading the images" in i.value for i in a.info))
        assert time.time() < end, [p.proto.text for p in at.get("progress")]
        time.sleep(0.5)


def the_run(runs: Path):
    (d,) = [d for d in runs.iterdir() if (d / "config.json").exists()]
    return load_run(d)


def test_read_train_rank_threshold_and_score_a_second_folder(lab, fashion):
    # 100 sneakers (a third enlarged to 40×40, half in a sub-folder) and 10 other garments,
    # plus a corrupt PNG and a text file.
    folder = lab / "shop"
    write_pngs(folder, pick(fashion, SNEAKER, 50, 0), "sneaker", resize_every=3)
    write_pngs(folder / "more", pick(fashion, SNEAKER, 50, 1), "sneaker")
    write_pngs(folder, pick(fashion, SNEAKER, 10, 2, other=True), "other")
    (folder / "broken.png").write_bytes(b"not really a png")
    (folder / "notes.txt").write_text("shelf 3")

    at = read_folder(ok(AppTest.from_file(str(PAGE), default_timeout=120).run()), folder)
    assert at.title[0].value == "Your images"
    m = metrics(at)
    assert (m["images used"], m["unreadable, skipped"], m["other files, ignored"],
            m["channels"], m["labels"]) == ("110", "1", "1", "1", "none")
    left_out = at.dataframe[0].value
    assert dict(zip(left_out["file"], left_out["kind"])) == {"broken.png": "unreadable image",
                                                            "notes.txt": "not an image"}
    assert "not a readable image" in left_out["not used because"].iloc[0]
    assert len(at.get("image")[0].proto.imgs) == 24  # the preview's first page

    runs = lab / "runs"
    at = train(at, "cae", 4, runs)
    charts = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert charts == ["Losses and radius per epoch", "Scores of the training images"]  # no AUROC
    assert any("the curves show the losses only" in c.value for c in at.caption)

    run = the_run(runs)
    assert run.meta["data"]["n"] == 110 and run.config["dataset"] == "folder"
    scores = run.load_final()["score_reconstruction"].astype(np.float64)
    # Contamination ρ = 10 % (the guess at training): the (1 − ρ)-quantile of the scores.
    thr = np.quantile(scores, 0.9)
    assert metrics(at)["flagged"] == f"{int((scores > thr).sum())} of 110"
    hist = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert hist["layout"]["shapes"][0]["x0"] == pytest.approx(thr)
    at.slider(key="img_thr_rho").set_value(0.2).run()
    assert metrics(ok(at))["flagged"] == f"{int((scores > np.quantile(scores, 0.8)).sum())} of 110"
    at.radio(key="img_thr_kind").set_value("quantile").run()
    at.slider(key="img_thr_q").set_value(0.95).run()
    assert metrics(ok(at))["flagged"] == f"{int((scores > np.quantile(scores, 0.95)).sum())} of 110"
    # The ranked images, most anomalous first, 24 a page; page 5 holds the last 14.
    page1 = at.get("image")[1].proto.imgs
    top = np.sort(scores)[::-1][:24]
    assert [i.caption.split(" · ")[1] for i in page1] == [f"{s:.3g}" for s in top]
    assert page1[0].caption.startswith("#1 · ")
    at.number_input(key="img_page").set_value(5).run()
    assert len(ok(at).get("image")[1].proto.imgs) == 110 - 4 * 24
    # The run folder got the ranking the CLI writes, with its threshold.
    ranking = (run.dir / "ranking.csv").read_text().splitlines()
    assert ranking[0].startswith("path,score,rank,flagged") and len(ranking) == 111
    assert "contamination 0.1" in ranking[1]
    assert [float(line.split(",")[1]) for line in ranking[1:25]] == pytest.approx(top.tolist())

    # Score a second folder: 10 new sneakers and 5 bags, at q = 0.95 of the training scores.
    new = lab / "new"
    write_pngs(new, pick(fashion, SNEAKER, 10, 3), "sneaker")
    write_pngs(new, pick(fashion, BAG, 5, 4), "bag")
    at.radio(key="img_new_how").set_value("folder").run()
    at.text_input(key="img_new_path").set_value(str(new))
    at.button(key="img_score").click()
    at = settle(at)
    det = Detector.from_run(run)
    data = load_image_folder(new, channels=1, min_images=1)
    expected = score_images(det.method_, data.images, rule="reconstruction",
                            reference_latent=det.latent_mean_, epoch=det.epoch_)
    n_flag = int((expected > np.quantile(scores, 0.95)).sum())
    said = [m.value for m in at.markdown if "new images" in m.value]
    assert said and "**15 new images**" in said[0] and f"**{n_flag} flagged**" in said[0]
    (csv,) = (run.dir / "scored").glob("*.csv")
    assert len(csv.read_text().splitlines()) == 1 + 15 + 110


def test_labelled_folders_show_the_auroc_curve_too(lab, fashion):
    folder = lab / "labelled"
    write_pngs(folder / "normal", pick(fashion, SNEAKER, 60, 5), "s")
    write_pngs(folder / "anomaly", pick(fashion, BAG, 6, 6), "b")
    at = read_folder(ok(AppTest.from_file(str(PAGE), default_timeout=120).run()), folder)
    assert metrics(at)["labels"] == "60 normal + 6 anomalies"
    at = train(at, "iaead", 3, lab / "runs")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles[0].startswith("AUROC per epoch") and titles[1] == "Losses and radius per epoch"
    run = the_run(lab / "runs")
    auroc = run.records[-1]["metrics"]["latent_mean"]["auroc"]
    assert any(f"AUROC {auroc:.3f}" in c.value for c in at.caption)
    # IAEAD learns a radius R: flag the codes farther than R from c (eq. 7).
    final = run.load_final()
    at.radio(key="img_thr_kind").set_value("radius").run()
    outside = int((final["score_latent_c"] > float(final["R"])).sum())
    assert metrics(ok(at))["flagged"] == f"{outside} of 66" and metrics(at)["score"] == "latent_c"
    # issue 17 §5: at ν = 1 (the default) R is the smallest distance in a batch, and the page
    # says so beside the count it produces
    assert run.meta["nu"] == 1.0
    [warn] = [w.value for w in at.warning if "With ν = 1" in w.value]
    assert f"Here it flags {outside} of 66 images." in warn


def test_a_zip_upload_and_bad_input_in_words(lab, fashion):
    at = ok(AppTest.from_file(str(PAGE), default_timeout=120).run())
    at.button(key="img_read").click().run()
    assert "Choose a .zip file to upload first" in ok(at).sidebar.error[0].value
    at.radio(key="img_how").set_value("folder").run()
    at.button(key="img_read").click().run()
    assert "Give the path of a folder" in ok(at).sidebar.error[0].value
    at = read_folder(at, lab / "nowhere")
    assert any("does not exist" in e.value for e in at.error)
    few = lab / "few"
    write_pngs(few, pick(fashion, SNEAKER, 10, 7), "s")
    at = read_folder(at, few)
    assert any("holds 10 readable image(s); at least 50" in e.value for e in at.error)

    at.radio(key="img_how").set_value("zip").run()
    at.file_uploader(key="img_zip").set_value(("notes.zip", b"plain text", "application/zip"))
    at.button(key="img_read").click().run()
    assert "notes.zip is not a zip archive" in ok(at).sidebar.error[0].value
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for j, a in enumerate(pick(fashion, SNEAKER, 60, 8)):
            png = io.BytesIO()
            from PIL import Image

            Image.fromarray(a[0]).save(png, "PNG")
            z.writestr(f"photos/{j:02d}.png", png.getvalue())
    at.file_uploader(key="img_zip").set_value(("photos.zip", buf.getvalue(), "application/zip"))
    at.button(key="img_read").click()
    at = settle(at)
    assert metrics(at)["images used"] == "60" and not at.sidebar.error
    (kept,) = (lab / "runs" / ".uploads").glob("*-photos.zip")
    assert kept.read_bytes() == buf.getvalue()


# ------------------------------------------------ server paths (issue 18): no data needed

SECRET = "root:$6$s3cr3t-hash:19000:0:99999:7:::"


@pytest.fixture
def bare_lab(tmp_path, monkeypatch):
    """A lab started in ``tmp_path/work`` with the data root ``tmp_path/data`` and no
    IAEAD_LAB_PATHS: the default allowed folders."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("IAEAD_RUNS_DIR", str(work / "runs"))
    monkeypatch.setenv("IAEAD_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("IAEAD_LAB_PATHS", raising=False)
    yield tmp_path
    state._registry(str((work / "runs").resolve())).shutdown()


def _noise_pngs(folder: Path, n: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(folder / f"{i:02d}.png")


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.sidebar.error] + [e.value for e in at.error]


def test_server_paths_stay_inside_the_allowed_folders_and_never_show_a_file(bare_lab, monkeypatch):
    work, outside = bare_lab / "work", bare_lab / "elsewhere"
    _noise_pngs(work / "imgs", 50)
    _noise_pngs(outside / "imgs", 50)
    (outside / "shadow").write_text(SECRET + "\n")
    (work / "notes").write_text(SECRET + "\n")
    (work / "link").symlink_to(outside)

    at = ok(AppTest.from_file(str(PAGE), default_timeout=60).run())
    assert at.radio(key="img_how").value == "zip"  # before: a server path was the default
    at.radio(key="img_how").set_value("folder").run()
    for typed, field in ((outside / "imgs", "Folder or .zip"), (work / "link" / "imgs", "Folder or .zip")):
        at.text_input(key="img_path").set_value(str(typed))
        at.button(key="img_read").click()
        errors = _errors(settle(at))
        # Before: any folder the server could read was read.
        assert any(f"{field}: {typed} is outside the folders this lab reads from" in e
                   and "IAEAD_LAB_PATHS" in e and "Upload a .zip" in e for e in errors), errors
    at.text_input(key="img_path").set_value("imgs")  # relative: from the working directory
    at.text_input(key="img_labels").set_value(str(outside / "shadow"))
    at.button(key="img_read").click()
    assert any("Labels CSV: " in e and "is outside the folders" in e for e in _errors(settle(at)))
    at.text_input(key="img_labels").set_value(str(work / "notes"))
    at.button(key="img_read").click()
    errors = _errors(settle(at))
    # Before: "... line 1: expected 'filename,label', got 'root:$6$s3cr3t-hash:...'".
    assert any("notes, line 1: expected two columns" in e for e in errors), errors
    assert not any("s3cr3t" in e or "root:" in e for e in errors)
    # The setting names the folders instead.
    monkeypatch.setenv("IAEAD_LAB_PATHS", str(outside))
    at.text_input(key="img_labels").set_value("")
    at.text_input(key="img_path").set_value(str(outside / "imgs"))
    at.button(key="img_read").click()
    at = settle(at)
    assert not _errors(at) and metrics(at)["images used"] == "50"
