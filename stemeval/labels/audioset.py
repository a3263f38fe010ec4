"""AudioSet's labels: the 527 classes in score order, and the 91 instrument labels the
evaluation may choose from (the published list; see ``stemeval.labels.pick``).

Every AudioSet tagger scores the classes in the order of ``AST/class_labels_indices.csv``
(Google AudioSet ontology, CC BY 4.0; copied from the PyPI package whisper-at 0.5), the
file's published home beside the AST.
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
