"""Issue 17, "Lecture-ready lab", without a browser: the collapsed map's scale, the log axis
of the SVDD loss, presentation styling and slide-size export, the words of a collapse, and one
AUROC string for one run on the Train, Runs and Experiments pages (AppTest)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import charts, explain  # noqa: E402
from app.views.latent import coincide_late, collapsed_map_range  # noqa: E402
from app.views.runs import RunItem, group_status, metrics_heading  # noqa: E402


def _svdd_records(values, R=None):
    return [{"epoch": e, "loss": {"reconstruction": 0.3, "svdd": v}, "R": R or 1.0, "metrics": {}}
            for e, v in enumerate(values, start=1)]


def test_svdd_log_axis_labels_every_decade_and_both_ends_of_a_jump():
    """§3/§4: a jump from 0.22 to 53 is drawn with labelled ticks at 0.1, 1, 10 and 100, all
    in view, and both values written on the curve; a loss near 1 gets more than "1"."""
    fig = charts.loss_chart([RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed",
                                     _svdd_records([0.22, 0.3, 53.04, 53.04]))])
    ax = fig.layout.yaxis2
    assert ax.type == "log" and list(ax.ticktext) == ["0.1", "1", "10", "100"]
    assert tuple(ax.range) == pytest.approx((-1.0, 2.0))
    written = {a.text for a in fig.layout.annotations if a.xref == "x2"}
    assert written == {"0.22", "53"}
    near_one = charts.loss_chart([RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed",
                                          _svdd_records([0.8, 1.2, 1.1]))])
    assert list(near_one.layout.yaxis2.ticktext) == ["0.1", "1", "10"]
    assert not [a for a in near_one.layout.annotations if a.xref == "x2"]  # no decade spanned


def test_collapsed_map_is_drawn_at_the_codes_scale():
    """§1: a collapsed epoch's axes span ± the RMS code length; a healthy one autoscales."""
    assert collapsed_map_range({"collapsed": False}, {"auroc": 0.9, "degenerate": False}) is None
    half = collapsed_map_range({"collapsed": True, "code_norm": 8.0}, None)
    assert half == 8.0
    assert collapsed_map_range({"collapsed": False, "code_norm": 2.0}, {"degenerate": True}) == 2.0
    xy = np.full((100, 2), 1e-9, np.float32)
    fig = charts.projection_chart(xy, np.arange(100) < 10, np.zeros(100, int), [], "anomaly",
                                  "PCA", half_range=half)
    assert tuple(fig.layout.xaxis.range) == (-8.0, 8.0) and fig.layout.xaxis.showticklabels is not False
    caption = explain.collapsed_map_caption(100, half, 1e-9, umap_chosen=True)
    assert "show as one dot" in caption and "UMAP is not drawn" in caption
    assert "one dot" not in explain.collapsed_map_caption(100, half, 1.0, umap_chosen=False)


def test_collapse_box_names_kind_place_and_cause_from_the_core():
    """§2: the box says where the codes went and which term did it, with the core's figures."""
    from iaead_core.evaluation.health import collapse_report
    from iaead_core.evaluation.metrics import latent_diagnostics

    c = np.full(8, 0.1)
    diag = latent_diagnostics(np.ones((50, 8)), c, bound=1.0)
    recs = [{"epoch": 1, "loss": {"svdd": None}, "R": 0.0}]
    recs += [{"epoch": e, "loss": {"svdd": 0.22 if e == 2 else 6.48}, "R": 6.48 ** 0.5}
             for e in range(2, 8)]
    rep = collapse_report(diag, recs)
    dist = np.full(50, np.linalg.norm(1 - c))
    kind, box = explain.panel_story("distance to c", {"auroc": 0.5, "degenerate": True}, diag,
                                    "distance to c", dist, 8 ** 0.5, report=rep)
    assert kind == "error"
    assert f"one point in a saturated corner of the code space, at distance {dist[0]:.4g} from c" in box
    assert "not on c" in box and "= R²" in box and "since epoch 3" in box and "0.22" in box
    assert "100% of the code entries are saturated" in box


def test_presentation_restyles_for_a_projector_and_exports_at_slide_size():
    items = [RunItem("IAEAD", "iaead", {"method": "iaead"}, "completed",
                     [{"epoch": e, "primary_score": "latent_mean", "method": "iaead",
                       "metrics": {"latent_mean": {"auroc": 0.9}, "reconstruction": {"auroc": 0.3}}}
                      for e in (1, 2)])]
    every = charts.auroc_chart(items)
    own = charts.auroc_chart(items, own_only=True)
    assert [t.name for t in own.data] == ["distance to mean latent · own score"]
    assert len(every.data) == 2
    fig = charts.presentation(own)
    assert fig.layout.legend.font.size >= 18 and fig.layout.xaxis.tickfont.size >= 18
    assert fig.layout.yaxis.tickfont.size >= 18 and fig.data[0].line.width >= 4
    cfg = charts.export_config("svg", "train_auroc")
    assert cfg["toImageButtonOptions"] == {"format": "svg", "width": 1920, "height": 1080,
                                           "scale": 1, "filename": "train_auroc"}
    with pytest.raises(ValueError):
        charts.export_config("gif")
    low = explain.below_chance_sentence([("CAE", "reconstruction error", 0.221),
                                         ("IAEAD", "distance to mean latent", 0.95)])
    assert "CAE · reconstruction error 0.221" in low and "0.95" not in low
    assert explain.below_chance_sentence([("IAEAD", "x", 0.9)]) == ""


def test_numbers_and_labels_follow_one_convention():
    """§5: "—" for a run without metrics, the heading follows the status, the coincidence
    sentence judges the later epochs, the radius warns at ν = 1."""
    assert explain.row_metric_text({"auroc": None}) == "—"
    assert explain.row_metric_text({"auroc": 0.5, "degenerate": True, "auroc_raw": 0.699}) == \
        "0.500 — degenerate (raw 0.699)"
    done = RunItem("IAEAD", "iaead", {"epochs": 15}, "completed", [{}] * 15)
    stopped = RunItem("CAE", "cae", {"epochs": 15}, "stopped", [{}] * 3)
    assert metrics_heading([done]) == "Final metrics"
    assert metrics_heading([done, stopped]) == \
        "Metrics at the last epoch reached (CAE stopped after 3/15 epochs)"
    assert group_status([done, stopped]) == "completed, stopped"
    a = [(1, 0.80), (2, 0.90), (3, 0.95), (4, 0.952)]
    b = [(1, 0.84), (2, 0.901), (3, 0.951), (4, 0.954)]
    assert coincide_late(a, b, tol=0.02) == (pytest.approx(0.002), 3)
    assert "from epoch 3 on" in explain.coincidence_sentence({}, 0.002, 3)
    assert "flags 299 of 300" in explain.radius_warning(1.0, 299, 300)
    assert explain.radius_warning(0.1, 30, 300) == ""
