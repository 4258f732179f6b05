"""benchmarks/peers.py runs end to end on a tiny case (issue 20; skipped without PyOD), and
the docs carry the table it produced.

No number of the benchmark is asserted beyond what it measures: the IAEAD row must be the
Detector's own AUROC on the same draw, and every detector must have seen that same draw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import peers  # noqa: E402  (imports PyOD only when a peer runs)
from iaead_core.data import load_pool, make_contaminated  # noqa: E402
from iaead_core.detector import Detector  # noqa: E402
from iaead_core.evaluation.metrics import detection_metrics  # noqa: E402


def test_the_peer_benchmark_runs_on_a_tiny_case(real_digits, tmp_path):
    pytest.importorskip("pyod", reason="PyOD is an optional benchmark dependency "
                        "(pip install -r requirements-bench.txt)")
    case = f"{real_digits.dataset}:0"
    out, raw = tmp_path / "peers.md", tmp_path / "peers.json"
    assert peers.main(["--tiny", "--data-root", str(real_digits.data_root), "--cases", case,
                       "--n", "120", "--out", str(out), "--json", str(raw)]) == 0
    results = json.loads(raw.read_text())["results"]
    assert [r["detector"] for r in results] == list(peers.LABELS)  # all nine, in order
    assert {(r["n"], r["n_anomalies"]) for r in results} == {(120, 12)}  # one draw for all
    for r in results:
        assert 0 <= r["auroc"] <= 1 and 0 <= r["aupr_out"] <= 1 and r["cpu_s"] >= 0
    # The IAEAD row is the Detector's AUROC on that draw (same settings, same seed).
    data = make_contaminated(real_digits.dataset, 0, rho=0.1, seed=0,
                             data_root=real_digits.data_root, max_samples=120)
    pool, _ = load_pool(real_digits.dataset, real_digits.data_root)
    det = Detector("iaead", "quick", 0.1, device="cpu", **peers._TINY_NET).fit(pool[data.indices])
    expected = detection_metrics(data.is_anomaly, det.decision_scores_)["auroc"]
    assert results[0]["auroc"] == pytest.approx(expected, abs=1e-12)
    text = out.read_text()
    assert text.startswith("Produced by `python benchmarks/peers.py --tiny")
    assert "its numbers mean nothing" in text and "Machine: CPU" in text
    for label in peers.LABELS.values():
        assert text.count(f"| {label} |") == 2  # the summary and the case's table
    assert f"| {peers.LABELS['iaead']} | {results[0]['auroc']:.3f} | 1.00 |" in text
    assert np.isfinite([r["wall_s"] for r in results]).all()


def test_the_docs_carry_the_table_the_script_produced():
    page = (ROOT / "docs" / "peers.md").read_text(encoding="utf-8")
    produced = page.split(peers.BEGIN, 1)[1].split(peers.END, 1)[0]
    assert produced.lstrip().startswith("Produced by `python benchmarks/peers.py ")
    assert "--tiny" not in produced and "Machine: CPU" in produced
    for label in peers.LABELS.values():
        assert f"| {label} |" in produced
    raw = json.loads((ROOT / "docs" / "peers.json").read_text(encoding="utf-8"))
    first = raw["results"][0]  # the JSON of the same run: its numbers are the table's
    assert f"| {peers.LABELS[first['detector']]} | {first['auroc']:.3f} |" in produced
    assert raw["command"] in produced
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    api = readme[readme.index("## Python API"):readme.index("## Your own images")]
    for line in ('det = Detector("iaead", contamination=0.1).fit(X_train)',
                 "det.decision_scores_, det.labels_",
                 "det.decision_function(X_test), det.predict(X_test)",
                 "(docs/peers.md)", "(docs/estimator.md)"):
        assert line in api, line
