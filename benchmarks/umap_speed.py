"""Time to the first UMAP map of 3,000 latent codes, before and after, and its quality.

Every figure comes from a fresh Python process (as a new server process would be), timed
from the moment the map is asked for (``import umap`` / ``import iaead_core.evaluation.projection``) to
the map; torch, numpy and the project are imported before the clock starts, as in a server.

* **before** — umap-learn's default settings, as ``analysis.umap_2d`` called them, with an
  empty numba cache (the first process on a machine) and again in a second process (only
  pynndescent's own ``cache=True`` kernels were ever kept on disk);
* **after** — :func:`iaead_core.evaluation.projection.umap_2d` (tuned settings, persistent cache) in a
  first process on an empty cache, in a later process without the warm-up, and after the
  server's background :func:`~iaead_core.evaluation.projection.warm_up` has finished (what a user waits
  for once a server has started);
* **quality** — trustworthiness (scikit-learn, 15 neighbours) of the default and the tuned map
  of the same codes; the tuned map must stay within 0.01 of the default's.

Latent codes: ``--latents`` (a run's ``final.npz`` or a ``.npy``), else a quick IAEAD run on
MNIST digit 0 is trained first (about a minute on a CPU). ``--grid`` also times a few
candidate settings in one warm process.

    python benchmarks/umap_speed.py --data-root ../shared/data [--latents runs/<id>/final.npz]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

try:
    from benchmarks.common import ROOT
except ImportError:  # run as a file
    from common import ROOT

# Each child prints one JSON line: {"seconds": ..., "warm_up_s": ...}; the map goes to a file.
_BEFORE = r"""
import json, sys, time, warnings
import numpy as np, torch, sklearn.manifold, iaead_core
z = np.load(sys.argv[1])
t = time.perf_counter()
import umap
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    emb = umap.UMAP(n_components=2, n_neighbors=15, random_state=0, n_jobs=1).fit_transform(z)
seconds = time.perf_counter() - t
np.save(sys.argv[2], emb)
print(json.dumps({"seconds": seconds}))
"""

_AFTER = r"""
import json, sys, time
import numpy as np, torch, sklearn.manifold, iaead_core
z = np.load(sys.argv[1])
warm = sys.argv[3] == "warm"
t = time.perf_counter()
from iaead_core import projection
warm_up_s = None
if warm:
    projection.warm_up().join()
    warm_up_s = time.perf_counter() - t
    t = time.perf_counter()
emb = projection.umap_2d(z)
seconds = time.perf_counter() - t
np.save(sys.argv[2], emb)
print(json.dumps({"seconds": seconds, "warm_up_s": warm_up_s,
                  "state": projection.warm_up_state()["state"]}))
"""


def _child(code: str, z_path: Path, out: Path, cache: Path, *extra: str) -> dict:
    """Run ``code`` in a fresh interpreter with ``NUMBA_CACHE_DIR=cache``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code, str(z_path), str(out), *extra],
                          env=env, capture_output=True, text=True, cwd=str(ROOT))
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def latent_codes(latents: str | None, data_root: str | None, n: int) -> np.ndarray:
    """``n`` latent codes: from a saved file, or from a quick IAEAD run trained here."""
    if latents:
        path = Path(latents)
        z = np.load(path)["z"] if path.suffix == ".npz" else np.load(path)
    else:
        from iaead_core import preset_config, train

        print("training a quick IAEAD run on MNIST digit 0 for its latent codes ...", flush=True)
        res = train(preset_config("quick", "iaead", data_root=data_root, max_samples=n),
                    runs_root=False)
        z = res.evaluation.z
    z = np.asarray(z, np.float32)
    if len(z) > n:
        z = z[np.random.default_rng(0).choice(len(z), n, replace=False)]
    return z


