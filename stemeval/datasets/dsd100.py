"""DSD100 ``Sources``: ``Dev|Test/<song>/<stem>.wav``; the label is the file name.

As published: every ``.wav``/``.mp3`` (any case) whose name contains neither ``mix`` nor
``other`` (case-insensitive) is a stem; hidden files (``._bass.wav``) are skipped.
"""

import os

from stemeval.datasets.walker import (
    Dataset,
    Found,
    Stem,
    audio_files,
    first_part,
    part_from_end,
    path_parts,
)

PUBLISHED_EXTENSIONS = (".wav", ".mp3")
SPLITS = ("Dev", "Test")


def split_of(folder, directory):
    """The split folder a file sits in (by any case), or "" below another folder."""
    part = first_part(folder, directory)
    return next((split for split in SPLITS if split.lower() == part.lower()), "")


def song_folder(parts):
    """The group: the folder holding the stem (the song's)."""
    return part_from_end(parts, 2)


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, PUBLISHED_EXTENSIONS, follow_links)
    stems = []
    for directory, name in files:
        label = os.path.splitext(name)[0]
        if "mix" not in label.lower() and "other" not in label.lower():
            path = os.path.join(directory, name)
            stems.append(Stem(path, label, group=song_folder(path_parts(path)),
                              split=split_of(folder, directory)))
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="dsd100", title="DSD100", walk=walk, map_name="dsd100", splits=SPLITS,
    formats=".wav or .mp3", track_of=song_folder,
    folder="the DSD100/Sources folder (Dev|Test/<song>/{bass,drums,vocals}.wav)")
