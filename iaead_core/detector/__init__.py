"""The estimator API: :class:`Detector` (fit / decision_function / predict on any method),
thresholds, and scoring new images with a saved run.

Layer 8 of the core, above training and storage. Everything public is re-exported here, so
``from iaead_core.detector import Detector`` is the documented import.
"""

from iaead_core.detector.estimator import (CSV_COLUMNS, Detector, RADIUS_RULES, RANKING,
                                           ScoreReport, THRESHOLD_KINDS, Threshold, ThresholdError,
                                           choose_threshold, flag, rank, resolve_run, score_folder,
                                           score_images, write_ranking, write_scores_csv)
__all__ = ["Detector", "Threshold", "ThresholdError", "ScoreReport", "THRESHOLD_KINDS",
           "RADIUS_RULES", "choose_threshold", "flag", "rank", "score_images", "score_folder",
           "resolve_run", "write_scores_csv", "write_ranking", "RANKING", "CSV_COLUMNS"]
