"""What the Your images page shows and does, without Streamlit: reading a folder or an uploaded
zip, training on it through the job registry, the ranking of a trained run with a threshold,
and scoring a second folder with the trained model.

Everything goes through the core (:mod:`iaead_core.data.image_files`, :mod:`iaead_core.detector`): the
page reads the same run folders, thresholds and CSV columns as ``python -m iaead_core train
--images`` and ``score``.

A path typed into the page names a file *on the server*, so it is checked first
(:func:`server_path`): only files under the lab's allowed folders are read — the working
directory and the data root, or the folders listed in ``IAEAD_LAB_PATHS`` — and no message ever
shows what a file holds (the core's errors give a file name and a line at most). Uploading a
.zip is the page's default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from iaead_core.config import TrainConfig, scaled_config
from iaead_core.data import resolve_data_root
from iaead_core.data.image_files import ImageFolderWarning, load_image_folder
from iaead_core.data.image_set import ImageFolderError, ImageSet, SkippedFile, TooFewImagesError
from iaead_core.detector import (CSV_COLUMNS, Detector, RANKING, ScoreReport, Threshold,
                                 choose_threshold, flag, rank, score_folder, write_ranking)
from iaead_core.runs import Run, read_manifest
from iaead_core.storage import atomic_output
from iaead_core.training.restore import restore_image_set
from ..jobs import JobRegistry, config_key

__all__ = ["Source", "Loaded", "Ranking", "Scored", "UPLOADS", "ENV_LAB_PATHS", "allowed_roots",
           "server_path", "save_upload", "read_images",
           "thumbnails", "folder_config", "submit_training", "folder_runs", "load_ranking",
           "threshold", "ranking_frame", "histogram", "score_new", "images_for_run",
           "THRESHOLD_TITLES", "skipped_frame"]

#: Folder under the runs root where uploaded archives are kept (hidden: not a run). A run
#: trained on an upload records this path, so its images can be read again later.
UPLOADS = ".uploads"

#: How a threshold is chosen, in words (kinds of :data:`iaead_core.detector.THRESHOLD_KINDS`).
THRESHOLD_TITLES = {"contamination": "contamination ρ: flag the top ρ of the training scores",
                    "quantile": "quantile q of the training scores",
                    "radius": "the learned radius R (IAEAD, soft-boundary Deep SVDD)"}


#: The setting that lists the server folders the page may read (``os.pathsep``-separated);
#: unset or empty: the working directory and the data root (``IAEAD_DATA_ROOT`` or ``./data``).
ENV_LAB_PATHS = "IAEAD_LAB_PATHS"


def allowed_roots() -> list[Path]:
    """The server folders whose files the page may read by path (absolute, symlinks resolved):
    those of ``$IAEAD_LAB_PATHS``, else the working directory and the data root."""
    listed = [t for t in os.environ.get(ENV_LAB_PATHS, "").split(os.pathsep) if t.strip()]
    roots = listed or [os.getcwd(), str(resolve_data_root())]
    return list(dict.fromkeys(Path(r.strip()).expanduser().resolve() for r in roots))


def server_path(text: str, what: str) -> str:
    """A path typed into the page, as an absolute path with symlinks resolved, if it lies under
    one of :func:`allowed_roots` (a relative path is taken from the working directory).

    Parameters
    ----------
    text : str
        What the user typed.
    what : str
        The field's name, for the message (e.g. ``"Labels CSV"``).

    Raises
    ------
    ValueError
        An empty path, or one outside the allowed folders (a symlink is judged by its target):
        the message names the field, the folders, the upload alternative and the setting.
    """
    text = (text or "").strip()
    if not text:
        raise ValueError(f"{what}: give a path on this server, or upload a .zip instead.")
    path = Path(text).expanduser()
    resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
    roots = allowed_roots()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        raise ValueError(
            f"{what}: {text} is outside the folders this lab reads from "
            f"({', '.join(str(r) for r in roots)}). Upload a .zip instead, or start the lab with "
            f"{ENV_LAB_PATHS} listing a folder that holds it (separated by '{os.pathsep}').")
    return str(resolved)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name).strip("-.") or "images.zip"


def save_upload(name: str, data: bytes, runs_root: str | Path) -> Path:
    """Keep an uploaded zip under ``<runs root>/.uploads/<hash>-<name>`` (the same content is
    kept once) and return its path.

    Raises
    ------
    ImageFolderError
        If ``data`` is not a zip archive.
    """
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ImageFolderError(f"{name} is not a zip archive; upload a .zip of a folder of "
                               "images (PNG, JPEG, BMP or TIFF).")
    folder = Path(runs_root) / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    stem = _slug(name)
    path = folder / f"{hashlib.sha1(data).hexdigest()[:12]}-{stem if stem.lower().endswith('.zip') else stem + '.zip'}"
    if not path.exists():  # a unique temp file, then one rename: never half an archive
        with atomic_output(path, "wb") as f:
            f.write(data)
    return path


@dataclass(frozen=True)
class Source:
    """Where the images are and how to read them.

    Attributes
    ----------
    path : str — a folder or a ``.zip`` on the server; shown : str — how to name it to the user
    channels : "auto", 1 or 3; fit : "pad" or "crop"; labels : path of a label CSV or None
    stamp : float — when the user asked (asking again reads again)
    """

    path: str
    channels: Any = "auto"
    fit: str = "pad"
    labels: str | None = None
    shown: str = ""
    stamp: float = 0.0

    def key(self) -> tuple:
        """What a read of it depends on: the settings, and when it was asked for (a folder
        changed since is read again when the user asks again)."""
        return ("read", self.path, self.channels, self.fit, self.labels, self.stamp)


@dataclass
class Loaded:
    """The outcome of reading a :class:`Source`: the images, or the reason they cannot be used
    (with the files that were skipped or ignored, when known)."""

    images: ImageSet | None
    error: str | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0


def read_images(source: Source) -> Loaded:
    """Read a folder or zip with :func:`~iaead_core.data.image_files.load_image_folder`; an unusable one
    gives its message in words (never raises for bad input)."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():  # the set keeps them in .warnings, shown by the page
            warnings.simplefilter("ignore", ImageFolderWarning)
            s = load_image_folder(source.path, channels=source.channels, fit=source.fit,
                                  labels=source.labels or None)
    except TooFewImagesError as e:
        return Loaded(None, str(e), e.skipped, e.ignored, time.perf_counter() - t0)
    except (ImageFolderError, ValueError, OSError) as e:
        return Loaded(None, str(e), seconds=time.perf_counter() - t0)
    return Loaded(s, None, s.skipped, s.ignored, time.perf_counter() - t0)


