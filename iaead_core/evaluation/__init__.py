"""Evaluation: metrics, latent diagnostics and health alerts, projections, the paper's numbers,
and the tables the lab and the reports draw from.

Layer 4 of the core: above the methods (it names them), below storage and training. Import
from the modules (``iaead_core.evaluation.metrics`` and so on); this package re-exports
nothing, so that importing one module does not load the others (UMAP, pandas).
"""
