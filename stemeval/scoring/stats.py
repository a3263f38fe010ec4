"""Statistics for comparing tagger runs on multitrack stems, in the style of mir_eval.

Pure functions on plain lists or numpy arrays; inputs are checked first and a bad one raises
``ValueError`` with a one-line message. The stems of one track share a mix, a performer and a
recording, so they are not independent: every interval here resamples whole tracks (groups),
never single stems. scipy and scikit-learn are imported inside the functions, so importing
this module costs only numpy.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

# Imported inside the functions that use them, so that what needs none of them starts without them:
# scikit-learn, scipy.

LEVEL, RESAMPLES, SEED = 0.95, 2000, 0  # what the reports use


def _as_correct(correct, name="correct"):
    """``correct`` as a 1-D float array of 0s and 1s, or a ValueError saying why not."""
    arr = np.asarray(correct)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 or False/True")
    return arr.astype(float)


def _group_index(groups, n, name="groups"):
    """Each stem's group as an index 0..G-1 (groups sorted), checked against ``n`` stems."""
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries for {n} stems")
    _, index = np.unique(arr, return_inverse=True)
    if index.max() < 1:
        raise ValueError(f"{name} holds one group only; a bootstrap over groups needs two or more")
    return index


def _check_bootstrap_args(level, resamples):
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")


