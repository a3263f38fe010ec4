"""Category maps: which AudioSet labels count as which ground-truth category of a dataset.

A map is data, a TOML file of ``category = ["AudioSet display name", ...]`` (one file per
dataset in ``maps/``, or any file given with ``--map``). It is checked when read: every
name must be one of the 91 instrument labels the evaluation chooses from (they are AudioSet
display names, matched case-insensitively) and may sit in one category only. A prediction
no category names maps to ``other``.
"""

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stemeval.common.errors import UserError
from stemeval.common.toml_files import read_toml
from stemeval.labels.audioset import AUDIOSET_LABELS, INSTRUMENT_LABELS

MAPS = Path(__file__).with_name("maps")
UNMAPPED_CATEGORY = "other"


@dataclass(frozen=True)
class CategoryMap:
    """``labels``: lower-cased AudioSet label -> category; ``categories`` in file order."""

    source: str
    categories: tuple
    labels: dict

    def category(self, prediction):
        """The category of a predicted label (case-insensitive), or ``other``."""
        return self.labels.get(prediction.lower(), UNMAPPED_CATEGORY)


def read_map(path):
    """Read and check a map file; a bad one is a UserError naming the file and the fault."""
    return _check(read_toml(path, "map "), str(path))


def _check(table, source):
    if not table:
        raise UserError(f"map {source}: no category in it (expected lines such as "
                        f'bass = ["Bass guitar", "Double bass"])')
    instruments = {name.lower(): name for name in INSTRUMENT_LABELS}
    labels = {}
    for category, names in table.items():
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise UserError(f"map {source}: category {category!r} must be a list of AudioSet "
                            f"labels in quotes")
        for name in names:
            key = name.lower()
            if key not in instruments:
                what = ("an AudioSet label but not one of the 91 instrument labels the "
                        "evaluation chooses from" if key in {n.lower() for n in AUDIOSET_LABELS}
                        else "not an AudioSet label")
                raise UserError(f"map {source}: {name!r} (category {category!r}) is {what}"
                                f"{_did_you_mean(name, instruments)}")
            if key in labels and labels[key] != category:
                raise UserError(f"map {source}: {instruments[key]!r} is in two categories, "
                                f"{labels[key]!r} and {category!r}")
            labels[key] = category
    return CategoryMap(source, tuple(table), labels)


def _did_you_mean(name, instruments):
    close = difflib.get_close_matches(name.lower(), instruments, n=1)
    if close:
        return f" (did you mean {instruments[close[0]]!r}?)"
    return " (see the instrument list in stemeval/labels/audioset.py)"


@lru_cache(maxsize=None)
def dataset_map(map_name):
    """The map shipped as ``maps/<map_name>.toml``; None: every instrument label is its own
    category (lower-cased), so the proposed label is the chosen AudioSet label itself."""
    if map_name is None:
        names = sorted(name.lower() for name in INSTRUMENT_LABELS)
        return CategoryMap("AudioSet instrument labels", tuple(names),
                           {name: name for name in names})
    return read_map(MAPS / f"{map_name}.toml")
