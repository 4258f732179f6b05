"""Run folders: every result written as it is produced, readable by people and programs.

Layout of ``<runs_root>/<run_id>/``::

    config.json      the TrainConfig, data summary, seed, versions, device (written first)
    status.json      running | completed | stopped | failed, the error message if any, and
                     who writes the run: pid, host, heartbeat (unix time, refreshed every epoch
                     and every HEARTBEAT_PERIOD_S seconds while the run is open)
    metrics.jsonl    one JSON record per epoch, appended and flushed every epoch
    snapshots/epoch_NNNN.npz   latent codes (float16) and scores at chosen epochs
    final.npz        final scores per rule, latents, is_anomaly, labels
    model.pt         method state (weights, c, R); load with ``weights_only=True``

The runs root is ``./runs`` unless given or set by ``IAEAD_RUNS_DIR``.

A run's *live status* (:attr:`Run.live_status`) is what status.json says, corrected for runs
whose process died without closing the folder (``kill -9``, a power cut): a run that says
"running" is reported "interrupted" when its process is gone from this host, or when its
heartbeat is older than :data:`HEARTBEAT_TIMEOUT_S` (a run written on another machine).
Folders that cannot be read as runs are listed with live status "corrupt" and the reason.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# torch is imported inside the functions that read or write weights, so that listing runs
# (`python -m iaead_core runs`) does not load it.

__all__ = ["RunWriter", "Run", "RunError", "resolve_runs_root", "list_runs", "load_run",
           "delete_run", "new_run_id", "read_manifest", "LIVE_STATUSES", "HEARTBEAT_PERIOD_S",
           "HEARTBEAT_TIMEOUT_S"]

#: Every value of :attr:`Run.live_status`.
LIVE_STATUSES = ("running", "completed", "stopped", "failed", "interrupted", "corrupt")
#: Seconds between heartbeats of an open run (a background thread of :class:`RunWriter`,
#: besides the heartbeat written with every epoch record).
HEARTBEAT_PERIOD_S = 30.0
#: A "running" run whose heartbeat is older than this is reported "interrupted": 20 missed
#: heartbeats, so a loaded machine or a slow disk does not trip it. On the run's own host a
#: vanished process is detected at once, without waiting for this.
HEARTBEAT_TIMEOUT_S = 600.0
# A folder without config.json younger than this may be a run being created (RunWriter
# creates the folder, then writes config.json): not yet reported as corrupt.
_CREATION_GRACE_S = 10.0
_RUN_FILES = ("config.json", "status.json", "metrics.jsonl", "snapshots", "model.pt", "final.npz")


class RunError(RuntimeError):
    """A run folder or one of its files is missing, corrupt or not an iaead run."""


def resolve_runs_root(runs_root: str | os.PathLike | None = None) -> Path:
    """The runs folder: ``runs_root``, else ``$IAEAD_RUNS_DIR``, else ``./runs``."""
    return Path(runs_root or os.environ.get("IAEAD_RUNS_DIR") or "runs")


def new_run_id(method: str, dataset: str, normal_class: int, seed: int) -> str:
    """A sortable, unique folder name: ``YYYYmmdd-HHMMSS-<method>-<dataset>-<class>-s<seed>-<4 hex>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{method}-{dataset}-{normal_class}-s{seed}-{uuid.uuid4().hex[:4]}"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, (Path,)):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class RunWriter:
    """Writes one run folder while the run is going.

    Parameters
    ----------
    runs_root : path
        Parent folder (created if needed).
    run_id : str
    meta : dict
        JSON-able description written to ``config.json`` at once (config, data summary,
        versions, device, seed).

    heartbeat_period : float
        Seconds between background heartbeats (default :data:`HEARTBEAT_PERIOD_S`); 0 turns
        the background thread off (the heartbeat is then refreshed only with each record).

    Raises
    ------
    RunError
        If the folder already exists.

    Notes
    -----
    ``status.json`` always holds ``pid`` and ``host`` (this process) and ``heartbeat`` (unix
    time of the last sign of life), so a reader can tell a live run from one whose process
    died (:attr:`Run.live_status`). Call :meth:`close` when the run ends.
    """

    def __init__(self, runs_root: str | os.PathLike, run_id: str, meta: dict[str, Any],
                 heartbeat_period: float = HEARTBEAT_PERIOD_S) -> None:
        self.dir = Path(runs_root) / run_id
        try:
            (self.dir / "snapshots").mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise RunError(f"run folder {self.dir} already exists") from None
        self.run_id = run_id
        self._lock = threading.Lock()  # status.json is written from two threads
        self._closed = threading.Event()
        self._status: dict[str, Any] = {}
        _write_json(self.dir / "config.json", meta)
        self.set_status("running")
        self._metrics = open(self.dir / "metrics.jsonl", "a", encoding="utf-8")
        self._beat: threading.Thread | None = None
        if heartbeat_period > 0:
            self._beat = threading.Thread(target=self._beat_loop, args=(heartbeat_period,),
                                          name=f"heartbeat-{run_id}", daemon=True)
            self._beat.start()

    def _beat_loop(self, period: float) -> None:
        while not self._closed.wait(period):
            self.heartbeat()

    def set_status(self, status: str, error: str | None = None, **extra: Any) -> None:
        """Record the run's state: ``running``, ``completed``, ``stopped`` or ``failed``
        (with ``pid``, ``host`` and a fresh ``heartbeat``)."""
        now = time.time()
        with self._lock:
            self._status = {"status": status, "error": error, "updated": now,
                            "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": now,
                            **extra}
            _write_json(self.dir / "status.json", self._status)

    def heartbeat(self) -> None:
        """Refresh ``heartbeat`` in ``status.json`` (no-op once the writer is closed)."""
        with self._lock:
            if self._closed.is_set() or not self._status:
                return
            self._status["heartbeat"] = time.time()
            _write_json(self.dir / "status.json", self._status)

    def append_record(self, record: dict[str, Any]) -> None:
        """Append one epoch record to ``metrics.jsonl``, flush it to disk, and refresh the
        heartbeat."""
        self._metrics.write(json.dumps(record, default=_json_default) + "\n")
        self._metrics.flush()
        os.fsync(self._metrics.fileno())
        self.heartbeat()

    def save_snapshot(self, epoch: int, z: np.ndarray, scores: dict[str, np.ndarray],
                      centre: np.ndarray | None, R: float) -> None:
        """Save latents ``z`` ``(N, d)`` and scores at 1-based ``epoch``.

        The codes are kept as their mean ``z_mean`` ``(d,)`` float32 plus the deviations from
        it in float16 (half the size of float32): float16 keeps about three digits *of the
        deviations*, so codes that have shrunk onto a tiny line near ±1 keep their shape (in
        plain float16, whose steps there are 5e-4, such a line fell onto one or two points
        and the Latent page's map contradicted its own histogram)."""
        arrays = {f"score_{k}": np.asarray(v, np.float32) for k, v in scores.items()}
        if centre is not None:
            arrays["centre"] = np.asarray(centre, np.float32)
        z = np.asarray(z, np.float64)
        mean = z.mean(axis=0) if len(z) else np.zeros(z.shape[1:])
        np.savez(self.dir / "snapshots" / f"epoch_{epoch:04d}.npz",
                 z=(z - mean).astype(np.float16), z_mean=mean.astype(np.float32),
                 R=np.float32(R), **arrays)

    def save_final(self, z: np.ndarray, scores: dict[str, np.ndarray], is_anomaly: np.ndarray,
                   labels: np.ndarray, centre: np.ndarray | None, R: float) -> None:
        """Save the final latents ``(N, d)`` float32, scores ``(N,)`` per rule, ground truth
        (``is_anomaly`` None, for a set without labels, is left out of the file)."""
        arrays = {f"score_{k}": np.asarray(v, np.float64) for k, v in scores.items()}
        if is_anomaly is not None:
            arrays["is_anomaly"] = is_anomaly
        if centre is not None:
            arrays["centre"] = np.asarray(centre, np.float32)
        np.savez(self.dir / "final.npz", z=z.astype(np.float32),
                 labels=labels, R=np.float64(R), **arrays)

    def save_weights(self, state: dict[str, Any]) -> None:
        """Save the method state (:meth:`Method.state`) to ``model.pt``."""
        import torch

        tmp = self.dir / "model.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.dir / "model.pt")

    def close(self) -> None:
        """Stop the heartbeat and close ``metrics.jsonl`` (the last status stays as written)."""
        self._closed.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join(timeout=5)
        self._metrics.close()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie, killed but not yet reaped by
    its parent, counts as gone)."""
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C there: rely on the heartbeat
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists


def _gone_reason(status: dict[str, Any], now: float | None = None) -> str | None:
    """Why a run that says "running" is not, or None if it may well be running."""
    now = time.time() if now is None else now
    beat = status.get("heartbeat", status.get("updated"))
    if isinstance(beat, (int, float)) and now - beat > HEARTBEAT_TIMEOUT_S:
        return f"no heartbeat for {_duration(now - beat)}"
    pid, host = status.get("pid"), status.get("host")
    if isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid):
        return f"its process {pid} on this host is gone"
    return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Run:
    """A saved run, read back from its folder.

    Attributes
    ----------
    run_id, dir
    meta : dict — contents of ``config.json`` (``meta["config"]`` is the TrainConfig dict);
        empty for a corrupt folder.
    status : dict — contents of ``status.json`` (empty if unreadable).
    records : list of dict — per-epoch records (a torn last line, from a crash, is skipped).
    problem : str or None — why the folder is not a sound run (corrupt or missing
        ``config.json`` or ``status.json``), in words; None for a sound run.
    """

    run_id: str
    dir: Path
    meta: dict[str, Any]
    status: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.meta.get("config", {})

    @property
    def live_status(self) -> str:
        """One of :data:`LIVE_STATUSES`.

        ``"corrupt"`` when :attr:`problem` is set; otherwise status.json's status, except that
        ``"running"`` becomes ``"interrupted"`` when the run's process is gone from this host
        (pid no longer alive) or its heartbeat is older than :data:`HEARTBEAT_TIMEOUT_S`.
        Computed afresh on every access.
        """
        if self.problem:
            return "corrupt"
        s = self.status.get("status")
        if s == "running":
            return "interrupted" if _gone_reason(self.status) else "running"
        return s if s in LIVE_STATUSES else "corrupt"

    @property
    def status_note(self) -> str:
        """One line explaining :attr:`live_status` where it needs it: the problem of a corrupt
        folder, why a run counts as interrupted, a failed run's error; else ``""``."""
        live = self.live_status
        if live == "corrupt":
            return self.problem or f"unknown status {self.status.get('status')!r} in status.json"
        if live == "interrupted":
            return (f"interrupted: {_gone_reason(self.status)}; the "
                    f"{len(self.records)} completed epoch(s) are kept")
        if live in ("failed", "stopped"):
            return str(self.status.get("error") or "")
        return ""

    @property
    def final_metrics(self) -> dict[str, dict[str, float]]:
        """Metrics of the last recorded epoch: rule → {auroc, aupr_in, aupr_out, ...}; empty
        when there is no record or it holds no metrics (a damaged or label-free run)."""
        metrics = self.records[-1].get("metrics") if self.records else None
        return metrics if isinstance(metrics, dict) else {}

    def snapshot_epochs(self) -> list[int]:
        """1-based epochs that have a latent snapshot, ascending."""
        return sorted(int(p.stem.split("_")[1]) for p in (self.dir / "snapshots").glob("epoch_*.npz"))

    def load_snapshot(self, epoch: int) -> dict[str, np.ndarray]:
        """Arrays of one snapshot: ``z`` (N, d) float32, ``score_<rule>``, ``centre``, ``R``.

        Raises
        ------
        RunError
            If the snapshot is missing or unreadable.
        """
        return _load_npz(self.dir / "snapshots" / f"epoch_{epoch:04d}.npz")

    def load_final(self) -> dict[str, np.ndarray]:
        """Arrays of ``final.npz`` (see :meth:`RunWriter.save_final`). Raises RunError."""
        return _load_npz(self.dir / "final.npz")

    def load_weights(self, map_location: Any = "cpu") -> dict[str, Any]:
        """The method state from ``model.pt``, loaded with ``weights_only=True`` (no pickled
        code is ever run).

        Raises
        ------
        RunError
            If the file is missing, corrupt, or not an iaead method state. The message gives a
            short reason in the project's words (torch's own text is kept as the cause).
        """
        import torch

        path = self.dir / "model.pt"
        if not path.exists():
            raise RunError(f"{path} does not exist (the run ended before weights were saved)")
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as e:  # torch raises several types for corrupt / foreign files
            raise RunError(f"{path} could not be loaded: {_weights_reason(e)}") from e
        if not isinstance(state, dict) or "model" not in state or "method" not in state:
            raise RunError(f"{path} is not an iaead checkpoint (expected keys 'method' and 'model')")
        return state


