"""Probes on a tagger's embeddings: how well a simple classifier trained on them names the stems.

A zero-shot row mixes what the tagger hears with how well its labels map onto the dataset's
categories; a probe trained on its embeddings measures the first alone. The protocol:

- Outer split: ``StratifiedGroupKFold`` (shuffled with the seed) over the stems, grouped by
  track (a track's stems are never in both the training and the test stems of a fold).
- Probe: a scikit-learn Pipeline, ``StandardScaler`` then ``LogisticRegression`` (lbfgs,
  multinomial, no class weights), or with ``mlp`` an ``MLPClassifier`` (one hidden layer of
  256 units). Its regularisation (C, or the MLP's alpha) is chosen on the training stems of
  each fold only, by ``GridSearchCV`` with a ``GroupKFold`` over their tracks, scored by
  balanced accuracy (the datasets are unbalanced), then refitted on all of them.
- Metrics per fold, on its test stems: accuracy, balanced accuracy (mean recall over the
  fold's ground-truth categories) and macro-F1 (mean F1 over the same categories), as
  ``stemeval.scoring.metrics`` computes them; shown as mean and (population) standard deviation over
  the folds. Recall per category and the confusion matrix are over all test stems pooled
  (every stem is tested once).
- With the zero-shot results CSV of the same run, the zero-shot proposed labels of the same
  test stems are scored the same way, fold by fold. Its misses include the stems the speech
  gate sent to speech, which the tagger never heard (the probe sees their embeddings): they
  are counted per category and said so.
- Each stem's fold and answers are kept in the result (``per_stem``), so the stems the probe
  names right and the zero-shot row does not can be listed.
- Over all test stems pooled, each method's accuracy and recall per category get a 95%
  interval by bootstrap over tracks (``stemeval.scoring.stats``); with zero-shot labels, the two
  methods on the same stems get McNemar's exact test and the accuracy difference (probe
  minus zero-shot) with its paired-bootstrap interval.

Only the standard library is imported at module level; numpy and scikit-learn in functions.
"""

import math
import os
import sys
import warnings
from dataclasses import replace

from stemeval.common.errors import UserError
from stemeval.labels.matching import normalise
from stemeval.report.json_report import json_safe
from stemeval.report.plots import plot_recall_bars
from stemeval.report.text import align, format_confusion, format_interval, format_share
from stemeval.runfiles.results import read_results
from stemeval.runfiles.sidecar import identity_of, read_sidecar, sidecar_path
from stemeval.scoring.metrics import per_class_metrics, value_counts

# Imported inside the functions that use them, so that what needs none of them starts without them:
# numpy, scikit-learn and stemeval.runfiles.kept_scores, stemeval.scoring.stats.

INNER_FOLDS = 3
LOGISTIC_C = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
MLP_ALPHA = [0.0001, 0.001, 0.01, 0.1, 1.0]
MLP_HIDDEN = 256
METRICS = (("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"),
           ("macro_f1", "macro-F1"))
PROBE, ZERO_SHOT = "probe", "zero-shot"
VGGISH = "vggish"  # embeddings of the speech graph (stemeval.runfiles.embeddings.VGGISH)


# --- Checking ----------------------------------------------------------------------------

def check_for_probe(data, folds):
    """Raise a UserError when the stems cannot be split into ``folds`` grouped folds."""
    if not all(data.groups):
        empty = sum(1 for group in data.groups if not group)
        raise UserError(f"{data.file}: {empty} of {len(data.groups)} stems have no group (track), "
                        f"so the folds cannot be grouped by track")
    tracks = sorted(set(data.groups))
    if len(tracks) == 1:
        raise UserError(f"{data.file}: all {len(data.groups)} stems are from one track "
                        f"({tracks[0]}); a grouped split needs at least {folds} tracks")
    if len(tracks) < folds:
        raise UserError(f"{data.file}: {len(tracks)} tracks are too few for {folds} folds "
                        f"grouped by track (use --folds {len(tracks)} or fewer)")
    counts = value_counts([{"label": label} for label in data.labels])
    if len(counts) < 2:
        raise UserError(f"{data.file}: every stem is {next(iter(counts))!r}; a probe needs at "
                        f"least 2 categories")


