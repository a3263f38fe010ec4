"""Slakh2100 (flac redux, as distributed): ``<split>/TrackNNNNN/stems/SNN.flac``, with
``TrackNNNNN/metadata.yaml`` describing every stem.

A stem's label is its ``inst_class`` (the General MIDI instrument class of its program,
``program_num``), and ``Drums`` for a track whose ``is_drum`` flag is set. Stems whose
audio was not rendered (``audio_rendered: false``), whose file is missing or whose track
has no audio folder (``stems/`` renamed) are skipped and counted in notes; so are stems of classes
that are not categories of the map (see ``maps/slakh2100.toml``). The group is the track
folder, the split the folder above it. BabySlakh's ``.wav`` stems are read as well, and
extensions in any case (``S00.FLAC``).
"""

import os
from collections import Counter

from stemeval.common.errors import UserError
from stemeval.datasets.walker import (
    Dataset,
    Found,
    Stem,
    audio_files,
    irregular_note,
    part_from_end,
)

# Imported inside the functions that use them, so that what needs none of them starts without them:
# yaml (evaluate --help, which ./run.sh answers before the environment is built).

SPLITS = ("train", "validation", "test", "omitted")
METADATA = "metadata.yaml"
AUDIO_DIR = "stems"
STEM_EXTENSIONS = (".flac", ".wav")


def _yaml_reason(error):
    """A YAML parser's report in a few words: its problem and where (it spans lines)."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(error, 'problem', None) or type(error).__name__}{where}"


def _read_metadata(path):
    """The checked metadata: a ``stems`` table of stem name -> table, and ``audio_dir``."""
    import yaml

    try:
        with open(path, encoding="utf-8-sig") as handle:
            metadata = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({_yaml_reason(error)})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not a readable Slakh metadata file ({error})") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("stems"), dict):
        raise UserError(f"{path}: not a Slakh metadata file (no `stems` table)")
    audio_dir = metadata.get("audio_dir", AUDIO_DIR)
    if audio_dir is not None and not isinstance(audio_dir, str):
        raise UserError(f"{path}: audio_dir must be the name of the track's audio folder "
                        f"(such as {AUDIO_DIR}), not {audio_dir!r}")
    for stem_id, info in metadata["stems"].items():
        if not isinstance(stem_id, str):
            raise UserError(f"{path}: stem {stem_id!r} must be named as Slakh names stems "
                            f"(S00, S01...), the name of its audio file")
        if info is not None and not isinstance(info, dict):
            raise UserError(f"{path}: stem {stem_id} must be a table (inst_class, is_drum, "
                            f"audio_rendered...), not {info!r}")
    return metadata


def _audio_files(folder):
    """Lower-cased name -> path of the files in a track's audio folder (``S00.FLAC`` too)."""
    return {name.lower(): os.path.join(folder, name) for name in os.listdir(folder)}


def walk(folder, follow_links=False):
    files, skipped, notes = audio_files(folder, (".yaml",), follow_links)
    tracks = [directory for directory, name in files if name == METADATA]
    if not tracks:
        raise UserError(f"no {METADATA} below {folder}: Slakh2100's labels come from each "
                        f"track's TrackNNNNN/{METADATA} (distributed with the audio)")
    stems, skips, no_folder, unnamed = [], Counter(), None, None
    for track in tracks:
        metadata = _read_metadata(os.path.join(track, METADATA))
        track_id = os.path.basename(os.path.normpath(track))
        split = os.path.basename(os.path.dirname(os.path.normpath(track)))
        audio_dir = os.path.join(track, metadata.get("audio_dir") or AUDIO_DIR)
        present = _audio_files(audio_dir) if os.path.isdir(audio_dir) else None
        for stem_id, info in sorted(metadata["stems"].items()):
            info = info or {}
            paths = [present.get((stem_id + extension).lower()) for extension in STEM_EXTENSIONS
                     ] if present is not None else []
            path = next((path for path in paths if path), None)
            why = ("unrendered" if info.get("audio_rendered") is False else
                   "no folder" if present is None else
                   "unrendered" if path is None else
                   "irregular" if not os.path.isfile(path) else None)
            if why is not None:
                skips[why] += 1
                no_folder = no_folder or (audio_dir if present is None else None)
                continue
            label = "Drums" if info.get("is_drum") else str(info.get("inst_class") or "").strip()
            if not label:  # no class to score it against
                skips["no class"] += 1
                unnamed = unnamed or f"{track_id} {stem_id}"
                continue
            stems.append(Stem(path, label, group=track_id,
                              split=split if split in SPLITS else ""))
    return Found(stems, skipped, notes + _skip_notes(skips, no_folder, unnamed))


def track_folder(parts):
    """The group of a stem read back from its path: the track folder above its audio folder
    (``TrackNNNNN/stems/S00.flac``), which is the walker's track id in Slakh's layout."""
    return part_from_end(parts, 3)


def _skip_notes(skips, no_folder, unnamed=None):
    """One note per reason a stem listed in the metadata was skipped (``unnamed``: the
    first stem whose metadata names no class)."""
    notes = []
    if skips["no class"]:
        notes.append(f"skipped {skips['no class']} Slakh stems whose metadata names no class "
                     f"(an empty inst_class, e.g. {unnamed})")
    if skips["unrendered"]:  # audio_rendered: false, or no audio file in the audio folder
        notes.append(f"skipped {skips['unrendered']} Slakh stems whose audio was not rendered")
    if skips["no folder"]:
        notes.append(f"skipped {skips['no folder']} Slakh stems whose track has no audio "
                     f"folder (e.g. {no_folder} is missing)")
    if skips["irregular"]:
        notes.append(irregular_note(skips["irregular"]))
    return notes


DATASET = Dataset(
    name="slakh2100", title="Slakh2100", walk=walk, map_name="slakh2100", splits=SPLITS,
    formats=".flac", mapped_only=True, track_of=track_folder,
    folder="the slakh2100_flac_redux folder (<split>/TrackNNNNN/metadata.yaml and "
           "stems/SNN.flac)")
