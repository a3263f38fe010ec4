"""Set distances (stemeval.distances.set_metrics) against closed forms and reference implementations.

Oracles: closed-form Fréchet distances of Gaussians; the unbiased MMD^2 as a double loop
written here; NAVER's ``prdc`` (Naeem et al.'s reference code) and Sony CSL's
``audio-metrics`` 1.0.4 (its FAD, KD and PRDC; installed without its CLAP extractor's
dependencies, see requirements-dev-nodeps.txt); hand-worked PRDC and bootstrap examples. No
expected value here comes from the code under test.
"""

import contextlib
import io

import numpy as np
import pytest

from stemeval.distances.set_metrics import (
    Interval,
    frechet_distance,
    group_bootstrap,
    kernel_distance,
    kernel_distance_subsets,
    prdc,
)


def exact_moments(rng, n, mean, cov):
    """n samples whose sample mean is exactly ``mean`` and sample covariance (ddof=1)
    exactly ``cov`` (which may be singular, rank r < n): standard normals in r dimensions,
    centred and whitened, then mapped through a factor F of cov (F F^T = cov)."""
    w, v = np.linalg.eigh(cov)
    keep = w > 1e-12 * w.max()
    factor = v[:, keep] * np.sqrt(w[keep])
    z = rng.standard_normal((n, keep.sum()))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T
    return np.asarray(mean) + z @ factor.T


def random_rotation(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# ---------------------------------------------------------------- Fréchet distance


def test_frechet_exact_moments_commuting_covariances():
    """Covariances sharing eigenvectors: Tr sqrt(S1 S2) = sum sqrt(l1 l2), so
    d = |dmu|^2 + sum (sqrt(l1) - sqrt(l2))^2. Twelve samples, so ddof=0 would be 9% off."""
    rng = np.random.default_rng(0)
    d = 4
    q = random_rotation(rng, d)
    l1, l2 = np.array([3.0, 1.0, 0.5, 0.1]), np.array([1.0, 2.0, 0.5, 0.4])
    mu1, mu2 = np.array([1.0, 0.0, -2.0, 0.5]), np.array([0.0, 0.5, -1.0, 0.5])
    a = exact_moments(rng, 12, mu1, q @ np.diag(l1) @ q.T)
    b = exact_moments(rng, 15, mu2, q @ np.diag(l2) @ q.T)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_frechet_exact_moments_2x2_not_commuting():
    """For 2x2 M = S1 S2 (positive eigenvalues), (Tr sqrt M)^2 = Tr M + 2 sqrt(det M)."""
    rng = np.random.default_rng(1)
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    a, b = exact_moments(rng, 10, mu1, s1), exact_moments(rng, 7, mu2, s2)
    tr_sqrt = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_frechet_two_samples_one_dimension():
    """The minimum set size: 1-D, two samples each: d = dmu^2 + (sd1 - sd2)^2 (ddof=1)."""
    a, b = np.array([[0.0], [2.0]]), np.array([[5.0], [5.5]])
    expected = (1.0 - 5.25) ** 2 + (np.sqrt(2.0) - np.sqrt(0.125)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)


def test_frechet_sampled_diagonal_gaussians():
    """Many samples of two diagonal Gaussians: the estimate is near the population value
    sum (dmu)^2 + sum (sqrt(s1) - sqrt(s2))^2 (sampling spread here is about 1.5%)."""
    rng = np.random.default_rng(2)
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([0.5, 1.0, 0.0, 2.0])
    s1, s2 = np.array([1.0, 4.0, 0.25, 2.0]), np.array([2.0, 1.0, 0.25, 0.5])
    a = mu1 + np.sqrt(s1) * rng.standard_normal((20000, 4))
    b = mu2 + np.sqrt(s2) * rng.standard_normal((20000, 4))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)