def _weights_reason(e: Exception) -> str:
    """A short reason for a failed ``torch.load``, without torch's advice on ``weights_only``
    (which would tell a user to unpickle a file of unknown origin)."""
    text = str(e)
    if "weights only" in text.lower() or "weights_only" in text:
        return ("it holds Python objects besides tensors, so it is not a weights file saved by "
                "iaead (such files are not unpickled here, for safety)")
    first = text.strip().splitlines()[0] if text.strip() else ""
    if len(first) > 160:
        first = first[:157] + "..."
    return f"the file is truncated, corrupt or not a torch file ({type(e).__name__}: {first})"


def _npz_reason(e: Exception) -> str:
    """A short reason for a failed ``np.load``, without numpy's advice on ``allow_pickle``
    (which would tell a user to unpickle a file of unknown origin)."""
    text = str(e).strip()
    if "allow_pickle" in text or "pickle" in text.lower():
        return ("it holds Python objects (an object array), so it is not an array file saved "
                "by iaead (such files are not unpickled here, for safety)")
    first = text.splitlines()[0] if text else type(e).__name__
    return first if len(first) <= 160 else first[:157] + "..."


def read_manifest(run_dir: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """The training images of a run: paths ``(N,)`` in the order of the saved scores, and
    labels int64 ``(N,)`` (0 normal, 1 anomaly, −1 unknown).

    Raises
    ------
    RunError
        If the run folder has no readable manifest (:data:`~iaead_core.data.image_set.MANIFEST`).
    """
    from iaead_core.data.image_set import MANIFEST  # lazy: the image_set module loads torch

    p = Path(run_dir) / MANIFEST
    try:
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        paths = [r["path"] for r in rows]
        labels = np.array([{"normal": 0, "anomaly": 1}.get(r["label"], -1) for r in rows],
                          np.int64)
    except (OSError, KeyError, csv.Error) as e:
        raise RunError(f"{p} is missing or corrupt: {e}") from e
    return paths, labels


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise RunError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {k: f[k] for k in f.files}
    except Exception as e:
        raise RunError(f"{path} is corrupt: {_npz_reason(e)}") from e
    if "z" in out:  # a snapshot keeps deviations from ``z_mean`` (older ones: plain codes)
        mean = out.pop("z_mean", None)
        out["z"] = out["z"].astype(np.float32) + (0 if mean is None else mean.astype(np.float32))
    return out


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(content, None), or (None, reason) for a missing or unreadable file."""
    try:
        return json.loads(path.read_text()), None
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"{path.name} is corrupt ({type(e).__name__}: {e})"


def _read_folder(d: Path) -> tuple[Run, str | None]:
    """Read whatever a run folder holds; never raises. Returns the Run (``problem`` set if the
    folder is not sound) and the config.json problem alone (None if config.json is sound)."""
    meta, config_problem = _read_json(d / "config.json")
    if config_problem is None and not (isinstance(meta, dict) and isinstance(meta.get("config"), dict)):
        config_problem = "config.json holds no run configuration"
    if config_problem is not None:
        meta = {}
    status, status_problem = _read_json(d / "status.json")
    if status_problem is None and not isinstance(status, dict):
        status_problem = "status.json holds no status"
    if status_problem is not None:
        status = {}
    records = []
    metrics = d / "metrics.jsonl"
    try:
        lines = metrics.read_text().splitlines() if metrics.exists() else []
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write
        if isinstance(rec, dict):
            records.append(rec)
    problem = "; ".join(p for p in (config_problem, status_problem) if p) or None
    return Run(run_id=d.name, dir=d, meta=meta, status=status, records=records,
               problem=problem), config_problem


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder (config, status, per-epoch records).

    A missing or corrupt ``status.json`` does not raise: the run is returned with
    :attr:`Run.problem` set (live status "corrupt"), its records intact.

    Raises
    ------
    RunError
        If the folder does not exist, or ``config.json`` is missing, not valid JSON or holds
        no run configuration.
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise RunError(f"{d} does not exist (the run may have been deleted)")
    run, config_problem = _read_folder(d)
    if config_problem is not None:
        raise RunError(f"{d} is not a readable iaead run: {config_problem}")
    return run


def _looks_like_run(d: Path) -> bool:
    """A folder holding any file a run writes (so a damaged run, not some other folder)."""
    return any((d / name).exists() for name in _RUN_FILES)


def list_runs(runs_root: str | os.PathLike | None = None) -> list[Run]:
    """Every run folder under the runs root, oldest first.

    Folders that hold run files but cannot be read as a run (missing or corrupt
    ``config.json`` or ``status.json``) are listed too, with :attr:`Run.live_status`
    ``"corrupt"`` and the reason in :attr:`Run.problem`; whatever records they hold are kept.
    Hidden folders, folders holding no run file, and a folder without config.json created in
    the last few seconds (a run being set up) are skipped. Never raises for a bad folder.
    """
    root = resolve_runs_root(runs_root)
    if not root.is_dir():
        return []
    runs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            if not _looks_like_run(d):
                continue
            if (not (d / "config.json").exists()
                    and time.time() - d.stat().st_mtime < _CREATION_GRACE_S):
                continue
            runs.append(_read_folder(d)[0])
        except OSError:  # deleted while we looked: it is simply gone
            continue
    return runs


def delete_run(run_dir: str | os.PathLike) -> None:
    """Delete a run folder, sound or corrupt.

    Raises
    ------
    RunError
        If the folder does not exist or holds none of the files a run writes (so nothing
        else is ever deleted).
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise RunError(f"{d} does not exist (already deleted?)")
    if not _looks_like_run(d):
        raise RunError(f"refusing to delete {d}: not an iaead run folder")
    shutil.rmtree(d)
