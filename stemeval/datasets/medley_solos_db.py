"""Medley-solos-DB: 3 s solo clips ``Medley-solos-DB_<subset>-<instrument id>_<uuid4>.wav``
and ``Medley-solos-DB_metadata.csv`` (``subset,instrument,instrument_id,song_id,uuid4``).

The label is the metadata's ``instrument`` (clarinet, distorted electric guitar, female
singer, flute, piano, tenor saxophone, trumpet, violin), the group its ``song_id`` (the
recording the clip was cut from) and the split its ``subset`` (training, validation, test).
Clips are matched to the metadata by the uuid in their file name, wherever they sit below
FOLDER; a clip the metadata does not list is skipped and counted, and so is a clip it lists
twice with another label, split or song (listed twice alike, it is taken once).
"""

import os

from stemeval.datasets.walker import Dataset, Found, Stem, audio_files, metadata_table

METADATA = "Medley-solos-DB_metadata.csv"
PREFIX = "Medley-solos-DB_"
SPLITS = ("training", "validation", "test")


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, (".wav", ".csv"), follow_links)
    rows = metadata_table(files, METADATA, ("subset", "instrument", "song_id", "uuid4"), folder)
    clips, twice = {}, {}
    for row in rows:
        uuid = row["uuid4"].strip()
        seen = clips.setdefault(uuid, row)
        if any(seen[key] != row[key] for key in ("subset", "instrument", "song_id")):
            twice.setdefault(uuid, [seen["instrument"]]).append(row["instrument"])
    stems, unlisted, ambiguous = [], 0, 0
    for directory, name in files:
        if not (name.startswith(PREFIX) and name.lower().endswith(".wav")):
            continue
        uuid = os.path.splitext(name)[0].rsplit("_", 1)[-1]
        row = clips.get(uuid)
        if row is None:
            unlisted += 1
            continue
        if uuid in twice:  # which of its rows is right cannot be told
            ambiguous += 1
            continue
        stems.append(Stem(os.path.join(directory, name), row["instrument"],
                          group=row["song_id"], split=row["subset"]))
    if unlisted:
        notes.append(f"skipped {unlisted} clips that {METADATA} does not list")
    if ambiguous:
        uuid, labels = next(iter(twice.items()))
        notes.append(f"skipped {ambiguous} clips that {METADATA} lists more than once, with "
                     f"another label, split or song (e.g. {uuid}: {' and '.join(labels)})")
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="medley-solos-db", title="Medley-solos-DB", walk=walk, map_name="medley-solos-db",
    splits=SPLITS,
    folder=f"the folder holding {METADATA} and the clips (in it or below it)")
