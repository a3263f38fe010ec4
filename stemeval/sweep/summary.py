"""A finished sweep's summary: accuracy and macro-F1 per cell, the drop from clean, a plot.

Written into the output folder as ``summary.csv``, ``summary.json`` and ``accuracy.png``
(accuracy against each deformation's strength, one line per tagger, one panel per dataset
and deformation; each tagger's clean accuracy is its dashed line). Metrics are those of
``stemeval.scoring.metrics`` (as ``computeaccuracy.py`` and the leaderboard): accuracy over all
rows (speech and error rows count as wrong unless the label says so), macro-F1 over the
ground-truth categories. A cell whose every row is an error row (a condition
the stems cannot take, e.g. a cut-off above their Nyquist frequency) *failed*: it has no
accuracy, macro-F1 or drop (``failed`` in the table and the CSV's accuracy column, null in
the JSON, an ``x`` in the plot), rather than a 0 that would read as degraded audio. Each
record also counts its error rows.

With ``repeats = N`` (N > 1) each random condition has N cells, one per draw
(``deform.is_random``; deterministic conditions are drawn once), and the summary has one
record per condition: the mean over its draws, their min and max (``*_min``, ``*_max``) and
how many there are (``draws``); the drop is from the clean cell to the mean. It failed when
a draw failed. ``summary.json`` then also keeps every cell, with its ``draw``.
"""

import csv
import json
import math
import os

from stemeval.audio.deform import CLEAN
from stemeval.report.plots import save_panels
from stemeval.report.text import align
from stemeval.runfiles.results import ERROR, read_results
from stemeval.scoring.metrics import accuracy, category_lists, per_class_metrics

# Imported inside the functions that use them, so that what needs none of them starts without them:
# matplotlib.

FAILED = "failed"
FIELDS = ["dataset", "tagger", "condition", "deformation", "parameter", "strength", "stems",
          "accuracy", "macro_f1", "accuracy_drop", "macro_f1_drop"]
SPREAD = ["accuracy_min", "accuracy_max", "macro_f1_min", "macro_f1_max"]


def _round(value):
    return None if value is None or math.isnan(value) else round(value, 4)


def summarise(config):
    """One record per cell, in config order; drops are clean minus the cell (points). With
    repeats, one record per condition (``spread``) holding its cells as ``cells``."""
    records = []
    clean = {}
    for dataset, tagger, condition in config.cells():
        rows = read_results(config.cell_path(dataset, tagger, condition))
        matches, total = accuracy(rows)
        errors = sum(row["prediction"] == ERROR for row in rows)
        failed = errors == total
        deformation, parameter, strength = condition.strength or ("", "", None)
        record = {"dataset": dataset.name, "tagger": tagger, "condition": condition.spec,
                  "deformation": deformation, "parameter": parameter, "strength": strength,
                  "stems": total, "errors": errors, "failed": failed,
                  "accuracy": None if failed else 100 * matches / total,
                  "macro_f1": None if failed else
                  100 * per_class_metrics(*category_lists(rows))["macro_f1"]}
        if config.repeats > 1:
            record.update(condition=condition.base, draw=condition.draw)
        if condition.spec == CLEAN:
            clean[dataset.name, tagger] = record
        records.append(record)
    if config.repeats > 1:
        records = spread(records)
    for record in records:
        base = clean[record["dataset"], record["tagger"]]
        for key in ("accuracy", "macro_f1"):
            record[f"{key}_drop"] = (None if base["failed"] or record["failed"]
                                     else base[key] - record[key])
    for record in records:
        for item in [record] + record.get("cells", []):
            for key in ["accuracy", "macro_f1", "accuracy_drop", "macro_f1_drop"] + SPREAD:
                if key in item:
                    item[key] = _round(item[key])
    return records


def spread(cells):
    """One record per (dataset, tagger, condition) from the cells of its draws: the mean of
    accuracy and macro-F1, their min and max, ``draws``, and the cells themselves."""
    grouped = {}
    for cell in cells:
        grouped.setdefault((cell["dataset"], cell["tagger"], cell["condition"]), []).append(cell)
    records = []
    for draws in grouped.values():
        failed = any(cell["failed"] for cell in draws)
        record = {**{key: draws[0][key] for key in ("dataset", "tagger", "condition",
                                                    "deformation", "parameter", "strength",
                                                    "stems")},
                  "errors": sum(cell["errors"] for cell in draws), "failed": failed,
                  "draws": len(draws), "cells": draws}
        for key in ("accuracy", "macro_f1"):
            values = [cell[key] for cell in draws]
            record.update({key: None if failed else sum(values) / len(values),
                           f"{key}_min": None if failed else min(values),
                           f"{key}_max": None if failed else max(values)})
        records.append(record)
    return records


