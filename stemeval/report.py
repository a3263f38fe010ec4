"""Scores of a results CSV: accuracy, mismatches, per-category metrics, plot, JSON, comparison.

Small flat functions in the style of mir_eval: each takes plain lists or dicts, checks what
it is given and returns plain values; the ``format_*`` functions turn those values into the
lines the commands print. ``format_published`` and ``format_published_values`` give, byte
for byte, what the published ``computeaccuracy.py`` and ``list_labels.py`` printed. Only the
standard library is imported here at module level, so the commands start quickly;
scikit-learn, numpy and matplotlib are imported inside the functions that need them.

A row *matches* when its ``label`` and ``proposed_label``, stripped and lower-cased, are
equal. Categories are compared in that normalised form everywhere in this module.
"""

import json
import math
import os
import sys
import warnings

from stemeval.errors import UserError
from stemeval.results import COLUMNS


# --- Reading -----------------------------------------------------------------------------

def normalise(value):
    """Return a label stripped and lower-cased (a missing cell counts as empty)."""
    return (value or "").strip().lower()


def check_rows(rows, path):
    """Raise a UserError when a results file has no rows (no metrics to compute)."""
    if not rows:
        raise UserError(f"{path}: the file has no rows, so there is nothing to score")


def warn_repeated_paths(rows, path):
    """Warn on stderr when paths repeat (each stem should have one row; every row is scored)."""
    repeated = len(rows) - len({row.get("path") for row in rows})
    if repeated:
        print(f"warning: {path}: {repeated} row(s) repeat the path of an earlier row "
              f"(each stem should have one row); every row is scored", file=sys.stderr)


LABEL_COLUMNS = ("label", "proposed_label")


def value_counts(rows, column="label"):
    """Return {value: number of rows} of a column's non-empty values, sorted by value.

    Labels (``LABEL_COLUMNS``) are normalised as they are compared; other columns (paths,
    raw predictions, error reasons) are listed as written.
    """
    counts = {}
    for row in rows:
        value = normalise(row.get(column)) if column in LABEL_COLUMNS else row.get(column) or ""
        if value.strip():
            counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def format_counts(counts):
    """``{value: rows}`` as aligned lines: the value, then its number of rows."""
    width = max((len(value) for value in counts), default=0)
    digits = max((len(str(count)) for count in counts.values()), default=0)
    return [f"{value.ljust(width)}  {str(count).rjust(digits)}" for value, count in counts.items()]


# --- Accuracy and mismatches ---------------------------------------------------------------

def is_match(row):
    """True when the row's ground-truth label and proposed label agree (normalised)."""
    return normalise(row.get("label")) == normalise(row.get("proposed_label"))


def accuracy(rows):
    """Return ``(matches, total)``; raise ValueError on an empty list."""
    if not rows:
        raise ValueError("accuracy of no rows is undefined")
    return sum(1 for row in rows if is_match(row)), len(rows)


def mismatches(rows):
    """Return the rows whose proposed label differs from the ground truth, in file order."""
    return [row for row in rows if not is_match(row)]


def format_accuracy(matches, total):
    """``Accuracy: 92.00% (276/300 matches)``, with the published arithmetic (same rounding)."""
    return f"Accuracy: {matches / total * 100:.2f}% ({matches}/{total} matches)"


def format_mismatch(row):
    """One readable line: expected label, proposed label, raw prediction, then the path."""
    return (f"expected {normalise(row.get('label'))}, proposed "
            f"{normalise(row.get('proposed_label'))} (prediction: {row.get('prediction') or ''})"
            f"  {row.get('path') or ''}")


def format_mismatches(rows):
    """A heading line and one line per mismatching row."""
    wrong = mismatches(rows)
    if not wrong:
        return ["Mismatches: none"]
    return [f"Mismatches ({len(wrong)}):"] + ["  " + format_mismatch(row) for row in wrong]


def format_compact(rows):
    """The compact report (``--format compact``): accuracy, then one line per mismatch."""
    if not rows:
        return [NO_DATA]
    return [format_accuracy(*accuracy(rows))] + format_mismatches(rows)


# --- The published output ------------------------------------------------------------------

NO_DATA = "No data to evaluate."


def published_usage(script):
    """The line the published scripts print (on stdout, exit status 1) when run without a file."""
    return f"Usage: python {script} /path/to/results.csv"


def published_missing_file(path):
    """The line the published scripts print (on stdout, exit status 1) for a missing file."""
    return f"Error: File '{path}' does not exist."


