"""stemeval.scoring.stats against computations made independently of it.

McNemar against statsmodels; the bootstraps against scipy.stats.bootstrap on plain arrays and
against a plain numpy loop that draws tracks and takes the mean of their stems; the oracle map
against answers known by construction.
"""

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.contingency_tables import mcnemar

from stemeval.scoring.stats import (
    grouped_bootstrap_interval,
    mcnemar_exact,
    oracle_map,
    paired_bootstrap_difference,
)
from tests.helpers.cluster_bootstrap import numpy_cluster_bootstrap

# --- McNemar -----------------------------------------------------------------------------

# (both_right, broken, fixed, both_wrong): rows A right/wrong, columns B right/wrong.
TABLES = [
    (10, 5, 3, 12),
    (0, 0, 0, 7),  # nothing changed: p = 1
    (4, 0, 9, 1),  # all changes one way
    (20, 1, 15, 3),
    (3, 50, 48, 2),  # nearly balanced, many changes
    (0, 1, 0, 0),  # a single stem that broke
    (100, 2, 30, 0),
]


def runs_from_table(both_right, broken, fixed, both_wrong, seed=0):
    """Two runs' 0/1 arrays with exactly these counts, stems in a shuffled order."""
    a = [1] * both_right + [1] * broken + [0] * fixed + [0] * both_wrong
    b = [1] * both_right + [0] * broken + [1] * fixed + [0] * both_wrong
    order = np.random.default_rng(seed).permutation(len(a))
    return np.array(a)[order], np.array(b)[order]


@pytest.mark.parametrize("table", TABLES)
def test_mcnemar_matches_statsmodels_exact(table):
    both_right, broken, fixed, both_wrong = table
    a, b = runs_from_table(*table)
    result = mcnemar_exact(a, b)
    assert (result.both_right, result.broken, result.fixed, result.both_wrong) == table
    expected = mcnemar([[both_right, broken], [fixed, both_wrong]], exact=True).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_mcnemar_accepts_lists_of_bools():
    result = mcnemar_exact([True, True, False], [True, False, True])
    assert (result.fixed, result.broken, result.both_right, result.both_wrong) == (1, 1, 1, 0)
    assert result.p_value == 1.0


# --- Bootstrap intervals ---------------------------------------------------------------


