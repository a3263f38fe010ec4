"""AudioSet label order, the instrument labels the evaluation may choose, and the dataset maps.

The AST scores the 527 AudioSet classes in the order of ``class_labels_indices.csv``
(Google AudioSet ontology, CC BY 4.0; copied from the PyPI package whisper-at 0.5).
"""

import csv
from pathlib import Path

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

_VOCALS = [
    "singing", "mantra", "male singing", "female singing", "child singing",
    "synthetic singing", "choir", "yodeling", "chant", "humming", "rapping", "a capella",
    "vocal music",
]

# Category -> lower-cased AudioSet labels, per dataset. A label with a comma is one label.
_CATEGORIES = {
    "dsd100": {
        "vocals": _VOCALS,
        "drums": [
            "drum kit", "percussion", "drum machine", "drum", "snare drum", "rimshot",
            "drum roll", "bass drum", "timpani", "tabla", "cymbal", "hi-hat", "tambourine",
            "wood block",
        ],
        "bass": ["bass guitar", "double bass", "synthesizer", "sampler"],
    },
    "moisesdb": {
        "vocals": _VOCALS,
        "drums": [
            "drum kit", "drum machine", "drum", "snare drum", "rimshot", "drum roll",
            "bass drum", "timpani", "tabla", "cymbal", "hi-hat",
        ],
        "bass": ["bass guitar", "double bass"],
        "piano": ["piano", "electric piano", "keyboard (musical)", "harpsichord"],
        "guitar": [
            "guitar", "acoustic guitar", "electric guitar", "steel guitar, slide guitar",
            "tapping (guitar technique)", "plucked string instrument",
        ],
        "wind": [
            "flute", "saxophone", "trumpet", "trombone", "clarinet",
            "wind instrument, woodwind instrument", "brass instrument", "french horn",
            "harmonica",
        ],
        "bowed_strings": ["violin, fiddle", "cello", "bowed string instrument", "orchestra"],
        "other_keys": [
            "synthesizer", "organ", "electronic organ", "hammond organ", "sampler", "accordion",
            "theremin",
        ],
        "other_plucked": ["harp", "banjo", "mandolin", "sitar", "zither", "ukulele"],
        "percussion": [
            "marimba, xylophone", "vibraphone", "steelpan", "wood block", "tambourine",
            "percussion", "glockenspiel", "maraca", "tubular bells", "gong", "tick",
        ],
    },
}

DATASET_MAPS = {
    dataset: {label: category for category, labels in categories.items() for label in labels}
    for dataset, categories in _CATEGORIES.items()
}

UNMAPPED_CATEGORY = "other"


def map_prediction(prediction, dataset):
    """Return the dataset category of a predicted label (case-insensitive), or ``other``."""
    return DATASET_MAPS[dataset].get(prediction.lower(), UNMAPPED_CATEGORY)
