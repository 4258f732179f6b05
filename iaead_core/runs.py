"""Run folders: every result written as it is produced, readable by people and programs.

Layout of ``<runs_root>/<run_id>/``::

    config.json      the TrainConfig, data summary, seed, versions, device (written first)
    status.json      running | completed | stopped | failed, the error message if any, and
                     who writes the run: pid, host, heartbeat (unix time, refreshed every epoch
                     and every HEARTBEAT_PERIOD_S seconds while the run is open); checkpoint:
                     the epoch that model.pt and final.npz hold
    metrics.jsonl    one JSON record per epoch, appended and flushed every epoch
    snapshots/epoch_NNNN.npz   latent codes (float16) and scores at chosen epochs
    final.npz        final scores per rule, latents, is_anomaly, labels (rewritten at each
                     checkpoint while the run trains, then at its end)
    model.pt         method state (weights, c, R); load with ``weights_only=True`` (likewise)

The runs root is ``./runs`` unless given or set by ``IAEAD_RUNS_DIR``.

Every file is written through a uniquely named temporary file and one rename
(:mod:`iaead_core.storage`): a crash or a full disk never leaves a 0-byte or half-written
file, and a failed write raises :class:`~iaead_core.storage.StorageError` naming the folder.
The engine writes a checkpoint (model.pt and final.npz of the epoch just trained) every few
epochs, so a run killed with ``kill -9`` can still be scored and restored.

A run's *live status* (:attr:`Run.live_status`) is what status.json says, corrected for runs
whose process died without closing the folder (``kill -9``, a power cut): a run that says
"running" is reported "interrupted" when its process is gone from this host, or when its
heartbeat is older than :data:`HEARTBEAT_TIMEOUT_S` (a run written on another machine).
Folders that cannot be read as runs are listed with live status "corrupt" and the reason.
Run folders are untrusted input: only regular files are read, within
:data:`JSON_LIMIT_BYTES` / :data:`METRICS_LIMIT_BYTES`, JSON no deeper than
:data:`iaead_core.storage.MAX_JSON_DEPTH`, and every field a reader uses is type-checked (a
field of the wrong type makes the folder corrupt, with the reason); unreadable lines at the
end of metrics.jsonl are skipped, the good epochs before them kept.
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

from iaead_core.config import NUMERIC_RULES, TrainConfig
from iaead_core.storage import (StorageError, TooLargeError, atomic_output, load_json,
                                open_append, read_limited, storage_error, write_json)

# torch is imported inside the functions that read or write weights, so that listing runs
# (`python -m iaead_core runs`) does not load it.

__all__ = ["RunWriter", "Run", "RunError", "StorageError", "resolve_runs_root", "list_runs",
           "load_run", "delete_run", "new_run_id", "read_manifest", "LIVE_STATUSES",
           "HEARTBEAT_PERIOD_S", "HEARTBEAT_TIMEOUT_S", "JSON_LIMIT_BYTES",
           "METRICS_LIMIT_BYTES"]

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
#: config.json and status.json larger than this are not read (the engine writes a few KB; a
#: folder of the user's images lists at most 50 skipped files).
JSON_LIMIT_BYTES = 1 << 20
#: metrics.jsonl larger than this is not read (about 10,000 epochs of records; the paper's
#: longest protocol has 300).
METRICS_LIMIT_BYTES = 16 << 20


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
    """Write JSON atomically through a uniquely named temporary file
    (:func:`iaead_core.storage.write_json`); raises :class:`~iaead_core.storage.StorageError`."""
    write_json(path, obj, default=_json_default)


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
    StorageError
        If the folder or its first files cannot be written (disk full, read-only folder,
        permission denied): the message names the folder; nothing is left behind.

    Notes
    -----
    ``status.json`` always holds ``pid`` and ``host`` (this process) and ``heartbeat`` (unix
    time of the last sign of life), so a reader can tell a live run from one whose process
    died (:attr:`Run.live_status`); ``checkpoint`` is the epoch whose weights and scores
    ``model.pt`` and ``final.npz`` hold (:meth:`save_checkpoint`). Every file is written
    through a uniquely named temporary file and one rename (:mod:`iaead_core.storage`): a
    failed write (disk full) leaves the previous file, never a 0-byte or half-written one.
    Call :meth:`close` when the run ends.
    """

    def __init__(self, runs_root: str | os.PathLike, run_id: str, meta: dict[str, Any],
                 heartbeat_period: float = HEARTBEAT_PERIOD_S) -> None:
        self.dir = Path(runs_root) / run_id
        try:
            Path(runs_root).mkdir(parents=True, exist_ok=True)
            self.dir.mkdir(exist_ok=False)
        except FileExistsError:
            raise RunError(f"run folder {self.dir} already exists") from None
        except OSError as e:
            raise storage_error(e, self.dir, "create the run folder", folder=self.dir.parent) from e
        self.run_id = run_id
        self._lock = threading.Lock()  # status.json is written from two threads
        self._closed = threading.Event()
        self._status: dict[str, Any] = {}
        self._checkpoint: int | None = None
        self._metrics = None
        self._beat_failed: str | None = None
        try:
            (self.dir / "snapshots").mkdir()
            _write_json(self.dir / "config.json", meta)
            self.set_status("running")
            self._metrics = open_append(self.dir / "metrics.jsonl")
        except OSError as e:  # a full or read-only disk: leave no half-made folder behind
            shutil.rmtree(self.dir, ignore_errors=True)
            raise storage_error(e, self.dir / "config.json") from e
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
        (with ``pid``, ``host``, a fresh ``heartbeat`` and the ``checkpoint`` epoch).

        Raises
        ------
        StorageError
            status.json cannot be written (disk full, read-only); the old one stays.
        """
        now = time.time()
        with self._lock:
            self._status = {"status": status, "error": error, "updated": now,
                            "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": now,
                            **({} if self._checkpoint is None else {"checkpoint": self._checkpoint}),
                            **extra}
            _write_json(self.dir / "status.json", self._status)

    def heartbeat(self) -> bool:
        """Refresh ``heartbeat`` in ``status.json`` (no-op once the writer is closed).

        Never raises: a heartbeat that cannot be written (disk full) is skipped, and the
        reason kept in :attr:`heartbeat_problem`. Returns whether it was written."""
        with self._lock:
            if self._closed.is_set() or not self._status:
                return False
            self._status["heartbeat"] = time.time()
            try:
                _write_json(self.dir / "status.json", self._status)
            except OSError as e:
                self._beat_failed = str(e)
                return False
            self._beat_failed = None
            return True

    @property
    def heartbeat_problem(self) -> str | None:
        """Why the last heartbeat could not be written, or None."""
        return self._beat_failed

    def append_record(self, record: dict[str, Any]) -> None:
        """Append one epoch record to ``metrics.jsonl``, flush it to disk, and refresh the
        heartbeat.

        Raises
        ------
        StorageError
            The record cannot be written (disk full, read-only).
        """
        line = json.dumps(record, default=_json_default) + "\n"
        try:
            self._metrics.write(line)
            self._metrics.flush()
            os.fsync(self._metrics.fileno())
        except OSError as e:
            raise storage_error(e, self.dir / "metrics.jsonl") from e
        self.heartbeat()

    def save_snapshot(self, epoch: int, z: np.ndarray, scores: dict[str, np.ndarray],
                      centre: np.ndarray | None, R: float) -> None:
        """Save latents ``z`` ``(N, d)`` and scores at 1-based ``epoch``.

        The codes are kept as their mean ``z_mean`` ``(d,)`` float32 plus the deviations from
        it in float16 (half the size of float32): float16 keeps about three digits *of the
        deviations*, so codes that have shrunk onto a tiny line near ±1 keep their shape (in
        plain float16, whose steps there are 5e-4, such a line fell onto one or two points
        and the Latent page's map contradicted its own histogram).

        Raises
        ------
        StorageError
            The file cannot be written; no partial file is left.
        """
        arrays = {f"score_{k}": np.asarray(v, np.float32) for k, v in scores.items()}
        if centre is not None:
            arrays["centre"] = np.asarray(centre, np.float32)
        z = np.asarray(z, np.float64)
        mean = z.mean(axis=0) if len(z) else np.zeros(z.shape[1:])
        with atomic_output(self.dir / "snapshots" / f"epoch_{epoch:04d}.npz", "wb") as f:
            np.savez(f, z=(z - mean).astype(np.float16), z_mean=mean.astype(np.float32),
                     R=np.float32(R), **arrays)

    def save_final(self, z: np.ndarray, scores: dict[str, np.ndarray], is_anomaly: np.ndarray,
                   labels: np.ndarray, centre: np.ndarray | None, R: float) -> None:
        """Save the final latents ``(N, d)`` float32, scores ``(N,)`` per rule, ground truth
        (``is_anomaly`` None, for a set without labels, is left out of the file).

        Raises
        ------
        StorageError
            The file cannot be written; the previous final.npz (a checkpoint's) stays.
        """
        arrays = {f"score_{k}": np.asarray(v, np.float64) for k, v in scores.items()}
        if is_anomaly is not None:
            arrays["is_anomaly"] = is_anomaly
        if centre is not None:
            arrays["centre"] = np.asarray(centre, np.float32)
        with atomic_output(self.dir / "final.npz", "wb") as f:
            np.savez(f, z=np.asarray(z).astype(np.float32), labels=labels, R=np.float64(R),
                     **arrays)

    def save_weights(self, state: dict[str, Any]) -> None:
        """Save the method state (:meth:`Method.state`) to ``model.pt``.

        Raises
        ------
        StorageError
            The file cannot be written; the previous model.pt (a checkpoint's) stays.
        """
        import torch

        with atomic_output(self.dir / "model.pt", "wb") as f:
            torch.save(state, f)

    def save_checkpoint(self, epoch: int, state: dict[str, Any], z: np.ndarray,
                        scores: dict[str, np.ndarray], is_anomaly: np.ndarray | None,
                        labels: np.ndarray, centre: np.ndarray | None, R: float) -> None:
        """Save the run as of 1-based ``epoch`` while it trains: ``model.pt`` (``state``),
        ``final.npz`` (that epoch's codes and scores, as :meth:`save_final`), then
        ``checkpoint = epoch`` in status.json. Each file is replaced atomically, so a run
        killed at any moment (``kill -9``) keeps a scorable model of its last checkpoint.

        Raises
        ------
        StorageError
            A file cannot be written (the previous checkpoint's files stay).
        """
        self.save_weights(state)
        self.save_final(z, scores, is_anomaly, labels, centre, R)
        with self._lock:
            self._checkpoint = int(epoch)
            if self._status:
                self._status["checkpoint"] = self._checkpoint
        self.heartbeat()

    @property
    def checkpoint(self) -> int | None:
        """The epoch of the last checkpoint written (None before the first)."""
        return self._checkpoint

    def close(self) -> None:
        """Stop the heartbeat and close ``metrics.jsonl`` (the last status stays as written)."""
        self._closed.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join(timeout=5)
        if self._metrics is not None:
            try:
                self._metrics.close()
            except OSError:  # a full disk may refuse the last flush; every record was synced
                pass


_MAX_PID = 2**31  # pid_t is a signed 32-bit integer


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie, killed but not yet reaped by
    its parent, counts as gone)."""
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C there: rely on the heartbeat
        return True
    if not isinstance(pid, int) or not 0 < pid < _MAX_PID:  # 0 and -1 mean groups to os.kill
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):
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
    records : list of dict — per-epoch records (unreadable lines at the end, e.g. one torn
        by a crash, are skipped and named in ``notes``).
    problem : str or None — why the folder is not a sound run (corrupt or missing
        ``config.json`` or ``status.json``, a field of the wrong type, an unreadable epoch
        record followed by good ones), in words; None for a sound run.
    notes : list of str — what was skipped while reading a sound run (a torn last line).

    The folder is read as untrusted input: files that are not regular files or are larger
    than :data:`JSON_LIMIT_BYTES` / :data:`METRICS_LIMIT_BYTES`, JSON nested deeper than
    :data:`iaead_core.storage.MAX_JSON_DEPTH` and fields of the wrong type make the run
    *corrupt* with the reason, so every field present in ``meta``, ``status`` and
    ``records`` has the type the engine writes.
    """

    run_id: str
    dir: Path
    meta: dict[str, Any]
    status: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

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
        """1-based epochs that have a latent snapshot, ascending (files named otherwise than
        ``epoch_NNNN.npz`` are ignored)."""
        out = []
        try:
            for p in (self.dir / "snapshots").glob("epoch_*.npz"):
                number = p.stem.split("_", 1)[1]
                if number.isdigit() and len(number) <= 9:
                    out.append(int(number))
        except OSError:
            return []
        return sorted(out)

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
        if not path.is_file():
            raise RunError(f"{path} is not a regular file (a device, FIFO or folder); delete it")
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
    if p.exists() and not p.is_file():
        raise RunError(f"{p} is not a regular file (a device, FIFO or folder)")
    try:
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        paths = [r["path"] for r in rows]
        labels = np.array([{"normal": 0, "anomaly": 1}.get(r["label"], -1) for r in rows],
                          np.int64)
    except (OSError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as e:
        raise RunError(f"{p} is missing or corrupt: {e}") from e
    return paths, labels


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise RunError(f"{path} does not exist")
    if not path.is_file():
        raise RunError(f"{path} is not a regular file (a device, FIFO or folder); delete it")
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {k: f[k] for k in f.files}
    except Exception as e:
        raise RunError(f"{path} is corrupt: {_npz_reason(e)}") from e
    if "z" in out:  # a snapshot keeps deviations from ``z_mean`` (older ones: plain codes)
        mean = out.pop("z_mean", None)
        try:
            out["z"] = out["z"].astype(np.float32) + (0 if mean is None else mean.astype(np.float32))
        except (TypeError, ValueError) as e:  # shapes or types that no run writes
            raise RunError(f"{path} is corrupt: its codes cannot be read ({e})") from e
    return out


# ------------------------------------------------------------------ reading untrusted folders
# A run folder is untrusted input (a crafted one must never crash a listing): every file is
# read only if it is a regular file, within a size limit, as JSON of bounded depth, and every
# field a reader uses is type-checked here, once, so that the rest of the project can trust
# the types of Run.meta, Run.status and Run.records.

_INT_BOUND = 2**63


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -_INT_BOUND < v < _INT_BOUND


def _is_num(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float)


def _is_finite(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, float) and np.isfinite(v))


def _opt(check):
    return lambda v: v is None or check(v)


def _dict_of(check):
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x)
                                                 for k, x in v.items())


def _list_of(check):
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _any(v: Any) -> bool:
    return True


_NUMBER = (_is_num, "a number")
_OPT_NUMBER = (_opt(_is_num), "a number or null")
_INT = (_is_int, "a whole number")
_OPT_INT = (_opt(_is_int), "a whole number or null")
_STR = (_is_str, "a string")
_OPT_STR = (_opt(_is_str), "a string or null")
_BOOL = (_is_bool, "true or false")
_DICT = (_dict_of(_any), "an object")
_ALERT_FIELDS = {"kind": _is_str, "message": _is_str, "title": _is_str, "first_epoch": _opt(_is_int),
                 "last_epoch": _opt(_is_int), "epochs": _opt(_is_int)}


def _is_alert(v: Any) -> bool:
    return isinstance(v, dict) and all(name not in v or ok(v[name])
                                       for name, ok in _ALERT_FIELDS.items())


_ALERTS = (_list_of(_is_alert), "a list of alerts ({kind, message, ...} with strings)")
_STR_LIST = (_list_of(_is_str), "a list of strings")


def _config_fields() -> dict[str, tuple]:
    """Type (not range) of every TrainConfig field as a saved config may hold it."""
    out: dict[str, tuple] = {}
    for name in TrainConfig.__dataclass_fields__:
        rule = NUMERIC_RULES.get(name)
        if rule is not None:
            base = _is_int if rule.kind is int else _is_num
            ok = base
            words = "a whole number" if rule.kind is int else "a number"
            if rule.names_ok:
                ok, words = (lambda v, b=base: b(v) or isinstance(v, str)), words + " or a name"
            if rule.none_ok:
                ok, words = _opt(ok), words + " or null"
            out[name] = (ok, words)
    out.update(dataset=_STR, method=_STR, objective=_STR, init=_STR, device=_STR, preset=_STR,
               data_root=_OPT_STR, download=_BOOL, svdd_bias=_BOOL,
               extra=(_opt(_dict_of(_any)), "an object or null"))
    return out


_CONFIG = _config_fields()
_DATA = {"n": _OPT_INT, "n_normal": _OPT_INT, "n_anomalies": _OPT_INT, "seed": _OPT_INT,
         "rho": _OPT_NUMBER, "image_size": _OPT_INT, "labelled": (_opt(_is_bool), "true, false or null"),
         "n_skipped": _OPT_INT, "n_ignored": _OPT_INT,
         "max_samples": _OPT_INT, "subsampled_from": _OPT_INT, "n_files": _OPT_INT,
         "channels": (lambda v: v is None or (_is_int(v) and 1 <= v <= 4), "1 to 4 or null"),
         "fit": _OPT_STR, "root": _OPT_STR, "manifest": _OPT_STR, "dataset": _OPT_STR,
         "source": _OPT_STR,
         "class_name": (_opt(lambda v: _is_str(v) or _is_int(v)), "a string, a whole number or null"),
         "normal_class": (_opt(lambda v: _is_str(v) or _is_int(v)), "a string, a whole number or null"),
         "label_source": _OPT_STR, "warnings": (_opt(_list_of(_is_str)), "a list of strings or null"),
         "input_range": (_opt(lambda v: _list_of(_is_num)(v) and len(v) == 2),
                         "two numbers or null"),
         "skipped": (_opt(_list_of(_list_of(_any))), "a list of [path, reason] pairs or null"),
         "ignored": (_opt(_list_of(_list_of(_any))), "a list of [path, reason] pairs or null")}
_META = {"run_id": _STR, "created": _OPT_NUMBER, "primary_score": _OPT_STR, "seed": _OPT_INT,
         "lam": _OPT_NUMBER, "nu": _OPT_NUMBER,
         "environment": (_dict_of(_any), "an object"), "data": (_dict_of(_any), "an object")}
_ENVIRONMENT = {"device": _STR}
_STATUS = {"status": _STR, "error": _OPT_STR, "updated": (_is_finite, "a finite number"),
           "heartbeat": (_is_finite, "a finite number"),
           "pid": (lambda v: _is_int(v) and 0 < v < _MAX_PID, f"a process id in 1 … {_MAX_PID - 1}"),
           "host": _STR, "epochs_done": _INT, "checkpoint": _INT, "alerts": _ALERTS}
_METRIC = {"auroc": _NUMBER, "aupr_in": _NUMBER, "aupr_out": _NUMBER,
           "degenerate": _BOOL, "raw": (_opt(_dict_of(_opt(_is_num))), "an object or null"),
           "n_nonfinite": _INT}
_RECORD = {"epoch": _INT, "epochs": _INT, "phase": _STR, "lr": _OPT_NUMBER, "seconds": _OPT_NUMBER,
           "elapsed": _OPT_NUMBER, "R": _OPT_NUMBER, "primary_score": _STR, "method": _STR,
           "loss": (_dict_of(_opt(_is_num)), "an object of numbers"),
           "metrics": (_dict_of(_dict_of(_any)), "an object of objects"),
           "diagnostics": (_dict_of(lambda v: v is None or _is_num(v) or _is_bool(v)),
                           "an object of numbers and flags"),
           "method_diagnostics": (_dict_of(_opt(_is_num)), "an object of numbers"),
           "alerts": _ALERTS}


def _type_problem(obj: dict[str, Any], fields: dict[str, tuple], where: str) -> str | None:
    """The first field of ``obj`` whose type is not the expected one, in words; None if all
    present fields are well typed (absent fields are fine)."""
    for name, (ok, words) in fields.items():
        if name in obj and not ok(obj[name]):
            return f"{where}{name} must be {words}, not {_kind(obj[name])}"
    return None


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "a whole number" if _is_int(v) else f"a whole number of {v.bit_length()} bits"
    return {"str": "a string", "float": "a number", "list": "a list",
            "dict": "an object"}.get(type(v).__name__, type(v).__name__)


def _meta_problem(meta: Any) -> str | None:
    """Why config.json's content is not a run's, or None."""
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        return "config.json holds no run configuration"
    problem = (_type_problem(meta, _META, "")
               or _type_problem(meta["config"], _CONFIG, "config.")
               or _type_problem(meta.get("data") or {}, _DATA, "data.")
               or _type_problem(meta.get("environment") or {}, _ENVIRONMENT, "environment."))
    return None if problem is None else f"config.json: {problem}"


def _status_problem(status: Any) -> str | None:
    """Why status.json's content is not a status, or None."""
    if not isinstance(status, dict):
        return "status.json holds no status"
    problem = _type_problem(status, _STATUS, "")
    return None if problem is None else f"status.json: {problem}"


def _record_problem(rec: Any) -> str | None:
    """Why a line of metrics.jsonl is not an epoch record, or None."""
    if not isinstance(rec, dict):
        return f"not an object but {_kind(rec)}"
    if "epoch" not in rec:
        return "no epoch number"
    problem = _type_problem(rec, _RECORD, "")
    if problem is None:
        for rule, m in (rec.get("metrics") or {}).items():
            problem = _type_problem(m, _METRIC, f"metrics.{rule}.")
            if problem:
                break
    return problem


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(content, None), or (None, reason) for a missing, oversized, non-regular or unreadable
    file, or one that is not JSON of bounded depth (:func:`iaead_core.storage.load_json`)."""
    try:
        return load_json(read_limited(path, JSON_LIMIT_BYTES)), None
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except TooLargeError as e:
        return None, f"{path.name} is corrupt ({e})"
    except OSError as e:
        return None, f"{path.name} is unreadable ({e.strerror or e})"
    except ValueError as e:
        return None, f"{path.name} is corrupt ({e})"


def _read_records(path: Path) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """The epoch records of metrics.jsonl: ``(records, problem, note)``.

    Unreadable lines at the end (a write cut short by a crash, or bytes appended to the file)
    are skipped and mentioned in ``note``; the records before them stay. An unreadable line
    followed by good ones, an oversized or non-regular file is a ``problem`` (the run is
    corrupt); the good records are kept either way."""
    try:
        data = read_limited(path, METRICS_LIMIT_BYTES)
    except FileNotFoundError:
        return [], None, None
    except TooLargeError as e:
        return [], f"metrics.jsonl is too large to read ({e})", None
    except OSError as e:
        return [], f"metrics.jsonl is unreadable ({e.strerror or e})", None
    records: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    last_good = 0
    for i, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            rec = load_json(line)
            reason = _record_problem(rec)
        except ValueError as e:
            reason = str(e)
        if reason is None:
            records.append(rec)
            last_good = i
        else:
            bad.append((i, reason))
    inside = [(i, r) for i, r in bad if i < last_good]
    if inside:
        i, reason = inside[0]
        return records, f"metrics.jsonl line {i} is not an epoch record ({reason})", None
    if bad:
        return records, None, (f"metrics.jsonl: {len(bad)} unreadable line(s) at the end skipped "
                               f"(line {bad[0][0]}: {bad[0][1]})")
    return records, None, None


def _read_folder(d: Path) -> tuple[Run, str | None]:
    """Read whatever a run folder holds; never raises. Returns the Run (``problem`` set if the
    folder is not sound) and the config.json problem alone (None if config.json is sound)."""
    meta, config_problem = _read_json(d / "config.json")
    if config_problem is None:
        config_problem = _meta_problem(meta)
    if config_problem is not None:
        meta = {}
    status, status_problem = _read_json(d / "status.json")
    if status_problem is None:
        status_problem = _status_problem(status)
    if status_problem is not None:
        status = {}
    records, records_problem, note = _read_records(d / "metrics.jsonl")
    problem = "; ".join(p for p in (config_problem, status_problem, records_problem) if p) or None
    return Run(run_id=d.name, dir=d, meta=meta, status=status, records=records,
               problem=problem, notes=[note] if note else []), config_problem


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
