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

Runs are ranked only against runs on the same stems (``stem_keys``): each set of stems has
its own table. With ``--stats``, each run's stems, error rows and intervals over tracks, and
for every two runs on the same stems McNemar's exact test and the accuracy difference with
its paired-bootstrap interval (``stemeval.scoring.stats``).
"""

import dataclasses
import os

from stemeval.datasets import DATASETS
from stemeval.report.json_report import json_intervals
from stemeval.report.plots import plot_recall_bars
from stemeval.report.text import align, bootstrap_heading, format_interval, format_share
from stemeval.runfiles.results import check_rows, count_errors, read_results
from stemeval.runfiles.sidecar import (
    identity_key,
    identity_of,
    identity_text,
    read_sidecar,
    sidecar_path,
)
from stemeval.scoring import metrics
from stemeval.scoring.published_rows import below_root, dataset_of
from stemeval.scoring.tracks import layout_of, tracks_of

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.scoring.stats.

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
        "errors": count_errors(rows),
        **{column: scores[column] for column in COLUMNS},
        "recall": {label: recall for label, recall in zip(scores["labels"], scores["recall"])
                   if label in truth},
    }


def stem_keys(rows):
    """Each row's stem as runs are matched: for DSD100 and MoisesDB rows the path below the
    dataset root (as ``--compare`` matches them, so copies in other places match), else the
    path as written."""
    key = below_root if dataset_of(rows) else str
    return [key(row.get("path") or "") for row in rows]


def _best(runs, categories):
    """``{column: [names]}``: the runs with the best value of each column."""
    best = {}
    for column in COLUMNS + tuple(categories):
        values = {run["name"]: _value(run, column) for run in runs}
        top = max((value for value in values.values() if value is not None), default=None)
        best[column] = [name for name, value in values.items()
                        if top is not None and value == top]
    return best


def leaderboard(paths, stats=False):
    """``{"categories", "runs", "best", "stem_sets"}`` for ``paths``: runs are ranked only
    among runs on the same stems (one entry of ``stem_sets`` each); ``best`` gathers each
    set's best. With ``stats``, each run gets its ``intervals`` and each set its ``tracks``
    and ``paired`` comparisons (see ``_statistics``)."""
    files = [(name, path, read_results(path)) for name, path in zip(_names(paths), paths)]
    runs = [score_run(name, path, rows) for name, path, rows in files]
    keys = [stem_keys(rows) for _, _, rows in files]
    members = {}
    for index, stems in enumerate(keys):
        members.setdefault(frozenset(stems), []).append(index)
    stem_sets = []
    for stems, indices in members.items():
        chosen = [runs[index] for index in indices]
        categories = sorted({label for run in chosen for label in run["recall"]})
        layouts = {layout_of(files[index][2], files[index][1]) for index in indices}
        entry = {"runs": [run["name"] for run in chosen], "stems": len(stems),
                 "dataset": layouts.pop() if len(layouts) == 1 else None,
                 "categories": categories, "best": _best(chosen, categories)}
        if stats:
            entry.update(_statistics([files[index] for index in indices],
                                     [keys[index] for index in indices], chosen))
        stem_sets.append(entry)
    categories = sorted({label for run in runs for label in run["recall"]})
    best = {column: [run["name"] for run in runs
                     if any(run["name"] in entry["best"].get(column, ())
                            for entry in stem_sets)]
            for column in COLUMNS + tuple(categories)}
    return {"categories": categories, "runs": runs, "best": best, "stem_sets": stem_sets}


def _statistics(files, keys, runs):
    """Intervals and paired tests of runs on the same stems, over one set of tracks: those
    of the first run whose tracks are known (``stemeval.scoring.tracks``), matched by stem.

    Adds ``intervals`` (``stats.score_intervals``) to each run and returns ``tracks`` (its
    source) and ``paired``: for every two runs A and B (in the order given), the stems each
    scored once, McNemar's exact test and B's accuracy minus A's with its interval by paired
    bootstrap over tracks (None with one track)."""
    from stemeval.scoring.stats import mcnemar_exact, paired_bootstrap_difference, score_intervals

    found = [tracks_of(rows, path) for _, path, rows in files]
    chosen = next((index for index, item in enumerate(found) if item.known), 0)
    group = dict(zip(keys[chosen], found[chosen].groups))
    correct = []
    for (_, _, rows), stems, run in zip(files, keys, runs):
        run["intervals"] = score_intervals(*metrics.category_lists(rows),
                                           [group[stem] for stem in stems])
        correct.append({stem: metrics.is_match(row) for stem, row in zip(stems, rows)})
    paired = []
    stems = sorted(group)
    groups = [group[stem] for stem in stems]
    for first in range(len(runs)):
        for second in range(first + 1, len(runs)):
            a = [correct[first][stem] for stem in stems]
            b = [correct[second][stem] for stem in stems]
            test = mcnemar_exact(a, b)
            low, high = (paired_bootstrap_difference(a, b, groups) if len(set(groups)) > 1
                         else (None, None))
            paired.append({"a": runs[first]["name"], "b": runs[second]["name"],
                           "stems": len(stems), "tracks": len(set(groups)),
                           **dataclasses.asdict(test),
                           "difference": (sum(b) - sum(a)) / len(stems),
                           "low": low, "high": high})
    return {"tracks": found[chosen], "paired": paired}


def _value(run, column):
    return run[column] if column in COLUMNS else run["recall"].get(column)


def _table(board, entry):
    """One stem set's runs as aligned lines: percentages, ``*`` after the best values."""
    columns = list(COLUMNS) + entry["categories"]
    table = [["run"] + [HEADINGS.get(column, column) for column in columns]]
    for run in board["runs"]:
        if run["name"] not in entry["runs"]:
            continue
        cells = [run["name"]]
        for column in columns:
            value = _value(run, column)
            mark = BEST if run["name"] in entry["best"][column] else " "
            cells.append("-" if value is None else f"{100 * value:.2f}{mark}")
        table.append(cells)
    return align(table)


