"""How far apart two sets of embeddings are: Fréchet distance, kernel distance, PRDC.

Pure functions on numpy arrays of shape [samples, dim] (for us: one embedding per stem, as
written to the embeddings .npz), in the style of mir_eval: the inputs are checked first and
a bad input raises a one-line ValueError. The metrics follow the published definitions that
the field's tools compute (audio-metrics packages all three for audio); each docstring names
the one it follows. Our own code, tested against those definitions and reference packages
(tests/test_setdistance.py). scipy is imported inside the functions, as elsewhere here.
"""

from collections import namedtuple

import numpy as np

# Imported inside the functions that use them, so that what needs none of them starts without them:
# scipy.

# Fewest samples per set: a covariance (ddof=1) and the unbiased MMD^2 need two.
MIN_SAMPLES_FRECHET = 2
MIN_SAMPLES_KERNEL = 2


def _check_sets(a, b, min_samples, metric, names=("a", "b")):
    """Both sets as float64 [n, dim] arrays, or a one-line ValueError saying what is wrong."""
    out = []
    for name, x in zip(names, (a, b)):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"{metric}: {name} must be a 2-D array [samples, dim], got ndim={x.ndim}")
        if x.shape[1] < 1:
            raise ValueError(f"{metric}: {name} has no dimensions (shape {x.shape})")
        if not np.isfinite(x).all():
            raise ValueError(f"{metric}: {name} contains NaN or inf")
        if x.shape[0] < min_samples:
            raise ValueError(
                f"{metric}: {name} has {x.shape[0]} samples, needs at least {min_samples}"
            )
        out.append(x)
    if out[0].shape[1] != out[1].shape[1]:
        raise ValueError(
            f"{metric}: {names[0]} and {names[1]} differ in dimension "
            f"({out[0].shape[1]} vs {out[1].shape[1]})"
        )
    return out