def test_frechet_singular_covariances():
    """Fewer samples than dimensions (both sets in one 2-D plane of R^6): still finite and
    the closed form of the commuting case, the zero directions adding nothing."""
    rng = np.random.default_rng(3)
    q = random_rotation(rng, 6)
    l1 = np.array([2.0, 0.5, 0, 0, 0, 0])
    l2 = np.array([1.0, 1.5, 0, 0, 0, 0])
    mu = np.zeros(6)
    a = exact_moments(rng, 4, mu, q @ np.diag(l1) @ q.T)
    b = exact_moments(rng, 5, mu, q @ np.diag(l2) @ q.T)
    expected = np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, abs=1e-4)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)


def test_frechet_guards(monkeypatch):
    """The numerical guards, with scipy's sqrtm made to misbehave: a non-finite root is
    retaken with eps on both diagonals; a tiny imaginary part is dropped, a large one raises."""
    import scipy.linalg

    real_sqrtm = scipy.linalg.sqrtm
    rng = np.random.default_rng(11)
    a, b = exact_moments(rng, 8, [0.0, 0.0], np.eye(2)), exact_moments(rng, 8, [1.0, 0.0], 4 * np.eye(2))
    expected = 1.0 + 2 * (2.0 - 1.0) ** 2  # dmu^2 + sum (sqrt(4) - sqrt(1))^2
    calls = []

    def nan_first(m):
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(scipy.linalg, "sqrtm", nan_first)
    # Only the root sees eps: dmu^2 + Tr S_a + Tr S_b - 2 Tr sqrt((S_a + eps)(S_b + eps)).
    assert frechet_distance(a, b, eps=1e-3) == pytest.approx(
        1.0 + 2.0 + 8.0 - 2 * 2 * np.sqrt(1.001 * 4.001), rel=1e-9)
    np.testing.assert_allclose(calls[1], 1.001 * 4.001 * np.eye(2), atol=1e-9)

    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m: real_sqrtm(m) + 1e-9j)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m: real_sqrtm(m) + 0.1j)
    with pytest.raises(ValueError, match="imaginary part"):
        frechet_distance(a, b)


def test_frechet_against_audio_metrics():
    """audio-metrics' Fréchet distance (eigenvalues of S_a S_b, not sqrtm) on its own
    statistics (torch.cov) of the same sets."""
    import torch
    from audio_metrics.data import AudioMetricsData
    from audio_metrics.metrics.fad import frechet_distance as am_frechet

    for seed in range(3):
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((200, 16)) * rng.uniform(0.5, 2, 16)
        b = rng.standard_normal((150, 16)) @ rng.standard_normal((16, 16)) * 0.3 + 0.2
        x, y = AudioMetricsData(), AudioMetricsData()
        x.add(torch.from_numpy(a))
        y.add(torch.from_numpy(b))
        assert frechet_distance(a, b) == pytest.approx(am_frechet(x, y), rel=1e-8)


def test_frechet_fewer_samples_than_dimensions_against_audio_metrics():
    """Sets of n <= dim (the case computed from the singular values of A B^T): audio-metrics'
    Fréchet distance (eigenvalues of S_a S_b) of the same sets, and the symmetric form
    Tr sqrt(S_a^1/2 S_b S_a^1/2) by eigh (sqrtm with eps would be 1e-5 off: eps's roots)."""
    import torch
    from audio_metrics.data import AudioMetricsData
    from audio_metrics.metrics.fad import frechet_distance as am_frechet

    for seed, (n_a, n_b, dim) in enumerate([(12, 9, 40), (30, 30, 30), (5, 50, 20)]):
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((n_a, dim)) * rng.uniform(0.5, 2, dim)
        b = rng.standard_normal((n_b, dim)) @ rng.standard_normal((dim, dim)) * 0.3 + 0.2
        x, y = AudioMetricsData(), AudioMetricsData()
        x.add(torch.from_numpy(a))
        y.add(torch.from_numpy(b))
        assert frechet_distance(a, b) == pytest.approx(am_frechet(x, y), rel=1e-6)
        cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        w, v = np.linalg.eigh(cov_a)
        root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
        expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                    - 2 * trace_root)
        assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-7)


# ---------------------------------------------------------------- kernel distance