def format_published(rows):
    """The lines the published ``computeaccuracy.py`` prints, blank lines included.

    Fields are shown as written in the CSV (a missing cell as empty); each mismatch block
    ends with a blank line.
    """
    if not rows:
        return [NO_DATA]
    lines = ["", format_accuracy(*accuracy(rows)), ""]
    wrong = mismatches(rows)
    if not wrong:
        return lines + ["\N{WHITE HEAVY CHECK MARK} No mismatches found!"]
    lines.append("Mismatches:")
    for row in wrong:
        lines += [f"- File: {row.get('path') or ''}",
                  f"  Expected label:   {row.get('label') or ''}",
                  f"  Predicted label:  {row.get('prediction') or ''}",
                  f"  Proposed label:   {row.get('proposed_label') or ''}",
                  ""]
    return lines


def format_published_values(values, column="label"):
    """The published ``list_labels.py`` output: a heading, then the Python list of values."""
    heading = "Unique labels found:" if column == "label" else f"Unique {column} values found:"
    return [heading, repr(sorted(values))]


def join_sections(*sections):
    """Lines of several reports, one blank line between two (none added after a blank one)."""
    lines = []
    for section in sections:
        if lines and section and lines[-1] != "":
            lines.append("")
        lines += section
    return lines


def mismatch_records(rows):
    """The mismatching rows as dicts of the published columns (raw cell values)."""
    return [{name: row.get(name) or "" for name in COLUMNS} for row in mismatches(rows)]


# --- Per-category metrics (scikit-learn) ---------------------------------------------------

def category_lists(rows):
    """Return ``(y_true, y_pred)``: the normalised ground-truth and proposed labels."""
    return ([normalise(row.get("label")) for row in rows],
            [normalise(row.get("proposed_label")) for row in rows])


