"""An append-only log of ``.npy`` records, two per entry (its names, then its vector), that a
killed run leaves readable up to its last whole entry. The embeddings and the kept scores of
a run are written through it before each row, and assembled into their ``.npz`` at the end.
"""

import io
import json
import zipfile

import numpy as np


def append(handle, names, vector):
    """Append one entry: ``names`` (strings) and ``vector`` (float32). The entry's bytes are
    made first, then written whole or an OSError is raised (a full disk): numpy writing
    into a file itself can lose a short write without a word."""
    buffer = io.BytesIO()
    np.save(buffer, np.array([str(name) for name in names], dtype=str))
    np.save(buffer, np.asarray(vector, dtype=np.float32))
    data = memoryview(buffer.getbuffer())
    while data:
        written = handle.write(data)
        data = data[written:]  # an unbuffered file may take part; the next write says why


def records(handle):
    """``(records, bytes of whole records)`` of a log: ``[(names, vector), ...]``."""
    found, good = [], 0
    handle.seek(0)
    while True:
        try:
            names = np.load(handle, allow_pickle=False)
            vector = np.load(handle, allow_pickle=False)
        except (EOFError, ValueError, OSError):
            return found, good
        found.append((list(names), vector))
        good = handle.tell()


def repair(path):
    """Cut a half-written last entry (a killed run) off the log at ``path``."""
    with open(path, "r+b") as handle:
        handle.truncate(records(handle)[1])


def save_npz(handle, arrays, note=None):
    """``np.savez(handle, **arrays)``, with ``note`` (a JSON-able dict) as the zip archive's
    comment; the archive is closed whatever happens (a full disk leaves no half-open
    archive behind to complain when it is collected)."""
    with zipfile.ZipFile(handle, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        if note is not None:
            archive.comment = json.dumps(note).encode("utf-8")
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
