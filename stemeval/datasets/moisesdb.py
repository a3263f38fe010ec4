"""MoisesDB: ``<song id>/<category>/<stem>.wav``; the label is the folder holding the file.

As published: every ``.wav``/``.mp3`` except those directly in a folder named ``other``
(any case); ``mix`` is not skipped here; hidden files are skipped. The group is the song (the folder above the label's).
"""

import os

from stemeval.datasets.base import Dataset, Found, Stem, audio_files
from stemeval.datasets.dsd100 import PUBLISHED_EXTENSIONS


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, PUBLISHED_EXTENSIONS, follow_links)
    stems = []
    for directory, name in files:
        holder = os.path.normpath(directory)
        label = os.path.basename(holder)
        if label.lower() != "other":
            stems.append(Stem(os.path.join(directory, name), label,
                              group=os.path.basename(os.path.dirname(holder))))
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="moisesdb", title="MoisesDB", walk=walk, map_name="moisesdb",
    formats=".wav or .mp3",
    folder="the moisesdb_v0.1 folder (<song id>/<category>/<stem>.wav)")
