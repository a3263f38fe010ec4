"""The published scripts' output, byte for byte: what ``computeaccuracy.py`` and
``list_labels.py`` printed (the tests compare it with re-creations of those scripts)."""

from stemeval.scoring.metrics import accuracy, mismatches

NO_DATA = "No data to evaluate."


def published_usage(script):
    """The line the published scripts print (on stdout, exit status 1) when run without a file."""
    return f"Usage: python {script} /path/to/results.csv"


def published_missing_file(path):
    """The line the published scripts print (on stdout, exit status 1) for a missing file."""
    return f"Error: File '{path}' does not exist."


def format_accuracy(matches, total):
    """``Accuracy: 92.00% (276/300 matches)``, with the published arithmetic (same rounding)."""
    return f"Accuracy: {matches / total * 100:.2f}% ({matches}/{total} matches)"


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
