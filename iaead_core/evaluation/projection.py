"""2-D UMAP maps of latent codes that appear in seconds.

Three things make a map fast (issue 8, item 1):

1. **A persistent numba cache.** umap-learn and pynndescent compile their kernels with numba
   the first time they run in a process (tens of seconds on a CPU), and most of those kernels
   are not declared ``cache=True``, so every new process paid again. Importing this module
   points ``NUMBA_CACHE_DIR`` at ``<user cache>/iaead/numba`` (unless it is already set) and,
   when umap is first used, turns numba's on-disk cache on for every kernel of umap-learn and
   pynndescent. A kernel is then compiled once per machine (per version of the packages).
   numba reads ``NUMBA_CACHE_DIR`` when umap/pynndescent are *imported*, so this module must be
   imported before them; :mod:`iaead_core.evaluation.analysis` imports it, and nothing in the project
   imports umap elsewhere. To choose the folder, set ``NUMBA_CACHE_DIR`` (or
   ``XDG_CACHE_HOME``) in the environment before starting Python.
2. **A warm-up.** :func:`warm_up` embeds a tiny random array in a background thread, so the
   server process has loaded (or, on a machine's first start, compiled) every kernel before
   anyone asks for a map. It is idempotent and returns at once.
3. **Tuned settings** (:data:`TUNED_SETTINGS`), chosen by a measured quality check: the
   trustworthiness (scikit-learn) of the tuned map stays within 0.01 of umap-learn's default
   map on real latent codes (``benchmarks/umap_speed.py`` prints both; a test checks it).

Source: McInnes, Healy & Melville, "UMAP" (2018), and the umap-learn documentation for the
parameters; Venna & Kaski (2001) for trustworthiness.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TUNED_SETTINGS", "DEFAULT_SETTINGS", "TRUST_NEIGHBOURS", "umap_2d",
           "map_trustworthiness", "default_numba_cache_dir", "configure_numba_cache",
           "enable_kernel_cache", "WarmUp", "warm_up", "is_warm", "warm_up_state"]

#: umap-learn's own defaults, as the project used them before (exact neighbours below 4,096
#: codes through a Python-level pairwise loop, 500 layout epochs below 10,000 codes,
#: spectral initialisation).
DEFAULT_SETTINGS: dict[str, Any] = {}

#: The settings used by :func:`umap_2d`, chosen on the 3,000 latent codes of a quick IAEAD run
#: (MNIST digit 0, ρ = 0.1) with ``python benchmarks/umap_speed.py --grid``, which prints the
#: time and trustworthiness of each candidate. On that run (a loaded 2-core CPU) the tuned map
#: scored 0.888 against the default's 0.893, within the 0.01 bound; over four seeds the means
#: were 0.890 and 0.894.
#:
#: * ``neighbours="exact"`` (this module's key, not umap-learn's) — the 15 exact nearest
#:   neighbours from scikit-learn's vectorised brute-force search, handed to umap-learn as
#:   ``precomputed_knn``. Below 4,096 codes umap-learn's default finds the same exact
#:   neighbours by calling a numba distance once per *pair* from Python and argsorting every
#:   row (most of the default's run time). NN-descent (``force_approximation_algorithm``) was
#:   tried too: as fast once compiled, but two of its kernels cannot be cached by numba, so
#:   every process compiled them again (tens of seconds). Above 20,000 codes umap-learn's own
#:   NN-descent is used.
#: * ``n_epochs=200`` — umap-learn's own choice for large data sets; 500 epochs add little to
#:   a 2-D picture of a few thousand points (100 epochs cost about 0.01 of trustworthiness).
#: * ``init="spectral"`` — the default; its eigen-solve takes milliseconds here. PCA
#:   initialisation gave the same trustworthiness (four-seed means 0.890 both) at the same
#:   cost, so the default stays.
#: * ``low_memory=True`` — the default (it only matters for NN-descent).
TUNED_SETTINGS: dict[str, Any] = {"neighbours": "exact", "n_epochs": 200,
                                  "init": "spectral", "low_memory": True}

#: Neighbourhood size of the trustworthiness check (UMAP's own ``n_neighbors``).
TRUST_NEIGHBOURS = 15

# Exact neighbours by brute force up to this many codes (N² distances, in chunks).
_EXACT_MAX = 20_000
# Below this many codes the spectral initialisation's eigen-solve is ill-posed.
_MIN_SPECTRAL = 16


# ------------------------------------------------------------------------- numba's cache

def default_numba_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where compiled UMAP kernels are kept: ``<user cache>/iaead/numba``.

    ``<user cache>`` is ``$XDG_CACHE_HOME`` if set, else ``%LOCALAPPDATA%`` on Windows,
    ``~/Library/Caches`` on macOS and ``~/.cache`` elsewhere (the XDG base-directory rule).

    Parameters
    ----------
    env : mapping, optional
        Environment to read (default ``os.environ``).

    Returns
    -------
    pathlib.Path (not created).
    """
    env = os.environ if env is None else env
    if env.get("XDG_CACHE_HOME"):
        base = Path(env["XDG_CACHE_HOME"])
    elif sys.platform == "win32" and env.get("LOCALAPPDATA"):
        base = Path(env["LOCALAPPDATA"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path.home() / ".cache"
    return base.expanduser() / "iaead" / "numba"


def configure_numba_cache() -> Path | None:
    """Point numba's on-disk cache at :func:`default_numba_cache_dir`, unless the user set
    ``NUMBA_CACHE_DIR`` already (then that folder is used as it is).

    Must run before umap-learn / pynndescent are imported (numba picks each kernel's cache
    folder when the kernel is defined); this module calls it on import. If numba is already
    imported, its configuration is reloaded so kernels defined later use the folder.

    Returns
    -------
    pathlib.Path or None
        The cache folder, or None when no writable folder could be made (numba then keeps its
        own default: ``__pycache__`` beside the package, or its user-wide folder).
    """
    current = os.environ.get("NUMBA_CACHE_DIR")
    if current:
        return Path(current)
    folder = default_numba_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return None  # read-only home: numba's default locations still work
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # numba read its settings at import: refresh them
        from numba.core import config

        config.reload_config()
    return folder


_CACHE_LOCK = threading.Lock()
_CACHE_ENABLED = False


def enable_kernel_cache() -> int:
    """Turn numba's on-disk cache on for every kernel of umap-learn and pynndescent.

    Most of their ``@numba.njit`` kernels are not declared ``cache=True``; numba's public
    ``Dispatcher.enable_caching()`` does what that flag does. Kernels compiled already in this
    process stay compiled; their *next* compilation (a new type signature) is cached. A kernel
    numba cannot cache (dynamic globals, lifted loops) is simply compiled as before. Imports
    umap (after :func:`configure_numba_cache`). Idempotent and thread-safe.

    Returns
    -------
    int
        Number of kernels switched on by this call (0 on later calls).
    """
    global _CACHE_ENABLED
    with _CACHE_LOCK:
        if _CACHE_ENABLED:
            return 0
        import umap  # noqa: F401  (imports pynndescent and every kernel module we patch)
        import umap.layouts  # noqa: F401
        import umap.umap_  # noqa: F401
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher

        n = 0
        for name, module in list(sys.modules.items()):
            if module is None or not name.startswith(("umap", "pynndescent")):
                continue
            for obj in list(vars(module).values()):
                if (isinstance(obj, Dispatcher) and obj.__module__ == name
                        and isinstance(obj._cache, NullCache)):
                    try:
                        obj.enable_caching()
                        n += 1
                    except RuntimeError:  # no writable cache location for this file
                        pass
        _CACHE_ENABLED = True
        return n


configure_numba_cache()


# ------------------------------------------------------------------------------ the map

def umap_2d(z: np.ndarray, seed: int = 0, n_neighbors: int = 15,
            settings: str | Mapping[str, Any] = "tuned") -> np.ndarray:
    """2-D UMAP embedding of latent codes.

    Parameters
    ----------
    z : ndarray ``(N, d)``
        Latent codes (any float dtype; embedded as float32).
    seed : int
        UMAP's ``random_state``: the same codes and seed give the same map (this also makes
        umap-learn run single-threaded).
    n_neighbors : int
        UMAP's neighbourhood size (capped at ``N − 1``).
    settings : "tuned", "default" or mapping
        :data:`TUNED_SETTINGS` (default), umap-learn's defaults, or explicit keyword
        arguments for ``umap.UMAP`` (plus this module's ``neighbours``, see
        :data:`TUNED_SETTINGS`). Fewer than 16 codes use a random initialisation.

    Returns
    -------
    ndarray ``(N, 2)`` float32. Codes that all coincide (total collapse), or fewer than three
    codes, give all zeros: UMAP has nothing to embed.

    Raises
    ------
    ValueError
        If ``z`` is not 2-D or holds NaN/inf, or ``settings`` is an unknown name.
    """
    z = np.ascontiguousarray(z, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"z must be a 2-D array (N, d), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("z contains NaN or infinite values; UMAP cannot embed them")
    if len(z) < 3 or np.abs(z - z.mean(0)).max(initial=0.0) < 1e-9:
        return np.zeros((len(z), 2), np.float32)
    if isinstance(settings, str):
        named = {"tuned": TUNED_SETTINGS, "default": DEFAULT_SETTINGS}
        if settings not in named:
            raise ValueError(f"settings must be 'tuned', 'default' or a dict, got {settings!r}")
        settings = named[settings]
    kwargs = dict(settings)
    k = max(2, min(n_neighbors, len(z) - 1))
    if kwargs.pop("neighbours", "umap") == "exact" and len(z) <= _EXACT_MAX:
        from sklearn.neighbors import NearestNeighbors

        # umap-learn expects each point as its own first neighbour at distance exactly 0
        # (its local scale starts at the first non-zero distance): query without the point
        # itself, then put it in front. float64, so near-duplicates keep their order.
        dist, idx = NearestNeighbors(n_neighbors=k - 1, algorithm="brute").fit(
            z.astype(np.float64)).kneighbors()
        idx = np.hstack([np.arange(len(z))[:, None], idx]).astype(np.int32)
        dist = np.hstack([np.zeros((len(z), 1)), dist]).astype(np.float32)
        kwargs["precomputed_knn"] = (idx, dist, None)
    if len(z) < _MIN_SPECTRAL:
        kwargs["init"] = "random"
    enable_kernel_cache()
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=k, random_state=seed, n_jobs=1, **kwargs)
    with warnings.catch_warnings():
        # Asked for on purpose: "n_jobs value 1 overridden to 1 by setting random_state", and
        # no search index with precomputed neighbours (we never call transform).
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")
        return reducer.fit_transform(z).astype(np.float32)


def map_trustworthiness(z: np.ndarray, embedding: np.ndarray,
                        n_neighbors: int = TRUST_NEIGHBOURS) -> float:
    """Trustworthiness of a 2-D map (Venna & Kaski, 2001; ``sklearn.manifold.trustworthiness``).

    1 when every point's ``n_neighbors`` nearest neighbours in the map are also among its
    nearest neighbours in ``z``; lower when the map invents neighbours.

    Parameters
    ----------
    z : ndarray ``(N, d)``; embedding : ndarray ``(N, 2)``
    n_neighbors : int, below ``N / 2``.

    Returns
    -------
    float in [0, 1].

    Raises
    ------
    ValueError
        If the shapes disagree or ``n_neighbors >= N / 2`` (scikit-learn's limit).
    """
    from sklearn.manifold import trustworthiness

    z = np.asarray(z, np.float64)
    embedding = np.asarray(embedding, np.float64)
    if len(z) != len(embedding):
        raise ValueError(f"z has {len(z)} rows but the embedding {len(embedding)}")
    return float(trustworthiness(z, embedding, n_neighbors=n_neighbors))


# ------------------------------------------------------------------------------ warm-up

def _compile_kernels() -> None:
    """Run the tuned map once on a tiny random array (compiles or loads every kernel)."""
    rng = np.random.default_rng(0)
    umap_2d(rng.standard_normal((300, 8)).astype(np.float32), seed=0)


class WarmUp:
    """Runs a slow preparation once, in a background daemon thread.

    :meth:`start` returns at once and is idempotent: the first call starts the thread, later
    calls return the same thread (running or finished). A failure is kept in :attr:`error`
    (and the work is not retried: a map would then compile at its first use, as before).

    Parameters
    ----------
    work : callable
        The preparation, called with no arguments.
    name : str
        Thread name (shown in debuggers and logs).
    """

    def __init__(self, work: Callable[[], Any], name: str = "iaead-umap-warm-up") -> None:
        self._work, self._name = work, name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self.error: str | None = None
        self.seconds: float | None = None

    def start(self) -> threading.Thread:
        """Start the work in the background (once); returns its thread."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            return self._thread

    def _run(self) -> None:
        t = time.perf_counter()
        try:
            self._work()
        except Exception as e:  # kept for the caller; a later map compiles at first use
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.seconds = time.perf_counter() - t
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work has finished (or ``timeout`` seconds); True if finished."""
        return self._done.wait(timeout)

    @property
    def state(self) -> str:
        """``"cold"`` (not started), ``"warming"``, ``"warm"`` or ``"failed"``."""
        if self._thread is None:
            return "cold"
        if not self._done.is_set():
            return "warming"
        return "failed" if self.error else "warm"


_WARM_UP = WarmUp(_compile_kernels)


def warm_up() -> threading.Thread:
    """Compile (first start on a machine) or load (later starts) UMAP's kernels in a
    background thread, so the first map of a server process takes seconds.

    Idempotent and non-blocking: returns the warm-up thread at once; later calls return the
    same thread. Call it when a server starts; :func:`warm_up_state` says how far it got.
    """
    return _WARM_UP.start()


def is_warm() -> bool:
    """True once the warm-up has finished successfully in this process."""
    return _WARM_UP.state == "warm"


def warm_up_state() -> dict[str, Any]:
    """``{"state": "cold" | "warming" | "warm" | "failed", "seconds": float | None,
    "error": str | None, "cache_dir": str | None}`` for a page to show (``seconds`` is the
    warm-up's duration once finished)."""
    return {"state": _WARM_UP.state, "seconds": _WARM_UP.seconds, "error": _WARM_UP.error,
            "cache_dir": os.environ.get("NUMBA_CACHE_DIR")}
