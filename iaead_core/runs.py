"""Run folders: every result written as it is produced, readable by people and programs.

Layout of ``<runs_root>/<run_id>/``::

    config.json      the TrainConfig, data summary, seed, versions, device (written first)
    status.json      running | completed | stopped | failed, with the error message if any
    metrics.jsonl    one JSON record per epoch, appended and flushed every epoch
    snapshots/epoch_NNNN.npz   latent codes (float16) and scores at chosen epochs
    final.npz        final scores per rule, latents, is_anomaly, labels
    model.pt         method state (weights, c, R); load with ``weights_only=True``

The runs root is ``./runs`` unless given or set by ``IAEAD_RUNS_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["RunWriter", "Run", "RunError", "resolve_runs_root", "list_runs", "load_run",
           "delete_run", "new_run_id"]


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

    Raises
    ------
    RunError
        If the folder already exists.
    """

    def __init__(self, runs_root: str | os.PathLike, run_id: str, meta: dict[str, Any]) -> None:
        self.dir = Path(runs_root) / run_id
        try:
            (self.dir / "snapshots").mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise RunError(f"run folder {self.dir} already exists") from None
        self.run_id = run_id
        _write_json(self.dir / "config.json", meta)
        self.set_status("running")
        self._metrics = open(self.dir / "metrics.jsonl", "a", encoding="utf-8")

    def set_status(self, status: str, error: str | None = None, **extra: Any) -> None:
        """Record the run's state: ``running``, ``completed``, ``stopped`` or ``failed``."""
        _write_json(self.dir / "status.json",
                    {"status": status, "error": error, "updated": time.time(), **extra})

    def append_record(self, record: dict[str, Any]) -> None:
        """Append one epoch record to ``metrics.jsonl`` and flush it to disk."""
        self._metrics.write(json.dumps(record, default=_json_default) + "\n")
        self._metrics.flush()
        os.fsync(self._metrics.fileno())

    def save_snapshot(self, epoch: int, z: np.ndarray, scores: dict[str, np.ndarray],
                      centre: np.ndarray | None, R: float) -> None:
        """Save latents ``z`` ``(N, d)`` (as float16) and scores at 1-based ``epoch``."""
        arrays = {f"score_{k}": np.asarray(v, np.float32) for k, v in scores.items()}
        if centre is not None:
            arrays["centre"] = np.asarray(centre, np.float32)
        np.savez(self.dir / "snapshots" / f"epoch_{epoch:04d}.npz", z=z.astype(np.float16),
                 R=np.float32(R), **arrays)

    def save_final(self, z: np.ndarray, scores: dict[str, np.ndarray], is_anomaly: np.ndarray,
                   labels: np.ndarray, centre: np.ndarray | None, R: float) -> None:
        """Save the final latents ``(N, d)`` float32, scores ``(N,)`` per rule, ground truth."""
        arrays = {f"score_{k}": np.asarray(v, np.float64) for k, v in scores.items()}
        if centre is not None:
            arrays["centre"] = np.asarray(centre, np.float32)
        np.savez(self.dir / "final.npz", z=z.astype(np.float32), is_anomaly=is_anomaly,
                 labels=labels, R=np.float64(R), **arrays)

    def save_weights(self, state: dict[str, Any]) -> None:
        """Save the method state (:meth:`Method.state`) to ``model.pt``."""
        tmp = self.dir / "model.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.dir / "model.pt")

    def close(self) -> None:
        self._metrics.close()