def format_table(records):
    """The summary as aligned text lines (with repeats: the draws, and accuracy's min and max
    over them; a note names the conditions drawn once)."""
    header = ["dataset", "tagger", "condition", "stems", "errors", "accuracy", "macro-F1",
              "acc. drop", "F1 drop"]
    keys = ["accuracy", "macro_f1", "accuracy_drop", "macro_f1_drop"]
    repeated = any("draws" in r for r in records)
    if repeated:
        header += ["draws", "acc. min", "acc. max"]
        keys += ["accuracy_min", "accuracy_max"]
    lines = [[r["dataset"], r["tagger"], r["condition"], str(r["stems"]), str(r["errors"])] +
             [FAILED if r["failed"] and key == "accuracy" else
              "-" if r[key] is None else f"{r[key]:.2f}" for key in keys[:4]] +
             ([str(r["draws"])] + ["-" if r[key] is None else f"{r[key]:.2f}"
                                  for key in keys[4:]] if repeated else [])
             for r in records]
    table = align([header] + lines, left=3, indent="")
    once = sorted({r["condition"] for r in records if repeated and r["draws"] == 1})
    if once:
        table.append(f"drawn once, as their audio does not depend on the seed: "
                     f"{', '.join(once)}")
    return table


def write_summary(records, folder, extra=()):
    """``summary.csv`` and ``summary.json`` in ``folder``; returns their paths. ``extra``:
    more fields of the records for the CSV (a sweep with embeddings: their distances). With
    repeats, the CSV has one row per condition and the columns ``draws`` and ``SPREAD``, and
    the JSON holds the ``conditions`` and every draw's cell."""
    repeated = any("draws" in r for r in records)
    csv_path = os.path.join(folder, "summary.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FIELDS + (["draws"] + SPREAD if repeated else [])
                                + list(extra), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**{key: "" if value is None else value for key, value in r.items()},
                          **({"accuracy": FAILED} if r["failed"] else {})} for r in records)
    json_path = os.path.join(folder, "summary.json")
    data = ({"conditions": [{key: value for key, value in r.items() if key != "cells"}
                            for r in records],
             "cells": [cell for r in records for cell in r["cells"]]} if repeated
            else {"cells": records})
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    return csv_path, json_path


def plot_summary(records, path):
    """Accuracy against strength: one panel per (dataset, deformation), one line per tagger.

    Returns ``path``, or None when no condition is a single deformation (nothing to plot).
    """
    panels = sorted({(r["dataset"], r["deformation"], r["parameter"]) for r in records
                     if r["deformation"]})
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taggers = list(dict.fromkeys(r["tagger"] for r in records))
    colours = {tagger: f"C{i % 10}" for i, tagger in enumerate(taggers)}
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows),
                                squeeze=False)
    for axis, (dataset, deformation, parameter) in zip(axes.flat, panels):
        for tagger in taggers:
            cells = [r for r in records if (r["dataset"], r["tagger"], r["deformation"]) ==
                     (dataset, tagger, deformation)]
            points = sorted(((r["strength"], r["accuracy"], r.get("accuracy_min"),
                              r.get("accuracy_max")) for r in cells if not r["failed"]),
                            key=lambda point: point[0])
            if points:
                strengths, accuracies, lows, highs = zip(*points)
                axis.plot(strengths, accuracies, marker="o", color=colours[tagger], label=tagger)
                if lows[0] is not None:  # repeats: the draws' min to max
                    axis.vlines(strengths, lows, highs, color=colours[tagger], linewidth=2,
                                alpha=0.5)
            failed = sorted(r["strength"] for r in cells if r["failed"])
            if failed:
                axis.plot(failed, [0] * len(failed), linestyle="none", marker="x", markersize=9,
                          color=colours[tagger], label=f"{tagger}: failed (every row an error)")
            clean = [r["accuracy"] for r in records if r["condition"] == CLEAN
                     and (r["dataset"], r["tagger"]) == (dataset, tagger) and not r["failed"]]
            if clean:
                axis.axhline(clean[0], color=colours[tagger], linestyle="--", linewidth=0.8)
        axis.set_title(f"{dataset}: {deformation}")
        axis.set_xlabel(parameter)
        axis.set_ylabel("accuracy (%)")
        axis.legend(fontsize="small")
    return save_panels(figure, axes, len(panels), path)
