"""MUSDB18-HQ: ``train|test/<track>/{bass,drums,other,vocals,mixture}.wav``.

Evaluated like DSD100, its predecessor: the label is the file name, ``other`` and
``mixture`` are not evaluated, the group is the track folder and the split its top folder.
"""

import os

from stemeval.datasets.dsd100 import song_folder
from stemeval.datasets.walker import Dataset, Found, Stem, audio_files, first_part, path_parts

SPLITS = ("train", "test")
NOT_EVALUATED = ("mixture", "other")


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, (".wav",), follow_links)
    stems = []
    for directory, name in files:
        label = os.path.splitext(name)[0]
        if label.lower() not in NOT_EVALUATED:
            part = first_part(folder, directory)
            path = os.path.join(directory, name)
            stems.append(Stem(path, label, group=song_folder(path_parts(path)),
                              split=part if part in SPLITS else ""))
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="musdb18hq", title="MUSDB18-HQ", walk=walk, map_name="dsd100", splits=SPLITS,
    track_of=song_folder,
    folder="the musdb18hq folder (train|test/<track>/{bass,drums,vocals}.wav)")