def run(z: np.ndarray, grid: bool = False) -> dict:
    """All figures for the codes ``z``; returns them as a dict (also printed by :func:`main`)."""
    from iaead_core.evaluation.projection import TRUST_NEIGHBOURS, map_trustworthiness

    out: dict = {"n": len(z), "d": z.shape[1]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        z_path = tmp / "z.npy"
        np.save(z_path, z)
        before_cache, after_cache = tmp / "cache-before", tmp / "cache-after"
        out["before_first"] = _child(_BEFORE, z_path, tmp / "default.npy", before_cache)["seconds"]
        out["before_later"] = _child(_BEFORE, z_path, tmp / "d2.npy", before_cache)["seconds"]
        out["after_first"] = _child(_AFTER, z_path, tmp / "t1.npy", after_cache, "cold")["seconds"]
        out["after_later"] = _child(_AFTER, z_path, tmp / "t2.npy", after_cache, "cold")["seconds"]
        warm = _child(_AFTER, z_path, tmp / "tuned.npy", after_cache, "warm")
        out["after_warm"], out["warm_up_s"] = warm["seconds"], warm["warm_up_s"]
        out["trust_default"] = map_trustworthiness(z, np.load(tmp / "default.npy"))
        out["trust_tuned"] = map_trustworthiness(z, np.load(tmp / "tuned.npy"))
        out["trust_neighbours"] = TRUST_NEIGHBOURS
    if grid:
        out["grid"] = settings_grid(z)
    return out


def settings_grid(z: np.ndarray) -> list[dict]:
    """Time and trustworthiness of candidate settings in this (warmed) process."""
    import time

    from iaead_core.evaluation.projection import map_trustworthiness, umap_2d, warm_up

    warm_up().join()
    candidates = [
        ("umap-learn defaults", "default"),
        ("exact neighbours, 500 epochs", {"neighbours": "exact"}),
        ("exact neighbours, 200 epochs (tuned)", "tuned"),
        ("exact neighbours, 100 epochs", {"neighbours": "exact", "n_epochs": 100}),
        ("exact neighbours, 200 epochs, PCA init",
         {"neighbours": "exact", "n_epochs": 200, "init": "pca"}),
    ]
    rows = []
    for name, settings in candidates:
        t = time.perf_counter()
        emb = umap_2d(z, settings=settings)
        rows.append({"settings": name, "seconds": time.perf_counter() - t,
                     "trust": map_trustworthiness(z, emb)})
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--latents", default=None, help="final.npz of a run, or a .npy of codes")
    p.add_argument("--n", type=int, default=3000, help="number of codes to embed")
    p.add_argument("--grid", action="store_true", help="also time candidate settings")
    args = p.parse_args(argv)
    z = latent_codes(args.latents, args.data_root, args.n)
    r = run(z, args.grid)
    print(f"codes: {r['n']} × {r['d']}; times from asking to the map, in a fresh process")
    print(f"before (umap-learn defaults), first process, empty cache: {r['before_first']:.1f} s")
    print(f"before (umap-learn defaults), later process:              {r['before_later']:.1f} s")
    print(f"after (tuned, persistent cache), first process, empty cache: {r['after_first']:.1f} s")
    print(f"after (tuned), later process, no warm-up:                  {r['after_later']:.1f} s")
    print(f"after (tuned), once the server's warm-up has finished:     {r['after_warm']:.1f} s "
          f"(warm-up took {r['warm_up_s']:.1f} s in the background)")
    diff = r["trust_tuned"] - r["trust_default"]
    print(f"trustworthiness ({r['trust_neighbours']} neighbours): "
          f"default {r['trust_default']:.4f}, "
          f"tuned {r['trust_tuned']:.4f}, difference {diff:+.4f} "
          f"({'within' if abs(diff) <= 0.01 else 'OUTSIDE'} 0.01)")
    for row in r.get("grid", []):
        print(f"  {row['settings']:<45} {row['seconds']:6.2f} s  "
              f"trustworthiness {row['trust']:.4f}")


if __name__ == "__main__":
    main()