def mmd2_loop(a, b, degree=3, gamma=None, coef0=1):
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3), polynomial kernel, one pair at a time."""
    gamma = 1.0 / a.shape[1] if gamma is None else gamma

    def k(x, y):
        return (gamma * float(np.dot(x, y)) + coef0) ** degree

    m, n = len(a), len(b)
    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("sizes", [(20, 20), (15, 28), (2, 3)])
@pytest.mark.parametrize("params", [{}, {"degree": 2, "gamma": 0.3, "coef0": 0.5}, {"degree": 1}])
def test_kernel_distance_against_loop(sizes, params):
    rng = np.random.default_rng(sizes[0] + sizes[1])
    a = rng.standard_normal((sizes[0], 6))
    b = rng.standard_normal((sizes[1], 6)) * 1.3 + 0.4
    assert kernel_distance(a, b, **params) == pytest.approx(mmd2_loop(a, b, **params), rel=1e-10)


def test_kernel_distance_subsets_of_everything():
    """Subsets as large as the (equal-sized) sets hold every sample: each subset's MMD^2 is
    the full-set one, so the mean is the loop's value and the std 0."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((18, 5)), rng.standard_normal((18, 5)) + 0.3
    mean, std = kernel_distance_subsets(a, b, subset_size=18, subsets=5, seed=0)
    assert mean == pytest.approx(mmd2_loop(a, b), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)


def test_kernel_distance_against_audio_metrics():
    """audio-metrics' KD: its unbiased MMD^2 (equal sizes only) and its subset KID, which
    draws the same subsets for the same seed."""
    from audio_metrics.metrics.kd import (
        KEY_METRIC_KID_MEAN,
        KEY_METRIC_KID_STD,
        kernel_mmd2,
        kid_features_to_metric,
        polynomial_kernel,
    )

    for seed in range(3):
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((60, 12))
        b = rng.standard_normal((80, 12)) * 1.2 + 0.1
        assert kernel_distance(a, b[:60]) == pytest.approx(
            kernel_mmd2(a, b[:60], polynomial_kernel), rel=1e-10)
        theirs = kid_features_to_metric(a, b, kid_subsets=15, kid_subset_size=25, rng_seed=seed)
        mean, std = kernel_distance_subsets(a, b, subset_size=25, subsets=15, seed=seed)
        assert mean == pytest.approx(theirs[KEY_METRIC_KID_MEAN], rel=1e-10)
        assert std == pytest.approx(theirs[KEY_METRIC_KID_STD], rel=1e-8)


# ---------------------------------------------------------------- PRDC


def shifted_sets(seed, n_real=50, n_fake=70, dim=8):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n_real, dim))
    fake = rng.standard_normal((n_fake, dim)) * 1.2 + 0.5
    return real, fake


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_prdc_against_naver_reference(seed, k):
    from prdc import compute_prdc

    real, fake = shifted_sets(seed)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        expected = compute_prdc(real, fake, nearest_k=k)
    got = prdc(real, fake, k=k)
    assert set(got) == set(expected)
    for name in expected:
        assert got[name] == pytest.approx(float(expected[name]), abs=1e-12), name
    assert min(got["precision"], got["recall"], got["coverage"]) < 1  # not all trivially 1


@pytest.mark.parametrize("k", [1, 4])
def test_prdc_against_audio_metrics(k):
    """audio-metrics' torch PRDC, also at the minimum of k+1 samples per set (which NAVER's
    code cannot take: it needs k+2)."""
    import torch
    from audio_metrics.data import AudioMetricsData
    from audio_metrics.metrics.prdc import prdc as am_prdc

    for n_real, n_fake in [(40, 30), (k + 1, k + 1)]:
        real, fake = shifted_sets(k, n_real, n_fake)
        x, y = AudioMetricsData(), AudioMetricsData()
        x.add(torch.from_numpy(real))
        y.add(torch.from_numpy(fake))
        expected = am_prdc(x, y, k)
        got = prdc(real, fake, k=k)
        for name in expected:
            assert got[name] == pytest.approx(expected[name], abs=1e-12), name


def test_prdc_hand_worked():
    """1-D, k=1. Real 0,1,2,3: every radius 1. Fake 0.5 and 10: radii 9.5.
    Precision 1/2 (0.5 is in the balls of 0 and 1; 10 in none), recall 1 (every real point
    within 9.5 of 0.5), density (2 + 0) / 2 / 1 = 1, coverage 2/4 (balls of 0 and 1)."""
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    assert prdc(real, fake, k=1) == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5})