def frechet_distance(a, b, eps=1e-6):
    """Fréchet distance between Gaussians fitted to ``a`` and ``b`` (FAD, FID): a float.

    d = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 sqrtm(S_a S_b)), the definition of FID (Heusel et
    al. 2017) that FAD (Kilgour et al. 2019) applies to audio embeddings. The covariances are
    the unbiased ones (ddof=1, numpy's ``np.cov`` default), as pytorch-fid (``np.cov(act,
    rowvar=False)``) and audio-metrics (``torch.cov``, correction=1) fit them; with ddof=0
    small sets would come out systematically closer.

    Fewer samples than dimensions (a set of n <= dim): then S_a S_b is singular, which is
    where ``sqrtm`` is least reliable and slowest, and the trace is computed exactly another
    way: with A and B the centred sets over sqrt(n - 1) (S_a = A^T A, S_b = B^T B), the
    eigenvalues of S_a S_b are the squared singular values of A B^T, so Tr sqrtm(S_a S_b) is
    the sum of the singular values of that n_a x n_b matrix (no guard needed; a 768-d pair of
    100 samples takes milliseconds where ``sqrtm`` takes seconds).

    Numerical guard otherwise, as pytorch-fid has it: if ``sqrtm(S_a S_b)`` is not finite
    (a near-singular product), ``eps`` is added to both diagonals and the root taken again
    (the traces keep the plain covariances); the tiny imaginary part rounding leaves is
    dropped, and a ValueError raised when it is not tiny (over 1e-4 of Tr(S_a) + Tr(S_b)).
    The result is not clipped at 0: identical sets may give about -1e-12.

    The estimate is biased upwards for finite sets, the more so the fewer samples per
    dimension (Chong & Forsyth 2020): compare distances only between sets of similar sizes.
    Needs at least 2 samples per set.
    """
    from scipy import linalg

    a, b = _check_sets(a, b, MIN_SAMPLES_FRECHET, "frechet_distance")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    diff = mu_a - mu_b
    if min(len(a), len(b)) <= a.shape[1]:
        centred_a = (a - mu_a) / np.sqrt(len(a) - 1)
        centred_b = (b - mu_b) / np.sqrt(len(b) - 1)
        trace_root = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False).sum()
        return float(diff @ diff + np.sum(centred_a ** 2) + np.sum(centred_b ** 2)
                     - 2.0 * trace_root)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))

    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(cov_a.shape[0]) * eps
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(covmean):
        scale = max(np.trace(cov_a) + np.trace(cov_b), np.finfo(float).tiny)
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-4 * scale:
            raise ValueError(f"frechet_distance: sqrtm(S_a S_b) has an imaginary part of {imag:g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def _polynomial_kernel(x, y, degree, gamma, coef0):
    return (gamma * (x @ y.T) + coef0) ** degree


def _mmd2_unbiased(a, b, degree, gamma, coef0):
    """The unbiased MMD^2 (Gretton et al. 2012, eq. 3) of two sets, sizes m and n."""
    m, n = len(a), len(b)
    k_aa = _polynomial_kernel(a, a, degree, gamma, coef0)
    k_bb = _polynomial_kernel(b, b, degree, gamma, coef0)
    k_ab = _polynomial_kernel(a, b, degree, gamma, coef0)
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return within_a + within_b - 2.0 * k_ab.mean()


def kernel_distance(a, b, degree=3, gamma=None, coef0=1):
    """Kernel distance (KID's MMD^2) between the sets ``a`` and ``b``, on all samples: a float.

    The unbiased estimator of the squared maximum mean discrepancy (Gretton et al. 2012,
    eq. 3) with the polynomial kernel k(x, y) = (gamma x.y + coef0)^degree, gamma = 1/dim by
    default: the Kernel Inception Distance of Bińkowski et al. 2018, which audio-metrics
    calls the kernel distance. The sets may differ in size. Unbiased, so it can be slightly
    negative when the sets come from one distribution. Needs at least 2 samples per set.
    """
    a, b = _check_sets(a, b, MIN_SAMPLES_KERNEL, "kernel_distance")
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return float(_mmd2_unbiased(a, b, degree, gamma, coef0))


def kernel_distance_subsets(a, b, subset_size=1000, subsets=100, seed=1234,
                            degree=3, gamma=None, coef0=1):
    """KID as published: the mean and std of the MMD^2 over random subsets, ``(mean, std)``.

    Bińkowski et al. 2018 average the unbiased MMD^2 over ``subsets`` pairs of subsets of
    ``subset_size`` samples, each drawn without replacement from each set, and report the
    standard deviation (ddof=0) over them; their code, torch-fidelity and audio-metrics all
    do this (defaults 100 subsets of 1000). A seed gives the subsets audio-metrics 1.0.4
    draws with the same seed (``numpy.random.default_rng(seed)``, a choice from ``a`` then
    from ``b`` per subset). Where audio-metrics quietly shrinks a too-large subset size,
    this raises: ``subset_size`` must be 2 to min(len(a), len(b)).
    """
    a, b = _check_sets(a, b, MIN_SAMPLES_KERNEL, "kernel_distance_subsets")
    largest = min(len(a), len(b))
    if not 2 <= subset_size <= largest:
        raise ValueError(
            f"kernel_distance_subsets: subset_size must be 2 to {largest} "
            f"(the smaller set's size), got {subset_size}"
        )
    if subsets < 1:
        raise ValueError(f"kernel_distance_subsets: subsets must be at least 1, got {subsets}")
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    rng = np.random.default_rng(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        sub_a = a[rng.choice(len(a), subset_size, replace=False)]
        sub_b = b[rng.choice(len(b), subset_size, replace=False)]
        mmds[i] = _mmd2_unbiased(sub_a, sub_b, degree, gamma, coef0)
    return float(mmds.mean()), float(mmds.std())


def prdc(real, fake, k=5):
    """Precision, recall, density and coverage of ``fake`` against ``real`` (a dict of floats).

    Naeem et al. 2020, as their reference code (NAVER's ``prdc``) computes them: each sample's
    radius is the Euclidean distance to its k-th nearest neighbour in its own set (itself
    not counted; a duplicate of it is, at distance 0), and "inside a ball" is strictly
    closer than the radius.

    - precision: share of fake samples inside some real sample's ball;
    - recall: share of real samples inside some fake sample's ball;
    - density: mean over fake samples of the number of real balls containing it, over k;
    - coverage: share of real samples whose ball holds at least one fake sample.

    Needs at least k+1 samples per set (NAVER's code needs k+2), k >= 1.
    """
    from scipy.spatial.distance import cdist

    if int(k) != k or k < 1:
        raise ValueError(f"prdc: k must be a positive integer, got {k}")
    k = int(k)
    real, fake = _check_sets(real, fake, k + 1, f"prdc (k={k})", names=("real", "fake"))

    def radii(x):
        # Row i sorted: index 0 is the sample itself (or a duplicate; both at 0).
        return np.partition(cdist(x, x), k, axis=1)[:, k]

    real_radii, fake_radii = radii(real), radii(fake)
    dist = cdist(real, fake)  # [real, fake]
    in_real_ball = dist < real_radii[:, None]
    return {
        "precision": float(in_real_ball.any(axis=0).mean()),
        "recall": float((dist < fake_radii[None, :]).any(axis=1).mean()),
        "density": float(in_real_ball.sum(axis=0).mean() / k),
        "coverage": float(in_real_ball.any(axis=1).mean()),
    }


Interval = namedtuple("Interval", "estimate low high")
Interval.__doc__ = "A metric on the full sets and a bootstrap percentile interval around it."


def _group_index(groups, n, name):
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"group_bootstrap: {name} must have one label per sample ({n}), got shape {groups.shape}")
    labels, inverse = np.unique(groups, return_inverse=True)
    if len(labels) < 2:
        raise ValueError(f"group_bootstrap: {name} has {len(labels)} group, needs at least 2")
    return [np.flatnonzero(inverse == g) for g in range(len(labels))]


def group_bootstrap(metric, a, b, groups_a, groups_b, n_boot=200, level=0.95, seed=0,
                    duplicates=True, paired=False):
    """Bootstrap percentile interval of ``metric(a, b)``, resampling whole groups (tracks).

    Samples of one track are not independent, so each replicate draws the groups (e.g. the
    track of each stem, ``groups_a[i]`` for row ``a[i]``) of each set with replacement, as
    many as the set has, takes all their rows, and recomputes ``metric``; the interval is
    the ``level`` percentile range of the ``n_boot`` replicates. Seeded: the same seed gives
    the same interval. ``metric`` is any ``f(a, b)`` returning a float or a dict of floats
    (then a dict of Intervals comes back), e.g. ``lambda a, b: prdc(a, b, k=5)``.

    Set metrics are biased on such resamples: a group drawn twice puts identical rows in
    the set. Duplicates are zero-distance neighbours, which shrink PRDC's radii, and
    zero-distance pairs in the kernel distance's within-set terms (inflating it); the
    Fréchet distance is hurt least, a resample's mean and covariance being the usual
    bootstrap statistics. With ``duplicates=False`` each drawn
    group is kept once (about 63% of the groups per replicate, no duplicated rows): use it
    for PRDC and the kernel distance. Either way a replicate is a different set size or
    mix than the data, so read the interval as the spread over tracks, not an exact
    confidence interval; it need not be centred on ``estimate``, the metric on all data.

    ``paired``: both sets hold the same groups (the same tracks, e.g. under two conditions),
    and each replicate draws them once and takes the drawn groups in both sets. Drawn
    independently, two such sets would be compared on different tracks, so that even
    identical sets come out apart in every replicate.
    """
    a, b = _check_sets(a, b, 1, "group_bootstrap")
    if not 0 < level < 1:
        raise ValueError(f"group_bootstrap: level must be between 0 and 1, got {level}")
    if n_boot < 1:
        raise ValueError(f"group_bootstrap: n_boot must be at least 1, got {n_boot}")
    rows_a = _group_index(groups_a, len(a), "groups_a")
    rows_b = _group_index(groups_b, len(b), "groups_b")
    if paired and set(np.asarray(groups_a).tolist()) != set(np.asarray(groups_b).tolist()):
        raise ValueError("group_bootstrap: paired sets must hold the same groups")
    rng = np.random.default_rng(seed)

    def draw(rows):
        drawn = rng.integers(len(rows), size=len(rows))
        return drawn if duplicates else np.unique(drawn)

    def take(x, rows, drawn):
        return x[np.concatenate([rows[g] for g in drawn])]

    def replicate():
        drawn_a = draw(rows_a)
        drawn_b = drawn_a if paired else draw(rows_b)
        return metric(take(a, rows_a, drawn_a), take(b, rows_b, drawn_b))

    estimate = metric(a, b)
    replicates = [replicate() for _ in range(n_boot)]
    tails = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def interval(est, values):
        low, high = np.percentile(np.asarray(values, dtype=np.float64), tails)
        return Interval(float(est), float(low), float(high))

    if isinstance(estimate, dict):
        return {key: interval(estimate[key], [r[key] for r in replicates]) for key in estimate}
    return interval(estimate, replicates)
