"""Which track each row of a results file belongs to: what an interval must resample whole,
since the stems of one track share a mix, a performer and a recording.

In this order: the ``group`` column (``--details`` writes it) when every row has one; else
the rule of the dataset's layout read from each path (``Dataset.track_of``, the rule its
walker uses), the layout being the one the file's sidecar names, else DSD100 or MoisesDB
recognised from the rows (``stemeval.scoring.published_rows``); else each stem is its own track, and
``Tracks.source`` says so (a manifest's or Medley-solos-DB's paths do not tell the track:
write the group column with ``--details``).
"""

from dataclasses import dataclass

from stemeval.datasets import DATASETS
from stemeval.datasets.walker import path_parts
from stemeval.runfiles.sidecar import identity_of, read_sidecar, sidecar_path
from stemeval.scoring.metrics import category_lists
from stemeval.scoring.published_rows import dataset_of

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.scoring.stats.


@dataclass(frozen=True)
class Tracks:
    """One group per row, where they came from (a phrase), and whether they are tracks at
    all (False: each stem its own group)."""

    groups: list
    source: str
    known: bool


def layout_of(rows, path):
    """The evaluate.py layout of a results file: its sidecar's, else DSD100 or MoisesDB
    recognised from the rows; None when unknown."""
    layout = identity_of(read_sidecar(sidecar_path(path)) or {}).get("dataset")
    return layout if isinstance(layout, str) else dataset_of(rows)


def tracks_of(rows, path):
    """The ``Tracks`` of the rows of the results file ``path`` (see the module docstring)."""
    groups = [(row.get("group") or "").strip() for row in rows]
    if rows and all(groups):
        return Tracks(groups, "the group column", True)
    layout = DATASETS.get(layout_of(rows, path))
    if layout is not None and layout.track_of is not None:
        groups = [layout.track_of(path_parts(row.get("path") or "")) for row in rows]
        if all(groups):
            return Tracks(groups, f"the {layout.title} layout, from each path", True)
    why = (f"{layout.title} paths do not say it" if layout is not None
           else "no group column, and no known layout")
    return Tracks([str(index) for index in range(len(rows))],
                  f"unknown ({why}; --details writes the group column): each stem is its "
                  f"own track, so the intervals are too narrow where a track's stems move "
                  f"together", False)


def file_intervals(rows, path):
    """``(Tracks, stats.score_intervals(...))`` of the rows of the results file ``path``:
    accuracy and the recall of each ground-truth category, resampling its tracks."""
    from stemeval.scoring.stats import score_intervals

    found = tracks_of(rows, path)
    return found, score_intervals(*category_lists(rows), found.groups)