def per_class_metrics(y_true, y_pred):
    """Precision, recall, F1, support and the confusion matrix per category, with sklearn.

    Categories are the sorted union of ground-truth and proposed labels. A precision or
    recall that is 0/0 (a category never proposed, or never the ground truth) is NaN.
    ``macro_f1`` is the unweighted mean F1 over all those categories (scikit-learn's
    default); ``macro_f1_true`` is the same over the ground-truth categories only.
    ``balanced_accuracy`` is the mean recall over the ground-truth categories.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels, y_pred has {len(y_pred)}")
    if not y_true:
        raise ValueError("per-class metrics of no rows are undefined")
    import numpy as np
    from sklearn.metrics import (balanced_accuracy_score, confusion_matrix,
                                 precision_recall_fscore_support)

    labels = sorted(set(y_true) | set(y_pred))
    true_labels = sorted(set(y_true))
    with warnings.catch_warnings():
        # Expected cases, handled here, that scikit-learn warns about on stderr: classes
        # proposed but never the ground truth (e.g. "other"), a single class in all.
        warnings.simplefilter("ignore", UserWarning)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
        macro_f1 = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average="macro", zero_division=np.nan)[2]
        macro_f1_true = precision_recall_fscore_support(
            y_true, y_pred, labels=true_labels, average="macro", zero_division=np.nan)[2]
        balanced = balanced_accuracy_score(y_true, y_pred)
        matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "labels": labels,
        "precision": [float(value) for value in precision],
        "recall": [float(value) for value in recall],
        "f1": [float(value) for value in f1],
        "support": [int(value) for value in support],
        "correct": [int(matrix[i, i]) for i in range(len(labels))],
        "predicted": [int(value) for value in matrix.sum(axis=0)],
        "macro_f1": float(macro_f1),
        "macro_f1_true": float(macro_f1_true),
        "n_true_labels": len(true_labels),
        "balanced_accuracy": float(balanced),
        "confusion_matrix": matrix.tolist(),
    }


def _ratio(value, numerator, denominator):
    """``0.89 (89/100)``, or ``- (0/0)`` when undefined."""
    shown = "   -" if math.isnan(value) else f"{value:.2f}"
    return f"{shown} ({numerator}/{denominator})"


def format_per_class(metrics):
    """The per-category table, macro-F1 and balanced accuracy as text lines."""
    labels = metrics["labels"]
    rows = [["category", "precision", "recall", "f1", "support"]]
    for i, label in enumerate(labels):
        f1 = metrics["f1"][i]
        rows.append([
            label,
            _ratio(metrics["precision"][i], metrics["correct"][i], metrics["predicted"][i]),
            _ratio(metrics["recall"][i], metrics["correct"][i], metrics["support"][i]),
            "   -" if math.isnan(f1) else f"{f1:.2f}",
            str(metrics["support"][i]),
        ])
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = ["Per category (precision: correct/proposed, recall: correct/ground truth):"]
    for row in rows:
        cells = ([cell.ljust(w) for cell, w in zip(row[:3], widths[:3])]
                 + [cell.rjust(w) for cell, w in zip(row[3:], widths[3:])])
        lines.append("  " + "  ".join(cells).rstrip())
    lines.append(
        f"Macro-F1: {metrics['macro_f1']:.4f} (mean over the {len(labels)} categories above; "
        f"{metrics['macro_f1_true']:.4f} over the {metrics['n_true_labels']} ground-truth "
        f"categories)")
    lines.append(
        f"Balanced accuracy: {100.0 * metrics['balanced_accuracy']:.2f}% (mean recall over "
        f"the {metrics['n_true_labels']} ground-truth categories)")
    return lines


def format_confusion(labels, matrix):
    """The confusion matrix as a text table (rows: ground truth, columns: proposed)."""
    if len(matrix) != len(labels) or any(len(row) != len(labels) for row in matrix):
        raise ValueError("the confusion matrix must be square with one row per label")
    head = max([len("truth \\ proposed")] + [len(label) for label in labels])
    widths = [max(len(label), max(len(str(row[j])) for row in matrix))
              for j, label in enumerate(labels)]
    lines = ["Confusion matrix (rows: ground truth, columns: proposed label):",
             "  " + "truth \\ proposed".ljust(head) + "".join(
                 "  " + label.rjust(w) for label, w in zip(labels, widths))]
    for label, row in zip(labels, matrix):
        lines.append("  " + label.ljust(head) + "".join(
            "  " + str(count).rjust(w) for count, w in zip(row, widths)))
    return lines


# --- Plot (matplotlib, Agg) ----------------------------------------------------------------

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
        raise UserError(f"cannot write the plot {path}: {error.strerror or error}") from None



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
        raise UserError(f"cannot write the plot {path}: {error.strerror or error}") from None

# --- Comparing two runs --------------------------------------------------------------------

LISTED_UNMATCHED = 10  # stems only in one file printed by name; --json lists them all


def _by_key(rows, key):
    """{key(path): row}; when a key repeats, its last row wins (as a resumed run would read)."""
    return {key(row.get("path") or ""): row for row in rows}


def compare_runs(rows_a, rows_b, key=None):
    """Rows of two runs matched by ``key(path)`` (the path itself by default).

    ``differ`` holds every matched row whose prediction or proposed label (normalised)
    differs, with a status from run A to run B: ``fixed`` (A wrong, B right), ``broke``
    (A right, B wrong), ``changed`` (another wrong label) or ``prediction`` (the same
    proposed label from another prediction).
    """
    key = key or (lambda path: path)
    a, b = _by_key(rows_a, key), _by_key(rows_b, key)
    shared = [name for name in a if name in b]
    differ = []
    for name in shared:
        row_a, row_b = a[name], b[name]
        proposed_a = normalise(row_a.get("proposed_label"))
        proposed_b = normalise(row_b.get("proposed_label"))
        if proposed_a == proposed_b and \
                normalise(row_a.get("prediction")) == normalise(row_b.get("prediction")):
            continue
        right_a, right_b = is_match(row_a), is_match(row_b)
        differ.append({
            "path": name,
            "label": normalise(row_a.get("label")),
            "prediction_a": row_a.get("prediction") or "",
            "proposed_label_a": proposed_a,
            "prediction_b": row_b.get("prediction") or "",
            "proposed_label_b": proposed_b,
            "status": "prediction" if proposed_a == proposed_b else
                      "fixed" if right_b and not right_a else
                      "broke" if right_a and not right_b else "changed",
        })
    shared_a = [a[name] for name in shared]
    shared_b = [b[name] for name in shared]
    return {
        "accuracy_a": accuracy(rows_a) if rows_a else (0, 0),
        "accuracy_b": accuracy(rows_b) if rows_b else (0, 0),
        "matched": len(shared),
        "identical": len(shared) - len(differ),
        "shared_accuracy_a": accuracy(shared_a) if shared else (0, 0),
        "shared_accuracy_b": accuracy(shared_b) if shared else (0, 0),
        "differ": differ,
        "only_in_a": [name for name in a if name not in b],
        "only_in_b": [name for name in b if name not in a],
        "duplicates_a": len(rows_a) - len(a),
        "duplicates_b": len(rows_b) - len(b),
    }


def _accuracy_or_none(pair):
    matches, total = pair
    return format_accuracy(matches, total) if total else "Accuracy: - (0 rows)"


def format_compare(comparison):
    """The comparison as text lines; it names the files ``a`` and ``b``, tags their rows with
    ``name_a`` and ``name_b`` and says what rows were ``matched_by``."""
    name_a, name_b = comparison["name_a"], comparison["name_b"]
    width = max(len(name_a), len(name_b)) + 1
    tag_a, tag_b = f"{name_a}:".ljust(width), f"{name_b}:".ljust(width)
    matched = comparison["matched"]
    lines = [f"Comparison of {comparison['a']} ({name_a}) with {comparison['b']} ({name_b}), "
             f"rows matched by {comparison['matched_by']}:",
             f"  {tag_a} {_accuracy_or_none(comparison['accuracy_a'])}",
             f"  {tag_b} {_accuracy_or_none(comparison['accuracy_b'])}"]
    if matched:
        (ma, _), (mb, _) = comparison["shared_accuracy_a"], comparison["shared_accuracy_b"]
        lines.append(f"  Rows matched: {matched} ({name_a} {ma / matched * 100:.2f}% "
                     f"({ma}/{matched}), {name_b} {mb / matched * 100:.2f}% ({mb}/{matched}))")
    else:
        lines.append("  Rows matched: 0")
    differ = comparison["differ"]
    lines.append(f"  Rows identical: {comparison['identical']}")
    lines.append(f"  Rows that differ: {len(differ)}")
    for entry in differ:
        lines += [f"    [{entry['status']}] {entry['path']} (expected {entry['label']})",
                  f"      {tag_a} prediction {entry['prediction_a']}, "
                  f"proposed {entry['proposed_label_a']}",
                  f"      {tag_b} prediction {entry['prediction_b']}, "
                  f"proposed {entry['proposed_label_b']}"]
    for key, name in (("only_in_a", name_a), ("only_in_b", name_b)):
        only = comparison[key]
        lines.append(f"  Stems only in {name}: {len(only)}")
        lines += [f"    {path}" for path in only[:LISTED_UNMATCHED]]
        if len(only) > LISTED_UNMATCHED:
            lines.append(f"    ... and {len(only) - LISTED_UNMATCHED} more (--json lists all)")
    for key, name in (("duplicates_a", name_a), ("duplicates_b", name_b)):
        if comparison[key]:
            lines.append(f"  Note: {comparison[key]} repeated stem(s) in {name}; "
                         f"the last row of each was used")
    return lines


# --- JSON ----------------------------------------------------------------------------------

def _json_safe(value):
    """Replace NaN by None (JSON null), recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def json_report(path, rows, metrics, comparison=None):
    """Everything about one results file as a JSON-ready dict (fractions, not percents)."""
    matches, total = accuracy(rows)
    per_class = {
        label: {
            "precision": metrics["precision"][i],
            "recall": metrics["recall"][i],
            "f1": metrics["f1"][i],
            "support": metrics["support"][i],
            "correct": metrics["correct"][i],
            "predicted": metrics["predicted"][i],
        }
        for i, label in enumerate(metrics["labels"])
    }
    report = {
        "file": path,
        "accuracy": matches / total,
        "matches": matches,
        "total": total,
        "mismatches": mismatch_records(rows),
        "labels": metrics["labels"],
        "per_class": per_class,
        "macro_f1": metrics["macro_f1"],
        "macro_f1_ground_truth_labels": metrics["macro_f1_true"],
        "balanced_accuracy": metrics["balanced_accuracy"],
        "confusion_matrix": {
            "labels": metrics["labels"],
            "rows": "ground truth",
            "columns": "proposed label",
            "matrix": metrics["confusion_matrix"],
        },
    }
    if comparison is not None:
        compared = dict(comparison)
        for key in ("accuracy_a", "accuracy_b", "shared_accuracy_a", "shared_accuracy_b"):
            hits, count = compared.pop(key)
            compared[key] = {"matches": hits, "total": count,
                             "accuracy": hits / count if count else None}
        report["compare"] = compared
    return _json_safe(report)


def write_json(data, path):
    """Write ``data`` as indented UTF-8 JSON; a failure is a UserError."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise UserError(f"cannot write the JSON file {path}: {error.strerror or error}") from None