@dataclass
class Run:
    """A saved run, read back from its folder.

    Attributes
    ----------
    run_id, dir
    meta : dict — contents of ``config.json`` (``meta["config"]`` is the TrainConfig dict).
    status : dict — contents of ``status.json``.
    records : list of dict — per-epoch records (a torn last line, from a crash, is skipped).
    """

    run_id: str
    dir: Path
    meta: dict[str, Any]
    status: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.meta.get("config", {})

    @property
    def final_metrics(self) -> dict[str, dict[str, float]]:
        """Metrics of the last recorded epoch: rule → {auroc, aupr_in, aupr_out}."""
        return self.records[-1]["metrics"] if self.records else {}

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

    def load_weights(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The method state from ``model.pt``, loaded with ``weights_only=True``.

        Raises
        ------
        RunError
            If the file is missing, corrupt, or not an iaead method state.
        """
        path = self.dir / "model.pt"
        if not path.exists():
            raise RunError(f"{path} does not exist (the run ended before weights were saved)")
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as e:  # torch raises several types for corrupt / foreign files
            raise RunError(f"{path} is corrupt or not a weights file saved by iaead: {e}") from e
        if not isinstance(state, dict) or "model" not in state or "method" not in state:
            raise RunError(f"{path} is not an iaead checkpoint (expected keys 'method' and 'model')")
        return state

    def load_method(self, device: str | torch.device = "cpu"):
        """The trained method (model in eval mode with the saved weights, ``c`` and ``R``),
        without rebuilding the data set.

        Raises
        ------
        RunError
            For missing/corrupt weights, or weights that do not fit this run's network.
        """
        from .config import TrainConfig
        from .data import DATASETS
        from .methods import build_method

        cfg = TrainConfig.from_dict(self.config)
        method = build_method(cfg, DATASETS[cfg.dataset].channels, device)
        state = self.load_weights(map_location=device)
        try:
            method.load_state(state)
        except (ValueError, RuntimeError) as e:
            raise RunError(f"{self.dir / 'model.pt'} does not fit this run's network: {e}") from e
        method.model.eval()
        return method

    def restore(self, device: str | torch.device = "cpu", data_root: str | os.PathLike | None = None):
        """Rebuild the trained method and the exact data draw of this run.

        Parameters
        ----------
        device : where to put the model.
        data_root : overrides the data root saved in the config (e.g. on another machine).

        Returns
        -------
        (method, data) — :meth:`load_method`'s method, and the
        :class:`~iaead_core.data.ContaminatedSet` drawn with the run's seed (same images, same
        order).

        Raises
        ------
        RunError
            For missing/corrupt weights; data errors as in ``make_contaminated``.
        """
        from .data import make_contaminated

        cfg = self.config
        seed = self.meta.get("data", {}).get("seed", cfg.get("seed", 0))  # the draw's seed
        data = make_contaminated(cfg["dataset"], cfg["normal_class"], cfg["rho"], seed=seed,
                                 data_root=data_root or cfg.get("data_root"),
                                 max_samples=cfg.get("max_samples"), download=False)
        return self.load_method(device), data


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise RunError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {k: f[k] for k in f.files}
    except Exception as e:
        raise RunError(f"{path} is corrupt: {e}") from e
    if "z" in out:
        out["z"] = out["z"].astype(np.float32)
    return out


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder (config, status, per-epoch records).

    Raises
    ------
    RunError
        If ``config.json`` is missing or not valid JSON.
    """
    d = Path(run_dir)
    try:
        meta = json.loads((d / "config.json").read_text())
    except FileNotFoundError:
        raise RunError(f"{d} is not an iaead run folder (no config.json)") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{d / 'config.json'} is corrupt: {e}") from e
    try:
        status = json.loads((d / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        status = {"status": "unknown", "error": "status.json missing or corrupt"}
    records = []
    metrics = d / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash mid-write
    return Run(run_id=d.name, dir=d, meta=meta, status=status, records=records)


def list_runs(runs_root: str | os.PathLike | None = None) -> list[Run]:
    """Every readable run under the runs root, oldest first (folders that are not runs are
    skipped)."""
    root = resolve_runs_root(runs_root)
    if not root.is_dir():
        return []
    runs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            runs.append(load_run(d))
        except RunError:
            continue
    return runs


def delete_run(run_dir: str | os.PathLike) -> None:
    """Delete a run folder.

    Raises
    ------
    RunError
        If the folder is not an iaead run (no ``config.json``), so nothing else is deleted.
    """
    d = Path(run_dir)
    if not (d / "config.json").exists():
        raise RunError(f"refusing to delete {d}: not an iaead run folder")
    shutil.rmtree(d)
