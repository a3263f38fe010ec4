"""Slakh2100 (flac redux, as distributed): ``<split>/TrackNNNNN/stems/SNN.flac``, with
``TrackNNNNN/metadata.yaml`` describing every stem.

A stem's label is its ``inst_class`` (the General MIDI instrument class of its program,
``program_num``), and ``Drums`` for a track whose ``is_drum`` flag is set. Stems whose
audio was not rendered (``audio_rendered: false``, or no audio file) are skipped; so are
stems of classes that are not categories of the map (see ``maps/slakh2100.toml``).
The group is the track folder, the split the folder above it. BabySlakh's ``.wav`` stems
are read as well.
"""

import os

import yaml

from stemeval.datasets.base import Dataset, Found, Stem, audio_files
from stemeval.errors import UserError

SPLITS = ("train", "validation", "test", "omitted")
METADATA = "metadata.yaml"
STEM_EXTENSIONS = (".flac", ".wav")


def _read_metadata(path):
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UserError(f"{path}: not a readable Slakh metadata file ({error})") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("stems"), dict):
        raise UserError(f"{path}: not a Slakh metadata file (no `stems` table)")
    return metadata


def _audio(track, audio_dir, stem_id):
    for extension in STEM_EXTENSIONS:
        path = os.path.join(track, audio_dir, stem_id + extension)
        if os.path.isfile(path):
            return path
    return None


def walk(folder, follow_links=False):
    files, skipped = audio_files(folder, (".yaml",), follow_links)
    stems, unrendered = [], 0
    for track, name in files:
        if name != METADATA:
            continue
        metadata = _read_metadata(os.path.join(track, name))
        track_id = os.path.basename(os.path.normpath(track))
        split = os.path.basename(os.path.dirname(os.path.normpath(track)))
        for stem_id, info in sorted(metadata["stems"].items()):
            info = info or {}
            path = _audio(track, metadata.get("audio_dir") or "stems", stem_id)
            if info.get("audio_rendered") is False or path is None:
                unrendered += 1
                continue
            label = "Drums" if info.get("is_drum") else str(info.get("inst_class") or "")
            stems.append(Stem(path, label, group=track_id,
                              split=split if split in SPLITS else ""))
    notes = [f"skipped {unrendered} Slakh stems whose audio was not rendered"] if unrendered else []
    return Found(stems, skipped, notes)


DATASET = Dataset(
    name="slakh2100", title="Slakh2100", walk=walk, map_name="slakh2100", splits=SPLITS,
    formats=".flac", mapped_only=True,
    folder="the slakh2100_flac_redux folder (<split>/TrackNNNNN/metadata.yaml and "
           "stems/SNN.flac)")
