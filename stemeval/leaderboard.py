"""Several results CSVs side by side: one row per run, the best value per column marked.

A run is named by its provenance sidecar's tagger (``<file>.json``), else by its file name.
Names are unique: where two runs would share one, the sidecar fields that differ between
those runs are added (weights, dataset, map, condition, precision, speech model), and where
that is not enough, the parts of their paths that differ (``ast (clean)``, ``ast (noise:snr=5)``;
``ast (a)``, ``ast (b)``). Per run: accuracy (matching rows
/ rows), balanced accuracy (mean recall over its ground-truth categories), macro-F1 over its
ground-truth categories (a category never proposed has F1 0), and the recall of each
ground-truth category; the definitions are those of ``metrics.per_class_metrics``, so the
numbers equal ``computeaccuracy.py FILE --per-class`` for each file.
"""

import os

from stemeval import metrics
from stemeval.report.plots import plot_recall_bars
from stemeval.report.text import align
from stemeval.results import check_rows, read_results
from stemeval.sidecar import (identity_key, identity_of, identity_text, read_sidecar,
                              sidecar_path)

COLUMNS = ("accuracy", "balanced_accuracy", "macro_f1")
HEADINGS = {"accuracy": "accuracy", "balanced_accuracy": "balanced acc.",
            "macro_f1": "macro-F1"}
BEST = "*"


def _file_name(record):
    return os.path.basename(str(record.get("path")))


# sidecar identity fields that tell runs apart, and how a name shows each
DESCRIBED = (("weights", _file_name), ("dataset", str), ("map", _file_name), ("deform", str),
             ("precision", str), ("speech_model", _file_name))


def _names(paths):
    """One distinct name per file (see the module docstring)."""
    records = [read_sidecar(sidecar_path(path)) or {} for path in paths]
    names = [record.get("tagger") or os.path.splitext(os.path.basename(path))[0]
             for record, path in zip(records, paths)]
    for name in set(names):
        group = [index for index, other in enumerate(names) if other == name]
        if len(group) < 2:
            continue
        identities = [identity_of(records[index]) for index in group]
        details = [[] for _ in group]
        for key, shown in DESCRIBED:
            values = [identity.get(key) for identity in identities]
            if len({identity_key(value) for value in values}) > 1:
                texts = [shown(value) if value is not None else "-" for value in values]
                if len(set(texts)) < len({identity_key(value) for value in values}):
                    texts = [identity_text(value) for value in values]
                for detail, text in zip(details, texts):
                    detail.append(text)
        if len({tuple(detail) for detail in details}) < len(group):
            for index, detail, part in zip(group, details,
                                           _differing_parts([paths[i] for i in group])):
                if records[index].get("tagger"):
                    detail.append(part)
                else:  # named by its file: by the part of its path that differs
                    names[index] = part
        for index, detail in zip(group, details):
            if detail:
                names[index] = f"{name} ({', '.join(detail)})"
    return [f"{name} #{names[:index].count(name) + 1}" if names.count(name) > 1 else name
            for index, name in enumerate(names)]  # the same file given twice


def _differing_parts(paths):
    """Each path without the leading folders all share and without its extension."""
    parts = [os.path.splitext(os.path.abspath(path))[0].split(os.sep) for path in paths]
    shared = 0
    while all(len(p) > shared + 1 and p[shared] == parts[0][shared] for p in parts):
        shared += 1
    return ["/".join(p[shared:]) for p in parts]


def score_run(name, path, rows):
    """The leaderboard row of one results file (fractions; None where undefined)."""
    check_rows(rows, path)
    matches, total = metrics.accuracy(rows)
    scores = metrics.per_class_metrics(*metrics.category_lists(rows))
    truth = set(metrics.value_counts(rows))
    return {
        "name": name, "file": path, "matches": matches, "total": total,
        **{column: scores[column] for column in COLUMNS},
        "recall": {label: recall for label, recall in zip(scores["labels"], scores["recall"])
                   if label in truth},
    }


def leaderboard(paths):
    """``{"categories": [...], "runs": [...], "best": {column: [names]}}`` for ``paths``."""
    runs = [score_run(name, path, read_results(path))
            for name, path in zip(_names(paths), paths)]
    categories = sorted({label for run in runs for label in run["recall"]})
    best = {}
    for column in COLUMNS + tuple(categories):
        values = {run["name"]: _value(run, column) for run in runs}
        top = max((value for value in values.values() if value is not None), default=None)
        best[column] = [name for name, value in values.items()
                        if top is not None and value == top]
    return {"categories": categories, "runs": runs, "best": best}


def _value(run, column):
    return run[column] if column in COLUMNS else run["recall"].get(column)


def format_leaderboard(board):
    """The table as text lines: percentages, ``*`` after the best value of each column."""
    columns = list(COLUMNS) + board["categories"]
    header = ["run"] + [HEADINGS.get(column, column) for column in columns]
    table = [header]
    for run in board["runs"]:
        cells = [run["name"]]
        for column in columns:
            value = _value(run, column)
            mark = BEST if run["name"] in board["best"][column] else " "
            cells.append("-" if value is None else f"{100 * value:.2f}{mark}")
        table.append(cells)
    lines = ["Leaderboard (percent; recall per ground-truth category; "
             f"{BEST} best in its column):"] + align(table)
    totals = {run["total"] for run in board["runs"]}
    if len(totals) > 1:
        lines.append("note: the runs scored different numbers of stems ("
                     + ", ".join(f"{run['name']}: {run['total']}" for run in board["runs"])
                     + ")")
    return lines


def json_leaderboard(board):
    """The leaderboard as a JSON-ready dict (fractions; every value is defined: each recall
    is over a category with ground-truth rows)."""
    return {"leaderboard": board["runs"], "categories": board["categories"],
            "best": board["best"]}


def plot_leaderboard(board, path):
    """Per-category recall per run as grouped bars, saved to ``path``."""
    series = [(f"{run['name']} ({100 * run['accuracy']:.1f}%)",
               [run["recall"].get(category) for category in board["categories"]])
              for run in board["runs"]]
    plot_recall_bars(board["categories"], series, path,
                            "Recall per category (accuracy in the legend)")
