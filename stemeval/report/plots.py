"""Plots (matplotlib, Agg, imported only when a plot is asked for): the confusion matrix
and recall per category as bars, and the saving of a grid of panels (the sweep's plots)."""

import os

from stemeval.common.errors import UserError, os_reason

# Imported inside the functions that use them, so that what needs none of them starts without them:
# matplotlib, numpy.

PLOT_DPI = 100


def plot_size(n_labels):
    """Figure size in inches for a confusion matrix of ``n_labels`` categories."""
    return (min(30.0, max(6.0, 3.0 + 0.5 * n_labels)),
            min(30.0, max(5.0, 2.5 + 0.5 * n_labels)))


def plot_format(path):
    """Return the image format for ``path`` from its extension (``png`` when it has none)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if not extension:
        return "png"
    supported = FigureCanvasAgg.get_supported_filetypes()
    if extension not in supported:
        raise UserError(f"{path}: cannot write a plot as .{extension} "
                        f"(use one of: {', '.join('.' + name for name in sorted(supported))})")
    return extension


def plot_confusion(labels, matrix, path, title):
    """Save a confusion-matrix heat map: counts in the cells, colours normalised per row.

    The image is ``plot_size(len(labels))`` inches at ``PLOT_DPI`` dots per inch.
    """
    if len(matrix) != len(labels) or any(len(row) != len(labels) for row in matrix):
        raise ValueError("the confusion matrix must be square with one row per label")
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image_format = plot_format(path)
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    n = len(labels)
    figure = Figure(figsize=plot_size(n), dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label("share of the ground-truth row")
    axes.set_xticks(range(n), labels, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(n), labels)
    axes.set_xlabel("proposed label")
    axes.set_ylabel("ground-truth label")
    axes.set_title(title)
    font_size = 10 if n <= 12 else max(5, 10 - (n - 12) // 4)
    for i in range(n):
        for j in range(n):
            axes.text(j, i, str(int(counts[i, j])), ha="center", va="center",
                      fontsize=font_size, color="white" if shares[i, j] > 0.5 else "black")
    try:
        figure.savefig(path, format=image_format, dpi=PLOT_DPI)
    except OSError as error:
        raise UserError(f"cannot write the plot {path}: {os_reason(error)}") from None


def plot_recall_bars(categories, series, path, title):
    """Save grouped bars of recall per category, one bar per ``(name, recalls)`` of ``series``
    (recalls in ``categories`` order, None where a series has no such category)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image_format = plot_format(path)
    width = 0.8 / len(series)
    figure = Figure(figsize=(max(6.0, 1.0 + 0.3 * len(categories) * max(2, len(series))), 5.0),
                    dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for number, (name, recalls) in enumerate(series):
        axes.bar([i + (number - (len(series) - 1) / 2) * width for i in range(len(categories))],
                 [float("nan") if value is None else value for value in recalls], width,
                 label=name)
    axes.set_xticks(range(len(categories)), categories, rotation=45, ha="right",
                    rotation_mode="anchor")
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("recall")
    axes.set_title(title)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    try:
        figure.savefig(path, format=image_format, dpi=PLOT_DPI)
    except OSError as error:
        raise UserError(f"cannot write the plot {path}: {os_reason(error)}") from None


def save_panels(figure, axes, used, path):
    """Hide the grid's panels past the first ``used``, save ``figure`` to ``path`` (without
    the Software tag, so the same sweep writes the same bytes) and close it; returns
    ``path``."""
    import matplotlib.pyplot as plt

    for axis in list(axes.flat)[used:]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return path
