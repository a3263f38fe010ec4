"""How far each condition moved the embeddings (a sweep with ``embeddings = true``): FAD and
coverage of every cell's embeddings against its clean cell's (same dataset and tagger; with
repeats, the mean over the draws), for the summary beside the accuracy drop, and
``distance.png``: the accuracy drop against FAD, one point per condition.

They are ``setdistance.py``'s numbers (``stemeval.distances.embedding_files``, without intervals): FAD over
the windows' embeddings where the tagger has windows, else the stems'; coverage with
``PRDC_K`` neighbours, clean being the real set. FAD is in each tagger's own embedding space,
so its scale differs from tagger to tagger: the plot has one panel per tagger. A failed cell
or one too small for the metric (fewer than ``PRDC_K`` + 1 stems for coverage) has none.
"""

import math

from stemeval.audio.deform import CLEAN
from stemeval.distances.embedding_files import Side, measure
from stemeval.report.plots import save_panels
from stemeval.report.text import align
from stemeval.runfiles.embeddings import read_embeddings

# Imported inside the functions that use them, so that what needs none of them starts without them:
# matplotlib.

PRDC_K = 5
FIELDS = ["fad", "coverage"]


def add_distances(records, config):
    """Give each summary record ``fad`` and ``coverage`` against its clean cell (None where
    there is none); the records are matched to cells by dataset, tagger and condition. With
    repeats, a record's numbers are the mean over its draws, each draw measured alone."""
    cells = {(dataset.name, tagger, condition.base, condition.draw): (dataset, tagger, condition)
             for dataset, tagger, condition in config.cells()}

    def cell_file(dataset, tagger, condition, draw=0):
        return config.embeddings_path(*cells[dataset, tagger, condition, draw])

    clean = {(r["dataset"], r["tagger"]): r for r in records if r["condition"] == CLEAN}
    references = {}  # (dataset, tagger) -> the clean cell's embeddings, read once
    for record in records:
        record.update(dict.fromkeys(FIELDS))
        pair = (record["dataset"], record["tagger"])
        if record["failed"] or pair not in clean or clean[pair]["failed"]:
            continue
        if pair not in references:
            references[pair] = read_embeddings(cell_file(*pair, CLEAN))
        found = [_measure(references[pair], read_embeddings(
                     cell_file(*pair, record["condition"], draw.get("draw", 0))))
                 for draw in record.get("cells", [record])]
        for field in FIELDS:
            values = [one[field] for one in found if one[field] is not None]
            if len(values) == len(found):
                # + 0.0: a rounding error below zero (FAD of clean on itself) reads 0, not -0
                record[field] = round(sum(values) / len(values), 4) + 0.0


def _measure(clean, deformed):
    """FAD and coverage of one cell's embeddings against its clean cell's (None where the
    sets are too small for the metric)."""
    found = measure(Side.of(clean), Side.of(deformed), ["fad", "prdc"], k=PRDC_K,
                    windows=clean.windows is not None and deformed.windows is not None,
                    boot=0)
    return {"fad": found["fad"].get("estimate"),
            "coverage": found["prdc"].get("coverage", {}).get("estimate")}


def format_distances(records):
    """Text lines: each cell's accuracy drop beside its FAD and coverage from clean."""
    def number(value):
        return "-" if value is None else f"{value:.4g}"

    rows = [["dataset", "tagger", "condition", "acc. drop", "FAD from clean",
             "coverage of clean"]]
    rows += [[r["dataset"], r["tagger"], r["condition"], number(r["accuracy_drop"]),
              number(r["fad"]), number(r["coverage"])] for r in records]
    return align(rows, left=3, indent="")


def plot_distances(records, path):
    """The accuracy drop against FAD from clean, one point per cell that has both, one panel
    per tagger; returns ``path``, or None when no cell has both."""
    points = [r for r in records if r["condition"] != CLEAN and r["fad"] is not None
              and r["accuracy_drop"] is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taggers = list(dict.fromkeys(r["tagger"] for r in points))
    datasets = list(dict.fromkeys(r["dataset"] for r in points))
    columns = min(3, len(taggers))
    rows = math.ceil(len(taggers) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows),
                                squeeze=False)
    for axis, tagger in zip(axes.flat, taggers):
        for number, dataset in enumerate(datasets):
            cells = [r for r in points if (r["tagger"], r["dataset"]) == (tagger, dataset)]
            if not cells:
                continue
            axis.scatter([r["fad"] for r in cells], [r["accuracy_drop"] for r in cells],
                         color=f"C{number % 10}", label=dataset)
            for r in cells:
                axis.annotate(r["condition"], (r["fad"], r["accuracy_drop"]), fontsize="x-small",
                              xytext=(3, 3), textcoords="offset points")
        axis.set_title(f"{tagger}: accuracy drop against FAD")
        axis.set_xlabel("FAD from clean (this tagger's embeddings)")
        axis.set_ylabel("accuracy drop (points)")
        axis.legend(fontsize="small")
    return save_panels(figure, axes, len(taggers), path)
