"""MoisesDB: ``<song id>/<category>/<stem>.wav``; the label is the folder holding the file.

As published: every ``.wav``/``.mp3`` except those directly in a folder named ``other``
(any case); ``mix`` is not skipped here; hidden files are skipped. The group is the song (the folder above the label's).
"""

import os

from stemeval.datasets.dsd100 import PUBLISHED_EXTENSIONS
from stemeval.datasets.walker import Dataset, Found, Stem, audio_files, part_from_end, path_parts


def song_id(parts):
    """The group: the song folder, above the category folder holding the stem."""
    return part_from_end(parts, 3)


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, PUBLISHED_EXTENSIONS, follow_links)
    stems = []
    for directory, name in files:
        label = os.path.basename(os.path.normpath(directory))
        if label.lower() != "other":
            path = os.path.join(directory, name)
            stems.append(Stem(path, label, group=song_id(path_parts(path))))
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="moisesdb", title="MoisesDB", walk=walk, map_name="moisesdb",
    formats=".wav or .mp3", track_of=song_id,
    folder="the moisesdb_v0.1 folder (<song id>/<category>/<stem>.wav)")
