"""The estimator API: :class:`Detector` (a scikit-learn estimator with PyOD's contract: fit /
decision_function / predict on any method), thresholds, and scoring new images with a saved
run.

Layer 8 of the core, above training and storage. ``thresholds`` turns scores into flags and
ranks; ``scoring`` scores new images with a trained method and writes score CSVs;
``estimator`` holds :class:`Detector`; ``new_images`` scores a folder with a saved run
(:func:`score_folder`). Everything public is re-exported here, so
``from iaead_core.detector import Detector`` is the documented import.
"""

from iaead_core.detector.estimator import EXPECTED_FAILED_CHECKS, PROBA_METHODS, Detector
from iaead_core.detector.new_images import ScoreReport, score_folder
from iaead_core.detector.scoring import (CSV_COLUMNS, RANKING, resolve_run, score_images,
                                         write_ranking, write_scores_csv)
from iaead_core.detector.thresholds import (RADIUS_RULES, THRESHOLD_KINDS, Threshold,
                                            ThresholdError, choose_threshold, flag, rank)
__all__ = ["Detector", "EXPECTED_FAILED_CHECKS", "PROBA_METHODS", "Threshold", "ThresholdError",
           "ScoreReport", "THRESHOLD_KINDS", "RADIUS_RULES", "choose_threshold", "flag", "rank", "score_images", "score_folder",
           "resolve_run", "write_scores_csv", "write_ranking", "RANKING", "CSV_COLUMNS"]