def without_single_stems(data):
    """``data`` less the stems of categories that have only one (a split or --limit easily
    leaves one): such a stem is either trained on or tested, never both. A warning on stderr
    names the categories left out."""
    counts = value_counts([{"label": label} for label in data.labels])
    alone = sorted(label for label, count in counts.items() if count < 2)
    if not alone:
        return data
    if len(alone) == len(counts):
        raise UserError(f"{data.file}: each of its {len(counts)} categories has a single stem "
                        f"({_listed_labels(alone)}), which a probe can never both train on "
                        f"and test; a probe needs at least 2 categories of 2 stems or more")
    print(f"warning: {data.file}: left out {len(alone)} categor{'y' if len(alone) == 1 else 'ies'}"
          f" with a single stem, which a probe can never both train on and test: "
          f"{', '.join(alone)}", file=sys.stderr)
    keep = [index for index, label in enumerate(data.labels) if label not in alone]
    return replace(data, embeddings=data.embeddings[keep],
                   **{key: [getattr(data, key)[index] for index in keep]
                      for key in ("paths", "labels", "groups")})


def _listed_labels(labels, shown=8):
    more = len(labels) - shown
    return ", ".join(labels[:shown]) + (f" and {more} more" if more > 0 else "")


def check_pairing(data, results_path):
    """Refuse a results CSV whose sidecar says another run wrote it than the one that wrote
    the embeddings ``data``: another tagger, another identity (weights, dataset, condition:
    ``stemeval.runfiles.embeddings.check_embeddings_identity``), or another embeddings
    file saved beside it."""
    record = read_sidecar(sidecar_path(results_path))
    if record is None:
        return
    advice = "give each embeddings file the results CSV of its own run, in the same order"
    if record.get("tagger") not in (None, data.tagger) and data.tagger != VGGISH:
        raise UserError(f"{results_path}: its sidecar says tagger {record['tagger']} wrote it, "
                        f"but {data.file} holds embeddings of {data.tagger}; {advice}")
    from stemeval.runfiles.embeddings import check_embeddings_identity

    check_embeddings_identity(data, results_path, identity_of(record))
    named = (record.get("options") or {}).get("embeddings")
    if isinstance(named, str) and not _same_file(named, data.file):
        raise UserError(f"{results_path}: its run saved its embeddings as {named}, not "
                        f"{data.file}; {advice}")


def _same_file(named, path):
    """Whether the embeddings file a sidecar names is ``path`` (the same name, moved or not)."""
    if os.path.basename(named) == os.path.basename(path):
        return True
    try:
        return os.path.samefile(named, path)
    except OSError:
        return False


def zero_shot_labels(data, results_path):
    """The proposed label of each stem of ``data`` in the results CSV (``zero_shot_rows``)."""
    return [normalise(row.get("proposed_label")) for row in zero_shot_rows(data, results_path)]


def zero_shot_gated(data, results_path):
    """Whether the speech gate sent each stem of ``data`` to speech in that run."""
    from stemeval.runfiles.kept_scores import gated_flags, read_kept_scores

    return gated_flags(zero_shot_rows(data, results_path), read_kept_scores(results_path))


def zero_shot_rows(data, results_path):
    """The row of each stem of ``data`` in the results CSV, matched by path, once the CSV's
    sidecar shows it comes from the run that wrote the embeddings."""
    check_pairing(data, results_path)
    by_path = {row.get("path") or "": row for row in read_results(results_path)}
    absent = [path for path in data.paths if path not in by_path]
    if absent:
        raise UserError(f"{results_path}: {len(absent)} of the {len(data.paths)} stems of "
                        f"{data.file} are not in it (e.g. {absent[0]}); give the results CSV of "
                        f"the run that wrote the embeddings")
    for path, label in zip(data.paths, data.labels):
        other = normalise(by_path[path].get("label"))
        if other != label:
            raise UserError(f"{results_path}: {path} is labelled {other!r} there and {label!r} "
                            f"in {data.file}")
    return [by_path[path] for path in data.paths]


