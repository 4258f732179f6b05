"""One place for each method's display title and one-sentence description.

Torch-free, so the command line can list the methods in ``--help`` before loading anything;
the method classes take their ``title`` and ``description`` from here."""

from __future__ import annotations

__all__ = ["METHOD_CATALOG"]

#: method name → (title, one-sentence description), in the registry's order.
METHOD_CATALOG: dict[str, tuple[str, str]] = {
    'iaead': ('IAEAD',
             "The paper's method: a convolutional autoencoder whose codes are also pulled into "
             'a soft-boundary hypersphere (L_rec + λ·L_svdd), scored by the distance of each '
             'code to the mean code (eq. 9).'),
    'cae': ('CAE',
             'The same convolutional autoencoder trained on reconstruction alone (SGD), scored '
             'by its reconstruction error.'),
    'deep-svdd': ('Deep SVDD',
             'A bias-free encoder, pre-trained as an autoencoder, then trained to map the data '
             'close to a fixed centre c; scored by ||z − c||².'),
    'drae': ('DRAE',
             "Discriminative reconstruction autoencoder: each mini-batch is split by Otsu's "
             'threshold on its reconstruction errors and only the well-reconstructed part is '
             'fitted; scored by reconstruction error.'),
    'rdae': ('RDAE',
             'Robust deep autoencoder: the data are split into a part the autoencoder '
             'reconstructs and a row-sparse part S for anomalies (proximal ℓ2,1 step); scored '
             'by reconstruction error.'),
    'dagmm': ('DAGMM',
             'Deep autoencoding Gaussian mixture: a Gaussian mixture is fitted to the '
             "autoencoder's low-dimensional code and reconstruction features; scored by the "
             'sample energy (negative log-density).'),
    'memae': ('MemAE',
             'Memory-augmented autoencoder: the decoder only sees sparse combinations of '
             'learned prototypes of normal codes, so anomalies reconstruct poorly; scored by '
             'reconstruction error.'),
    'rsrae': ('RSRAE',
             'Autoencoder with a robust subspace recovery layer: codes are projected onto a '
             'learned low-dimensional subspace that fits the normal data; scored by the cosine '
             'dissimilarity of image and reconstruction.'),
}
