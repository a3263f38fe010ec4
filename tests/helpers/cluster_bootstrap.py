"""The bootstrap over tracks written out by hand, as the oracle of the intervals' tests."""

import numpy as np


def numpy_cluster_bootstrap(values_a, values_b, groups, level, resamples, seed):
    """The definition, by hand: draw tracks with replacement, pool their stems, take
    mean(b) - mean(a) (mean(b) alone when values_a is None); percentile interval."""
    values_b, groups = np.asarray(values_b, dtype=float), np.asarray(groups)
    values_a = None if values_a is None else np.asarray(values_a, dtype=float)
    rng = np.random.default_rng(seed)
    tracks = np.unique(groups)
    members = [np.flatnonzero(groups == t) for t in tracks]
    stats = []
    for _ in range(resamples):
        drawn = np.concatenate([members[k] for k in rng.integers(0, len(tracks), len(tracks))])
        stat = np.mean(values_b[drawn])
        if values_a is not None:
            stat -= np.mean(values_a[drawn])
        stats.append(stat)
    tail = (1 - level) / 2 * 100
    return tuple(np.percentile(stats, [tail, 100 - tail]))
