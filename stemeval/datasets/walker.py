"""What every walker shares: the stem record, the dataset record, and the folder walk.

``path`` is the folder given on the command line joined with the file's path below it,
exactly as written, so rows of two runs on the same tree can be matched by path.
"""

import csv
import errno
import os
import posixpath
from dataclasses import dataclass, field
from typing import Callable

from stemeval.common.errors import UserError, os_reason, shown


def _path_max():
    """The longest path the system opens, in bytes (4096 on Linux)."""
    try:
        return os.pathconf("/", "PC_PATH_MAX")
    except (AttributeError, OSError, ValueError):
        return 4096


PATH_MAX = _path_max()


@dataclass(frozen=True)
class Stem:
    """One file to evaluate: its path, ground-truth label, and the group it belongs to
    (track folder, track id, song id...) so that splits and probes keep a group together.
    ``split`` is the dataset's own split it sits in, where it has splits."""

    path: str
    label: str
    group: str = ""
    split: str = ""


@dataclass
class Found:
    """What a walker found: the stems, how many symlinked folders it did not follow, and
    one-line notes on files it passed over on purpose (not rendered, not listed...)."""

    stems: list
    skipped_links: int = 0
    notes: list = field(default_factory=list)


@dataclass(frozen=True)
class Dataset:
    """A layout the evaluation can walk.

    ``walk(folder, follow_links)`` returns a ``Found``; ``map_name`` names the category map
    ``maps/<map_name>.toml`` (None: the chosen AudioSet label is the proposed label);
    ``folder`` says what FOLDER must be, for --help and for the wrong-layout hint.
    ``track_of(parts)`` gives a stem's group from its path's names (``path_parts``), for
    the walker and for rows read back from a results CSV; None where the path does not
    say it (the group comes from metadata or the manifest).
    """

    name: str
    title: str
    folder: str
    walk: Callable
    map_name: str = None
    splits: tuple = ()
    formats: str = ".wav"  # the audio files it takes, for messages
    input_is_file: bool = False  # FOLDER is a file (the manifest CSV)
    mapped_only: bool = False  # keep only stems whose label is a category of the map
    track_of: Callable = None


def path_parts(path):
    """The folder and file names of a path, ``/`` or ``\\`` separated as written on any
    system (``.`` and ``x/..`` resolved away), as ``Dataset.track_of`` takes them."""
    return [part for part in posixpath.normpath(path.replace("\\", "/")).split("/")
            if part not in ("", ".")]


def part_from_end(parts, index):
    """``parts[-index]``, or "" when the path is shorter."""
    return parts[-index] if len(parts) >= index else ""


def audio_files(folder, extensions, follow_links=False):
    """``(files, skipped links, notes)``: (directory, name) of every visible regular file
    below ``folder`` whose extension (any case) is one of ``extensions``, how many symlinked
    folders were not followed, and a note counting the files passed over as not regular.

    As the published walker (``os.walk``), symlinked folders are not entered unless
    ``follow_links``; then each real folder is walked once, so a link loop ends. Only regular
    files (or links to one) are taken: reading a FIFO named ``drums.wav`` would wait forever.
    """
    files, skipped, irregular, seen, too_long, unread = [], 0, 0, set(), [], []

    def unreadable(error):  # os.walk passes over a folder it cannot list: say so
        (too_long if error.errno == errno.ENAMETOOLONG else unread).append(
            (error.filename, error))

    for directory, folders, names in os.walk(folder, onerror=unreadable,
                                             followlinks=follow_links):
        if follow_links:
            real = os.path.realpath(directory)
            if real in seen:
                folders[:] = []
                continue
            seen.add(real)
        else:
            skipped += sum(os.path.islink(os.path.join(directory, name)) for name in folders)
        for name in names:
            if not name.startswith(".") and name.lower().endswith(extensions):
                path = os.path.join(directory, name)
                if len(os.fsencode(path)) >= PATH_MAX:
                    too_long.append((path, None))
                elif os.path.isfile(path):
                    files.append((directory, name))
                else:
                    irregular += 1
    notes = [irregular_note(irregular)] if irregular else []
    if too_long:
        example = os.fsencode(str(too_long[0][0]))
        notes.append(f"left out {len(too_long)} file(s) or folder(s) whose path is longer than "
                     f"the system opens ({PATH_MAX} bytes), e.g. one of {len(example)} bytes "
                     f"starting {shown(os.fsdecode(example[:60]))}...; move them to a shorter "
                     f"path to evaluate them")
    if unread:
        path, error = unread[0]
        notes.append(f"left out {len(unread)} folder(s) that cannot be read, e.g. {shown(path)} "
                     f"({os_reason(error)})")
    return files, skipped, notes


def irregular_note(count):
    """The note for files passed over because they are not regular files."""
    return (f"skipped {count} file(s) that are not regular files (a FIFO, socket or device, "
            f"or a broken link): only regular files are read as stems")


def first_part(folder, directory):
    """The first folder name of ``directory`` below ``folder`` ("" when it is ``folder``)."""
    relative = os.path.relpath(directory, folder)
    return "" if relative == os.curdir else relative.split(os.sep)[0]


def metadata_table(files, file_name, columns, folder):
    """The rows (dicts) of the metadata CSV ``file_name`` found among ``files`` (the one
    nearest ``folder``); a missing file or column, or a row short of one, is a UserError
    saying what is wrong. A byte-order mark (as Excel writes) is not part of the header."""
    found = sorted((os.path.join(directory, name) for directory, name in files
                    if name == file_name), key=lambda path: (path.count(os.sep), path))
    if not found:
        raise UserError(f"no {file_name} below {folder}: this dataset's labels come from it "
                        f"(it is distributed with the audio)")
    try:
        with open(found[0], newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in columns if column not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{found[0]}: missing column(s) {', '.join(missing)}")
            rows = []
            for row in reader:
                short = [column for column in columns if row[column] is None]
                if short:
                    raise UserError(f"{found[0]}, line {reader.line_num}: the row ends before "
                                    f"the column(s) {', '.join(short)}")
                rows.append(row)
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{found[0]}: not a readable CSV file ({error})") from None
