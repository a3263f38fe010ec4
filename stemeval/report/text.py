"""The other text reports: counts, the compact report, the per-category and confusion
tables, a comparison of two runs, and the one table aligner every report uses."""

import math

from stemeval.labels.matching import normalise
from stemeval.report.published import NO_DATA, format_accuracy
from stemeval.scoring.metrics import accuracy, mismatches

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.scoring.stats.


def align(rows, left=1, indent="  "):
    """Rows of cells as lines: the first ``left`` columns left-aligned, the others
    right-aligned, two spaces apart, each line after ``indent``, trailing spaces cut."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) if col < left else cell.rjust(width)
                               for col, (cell, width) in enumerate(zip(row, widths))).rstrip()
            for row in rows]


def format_counts(counts):
    """``{value: rows}`` as aligned lines: the value, then its number of rows."""
    width = max((len(value) for value in counts), default=0)
    digits = max((len(str(count)) for count in counts.values()), default=0)
    return [f"{value.ljust(width)}  {str(count).rjust(digits)}" for value, count in counts.items()]


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


def join_sections(*sections):
    """Lines of several reports, one blank line between two (none added after a blank one)."""
    lines = []
    for section in sections:
        if lines and section and lines[-1] != "":
            lines.append("")
        lines += section
    return lines


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
    lines = ["Per category (precision: correct/proposed, recall: correct/ground truth):"]
    lines += align(rows, left=3)
    lines.append(
        f"Macro-F1: {metrics['macro_f1_all_labels']:.4f} (mean over the {len(labels)} "
        f"categories above; {metrics['macro_f1']:.4f} over the {metrics['n_true_labels']} "
        f"ground-truth categories)")
    lines.append(
        f"Balanced accuracy: {100.0 * metrics['balanced_accuracy']:.2f}% (mean recall over "
        f"the {metrics['n_true_labels']} ground-truth categories)")
    return lines


def format_confusion(labels, matrix):
    """The confusion matrix as a text table (rows: ground truth, columns: proposed)."""
    if len(matrix) != len(labels) or any(len(row) != len(labels) for row in matrix):
        raise ValueError("the confusion matrix must be square with one row per label")
    rows = [["truth \\ proposed", *labels]]
    rows += [[label, *map(str, counts)] for label, counts in zip(labels, matrix)]
    return ["Confusion matrix (rows: ground truth, columns: proposed label):"] + align(rows)


def format_share(value):
    """A share as a percentage with two decimals (``-`` when undefined)."""
    return "-" if value is None else f"{100.0 * value:.2f}"


def format_interval(low, high, signed=False):
    """``[88.33, 95.00]`` in percent (``+`` before positive values when ``signed``), ``-``
    when there is no interval."""
    if low is None:
        return "-"
    shown = "{:+.2f}" if signed else "{:.2f}"
    return f"[{shown.format(100.0 * low)}, {shown.format(100.0 * high)}]"


def bootstrap_heading(tracks):
    """What the intervals are, and where their tracks come from, as one line."""
    from stemeval.scoring.stats import LEVEL, RESAMPLES, SEED

    return (f"{100 * LEVEL:g}% intervals: percentile bootstrap over tracks ({RESAMPLES} "
            f"resamples, seed {SEED}); tracks: {tracks.source}")


def format_intervals(intervals, tracks, errors):
    """Accuracy and the recall of each ground-truth category with their intervals
    (``stats.score_intervals``), and how many stems and error rows were scored."""
    estimates = [("accuracy", intervals["accuracy"])] + [
        (f"recall {category}", estimate) for category, estimate in intervals["recall"].items()]
    rows = [["measure", "percent", "interval", "stems", "tracks"]]
    rows += [[name, format_share(estimate.value), format_interval(estimate.low, estimate.high),
              str(estimate.stems), str(estimate.groups)] for name, estimate in estimates]
    lines = [bootstrap_heading(tracks) + ":"] + align(rows)
    if any(estimate.low is None for _, estimate in estimates):
        lines.append("  (-: the stems are of one track, there is nothing to resample)")
    return lines + [f"Stems scored: {intervals['accuracy'].stems}, of which error rows "
                    f"(stems that failed, scored as misses): {errors}"]


LISTED_UNMATCHED = 10  # stems only in one file printed by name; --json lists them all


def _accuracy_or_none(pair):
    matches, total = pair
    return format_accuracy(matches, total) if total else "Accuracy: - (0 rows)"


def format_compare(comparison):
    """The comparison as text lines; it names the files ``a`` and ``b`` (each by its map
    too when its rows were derived again with ``map_a`` or ``map_b``: both may be the same
    file), tags their rows with ``name_a`` and ``name_b`` and says what rows were
    ``matched_by``."""
    name_a, name_b = comparison["name_a"], comparison["name_b"]
    width = max(len(name_a), len(name_b)) + 1
    tag_a, tag_b = f"{name_a}:".ljust(width), f"{name_b}:".ljust(width)
    matched = comparison["matched"]
    shown_a, shown_b = (comparison[side] + (f" re-mapped with {comparison['map_' + side]}"
                                            if comparison.get("map_" + side) else "")
                        for side in ("a", "b"))
    lines = [f"Comparison of {shown_a} ({name_a}) with {shown_b} ({name_b}), "
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
