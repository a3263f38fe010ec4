"""How far each condition moved the embeddings (a sweep with ``embeddings = true``): FAD and
coverage of every cell's embeddings against its clean cell's (same dataset and tagger), for
the summary beside the accuracy drop, and ``distance.png``: the accuracy drop against FAD,
one point per cell.

They are ``setdistance.py``'s numbers (``stemeval.distances``, without intervals): FAD over
the windows' embeddings where the tagger has windows, else the stems'; coverage with
``PRDC_K`` neighbours, clean being the real set. FAD is in each tagger's own embedding space,
so its scale differs from tagger to tagger: the plot has one panel per tagger. A failed cell
or one too small for the metric (fewer than ``PRDC_K`` + 1 stems for coverage) has none.
"""

import math

from stemeval.deform import CLEAN

PRDC_K = 5
FIELDS = ["fad", "coverage"]


def add_distances(records, config):
    """Give each summary record ``fad`` and ``coverage`` against its clean cell (None where
    there is none); the records are matched to cells by dataset, tagger and condition."""
    from stemeval.distances import Side, measure
    from stemeval.embeddings import read_embeddings

    cells = {(dataset.name, tagger, condition.spec): (dataset, tagger, condition)
             for dataset, tagger, condition in config.cells()}
    failed = {(r["dataset"], r["tagger"], r["condition"]) for r in records if r["failed"]}
    for record in records:
        key = (record["dataset"], record["tagger"], record["condition"])
        clean = (record["dataset"], record["tagger"], CLEAN)
        record.update(dict.fromkeys(FIELDS))
        if key in failed or clean in failed:
            continue
        a, b = (read_embeddings(config.embeddings_path(*cells[which])) for which in (clean, key))
        found = measure(Side.of(a), Side.of(b), ["fad", "prdc"], k=PRDC_K,
                        windows=a.windows is not None and b.windows is not None, boot=0)
        if "estimate" in found["fad"]:
            record["fad"] = round(found["fad"]["estimate"], 4)
        if "coverage" in found["prdc"]:
            record["coverage"] = round(found["prdc"]["coverage"]["estimate"], 4)


def format_distances(records):
    """Text lines: each cell's accuracy drop beside its FAD and coverage from clean."""
    from stemeval.report.text import align

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
    for axis in list(axes.flat)[len(taggers):]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return path