def _group_bootstrap(per_group, statistic, level, resamples, seed):
    """Percentile interval of ``statistic`` over the groups' rows resampled with replacement.

    ``per_group`` holds one array per quantity (each of length G); ``paired=True`` makes every
    resample draw the same groups for all of them.
    """
    from scipy.stats import bootstrap

    result = bootstrap(
        per_group,
        statistic,
        n_resamples=resamples,
        vectorized=True,
        paired=True,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _ratio_of_sums(right, stems, axis=-1):
    # Accuracy over the resampled stems: a big track weighs by its stems (not a mean of means).
    return right.sum(axis=axis) / stems.sum(axis=axis)


def _difference_of_ratios(right_a, right_b, stems, axis=-1):
    return (right_b.sum(axis=axis) - right_a.sum(axis=axis)) / stems.sum(axis=axis)


def grouped_bootstrap_interval(correct, groups, level=LEVEL, resamples=RESAMPLES, seed=SEED):
    """Percentile bootstrap interval ``(low, high)`` of accuracy, the mean of ``correct``.

    Resamples whole groups (tracks) with replacement, since stems of one track move together;
    a stem-level bootstrap would be too narrow. For one category's recall, pass only the stems
    of that category with their groups. Deterministic for a fixed ``seed``.
    """
    right = _as_correct(correct)
    index = _group_index(groups, right.size)
    _check_bootstrap_args(level, resamples)
    per_group = (np.bincount(index, weights=right), np.bincount(index).astype(float))
    return _group_bootstrap(per_group, _ratio_of_sums, level, resamples, seed)


def paired_bootstrap_difference(correct_a, correct_b, groups, level=LEVEL, resamples=RESAMPLES,
                                seed=SEED):
    """Percentile bootstrap interval ``(low, high)`` of accuracy(B) - accuracy(A).

    Both runs are scored on the same resampled groups (paired), so what the two runs share
    cancels out and the interval is about the change alone.
    """
    right_a = _as_correct(correct_a, "correct_a")
    right_b = _as_correct(correct_b, "correct_b")
    if right_a.size != right_b.size:
        raise ValueError(f"correct_a has {right_a.size} stems, correct_b {right_b.size}")
    index = _group_index(groups, right_a.size)
    _check_bootstrap_args(level, resamples)
    per_group = (
        np.bincount(index, weights=right_a),
        np.bincount(index, weights=right_b),
        np.bincount(index).astype(float),
    )
    return _group_bootstrap(per_group, _difference_of_ratios, level, resamples, seed)


@dataclass(frozen=True)
class Estimate:
    """A share (accuracy, or one category's recall) with its interval over groups: ``low`` and
    ``high`` are None when its stems are of one group (nothing to resample)."""

    value: float
    low: float
    high: float
    stems: int
    groups: int


def grouped_estimate(correct, groups, level=LEVEL, resamples=RESAMPLES, seed=SEED):
    """The mean of ``correct`` with ``grouped_bootstrap_interval``'s interval as an ``Estimate``
    (no interval for a single group)."""
    right = _as_correct(correct)
    n_groups = np.unique(np.asarray(groups)).size
    low = high = None
    if n_groups > 1:
        low, high = grouped_bootstrap_interval(right, groups, level, resamples, seed)
    return Estimate(float(right.mean()), low, high, int(right.size), int(n_groups))


def score_intervals(y_true, y_pred, groups, level=LEVEL, resamples=RESAMPLES, seed=SEED):
    """Accuracy and the recall of each ground-truth category, each an ``Estimate`` whose
    interval resamples ``groups`` (tracks): ``{"accuracy": Estimate, "recall": {category:
    Estimate}}``, categories sorted. A category's recall resamples the groups of its stems."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    if y_true.shape != y_pred.shape or y_true.shape != groups.shape or y_true.ndim != 1:
        raise ValueError(f"y_true, y_pred and groups must be 1-D of one length, got shapes "
                         f"{y_true.shape}, {y_pred.shape} and {groups.shape}")
    right = y_true == y_pred
    recall = {}
    for category in sorted(set(y_true.tolist())):
        mask = y_true == category
        recall[category] = grouped_estimate(right[mask], groups[mask], level, resamples, seed)
    return {"accuracy": grouped_estimate(right, groups, level, resamples, seed),
            "recall": recall}


@dataclass(frozen=True)
class McNemar:
    """Two runs on the same stems: how the stems moved from run A to run B, and the exact p."""

    fixed: int  # A wrong, B right
    broken: int  # A right, B wrong
    both_right: int
    both_wrong: int
    p_value: float


def mcnemar_exact(correct_a, correct_b):
    """Exact McNemar test of run A against run B on the same stems.

    Only the stems that changed (fixed or broken) say anything about which run is better;
    under no difference each is a fair coin, so p is the two-sided binomial test of
    min(fixed, broken) out of fixed + broken at 1/2, and 1.0 when nothing changed.
    """
    from scipy.stats import binomtest

    a = _as_correct(correct_a, "correct_a").astype(bool)
    b = _as_correct(correct_b, "correct_b").astype(bool)
    if a.size != b.size:
        raise ValueError(f"correct_a has {a.size} stems, correct_b {b.size}")
    fixed = int(np.sum(~a & b))
    broken = int(np.sum(a & ~b))
    changed = fixed + broken
    p_value = binomtest(min(fixed, broken), changed, 0.5).pvalue if changed else 1.0
    return McNemar(
        fixed=fixed,
        broken=broken,
        both_right=int(np.sum(a & b)),
        both_wrong=int(np.sum(~a & ~b)),
        p_value=float(p_value),
    )


@dataclass(frozen=True)
class OracleFold:
    """One fold of ``oracle_map``: the stems (indices) it learned from and predicted, and the map."""

    train: np.ndarray
    test: np.ndarray
    mapping: dict


@dataclass(frozen=True)
class OracleMap:
    """Held-out category per stem (aligned with the input) and the folds that made them."""

    predictions: list
    folds: list


def _learn_map(raw_labels, truths):
    """Each raw label -> the category it most often is; ties go to the first in sorted order."""
    counts = {}
    for raw, truth in zip(raw_labels, truths):
        counts.setdefault(raw, Counter())[truth] += 1
    return {raw: min(c, key=lambda cat: (-c[cat], cat)) for raw, c in counts.items()}


def oracle_map(raw_labels, truths, groups, folds=5, seed=0, fallback="other"):
    """The best label map the data allows, learned and scored on held-out tracks.

    Answers "is a miss the tagger's or the label map's?": on training folds (grouped by track,
    so a track never informs its own prediction) each raw tagger label maps to the category it
    most often is; the held-out stems are predicted with that map, and a raw label unseen in
    training maps to ``fallback``. Every stem is predicted exactly once. The accuracy of these
    predictions minus the shipped map's is what a better map could win; the oracle's misses
    are the tagger's.
    """
    from sklearn.model_selection import GroupKFold

    raw_labels, truths = list(raw_labels), list(truths)
    if not raw_labels:
        raise ValueError("raw_labels is empty")
    if len(truths) != len(raw_labels):
        raise ValueError(f"truths has {len(truths)} entries for {len(raw_labels)} raw labels")
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.size != len(raw_labels):
        raise ValueError(f"groups must be 1-D with {len(raw_labels)} entries, got shape {groups.shape}")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer of at least 2, got {folds!r}")
    n_groups = np.unique(groups).size
    if n_groups < folds:
        raise ValueError(f"{folds} folds need at least {folds} groups, got {n_groups}")

    predictions = [None] * len(raw_labels)
    fold_maps = []
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(raw_labels, groups=groups):
        mapping = _learn_map([raw_labels[i] for i in train], [truths[i] for i in train])
        for i in test:
            predictions[i] = mapping.get(raw_labels[i], fallback)
        fold_maps.append(OracleFold(train=train, test=test, mapping=mapping))
    return OracleMap(predictions=predictions, folds=fold_maps)