# --- The probe -------------------------------------------------------------------------------

def make_probe(mlp, seed):
    """The probe Pipeline and the grid of its regularisation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if mlp:
        model = MLPClassifier(hidden_layer_sizes=(MLP_HIDDEN,), max_iter=300, random_state=seed)
        return Pipeline([("scale", StandardScaler()), ("mlp", model)]), {"mlp__alpha": MLP_ALPHA}
    model = LogisticRegression(max_iter=2000)
    return Pipeline([("scale", StandardScaler()), ("logistic", model)]), {"logistic__C": LOGISTIC_C}


def outer_folds(data, folds, seed):
    """``[(train indices, test indices)]`` of the grouped, stratified outer split."""
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a category with fewer stems than folds is expected
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(data.embeddings, data.labels, data.groups))


def _fit(data, train, mlp, seed, fold):
    """The probe fitted on the ``train`` stems, its regularisation chosen on their tracks."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, GroupKFold

    groups = np.asarray(data.groups)[train]
    tracks = len(set(groups))
    if tracks < 2:
        raise UserError(f"{data.file}: the training stems of fold {fold} are from one track, too "
                        f"few for the inner search; use fewer folds or more tracks")
    labels = np.asarray(data.labels)[train]
    inner = GroupKFold(n_splits=min(INNER_FOLDS, tracks))
    for fit, _ in inner.split(train, labels, groups):
        if len(set(labels[fit])) < 2:
            raise UserError(_inseparable(data.file, fold, labels, groups, labels[fit][0]))
    probe, grid = make_probe(mlp, seed)
    search = GridSearchCV(probe, grid, cv=inner, scoring="balanced_accuracy")
    with warnings.catch_warnings():  # inner folds may lack a category; slow convergence
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(data.embeddings[train], labels, groups=groups)
    return search


def _inseparable(file, fold, labels, groups, single):
    """Why the inner search of a fold cannot fit: a split of its training stems by track
    leaves ``single`` alone to train on, because categories and tracks go together."""
    tracks = {}
    for label, group in zip(labels, groups):
        tracks.setdefault(label, set()).add(group)
    alone = sorted(label for label, held in tracks.items()
                   if not any(other != label and held & others
                              for other, others in tracks.items()))
    why = (f": categories {', '.join(alone)} cannot be separated by track (each of their "
           f"tracks holds no other category)" if alone else "")
    return (f"{file}: fold {fold}: the probe's inner search splits the fold's training stems "
            f"by track, and one split leaves only category {single} to train on{why}; a probe "
            f"grouped by track needs more tracks per category, or tracks of several categories")


def _scores(y_true, y_pred):
    """Accuracy, balanced accuracy and macro-F1, as ``stemeval.scoring.metrics`` defines them."""
    metrics = per_class_metrics(y_true, y_pred)
    return {key: metrics[key] for key, _ in METRICS}