def skipped_frame(skipped: list[SkippedFile], ignored: list[SkippedFile]) -> pd.DataFrame:
    """Files that were not used, with why: unreadable images first, then other files."""
    rows = ([{"file": s.path, "not used because": s.reason, "kind": "unreadable image"} for s in skipped]
            + [{"file": s.path, "not used because": s.reason, "kind": "not an image"} for s in ignored])
    return pd.DataFrame(rows, columns=["file", "kind", "not used because"])


def thumbnails(images, index, scale: int = 3) -> list[np.ndarray]:
    """The images at ``index`` as uint8 pictures for display, from the [−1, 1] network input
    ``(N, C, 32, 32)``: ``(32·scale, 32·scale)`` grey or ``(…, …, 3)`` colour, each pixel a
    ``scale``×``scale`` block (a browser would blur a small picture it enlarges)."""
    idx = np.asarray(list(index), np.int64)
    if idx.size == 0:
        return []
    x = np.asarray(images[idx], np.float32)
    x = np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    x = x.repeat(scale, axis=2).repeat(scale, axis=3)
    return [a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0) for a in x]


# ----------------------------------------------------------------------------- training

def folder_config(method: str, preset: str, epochs: int, rho: float, seed: int, device: str,
                  images: ImageSet) -> TrainConfig:
    """The config of a training on the user's images: the preset's settings with ``epochs``
    (warm-up scaled with them), ρ = the guessed anomaly fraction, and the folder as data
    root. The engine records the data as ``dataset = "folder"``.

    Raises
    ------
    ValueError
        For a value the config rejects.
    """
    return scaled_config(preset, method, int(epochs), rho=float(rho), seed=int(seed),
                         device=device, data_root=images.root, max_samples=0,
                         extra={"images": {"channels": int(images.channels), "fit": images.fit}})


