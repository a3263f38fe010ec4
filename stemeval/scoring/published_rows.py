"""The published result rows shipped in ``reference/``, and how rows of two results files
are matched when each run read its own copy of a dataset, kept in another place.

A stem is known by its path below the dataset root: its last three parts, which are what
follows ``Sources/`` in DSD100 (``Dev|Test/<song>/<stem>.wav``) and ``moisesdb_v0.1/`` in
MoisesDB (``<song id>/<category>/<stem id>.wav``), whatever folder the run was given (the
root, ``Sources`` or a copy under another name, or a subset such as ``Sources/Test``).
"""

import os
import re
from pathlib import Path

from stemeval.common.errors import UserError
from stemeval.labels.matching import normalise
from stemeval.runfiles.results import decode_text, encode_text, read_results
from stemeval.scoring.metrics import compare_runs

FOLDER = Path(__file__).with_name("reference")
PUBLISHED_RESULTS = {
    "dsd100": FOLDER / "published_results_dsd100.csv",
    "moisesdb": FOLDER / "published_results_moises.csv",
}
PUBLISHED = "published"  # the --compare value that names the published rows
DATASET_NAMES = {"dsd100": "DSD100", "moisesdb": "MoisesDB"}
DEPTH = 3  # parts of a stem's path below the dataset root, in both layouts

# The ground truth of each layout and where it comes from: DSD100's is the file name,
# MoisesDB's the category folder holding the file.
_LABELS = {
    "dsd100": {"bass", "drums", "vocals"},
    "moisesdb": {"bass", "bowed_strings", "drums", "guitar", "other_keys", "other_plucked",
                 "percussion", "piano", "vocals", "wind"},
}
# DSD100's top folders (MUSDB18, whose stems are named as DSD100's, has train and test).
_DSD100_SPLITS = {"Dev", "Test"}


def _parts(path):
    """A path's folder and file names (``/`` or ``\\`` separated, as written on any system;
    the ``\\xNN`` escapes of a results CSV read as the bytes they stand for)."""
    return [part for part in re.split(r"[\\/]+", decode_text(path)) if part]


def _label_source(parts, dataset):
    """The name the layout takes the ground truth from: file name (no extension) or folder."""
    return os.path.splitext(parts[-1])[0] if dataset == "dsd100" else parts[-2]


def dataset_of(rows):
    """``"dsd100"`` or ``"moisesdb"`` when every row fits that layout (label from the file or
    folder name, a known category, DSD100's Dev or Test folder), else None."""
    if not rows:
        return None
    for dataset, labels in _LABELS.items():
        if all(_fits(row, dataset, labels) for row in rows):
            return dataset
    return None


def _fits(row, dataset, labels):
    parts = _parts(row.get("path") or "")
    label = normalise(row.get("label"))
    return (len(parts) >= DEPTH and label in labels
            and _label_source(parts, dataset).lower() == label
            and (dataset != "dsd100" or parts[-DEPTH] in _DSD100_SPLITS))


def group_of(path, dataset):
    """The track of a stem of ``dataset`` (``dataset_of``), as its walker names it: DSD100's
    song folder, MoisesDB's song id."""
    return _parts(path)[-2 if dataset == "dsd100" else -3]


def below_root(path):
    """The stem's path below the dataset root (its last three parts, ``/``-separated), as
    the results CSV writes it."""
    return encode_text("/".join(_parts(path)[-DEPTH:]))


def compare(rows, path, other):
    """Compare the rows of the file ``path`` with ``other``: another results file, or
    ``"published"`` (the published rows of the same dataset, then run A, ``path`` run B).

    Rows of two files of the same dataset are matched by ``below_root``, others by path.
    Returns ``metrics.compare_runs``'s dict with the names ``a``/``b`` of both files, their
    short names ``name_a``/``name_b`` and what rows were ``matched_by``.
    """
    dataset = dataset_of(rows)
    if other == PUBLISHED:
        if dataset is None:
            raise UserError(
                f"{path}: --compare published needs the rows of a DSD100 or MoisesDB run "
                f"(label = file name bass/drums/vocals, or the MoisesDB category folder "
                f"holding the stem); this file's rows are neither")
        published = PUBLISHED_RESULTS[dataset]
        comparison = compare_runs(read_results(str(published)), rows, key=below_root)
        return {**comparison, "a": f"{FOLDER.name}/{published.name}", "b": path,
                "name_a": "published", "name_b": "mine",
                "matched_by": "the path below the dataset root"}
    other_rows = read_results(other)
    other_dataset = dataset_of(other_rows)
    if dataset and other_dataset and dataset != other_dataset:
        raise UserError(f"cannot compare {path} with {other}: the first holds "
                        f"{DATASET_NAMES[dataset]} rows, the second "
                        f"{DATASET_NAMES[other_dataset]} rows")
    same = dataset is not None and dataset == other_dataset
    comparison = compare_runs(rows, other_rows, key=below_root if same else None)
    return {**comparison, "a": path, "b": other, "name_a": "A", "name_b": "B",
            "matched_by": "the path below the dataset root" if same else "path"}
