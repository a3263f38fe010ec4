"""An append-only log of ``.npy`` records, two per entry (its names, then its vector), that a
killed run leaves readable up to its last whole entry. The embeddings and the kept scores of
a run are written through it before each row, and assembled into their ``.npz`` at the end.
"""

import numpy as np


def append(handle, names, vector):
    """Append one entry: ``names`` (strings) and ``vector`` (float32)."""
    np.save(handle, np.array([str(name) for name in names], dtype=str))
    np.save(handle, np.asarray(vector, dtype=np.float32))


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