def submit_training(reg: JobRegistry, cfg: TrainConfig, images: ImageSet) -> str:
    """Queue the training; returns its group id. Pressing Start again while the same
    training (same settings, same folder) is queued or running returns that one."""
    content = config_key(cfg)[:8]
    for g in reg.groups("images"):
        if g.endswith(content) and reg.group_active(g):
            return g
    group = f"images-{time.strftime('%Y%m%d-%H%M%S')}-{content}"
    cfg = cfg.replace(extra={**cfg.extra, "group": group, "kind": "images"})
    # The set's ρ is the guess the run records (the engine takes ρ from the data).
    reg.submit(cfg, group, "images", data=dataclasses.replace(images, rho=cfg.rho))
    return group


def folder_runs(runs: list[Run]) -> list[Run]:
    """Runs trained on a folder of images, newest first."""
    found = [r for r in runs if r.config.get("dataset") == "folder"]
    return sorted(found, key=lambda r: r.meta.get("created") or 0, reverse=True)


# ------------------------------------------------------------------------------ ranking

@dataclass
class Ranking:
    """A trained folder run, ready to rank and threshold.

    Attributes
    ----------
    run : Run; detector : Detector (fitted from the run, model on the CPU)
    paths : list of str — training images (``images.csv`` order); labels : int64 ``(N,)``
        0 normal, 1 anomaly, −1 unknown
    """

    run: Run
    detector: Detector
    paths: list[str]
    labels: np.ndarray

    @property
    def has_radius(self) -> bool:
        """Whether the method learned a radius R a threshold can use."""
        try:
            self.detector.threshold("radius")
        except ValueError:
            return False
        return True


def load_ranking(run: Run) -> Ranking:
    """:class:`Ranking` of a completed (or stopped) folder run. Writes the run's
    ``ranking.csv`` (contamination threshold at the run's ρ) when it has none yet.

    Raises
    ------
    iaead_core.runs.RunError
        No completed epoch, or weights / scores / manifest missing or corrupt.
    """
    det = Detector.from_run(run, device="cpu")
    paths, labels = read_manifest(run.dir)
    if not (run.dir / RANKING).exists():  # as `train --images` leaves it (lab runs train bare)
        try:
            write_ranking(run.dir, paths, det.decision_scores_, det.threshold(), labels)
        except OSError:  # a read-only runs folder: the page still ranks
            pass
    return Ranking(run, det, paths, labels)


def threshold(r: Ranking, kind: str, param: float | None) -> tuple[Threshold, np.ndarray]:
    """The threshold and the training scores it applies to (the radius compares R with the
    distance to c, another rule than the method's primary score).

    Raises
    ------
    iaead_core.detector.ThresholdError
        See :func:`~iaead_core.detector.choose_threshold`.
    """
    det = r.detector
    if kind == "radius":
        thr = det.threshold("radius")
        return thr, np.asarray(det.final_[f"score_{thr.rule}"], np.float64)
    thr = choose_threshold(det.decision_scores_, kind, param, method=det.method_, rule=det.rule_)
    return thr, det.decision_scores_


