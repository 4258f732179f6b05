"""Restoring a saved run: its weights into a trained method, and its exact data draw.

Storage (:mod:`iaead_core.runs`) only reads and writes run folders; building a network from
them belongs here, above the methods and the data. Typical use::

    from iaead_core import load_run, restore_run
    method, data = restore_run(load_run("runs/<id>"))
"""

from __future__ import annotations

import os
from typing import Any

from iaead_core.config import TrainConfig
from iaead_core.data import DATASETS, make_contaminated
from iaead_core.data.image_files import finish_labels, load_image_folder
from iaead_core.data.image_set import ImageSet
from iaead_core.methods import Method, build_method
from iaead_core.runs import Run, RunError, read_manifest
__all__ = ["load_method", "restore_run", "restore_image_set"]


def load_method(run: Run, device: Any = "cpu") -> Method:
    """The trained method of ``run`` (model in eval mode with the saved weights, ``c`` and
    ``R``), without rebuilding the data set.

    Parameters
    ----------
    run : the saved run (:func:`~iaead_core.runs.load_run`).
    device : where to put the model (``"cpu"``, ``"cuda"``, a ``torch.device``).

    Raises
    ------
    RunError
        For missing/corrupt weights, or weights that do not fit this run's network.
    """
    cfg = TrainConfig.from_dict(run.config)
    # Sets that are not benchmarks (a folder of images, an array) record their channels.
    channels = run.meta.get("data", {}).get("channels") or DATASETS[cfg.dataset].channels
    method = build_method(cfg, int(channels), device)
    state = run.load_weights(map_location=device)
    try:
        method.load_state(state)
    except (ValueError, RuntimeError) as e:
        raise RunError(f"{run.dir / 'model.pt'} does not fit this run's network: {e}") from e
    method.model.eval()
    return method


def restore_run(run: Run, device: Any = "cpu", data_root: str | os.PathLike | None = None):
    """Rebuild the trained method and the exact data draw of ``run``.

    Parameters
    ----------
    run : the saved run.
    device : where to put the model.
    data_root : overrides the data root saved in the config (e.g. on another machine), or the
        folder of the user's images if it moved.

    Returns
    -------
    (method, data) — :func:`load_method`'s method, and the
    :class:`~iaead_core.data.ContaminatedSet` drawn with the run's seed (same images, same
    order; float32 ``(N, C, 32, 32)`` in [−1, 1]), or for a run on image files the
    :class:`~iaead_core.data.image_set.ImageSet` read again (:func:`restore_image_set`).

    Raises
    ------
    RunError
        For missing/corrupt weights; data errors as in ``make_contaminated``.
    """
    cfg = run.config
    if "manifest" in run.meta.get("data", {}):  # trained on image files: read them again
        return load_method(run, device), restore_image_set(run, data_root)
    seed = run.meta.get("data", {}).get("seed", cfg.get("seed", 0))  # the draw's seed
    data = make_contaminated(cfg["dataset"], cfg["normal_class"], cfg["rho"], seed=seed,
                             data_root=data_root or cfg.get("data_root"),
                             max_samples=cfg.get("max_samples"), download=False)
    return load_method(run, device), data


def restore_image_set(run, data_root: str | os.PathLike | None = None) -> ImageSet:
    """Read a run's training images again: the recorded files, in the recorded order, with
    the recorded channels, fit and labels.

    Parameters
    ----------
    run : :class:`~iaead_core.runs.Run`
    data_root : path or None
        Where the folder (or zip) is now, if it moved; default the recorded path.

    Returns
    -------
    ImageSet
        Same images and order as at training time (``images[i]`` belongs to score ``i`` of
        ``final.npz``).

    Raises
    ------
    RunError
        The run was trained on an in-memory array (nothing to read back), or its manifest is
        missing.
    ImageFolderError
        Recorded files missing or unreadable.
    """
    data = run.meta.get("data", {})
    if not data.get("manifest"):
        raise RunError(f"run {run.run_id} was trained on an in-memory array; its images were "
                       f"not saved, so the data cannot be restored.")
    paths, labels = read_manifest(run.dir)
    s = load_image_folder(data_root or data["root"], channels=int(data["channels"]),
                          fit=data.get("fit", "pad"), rho=data.get("rho", 0.1),
                          seed=data.get("seed", 0), files=paths, min_images=1)
    is_anomaly, source, _ = finish_labels(labels, "manifest")
    s.labels, s.is_anomaly, s.label_source = labels, is_anomaly, source
    s.max_samples, s.subsampled_from = data.get("max_samples"), data.get("subsampled_from")
    return s