def test_prdc_ball_boundary_is_outside():
    """A fake sample exactly at a real radius is not inside (strict <, as the reference)."""
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[4.0], [8.0]])
    got = prdc(real, fake, k=1)
    assert got["precision"] == 0.0 and got["coverage"] == 0.0


# ---------------------------------------------------------------- bootstrap


def grouped(rng, n_groups, per_group, dim, between=1.0, within=0.1, shift=0.0):
    """Rows sharing a group (track) offset: strongly dependent within a group."""
    offsets = rng.standard_normal((n_groups, dim)) * between
    rows = np.repeat(offsets, per_group, axis=0)
    rows += rng.standard_normal(rows.shape) * within + shift
    return rows, np.repeat(np.arange(n_groups), per_group)


def mean_difference(a, b):
    return float(a[:, 0].mean() - b[:, 0].mean())


def test_bootstrap_width_follows_groups_not_rows():
    """For a difference of means the 95% percentile interval is about +-1.96 standard
    errors, and with dependent rows the standard error is that of the group means
    (sqrt(5) times the rows' here): a row-level bootstrap would be far too narrow."""
    rng = np.random.default_rng(5)
    a, ga = grouped(rng, 200, 5, 2)
    b, gb = grouped(rng, 150, 5, 2, shift=0.3)
    got = group_bootstrap(mean_difference, a, b, ga, gb, n_boot=2000, seed=1)

    def group_means(x, g):
        return np.array([x[g == i, 0].mean() for i in np.unique(g)])

    ma, mb = group_means(a, ga), group_means(b, gb)
    se = np.sqrt(ma.var() / len(ma) + mb.var() / len(mb))
    assert got.estimate == pytest.approx(a[:, 0].mean() - b[:, 0].mean(), rel=1e-12)
    assert got.high - got.low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert got.low < got.estimate < got.high


@pytest.mark.parametrize("duplicates", [True, False])
def test_bootstrap_resamples_whole_groups(duplicates):
    """Every replicate is made of whole groups of each set (unequal group sizes here); with
    duplicates=False no row appears twice."""
    rng = np.random.default_rng(6)
    sizes_a, sizes_b = [1, 2, 3, 4, 5], [3, 3, 2]
    ga = np.repeat([f"t{i}" for i in range(5)], sizes_a)
    gb = np.repeat([10, 20, 30], sizes_b)
    a = np.column_stack([np.arange(len(ga)), rng.standard_normal(len(ga))])
    b = np.column_stack([np.arange(len(gb)), rng.standard_normal(len(gb))])
    seen = []

    def record(x, y):
        seen.append((x[:, 0].astype(int), y[:, 0].astype(int)))
        return 0.0

    group_bootstrap(record, a, b, ga, gb, n_boot=50, seed=0, duplicates=duplicates)
    assert len(seen) == 51  # the full-data estimate, then the replicates
    assert sorted(seen[0][0]) == list(range(len(ga)))
    saw_repeat = False
    for rows_a, rows_b in seen[1:]:
        for rows, groups in ((rows_a, ga), (rows_b, gb)):
            counts = np.bincount(rows, minlength=len(groups))
            for g in np.unique(groups):  # each group's rows drawn equally often
                assert len(set(counts[groups == g])) == 1
            saw_repeat |= counts.max() > 1
            if not duplicates:
                assert counts.max() <= 1
    assert saw_repeat == duplicates


