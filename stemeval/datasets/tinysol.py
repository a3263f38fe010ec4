"""TinySOL: one note per file, ``<family>/<instrument>/ordinario/<name>.wav``, and
``TinySOL_metadata.csv`` (``Path,Fold,Family,Instrument (abbr.),Instrument (in full),...``).

The label is the metadata's ``Instrument (in full)`` (e.g. Violoncello, Clarinet in Bb),
the split its ``Fold`` (0-4, the official balanced 5-fold split). Every note is its own
recording, so its group is its file name. Files are matched to the metadata by file name,
wherever they sit below FOLDER; a file the metadata does not list is skipped and counted.
"""

import os

from stemeval.datasets.walker import (
    Dataset,
    Found,
    Stem,
    audio_files,
    metadata_table,
    part_from_end,
    path_parts,
)

METADATA = "TinySOL_metadata.csv"
SPLITS = ("0", "1", "2", "3", "4")


def note(parts):
    """The group: the file name without its extension (each note is its own recording)."""
    return os.path.splitext(part_from_end(parts, 1))[0]


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, (".wav", ".csv"), follow_links)
    rows = metadata_table(files, METADATA, ("Path", "Fold", "Instrument (in full)"), folder)
    by_name = {os.path.basename(row["Path"]): row for row in rows}
    stems, unlisted = [], 0
    for directory, name in files:
        if not name.lower().endswith(".wav"):
            continue
        row = by_name.get(name)
        if row is None:
            unlisted += 1
            continue
        path = os.path.join(directory, name)
        stems.append(Stem(path, row["Instrument (in full)"], group=note(path_parts(path)),
                          split=row["Fold"]))
    if unlisted:
        notes.append(f"skipped {unlisted} files that {METADATA} does not list")
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="tinysol", title="TinySOL", walk=walk, map_name="tinysol", splits=SPLITS,
    track_of=note,
    folder=f"the folder holding {METADATA} and the TinySOL audio (in it or below it)")
