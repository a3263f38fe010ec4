"""The datasets the evaluation can walk: one module per layout, and the registry of names.

Each layout module defines ``DATASET`` (a ``base.Dataset``) whose ``walk`` reads the
dataset's own files as distributed; ``maps/`` holds the category maps as data;
``selection`` applies --split, the map's categories and the wrong-layout check.
"""

from stemeval.datasets import (
    dsd100,
    irmas,
    manifest,
    medley_solos_db,
    moisesdb,
    musdb18hq,
    slakh2100,
    tinysol,
)
from stemeval.datasets.categories import CategoryMap, dataset_map
from stemeval.datasets.walker import Dataset, Found, Stem  # noqa: F401 (the package's API)

DATASETS = {module.DATASET.name: module.DATASET for module in (
    dsd100, moisesdb, musdb18hq, slakh2100, medley_solos_db, tinysol, irmas, manifest)}


def category_map(dataset):
    """The ``CategoryMap`` of a dataset name, or ``dataset`` itself when it is one."""
    if isinstance(dataset, CategoryMap):
        return dataset
    return dataset_map(DATASETS[dataset].map_name)