def uneven_tracks(n_tracks=60, seed=1):
    """Tracks of 1 to 12 stems; big tracks mostly right, small ones mostly wrong, so that
    pooling stems (ratio of sums) and averaging track accuracies (mean of means) differ."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 13, n_tracks)
    groups = np.repeat([f"track{t:02d}" for t in range(n_tracks)], sizes)
    p_right = np.repeat(sizes / 13, sizes)
    correct = (rng.random(groups.size) < p_right).astype(int)
    return correct, groups


def test_one_stem_per_group_matches_scipy_bootstrap_of_stems():
    rng = np.random.default_rng(7)
    correct = (rng.random(400) < 0.7).astype(int)
    ours = grouped_bootstrap_interval(correct, np.arange(400), resamples=2000, seed=0)
    plain = scipy.stats.bootstrap(
        (correct,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(99)
    ).confidence_interval
    assert ours == pytest.approx((plain.low, plain.high), abs=0.01)


def test_grouped_interval_matches_pooled_stems_by_hand():
    correct, groups = uneven_tracks()
    ours = grouped_bootstrap_interval(correct, groups, level=0.9, resamples=4000, seed=0)
    by_hand = numpy_cluster_bootstrap(None, correct, groups, 0.9, 4000, seed=123)
    assert ours == pytest.approx(by_hand, abs=0.015)
    # The construction is one where a mean of track means would sit far from both.
    sizes = np.unique(groups, return_counts=True)[1]
    track_means = np.bincount(np.unique(groups, return_inverse=True)[1], weights=correct) / sizes
    assert abs(track_means.mean() - correct.mean()) > 0.1


def test_grouped_interval_is_wider_when_tracks_move_together():
    # 40 tracks of 5 stems: every stem of a track right, or every one wrong.
    groups = np.repeat(np.arange(40), 5)
    correct = np.repeat(np.arange(40) % 2, 5)
    grouped = grouped_bootstrap_interval(correct, groups)
    stems = scipy.stats.bootstrap(
        (correct,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert grouped[0] <= 0.5 <= grouped[1]
    # Five identical stems per track are one observation, not five: about sqrt(5) wider.
    assert grouped[1] - grouped[0] > 1.8 * (stems.high - stems.low)


def test_grouped_interval_is_deterministic_under_the_seed():
    correct, groups = uneven_tracks()
    first = grouped_bootstrap_interval(correct, groups, seed=3)
    assert grouped_bootstrap_interval(correct, groups, seed=3) == first
    assert grouped_bootstrap_interval(correct, groups, seed=4) != first


def test_all_correct_gives_one_one():
    groups = np.repeat(np.arange(10), 3)
    assert grouped_bootstrap_interval(np.ones(30, dtype=bool), groups) == (1.0, 1.0)


def test_identical_runs_differ_by_exactly_zero():
    correct, groups = uneven_tracks()
    assert paired_bootstrap_difference(correct, correct, groups) == (0.0, 0.0)


def test_paired_difference_matches_pooled_stems_by_hand():
    a, groups = uneven_tracks()
    rng = np.random.default_rng(5)
    b = np.where(rng.random(a.size) < 0.3, 1 - a, a)  # B changes 30% of stems, both ways
    ours = paired_bootstrap_difference(a, b, groups, resamples=4000, seed=0)
    by_hand = numpy_cluster_bootstrap(a, b, groups, 0.95, 4000, seed=321)
    assert ours == pytest.approx(by_hand, abs=0.015)


def test_paired_difference_is_above_zero_when_b_fixes_many():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(50), 4)
    a = (rng.random(200) < 0.5).astype(int)
    b = a.copy()
    b[(a == 0) & (rng.random(200) < 0.6)] = 1  # B fixes ~60% of A's misses, breaks nothing
    low, high = paired_bootstrap_difference(a, b, groups)
    assert 0 < low < (b.mean() - a.mean()) < high


# --- Oracle map --------------------------------------------------------------------------


def oracle_case(n_tracks=20):
    """Per track: a 'String section' strings stem, two 'Plucked string' stems (one guitar,
    one bass: a tie in every fold), an 'Electric guitar' stem that is a guitar except on
    tracks 0 and 1 (a bass there). Track 7 alone has a 'Theremin' (a synth)."""
    raw, truth, groups = [], [], []

    def stem(track, label, category):
        raw.append(label)
        truth.append(category)
        groups.append(f"track{track:02d}")

    for t in range(n_tracks):
        stem(t, "String section", "bowed_strings")
        stem(t, "Plucked string", "guitar")
        stem(t, "Plucked string", "bass")
        stem(t, "Electric guitar", "bass" if t < 2 else "guitar")
        if t == 7:
            stem(t, "Theremin", "synth")
    return raw, truth, groups


def test_oracle_map_learns_the_majority_category_on_held_out_tracks():
    raw, truth, groups = oracle_case()
    result = oracle_map(raw, truth, groups, folds=5, seed=0)
    expected = {
        "String section": "bowed_strings",
        "Plucked string": "bass",  # tie between bass and guitar: alphabetical
        "Electric guitar": "guitar",  # the two bass stems are the tagger's misses
        "Theremin": "other",  # only on track 7, so never in the training folds that predict it
    }
    assert result.predictions == [expected[r] for r in raw]
    for fold in result.folds:
        assert fold.mapping["String section"] == "bowed_strings"
        assert fold.mapping["Plucked string"] == "bass"


def test_oracle_map_fallback_is_configurable():
    raw, truth, groups = oracle_case()
    result = oracle_map(raw, truth, groups, fallback="unmapped")
    assert result.predictions[raw.index("Theremin")] == "unmapped"


def test_oracle_folds_keep_tracks_apart_and_test_every_stem_once():
    raw, truth, groups = oracle_case()
    groups = np.array(groups)
    result = oracle_map(raw, truth, groups, folds=4, seed=1)
    assert len(result.folds) == 4
    tested = np.concatenate([fold.test for fold in result.folds])
    assert sorted(tested) == list(range(len(raw)))
    for fold in result.folds:
        assert not set(groups[fold.train]) & set(groups[fold.test])
        assert sorted(np.concatenate([fold.train, fold.test])) == list(range(len(raw)))


def test_oracle_map_is_deterministic_under_the_seed():
    raw, truth, groups = oracle_case()
    first = oracle_map(raw, truth, groups, seed=2)
    second = oracle_map(raw, truth, groups, seed=2)
    assert [list(f.test) for f in first.folds] == [list(f.test) for f in second.folds]


# --- Input validation --------------------------------------------------------------------

GROUPS = [0, 0, 1, 1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: grouped_bootstrap_interval([], []), "correct is empty"),
        (lambda: grouped_bootstrap_interval([1, 0, 1], GROUPS), "groups has 4 entries for 3 stems"),
        (lambda: grouped_bootstrap_interval([1, 0, 2, 1], GROUPS), "only 0/1"),
        (lambda: grouped_bootstrap_interval([[1, 0], [0, 1]], GROUPS), "correct must be 1-D"),
        (lambda: grouped_bootstrap_interval([1, 0, 1, 1], [5, 5, 5, 5]), "one group only"),
        (lambda: grouped_bootstrap_interval([1, 0, 1, 1], GROUPS, level=95), "level must be between"),
        (lambda: grouped_bootstrap_interval([1, 0, 1, 1], GROUPS, level=0), "level must be between"),
        (lambda: grouped_bootstrap_interval([1, 0, 1, 1], GROUPS, resamples=0), "resamples must be"),
        (lambda: grouped_bootstrap_interval([1, 0, 1, 1], GROUPS, resamples=2.5), "resamples must be"),
        (lambda: paired_bootstrap_difference([1, 0, 1, 1], [1, 0, 1], GROUPS), "correct_a has 4 stems"),
        (lambda: paired_bootstrap_difference([1, 0, 1, 1], [1, 0, 1, 0.5], GROUPS), "correct_b must"),
        (lambda: paired_bootstrap_difference([1, 0, 1, 1], [1, 0, 1, 1], [0, 1]), "groups has 2"),
        (lambda: mcnemar_exact([1, 0], [1, 0, 1]), "correct_a has 2 stems, correct_b 3"),
        (lambda: mcnemar_exact([], []), "correct_a is empty"),
        (lambda: mcnemar_exact([1, -1], [1, 0]), "correct_a must hold only"),
        (lambda: oracle_map([], [], []), "raw_labels is empty"),
        (lambda: oracle_map(["a", "b"], ["x"], [0, 1]), "truths has 1 entries for 2"),
        (lambda: oracle_map(["a", "b"], ["x", "y"], [0]), "groups must be 1-D with 2 entries"),
        (lambda: oracle_map(["a", "b"], ["x", "y"], [0, 1], folds=1), "folds must be an integer"),
        (lambda: oracle_map(["a", "b"], ["x", "y"], [0, 1], folds=5), "5 folds need at least 5 groups"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