def _format_statistics(board, entry):
    """With ``--stats``: stems, error rows and intervals per run, then the paired tests."""
    runs = [run for run in board["runs"] if run["name"] in entry["runs"]]
    lines = ["", bootstrap_heading(entry["tracks"]) + ":"]
    rows = [["run", "stems", "errors", "accuracy", "interval"]]
    rows += [[run["name"], str(run["total"]), str(run["errors"]), format_share(run["accuracy"]),
              format_interval(run["intervals"]["accuracy"].low,
                              run["intervals"]["accuracy"].high)] for run in runs]
    lines += align(rows)
    rows = [["recall (interval)"] + entry["categories"]]
    for run in runs:
        recall = run["intervals"]["recall"]
        rows.append([run["name"]] + [
            f"{format_share(recall[category].value)} "
            f"{format_interval(recall[category].low, recall[category].high)}"
            if category in recall else "-" for category in entry["categories"]])
    lines += align(rows)
    if entry["paired"]:
        lines += ["", "Paired comparisons, each pair on its stems once (fixed: A wrong, B right; "
                      "broken: A right, B wrong; p: McNemar's exact test; B - A: accuracy "
                      "difference in points, its interval by paired bootstrap over tracks):"]
        rows = [["A", "B", "fixed", "broken", "both right", "both wrong", "p", "B - A",
                 "interval"]]
        rows += [[pair["a"], pair["b"], str(pair["fixed"]), str(pair["broken"]),
                  str(pair["both_right"]), str(pair["both_wrong"]), f"{pair['p_value']:.4f}",
                  f"{100 * pair['difference']:+.2f}",
                  format_interval(pair["low"], pair["high"], signed=True)]
                 for pair in entry["paired"]]
        lines += align(rows, left=2)
    return lines


def format_leaderboard(board):
    """The table as text lines: percentages, ``*`` after the best value of each column among
    runs on the same stems; one table per set of stems, and with ``--stats`` what
    ``_format_statistics`` adds."""
    lines = ["Leaderboard (percent; recall per ground-truth category; "
             f"{BEST} best in its column):"]
    several = len(board["stem_sets"]) > 1
    if several:
        lines.append(f"note: these runs were not all made on the same stems (another dataset, "
                     f"split or --limit, or stems left out); runs on other stems are not "
                     f"comparable, so each of the {len(board['stem_sets'])} sets of stems is "
                     f"ranked apart")
    for number, entry in enumerate(board["stem_sets"], start=1):
        if several:
            known = DATASETS.get(entry["dataset"])
            dataset = f" ({known.title})" if known else ""
            lines += ["", f"Stem set {number}: {len(entry['runs'])} run(s) on the same "
                          f"{entry['stems']} stems{dataset}:"]
        lines += _table(board, entry)
        if "paired" in entry:
            lines += _format_statistics(board, entry)
    errors = [f"{run['name']}: {run['errors']}" for run in board["runs"] if run["errors"]]
    if errors and not any("paired" in entry for entry in board["stem_sets"]):
        lines.append(f"note: error rows (stems that failed) are scored as misses "
                     f"({', '.join(errors)}; --stats shows every run's stems and error rows)")
    return lines


def json_leaderboard(board):
    """The leaderboard as a JSON-ready dict (fractions; every value is defined: each recall
    is over a category with ground-truth rows; an interval of a single track is null)."""
    set_of = {name: entry for entry in board["stem_sets"] for name in entry["runs"]}
    runs = [{**run, "intervals": json_intervals(run["intervals"], set_of[run["name"]]["tracks"],
                                                run["errors"])} if "intervals" in run else run
            for run in board["runs"]]
    stem_sets = [{key: value for key, value in entry.items() if key != "tracks"}
                 for entry in board["stem_sets"]]
    return {"leaderboard": runs, "categories": board["categories"], "best": board["best"],
            "stem_sets": stem_sets}


def plot_leaderboard(board, path):
    """Per-category recall per run as grouped bars, saved to ``path``."""
    series = [(f"{run['name']} ({100 * run['accuracy']:.1f}%)",
               [run["recall"].get(category) for category in board["categories"]])
              for run in board["runs"]]
    plot_recall_bars(board["categories"], series, path,
                            "Recall per category (accuracy in the legend)")