def probe_embeddings(data, folds=5, seed=0, mlp=False, zero_shot=None, gated=None):
    """Cross-validate the probe on ``data`` (and score ``zero_shot`` labels on the same folds;
    ``gated``: whether the speech gate sent each stem to speech in that run).

    Returns a dict: the file, tagger, counts, options, one entry per fold (test stems, tracks,
    chosen regularisation, scores of each method), mean and std of each score over the folds,
    per-category metrics of all test stems pooled, per method, each stem's fold and answers
    (``per_stem``), and with ``gated`` the stems gated per category (``gated``).
    """
    import numpy as np

    check_for_probe(data, folds)
    labels = np.asarray(data.labels)
    predicted = {PROBE: [None] * len(labels)}
    if zero_shot is not None:
        predicted[ZERO_SHOT] = list(zero_shot)
    fold_entries, fold_of = [], [None] * len(labels)
    for number, (train, test) in enumerate(outer_folds(data, folds, seed), start=1):
        search = _fit(data, train, mlp, seed, number)
        for index, guess in zip(test, search.predict(data.embeddings[test])):
            predicted[PROBE][index] = str(guess)
            fold_of[index] = number
        truth = [data.labels[index] for index in test]
        fold_entries.append({
            "fold": number,
            "test_stems": len(test),
            "test_tracks": len({data.groups[index] for index in test}),
            "train_stems": len(train),
            "regularisation": {key.split("__")[1]: value
                               for key, value in search.best_params_.items()},
            "scores": {method: _scores(truth, [guesses[index] for index in test])
                       for method, guesses in predicted.items()},
        })
    summary = {}
    for method in predicted:
        summary[method] = {}
        for key, _ in METRICS:
            values = [entry["scores"][method][key] for entry in fold_entries]
            summary[method][key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    return {
        "file": data.file,
        "tagger": data.tagger,
        "probe": "mlp" if mlp else "logistic",
        "folds": folds,
        "seed": seed,
        "stems": len(labels),
        "tracks": len(set(data.groups)),
        "dim": int(data.embeddings.shape[1]),
        "categories": sorted(set(data.labels)),
        "fold_results": fold_entries,
        "summary": summary,
        "pooled": {method: per_class_metrics(list(data.labels), guesses)
                   for method, guesses in predicted.items()},
        "per_stem": [{"path": path, "label": label, "group": group, "fold": fold,
                      **{method: guesses[index] for method, guesses in predicted.items()},
                      **({"gated": bool(gated[index])} if gated is not None else {})}
                     for index, (path, label, group, fold) in enumerate(
                         zip(data.paths, data.labels, data.groups, fold_of))],
        **({"gated": value_counts([{"label": label} for label, flag
                                   in zip(data.labels, gated) if flag])}
           if gated is not None else {}),
        **pooled_statistics(data, predicted),
    }


def pooled_statistics(data, predicted):
    """``intervals`` of each method over all test stems (``stats.score_intervals``, as dicts)
    and, with zero-shot labels, ``paired``: zero-shot (A) against the probe (B) on the same
    stems, McNemar's exact test and B - A with its interval, over the stems' tracks."""
    from dataclasses import asdict

    from stemeval.scoring.stats import mcnemar_exact, paired_bootstrap_difference, score_intervals

    found = {}
    for method, guesses in predicted.items():
        estimates = score_intervals(data.labels, guesses, data.groups)
        found[method] = {"accuracy": asdict(estimates["accuracy"]),
                         "recall": {category: asdict(estimate)
                                    for category, estimate in estimates["recall"].items()}}
    if ZERO_SHOT not in predicted:
        return {"intervals": found}
    a, b = ([truth == guess for truth, guess in zip(data.labels, predicted[method])]
            for method in (ZERO_SHOT, PROBE))
    low, high = paired_bootstrap_difference(a, b, data.groups)
    return {"intervals": found,
            "paired": {"a": ZERO_SHOT, "b": PROBE, "stems": len(a),
                       **asdict(mcnemar_exact(a, b)),
                       "difference": (sum(b) - sum(a)) / len(a), "low": low, "high": high}}


# --- Text ------------------------------------------------------------------------------------

def _percent(value):
    return "-" if value is None or math.isnan(value) else f"{100.0 * value:.2f}%"


def _mean_std(entry):
    return f"{100.0 * entry['mean']:.2f}% ± {100.0 * entry['std']:.2f}"


def describe(result):
    """The heading lines: what was probed, and how."""
    model = ("an MLP (one hidden layer of 256 units, alpha" if result["probe"] == "mlp"
             else "logistic regression (C")
    return [f"Probe of {result['tagger']} embeddings ({result['file']}): {result['stems']} stems, "
            f"{result['tracks']} tracks, {len(result['categories'])} categories, "
            f"{result['dim']} dimensions",
            f"{model} chosen per fold by a {INNER_FOLDS}-fold grouped inner search) on "
            f"standardised embeddings; {result['folds']} folds grouped by track, seed "
            f"{result['seed']}"]


def format_folds(result):
    """One line per fold: its test stems, the chosen regularisation and each method's scores."""
    methods = list(result["summary"])
    head = ["fold", "test stems", "tracks", "chosen"]
    for method in methods:
        head += [f"{method} acc", f"{method} bal-acc", f"{method} macro-F1"]
    rows = [head]
    for entry in result["fold_results"]:
        row = [str(entry["fold"]), str(entry["test_stems"]), str(entry["test_tracks"]),
               ", ".join(f"{key}={value:g}" for key, value in entry["regularisation"].items())]
        for method in methods:
            row += [_percent(entry["scores"][method][key]) for key, _ in METRICS]
        rows.append(row)
    return ["Per fold (the same test stems for every method):"] + align(rows)


def format_summary(result):
    """Mean ± std over the folds of each score, per method."""
    rows = [["method"] + [name for _, name in METRICS]]
    for method, scores in result["summary"].items():
        rows.append([method] + [_mean_std(scores[key]) for key, _ in METRICS])
    return ["Mean ± std over the folds:"] + align(rows)


def format_recall(results):
    """Recall per category over all test stems: one column per (tagger, method)."""
    categories = sorted({label for result in results for label in result["categories"]})
    columns = [(name, result, method) for name, result in _named(results)
               for method in result["summary"]]
    rows = [["category"] + [f"{name} {method}" if len(results) > 1 else method
                            for name, _, method in columns]]
    for category in categories:
        row = [category]
        for _, result, method in columns:
            pooled = result["pooled"][method]
            if category in pooled["labels"]:
                i = pooled["labels"].index(category)
                row.append(f"{_percent(pooled['recall'][i])} "
                           f"({pooled['correct'][i]}/{pooled['support'][i]})")
            else:
                row.append("-")
        rows.append(row)
    return ["Recall per category (all test stems; correct/stems):"] + align(rows)


def _named(results):
    """``(name, result)``: the tagger's name, with the file's when two share a name."""
    taggers = [result["tagger"] for result in results]
    return [(result["tagger"] if taggers.count(result["tagger"]) == 1
             else f"{result['tagger']} ({os.path.basename(result['file'])})", result)
            for result in results]


def format_methods_table(results):
    """One row per (tagger, method): mean ± std over the folds; the best of a column marked *."""
    entries = [(f"{name} {method}", result["summary"][method])
               for name, result in _named(results) for method in result["summary"]]
    best = {key: max(scores[key]["mean"] for _, scores in entries) for key, _ in METRICS}
    rows = [["tagger / method"] + [name for _, name in METRICS]]
    for name, scores in entries:
        rows.append([name] + [_mean_std(scores[key]) + ("*" if scores[key]["mean"] == best[key]
                                                        else " ") for key, _ in METRICS])
    return ["Leaderboard (mean ± std over the folds; * best in its column):"] + align(rows)


def format_pooled(results):
    """Each (tagger, method)'s accuracy over all test stems with its interval, the recall
    intervals, and zero-shot against probe on the same stems."""
    from stemeval.scoring.stats import LEVEL, RESAMPLES, SEED

    columns = [(name, result, method) for name, result in _named(results)
               for method in result["intervals"]]
    categories = sorted({label for result in results for label in result["categories"]})
    rows = [["tagger / method", "accuracy", "interval"] + categories]
    for name, result, method in columns:
        found = result["intervals"][method]
        rows.append([f"{name} {method}", format_share(found["accuracy"]["value"]),
                     format_interval(found["accuracy"]["low"], found["accuracy"]["high"])] +
                    [format_interval(found["recall"][category]["low"],
                                     found["recall"][category]["high"])
                     if category in found["recall"] else "-" for category in categories])
    lines = [f"All test stems pooled, {100 * LEVEL:g}% intervals (percentile bootstrap over "
             f"tracks, {RESAMPLES} resamples, seed {SEED}; the last columns: recall):"]
    lines += align(rows)
    for name, result in _named(results):
        pair = result.get("paired")
        if pair:
            lines.append(
                f"{name}: probe against zero-shot on the same {pair['stems']} stems: fixed {pair['fixed']} (zero-shot wrong, probe right), broken "
                f"{pair['broken']}, McNemar's exact p = {pair['p_value']:.4f}; probe - zero-shot "
                f"{100 * pair['difference']:+.2f} points "
                f"{format_interval(pair['low'], pair['high'], signed=True)}")
    return lines


def format_one(result):
    """The full report of one embeddings file."""
    lines = describe(result) + [""] + format_folds(result) + [""] + format_summary(result)
    lines += [""] + format_recall([result]) + [""] + format_pooled([result])
    for method, pooled in result["pooled"].items():
        table = format_confusion(pooled["labels"], pooled["confusion_matrix"])
        lines += ["", f"Confusion matrix, {method}, all test stems (rows: ground truth, "
                      f"columns: proposed label):"] + table[1:]
    return lines + format_gated([result])


def format_many(results):
    """Several embeddings files: each one's heading, then one table for all."""
    lines = []
    for result in results:
        lines += describe(result)
    return (lines + [""] + format_methods_table(results) + [""] + format_recall(results) +
            [""] + format_pooled(results) + format_gated(results))


def format_gated(results):
    """What the zero-shot rows' misses owe to the speech gate, per tagger (a blank line
    first), or nothing without zero-shot rows."""
    lines = []
    for name, result in _named(results):
        if "gated" not in result:
            continue
        gated = result["gated"]
        per = ", ".join(f"{label} {count}" for label, count in gated.items())
        lines += ["", f"{name} zero-shot: {sum(gated.values())} of its {result['stems']} "
                      f"stems were sent to speech by the speech gate, so the tagger never heard "
                      f"them; they count as zero-shot misses above"
                      + (f" ({per})" if per else "")]
    return lines


def format_probe_right(results):
    """The stems the probe names right and the zero-shot rows do not, per tagger."""
    lines = []
    for name, result in _named(results):
        found = [stem for stem in result["per_stem"]
                 if stem[PROBE] == stem["label"] != stem[ZERO_SHOT]]
        lines += ["", f"Stems {name}'s probe names right and its zero-shot rows do not "
                      f"({len(found)}):"]
        rows = [[stem["label"], f"zero-shot {stem[ZERO_SHOT]}"
                 + (" (gated as speech)" if stem.get("gated") else ""),
                 f"fold {stem['fold']}", stem["path"]] for stem in found]
        lines += align(rows) if rows else ["  none"]
    return lines


# --- Plot and JSON ---------------------------------------------------------------------------

def plot_recall(results, path):
    """Bars of the pooled recall per category, one bar per (tagger, method)."""
    categories = sorted({label for result in results for label in result["categories"]})
    series = []
    for name, result in _named(results):
        for method in result["summary"]:
            pooled = result["pooled"][method]
            series.append((f"{name} {method}",
                           [pooled["recall"][pooled["labels"].index(category)]
                            if category in pooled["labels"] else None
                            for category in categories]))
    plot_recall_bars(categories, series, path,
                            "Recall per category, all test stems (folds grouped by track)")


def json_data(results):
    """Everything as JSON-ready data (fractions, NaN as null)."""
    return json_safe({"inner_folds": INNER_FOLDS, "results": results})