@pytest.mark.parametrize("duplicates", [True, False])
def test_paired_bootstrap_draws_the_same_groups_in_both_sets(duplicates):
    """paired=True: each replicate takes the same groups (by label) from both sets, so a set
    against a copy of itself (its rows in another order) is 0 in every replicate; drawn
    apart, the copies differ."""
    rng = np.random.default_rng(8)
    groups = np.repeat([f"t{i}" for i in range(6)], [1, 2, 3, 1, 2, 3])
    a = np.column_stack([np.arange(len(groups)), rng.standard_normal(len(groups))])
    order = rng.permutation(len(groups))
    seen = []

    def record(x, y):
        seen.append((sorted(x[:, 0]), sorted(y[:, 0])))
        return frechet_distance(x, y) if len(x) > 1 else 0.0

    paired = group_bootstrap(record, a, a[order], groups, groups[order], n_boot=40,
                             duplicates=duplicates, paired=True)
    assert all(rows_a == rows_b for rows_a, rows_b in seen)
    assert [paired.low, paired.high] == pytest.approx([0.0, 0.0], abs=1e-9)
    apart = group_bootstrap(record, a, a[order], groups, groups[order], n_boot=40,
                            duplicates=duplicates)
    assert apart.high > 0.01
    with pytest.raises(ValueError, match="paired sets must hold the same groups"):
        group_bootstrap(record, a, a, groups, np.where(groups == "t0", "t9", groups),
                        paired=True)


def test_bootstrap_seeded_and_dict_metrics():
    rng = np.random.default_rng(7)
    a, ga = grouped(rng, 30, 4, 3)
    b, gb = grouped(rng, 25, 4, 3, shift=0.5)

    def metric(x, y):
        return prdc(x, y, k=3)

    one = group_bootstrap(metric, a, b, ga, gb, n_boot=30, seed=3, duplicates=False)
    assert one == group_bootstrap(metric, a, b, ga, gb, n_boot=30, seed=3, duplicates=False)
    assert one != group_bootstrap(metric, a, b, ga, gb, n_boot=30, seed=4, duplicates=False)
    assert set(one) == {"precision", "recall", "density", "coverage"}
    for name, interval in one.items():
        assert isinstance(interval, Interval)
        assert interval.low <= interval.high


# ---------------------------------------------------------------- input validation


METRICS = [frechet_distance, kernel_distance, prdc]


@pytest.mark.parametrize("metric", METRICS)
def test_rejects_bad_shapes_and_values(metric):
    rng = np.random.default_rng(8)
    good = rng.standard_normal((20, 3))
    with pytest.raises(ValueError, match="2-D"):
        metric(good[:, 0], good)
    with pytest.raises(ValueError, match="2-D"):
        metric(good, good[None])
    with pytest.raises(ValueError, match=r"differ in dimension \(3 vs 4\)"):
        metric(good, rng.standard_normal((20, 4)))
    for bad in (np.nan, np.inf):
        spoiled = good.copy()
        spoiled[3, 1] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            metric(good, spoiled)


@pytest.mark.parametrize("metric", [frechet_distance, kernel_distance])
def test_too_few_samples_names_minimum(metric):
    two, one = np.zeros((2, 3)) + [[0], [1]], np.zeros((1, 3))
    with pytest.raises(ValueError, match="b has 1 samples, needs at least 2"):
        metric(two, one)
    with pytest.raises(ValueError, match="a has 1 samples, needs at least 2"):
        metric(one, two)


def test_prdc_too_few_samples_names_minimum():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match=r"fake has 5 samples, needs at least 6"):
        prdc(rng.standard_normal((6, 2)), rng.standard_normal((5, 2)), k=5)
    with pytest.raises(ValueError, match=r"real has 2 samples, needs at least 3"):
        prdc(rng.standard_normal((2, 2)), rng.standard_normal((6, 2)), k=2)
    with pytest.raises(ValueError, match="positive integer"):
        prdc(rng.standard_normal((6, 2)), rng.standard_normal((6, 2)), k=0)


def test_kernel_subsets_too_large_names_limit():
    rng = np.random.default_rng(10)
    a, b = rng.standard_normal((30, 2)), rng.standard_normal((12, 2))
    with pytest.raises(ValueError, match="subset_size must be 2 to 12"):
        kernel_distance_subsets(a, b, subset_size=13)


def test_bootstrap_rejects_bad_groups():
    a = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"one label per sample \(4\)"):
        group_bootstrap(mean_difference, a, a, [0, 0, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="needs at least 2"):
        group_bootstrap(mean_difference, a, a, [0, 0, 1, 1], [7, 7, 7, 7])
