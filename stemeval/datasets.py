"""Which files of a dataset tree are stems, and their ground-truth labels.

``path`` is the folder given on the command line joined with the file's path below it,
exactly as written, so rows of two runs on the same tree can be matched by path.
"""

import os
from dataclasses import dataclass

AUDIO_EXTENSIONS = (".wav", ".mp3")


@dataclass(frozen=True)
class Stem:
    path: str
    label: str


def _audio_files(folder):
    """(directory, file name) of every visible .wav/.mp3 file below ``folder``."""
    for directory, _, names in os.walk(folder):
        for name in names:
            if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                yield directory, name


def dsd100_stems(folder):
    """DSD100 ``Sources``: label = file name; mixtures and ``other`` stems are skipped."""
    stems = []
    for directory, name in _audio_files(folder):
        label = os.path.splitext(name)[0]
        if "mix" not in label.lower() and "other" not in label.lower():
            stems.append(Stem(os.path.join(directory, name), label))
    return sorted(stems, key=lambda stem: stem.path)


def moisesdb_stems(folder):
    """MoisesDB: label = the folder holding the file; files directly in ``other/`` skipped."""
    stems = []
    for directory, name in _audio_files(folder):
        label = os.path.basename(os.path.normpath(directory))
        if label.lower() != "other":
            stems.append(Stem(os.path.join(directory, name), label))
    return sorted(stems, key=lambda stem: stem.path)


LAYOUTS = {"dsd100": dsd100_stems, "moisesdb": moisesdb_stems}
