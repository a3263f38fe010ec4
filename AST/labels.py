"""AudioSet label order, the instrument labels the evaluation may choose, and the dataset maps
(data files in ``stemeval/datasets/maps/``, read through ``map_prediction``).

The AST scores the 527 AudioSet classes in the order of ``class_labels_indices.csv``
(Google AudioSet ontology, CC BY 4.0; copied from the PyPI package whisper-at 0.5).
"""

import csv
from pathlib import Path

from stemeval.datasets.categories import UNMAPPED_CATEGORY  # noqa: F401 (a published name)

CLASS_LABELS_CSV = Path(__file__).with_name("class_labels_indices.csv")


def load_audioset_labels(path=CLASS_LABELS_CSV):
    """Return the display names in output order (row ``index`` i is logit i)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if [int(row["index"]) for row in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: the index column is not 0..{len(rows) - 1} in order")
    return [row["display_name"] for row in rows]


AUDIOSET_LABELS = load_audioset_labels()

# The AudioSet display names the evaluation may predict; every other label is passed over.
INSTRUMENT_LABELS = frozenset([
    "Speech", "Guitar", "Electric guitar", "Bass guitar", "Acoustic guitar",
    "Steel guitar, slide guitar", "Tapping (guitar technique)", "Strum", "Banjo", "Sitar",
    "Mandolin", "Zither", "Ukulele", "Keyboard (musical)", "Piano", "Electric piano", "Organ",
    "Electronic organ", "Hammond organ", "Synthesizer", "Sampler", "Harpsichord", "Percussion",
    "Drum kit", "Drum machine", "Drum", "Snare drum", "Rimshot", "Drum roll", "Bass drum",
    "Timpani", "Tabla", "Cymbal", "Hi-hat", "Wood block", "Tambourine", "Rattle (instrument)",
    "Maraca", "Gong", "Tubular bells", "Mallet percussion", "Marimba, xylophone",
    "Glockenspiel", "Vibraphone", "Steelpan", "Brass instrument", "French horn", "Trumpet",
    "Trombone", "Bowed string instrument", "String section", "Violin, fiddle", "Cello",
    "Double bass", "Wind instrument, woodwind instrument", "Flute", "Saxophone", "Clarinet",
    "Harp", "Bell", "Church bell", "Jingle bell", "Tuning fork", "Chime", "Wind chime",
    "Change ringing (campanology)", "Harmonica", "Accordion", "Bagpipes", "Didgeridoo",
    "Shofar", "Theremin", "Singing bowl", "Scratching (performance technique)", "Singing",
    "A capella", "Vocal music", "Choir", "Yodeling", "Chant", "Mantra", "Male singing",
    "Female singing", "Child singing", "Synthetic singing", "Rapping", "Humming", "Orchestra",
    "Whistle", "Plucked string instrument", "Tick",
])

SPEECH_LABEL = "Speech"


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
    from stemeval.datasets import category_map

    return category_map(dataset).category(prediction)
