"""The metrics of a results file, defined once: pure functions on plain lists and dicts,
inputs checked first (mir_eval's habit), used by ``computeaccuracy.py``, the leaderboard,
the probes and the sweep summaries.

A row *matches* when its ``label`` and ``proposed_label``, stripped and lower-cased, are
equal. Categories are compared in that normalised form everywhere. Each named metric has one
definition, here:

- *accuracy*: matching rows / rows (every row counts: a speech or error row is a miss unless
  its label says so);
- *recall* of a category: its matching rows / its ground-truth rows; *precision*: its
  matching rows / the rows proposing it;
- *balanced accuracy*: the mean recall over the ground-truth categories;
- *macro-F1*: the mean F1 over the ground-truth categories (a category never proposed has
  F1 0; a label that is never the ground truth, such as ``other``, is not a class);
- *macro-F1 over all labels*, the one variant kept, named so: the mean F1 over the union of
  ground-truth and proposed labels (scikit-learn's default), in which ``other`` counts as a
  class with F1 0 (``--per-class`` prints it beside macro-F1).
"""

import warnings

from stemeval.labels.matching import normalise

# Imported inside the functions that use them, so that what needs none of them starts without them:
# numpy, scikit-learn.

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


def category_lists(rows):
    """Return ``(y_true, y_pred)``: the normalised ground-truth and proposed labels."""
    return ([normalise(row.get("label")) for row in rows],
            [normalise(row.get("proposed_label")) for row in rows])


def per_class_metrics(y_true, y_pred):
    """Precision, recall, F1, support and the confusion matrix per category, with sklearn.

    Categories are the sorted union of ground-truth and proposed labels. A precision or
    recall that is 0/0 (a category never proposed, or never the ground truth) is NaN.
    ``accuracy``, ``balanced_accuracy``, ``macro_f1`` and ``macro_f1_all_labels`` are as
    the module docstring defines them.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels, y_pred has {len(y_pred)}")
    if not y_true:
        raise ValueError("per-class metrics of no rows are undefined")
    import numpy as np
    from sklearn.metrics import (
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    labels = sorted(set(y_true) | set(y_pred))
    true_labels = sorted(set(y_true))
    with warnings.catch_warnings():
        # Expected cases, handled here, that scikit-learn warns about on stderr: classes
        # proposed but never the ground truth (e.g. "other"), a single class in all.
        warnings.simplefilter("ignore", UserWarning)
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
        macro_f1_all_labels = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average="macro", zero_division=np.nan)[2]
        macro_f1 = precision_recall_fscore_support(
            y_true, y_pred, labels=true_labels, average="macro", zero_division=np.nan)[2]
        balanced = balanced_accuracy_score(y_true, y_pred)
        matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "labels": labels,
        "accuracy": float(np.trace(matrix) / len(y_true)),
        "precision": [float(value) for value in precision],
        "recall": [float(value) for value in recall],
        "f1": [float(value) for value in f1],
        "support": [int(value) for value in support],
        "correct": [int(matrix[i, i]) for i in range(len(labels))],
        "predicted": [int(value) for value in matrix.sum(axis=0)],
        "macro_f1": float(macro_f1),
        "macro_f1_all_labels": float(macro_f1_all_labels),
        "n_true_labels": len(true_labels),
        "balanced_accuracy": float(balanced),
        "confusion_matrix": matrix.tolist(),
    }


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