def ranking_frame(paths: list[str], scores: np.ndarray, labels: np.ndarray | None,
                  thr: Threshold, which: str = "train") -> pd.DataFrame:
    """One row per image, most anomalous first, with the score CSV's columns
    (:data:`iaead_core.detector.CSV_COLUMNS`: path, score, rank, flagged, set, label, rule,
    threshold, threshold_by) and ``index``, the image's place in ``paths``."""
    scores = np.asarray(scores, np.float64)
    r, f = rank(scores), flag(scores, thr.value)
    order = np.argsort(r, kind="stable")
    names = {0: "normal", 1: "anomaly"}
    df = pd.DataFrame({
        "path": [paths[i] for i in order], "score": scores[order], "rank": r[order],
        "flagged": f[order], "set": which,
        "label": ["" if labels is None else names.get(int(labels[i]), "") for i in order],
        "rule": thr.rule, "threshold": thr.value, "threshold_by": thr.describe()})
    df["index"] = order
    return df[[*CSV_COLUMNS, "index"]]


def histogram(scores: np.ndarray, thr: Threshold, labels: np.ndarray | None = None,
              title: str = "Scores of the training images") -> go.Figure:
    """Histogram of the scores (normal / anomaly apart when both labels are known), with the
    threshold as a vertical line: images right of it are flagged."""
    s = np.asarray(scores, np.float64)
    fig = go.Figure()
    known = labels is not None and set(np.unique(labels)) >= {0, 1}
    groups = ([("labelled normal", labels == 0, "#2c6fbb"), ("labelled anomaly", labels == 1, "#d62728")]
              if known else [("images", np.ones(len(s), bool), "#2c6fbb")])
    for name, m, colour in groups:
        fig.add_trace(go.Histogram(x=s[m & np.isfinite(s)], name=name, nbinsx=50,
                                   marker_color=colour, opacity=0.65 if known else 0.9))
    n = int(flag(s, thr.value).sum())
    fig.add_vline(x=thr.value, line=dict(color="#333", dash="dash", width=2),
                  annotation_text=f"threshold {thr.value:.4g}: {n} flagged",
                  annotation_position="top right")
    fig.update_layout(barmode="overlay", title=dict(text=title, x=0, font=dict(size=15)),
                      height=320, margin=dict(l=50, r=20, t=50, b=40), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    fig.update_xaxes(title=f"score ({thr.rule}; higher = more anomalous)")
    fig.update_yaxes(title="images")
    return fig


def images_for_run(run: Run, loaded: ImageSet | None) -> ImageSet:
    """The run's training images in score order: the set already read when it is the one the
    run trained on (same folder, channels, fit and files), else read again from the recorded
    folder (:func:`~iaead_core.training.restore.restore_image_set`).

    Raises
    ------
    iaead_core.runs.RunError, ImageFolderError
        The manifest is missing, or the recorded files are gone or unreadable.
    """
    data = run.meta.get("data") or {}
    if (loaded is not None and loaded.root == data.get("root")
            and loaded.channels == data.get("channels") and loaded.fit == data.get("fit")
            and loaded.paths == read_manifest(run.dir)[0]):
        return loaded
    return restore_image_set(run)


# ------------------------------------------------------------------------------ scoring

@dataclass
class Scored:
    """A second folder scored with a trained run: the core's report and the new images (for
    display), or the reason it could not be done."""

    report: ScoreReport | None
    images: Any = None
    error: str | None = None


def score_new(run: Run, source: Source, kind: str, param: float | None) -> Scored:
    """Score ``source`` with the run's model and threshold (:func:`iaead_core.detector.
    score_folder`, which also writes its CSV into the run folder); bad input gives words."""
    from iaead_core.detector import ThresholdError
    from iaead_core.runs import RunError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImageFolderWarning)
            report = score_folder(run, source.path, threshold=kind, param=param,
                                  labels=source.labels or None, device="cpu")
            data = report.data
            images = load_image_folder(source.path, channels=int(data["channels"]),
                                       fit=data["fit"], files=report.paths, min_images=1).images
    except (ImageFolderError, ThresholdError, RunError, ValueError, OSError) as e:
        return Scored(None, None, str(e))
    return Scored(report, images)
