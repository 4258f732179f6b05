"""Training: the one engine (:mod:`~iaead_core.training.engine`), K configurations trained as
one stacked network (:mod:`~iaead_core.training.stacked`), and restoring a saved run into a
trained method (:mod:`~iaead_core.training.restore`).

Layer 6 of the core: above storage, which it writes through, and evaluation, whose metrics
it records every epoch. Import from the modules.
"""
