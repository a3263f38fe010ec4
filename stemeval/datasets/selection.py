"""From a dataset folder to the stems a run evaluates, with the checks that stop a wrong run
before any work: the folder itself, --split, the map's categories, and a layout that is not
the dataset's. Evaluation runs and sweeps select stems with ``find_stems``.
"""

import os
import sys
from collections import Counter

from stemeval.common.errors import UserError
from stemeval.datasets import DATASETS
from stemeval.datasets.categories import dataset_map, read_map

SHOWN_LABELS = 8  # labels named in one line


def find_stems(dataset, folder, map_file=None, split=None, limit=None, follow_links=False):
    """``(stems, category map)`` of ``dataset`` below ``folder`` as ``evaluate.py`` takes them
    (``--map``, ``--split``, ``--limit``, ``--follow-links``), or a UserError before any
    work; notes and warnings go to stderr."""
    check_input(folder, dataset.input_is_file)
    category_map = read_map(map_file) if map_file else dataset_map(dataset.map_name)
    found = select(dataset, folder, category_map, split, follow_links)
    if not found.stems:
        raise UserError(no_stems_message(dataset, folder, found, split))
    for note in found.notes:
        print(note, file=sys.stderr)
    if found.skipped_links:
        print(f"warning: {found.skipped_links} symlinked folder(s) under {folder} were not "
              f"followed (pass --follow-links to include them)", file=sys.stderr)
    warning = check_stem_labels(dataset, folder, found.stems, category_map, follow_links)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return found.stems[:limit], category_map


def check_input(folder, is_file=False):
    """FOLDER must be a folder (a file for the manifest)."""
    if not os.path.exists(folder):
        raise UserError(f"{folder}: no such {'file' if is_file else 'folder'}")
    if is_file and not os.path.isfile(folder):
        raise UserError(f"{folder}: not a file (the manifest is a CSV file)")
    if not is_file and not os.path.isdir(folder):
        raise UserError(f"{folder}: not a folder")


def select(dataset, folder, category_map, split=None, follow_links=False):
    """The ``Found`` stems of ``dataset`` below ``folder`` in sorted path order, only those of
    ``split`` when given; stems whose label is not a category of the map are dropped (with a
    note) for datasets that evaluate mapped classes only."""
    if split is not None and split not in dataset.splits:
        have = (f"its splits are {', '.join(dataset.splits)}" if dataset.splits
                else "it has no splits")
        raise UserError(f"--split {split}: {dataset.title} has no such split ({have})")
    found = dataset.walk(folder, follow_links)
    stems = found.stems
    if split is not None:
        stems = [stem for stem in stems if stem.split == split]
    if dataset.mapped_only:
        categories = {category.lower() for category in category_map.categories}
        left_out = Counter(stem.label for stem in stems if stem.label.lower() not in categories)
        stems = [stem for stem in stems if stem.label.lower() in categories]
        if left_out:
            found.notes.append(f"skipped {sum(left_out.values())} stems of classes the map does "
                               f"not evaluate: {_counted(left_out)}")
    found.stems = sorted(stems, key=lambda stem: stem.path)
    return found


def no_stems_message(dataset, folder, found, split=None):
    """Why a walk found nothing: the symlink hint when links were not followed, and the
    walker's notes on what it passed over (stems not rendered, no audio folder...)."""
    where = f"in split {split} under {folder}" if split is not None else f"under {folder}"
    message = f"no {dataset.formats} stems found {where}"
    reasons = list(found.notes)
    if found.skipped_links:
        reasons.insert(0, f"{found.skipped_links} symlinked folder(s) were not followed "
                          f"(pass --follow-links to include them)")
    return message + (": " + "; ".join(reasons) if reasons else "")


def check_stem_labels(dataset, folder, stems, category_map, follow_links=False):
    """Stop when no stem's label is a category (the tree is another layout); return a
    one-line warning naming the unknown labels with their counts when only some are."""
    categories = {category.lower() for category in category_map.categories}
    unknown = Counter(stem.label for stem in stems if stem.label.lower() not in categories)
    if not unknown:
        return None
    if sum(unknown.values()) < len(stems):
        return (f"{sum(unknown.values())} of {len(stems)} stems have a label that is not a "
                f"category of the map, so they can never match: {_counted(unknown)}")
    if category_map is not dataset_map(dataset.map_name):
        raise UserError(f"none of the {len(stems)} stems under {folder} has a label among the "
                        f"categories of --map {category_map.source} (labels found: "
                        f"{_counted(unknown)})")
    guesses = _looks_like(dataset, folder, follow_links)
    hint = (f"it looks like {' or '.join(guesses)} (python evaluate.py {guesses[0]} {folder})"
            if guesses else "it looks like another layout")
    raise UserError(
        f"none of the {len(stems)} stems under {folder} has a {dataset.title} category as its "
        f"label (labels found: {_counted(unknown)}); {hint}; for {dataset.title} pass "
        f"{dataset.folder}")


def _looks_like(dataset, folder, follow_links):
    """The other datasets whose walker finds stems with their own categories in ``folder``."""
    fits = []
    for other in DATASETS.values():
        if other is dataset or other.input_is_file:
            continue
        try:
            stems = other.walk(folder, follow_links).stems
        except UserError:
            continue
        categories = {category.lower() for category in dataset_map(other.map_name).categories}
        if any(stem.label.lower() in categories for stem in stems):
            fits.append(other.name)
    return fits


def _counted(counts):
    shown = ", ".join(f"{label} ({count})" for label, count in counts.most_common(SHOWN_LABELS))
    more = len(counts) - SHOWN_LABELS
    return shown + (f" and {more} more" if more > 0 else "")
