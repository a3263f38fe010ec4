"""AudioSet labels, the instrument list and the dataset maps, at their published import path.

The labels live in ``stemeval.audioset`` and the maps in ``stemeval/datasets/maps/``; this
module keeps ``from AST.labels import ...`` working.
"""

from stemeval.audioset import (AUDIOSET_LABELS, CLASS_LABELS_CSV,  # noqa: F401 (published names)
                               INSTRUMENT_LABELS, SPEECH_LABEL, load_audioset_labels)
from stemeval.datasets import category_map
from stemeval.datasets.categories import UNMAPPED_CATEGORY  # noqa: F401 (a published name)


def __getattr__(name):
    """``DATASET_MAPS`` (dataset -> {lower-cased label: category}) is read from the map files
    of ``stemeval/datasets/maps/`` when first asked for."""
    if name == "DATASET_MAPS":
        from stemeval.datasets.categories import dataset_map

        return {dataset: dataset_map(dataset).labels for dataset in ("dsd100", "moisesdb")}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def map_prediction(prediction, dataset):
    """The dataset category of a predicted label (case-insensitive), or ``other``.

    ``dataset`` is a dataset name (its map is ``stemeval/datasets/maps/<map>.toml``) or a
    ``stemeval.datasets.categories.CategoryMap`` (e.g. one read from ``--map FILE``).
    """
    return category_map(dataset).category(prediction)
