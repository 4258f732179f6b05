"""Data: the benchmark sets, the contaminated one-vs-all protocol, and the user's own images.

Layer 1 of the core (it imports nothing of the project). ``benchmarks`` knows the data sets,
their files and downloads; ``contaminated`` draws the one-vs-all sets of the paper's protocol;
``image_files`` reads a folder or zip of the user's images into an ``image_set.ImageSet`` (which
``image_set`` also builds from an array). The torch-free names of the first two are re-exported
here; ``image_files`` and ``image_set`` load torch (and Pillow), so they are imported from their
modules.
"""

from iaead_core.data.benchmarks import (DATASETS, DEFAULT_CAP, DEFAULT_DATA_ROOT,
                                        DatasetCorruptError, DatasetSpec, DatasetUnavailableError,
                                        ENV_DATA_ROOT, OFFLINE_DEFAULT, class_index,
                                        dataset_problems, dataset_status, list_datasets, load_pool,
                                        resolve_data_root)
from iaead_core.data.contaminated import (ContaminatedSet, make_contaminated, min_samples,
                                          to_model_input)
__all__ = ["DATASETS", "DEFAULT_CAP", "DEFAULT_DATA_ROOT", "ENV_DATA_ROOT", "OFFLINE_DEFAULT",
           "DatasetCorruptError", "DatasetSpec", "DatasetUnavailableError", "class_index",
           "dataset_problems", "dataset_status", "list_datasets", "load_pool",
           "resolve_data_root", "ContaminatedSet", "make_contaminated", "min_samples",
           "to_model_input"]
