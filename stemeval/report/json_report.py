"""Reports as JSON: fractions rather than percents, NaN (an undefined 0/0) as null."""

import json
import math

from stemeval.common.atomic import write_atomically, write_failure
from stemeval.common.errors import UserError
from stemeval.runfiles.results import COLUMNS
from stemeval.scoring.metrics import accuracy, mismatches

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.scoring.stats.


def json_safe(value):
    """Replace NaN by None (JSON null), recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def mismatch_records(rows):
    """The mismatching rows as dicts of the published columns (raw cell values)."""
    return [{name: row.get(name) or "" for name in COLUMNS} for row in mismatches(rows)]


def json_intervals(intervals, tracks, errors):
    """``stats.score_intervals``'s estimates (fractions), how they were made and the error
    rows, as a JSON-ready dict."""
    from dataclasses import asdict

    from stemeval.scoring.stats import LEVEL, RESAMPLES, SEED

    return {"level": LEVEL, "resamples": RESAMPLES, "seed": SEED,
            "tracks": {"source": tracks.source, "known": tracks.known,
                       "count": len(set(tracks.groups))},
            "error_rows": errors,
            "accuracy": asdict(intervals["accuracy"]),
            "recall": {category: asdict(estimate)
                       for category, estimate in intervals["recall"].items()}}


def json_report(path, rows, metrics, comparison=None, intervals=None):
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
        "macro_f1": metrics["macro_f1_all_labels"],  # kept as it was: over all labels
        "macro_f1_ground_truth_labels": metrics["macro_f1"],
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
    if intervals is not None:
        report["intervals"] = intervals
    return json_safe(report)


def write_json(data, path):
    """Write ``data`` as indented UTF-8 JSON, whole or not at all; a failure is a UserError."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        write_atomically(path, lambda handle: handle.write(text))
    except OSError as error:
        raise UserError(f"cannot write the JSON file {path}: "
                        f"{write_failure(path, error)}") from None
