"""setdistance.py through the command line on constructed embeddings files.

Oracles: audio-metrics' Fréchet distance, NAVER's ``prdc`` and the unbiased MMD^2 written
here as a double loop, on the sets the command should compare (overall, per category, over
the windows where the files keep them); the intervals are ``group_bootstrap`` (tested in
test_setdistance.py) over the stems' tracks, which the command must use. Refusals: files of
different taggers, layers or weights, sets too small for a metric, an output that is an input.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers.cli import ROOT, run_script

CATEGORIES = ("bass", "drums", "vocals")
MAKER = {"tagger": "ast", "layer": "pooled", "weights": "0" * 64}


def stems(tracks=8, dim=6, seed=0, shift=None, windows=False, prefix="t"):
    """Arrays of an embeddings file: every track (``prefix`` and a number) has one stem per
    category; ``shift`` moves the embeddings of one category (``(category, amount)``);
    ``windows``: each stem also keeps 1 to 3 window embeddings whose mean is its embedding."""
    rng = np.random.default_rng(seed)
    paths, labels, groups, vectors, window_rows, counts = [], [], [], [], [], []
    for track in range(tracks):
        for index, category in enumerate(CATEGORIES):
            centre = np.eye(dim)[index] * 3
            count = 1 + (track + index) % 3
            rows = centre + rng.normal(0, 1, (count, dim))
            if shift and category == shift[0]:
                rows = rows + shift[1]
            paths.append(f"{prefix}{track}/{category}.wav")
            labels.append(category)
            groups.append(f"{prefix}{track}")
            vectors.append(rows.mean(0))
            window_rows.append(rows)
            counts.append(count)
    arrays = {"embeddings": np.array(vectors, np.float32), "paths": np.array(paths),
              "labels": np.array(labels), "groups": np.array(groups),
              **{key: np.array(value) for key, value in MAKER.items()}}
    if windows:
        arrays["window_embeddings"] = np.concatenate(window_rows).astype(np.float32)
        arrays["window_counts"] = np.array(counts, np.int64)
    return arrays


def save(path, arrays):
    np.savez(path, **arrays)
    return path


def run(*args, cwd, process=False):
    """setdistance.py run in this process as its own would run it (tests/helpers/cli.py), or
    with ``process`` in a process of its own."""
    if process:
        return subprocess.run([sys.executable, str(ROOT / "setdistance.py"), *map(str, args)],
                              cwd=cwd, capture_output=True, text=True, timeout=600)
    return run_script("setdistance.py", *args, cwd=cwd)


def fad(a, b):
    import torch
    from audio_metrics.data import AudioMetricsData
    from audio_metrics.metrics.fad import frechet_distance

    x, y = AudioMetricsData(), AudioMetricsData()
    x.add(torch.from_numpy(np.asarray(a, np.float64)))
    y.add(torch.from_numpy(np.asarray(b, np.float64)))
    return frechet_distance(x, y)


def mmd2(a, b):
    """Unbiased MMD^2, kernel (x.y / dim + 1)^3, one pair at a time."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)

    def k(x, y):
        return (float(np.dot(x, y)) / a.shape[1] + 1) ** 3

    m, n = len(a), len(b)
    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return xx + yy - 2 * sum(k(x, y) for x in a for y in b) / (m * n)


def naver(real, fake, k):
    from prdc import compute_prdc

    return compute_prdc(real_features=np.asarray(real, np.float64),
                        fake_features=np.asarray(fake, np.float64), nearest_k=k)


def pick(arrays, category=None, windows=False):
    keep = [i for i, label in enumerate(arrays["labels"]) if category in (None, label)]
    if not windows:
        return arrays["embeddings"][keep]
    split = np.split(arrays["window_embeddings"], np.cumsum(arrays["window_counts"])[:-1])
    return np.concatenate([split[i] for i in keep])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The JSON of A against B, where B's vocals moved, with windows kept."""
    folder = tmp_path_factory.mktemp("sets")
    a = stems(windows=True)
    b = stems(seed=1, shift=("vocals", 2.5), windows=True)
    save(folder / "a.npz", a)
    save(folder / "b.npz", b)
    result = run("a.npz", "b.npz", "--by", "category", "--k", "3", "--boot", "40",
                 "--json", "d.json", cwd=folder, process=True)  # as users run it
    assert result.returncode == 0, result.stderr
    return a, b, json.loads((folder / "d.json").read_text()), result.stdout


def test_overall_and_per_category_equal_the_oracles(report):
    a, b, found, _ = report
    assert found["settings"]["fad_over"] == "windows"
    for name, category in [("overall", None)] + [(c, c) for c in CATEGORIES]:
        entry = found["overall"] if category is None else found["categories"][name]
        assert entry["stems"] == [len(pick(a, category)), len(pick(b, category))]
        assert entry["windows"] == [len(pick(a, category, True)), len(pick(b, category, True))]
        assert entry["fad"]["estimate"] == pytest.approx(
            fad(pick(a, category, True), pick(b, category, True)), rel=1e-6)
        assert entry["kd"]["estimate"] == pytest.approx(
            mmd2(pick(a, category), pick(b, category)), rel=1e-6, abs=1e-9)
        expected = naver(pick(a, category), pick(b, category), 3)
        for key, value in expected.items():
            assert entry["prdc"][key]["estimate"] == pytest.approx(value, abs=1e-12), key


def test_the_moved_category_stands_out(report):
    _, _, found, _ = report
    fads = {name: entry["fad"]["estimate"] for name, entry in found["categories"].items()}
    assert fads["vocals"] > 5 * max(fads["bass"], fads["drums"])
    coverage = {name: entry["prdc"]["coverage"]["estimate"]
                for name, entry in found["categories"].items()}
    assert coverage["vocals"] < min(coverage["bass"], coverage["drums"])


def tracks(arrays, windows):
    return np.repeat(arrays["groups"], arrays["window_counts"] if windows else 1)


def test_intervals_resample_tracks(report):
    """FAD's interval resamples whole tracks with duplicates, PRDC's without, the same
    tracks in both sets, which hold the same tracks (the library's group_bootstrap on the
    same rows and tracks, seed 0)."""
    from stemeval.distances.set_metrics import frechet_distance, group_bootstrap, prdc

    a, b, found, _ = report
    assert found["overall"]["paired"] and found["categories"]["bass"]["paired"]
    fad_interval = group_bootstrap(frechet_distance, pick(a, windows=True),
                                   pick(b, windows=True), tracks(a, True), tracks(b, True),
                                   n_boot=40, seed=0, duplicates=True, paired=True)
    assert [found["overall"]["fad"][key] for key in ("estimate", "low", "high")] == \
        pytest.approx(list(fad_interval), rel=1e-9)
    prdc_interval = group_bootstrap(lambda x, y: prdc(x, y, 3), pick(a), pick(b),
                                    tracks(a, False), tracks(b, False), n_boot=40, seed=0,
                                    duplicates=False, paired=True)
    for key, interval in prdc_interval.items():
        assert [found["overall"]["prdc"][key][name] for name in ("estimate", "low", "high")] \
            == pytest.approx(list(interval), rel=1e-9)
    low, high = found["overall"]["fad"]["low"], found["overall"]["fad"]["high"]
    assert low < high


def test_text_output(report):
    *_, out = report
    lines = out.splitlines()
    assert lines[0] == "A (reference): a.npz: 24 stems of 8 tracks"
    assert lines[2] == "embeddings: ast (pooled)"
    assert "FAD over the windows' embeddings" in lines[3]
    assert lines[4].startswith("intervals: 95% percentile intervals of 40 bootstrap")
    vocals = next(line for line in lines if line.startswith("vocals"))
    assert vocals.split()[:3] == ["vocals", "8/8", "FAD"]
    assert out.endswith("JSON report written to d.json\n")


def test_sets_of_other_tracks_are_resampled_apart(tmp_path):
    from stemeval.distances.set_metrics import frechet_distance, group_bootstrap

    a, b = stems(), stems(seed=1, prefix="u")
    save(tmp_path / "a.npz", a)
    save(tmp_path / "b.npz", b)
    result = run("a.npz", "b.npz", "--metrics", "fad", "--boot", "30", "--json", "d.json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads((tmp_path / "d.json").read_text())["overall"]
    expected = group_bootstrap(frechet_distance, pick(a), pick(b), tracks(a, False),
                               tracks(b, False), n_boot=30, seed=0)
    assert not found["paired"] and "paired" not in result.stdout
    assert [found["fad"][key] for key in ("estimate", "low", "high")] == \
        pytest.approx(list(expected), rel=1e-9)


def test_fad_over_stems_without_windows_and_no_intervals(tmp_path):
    a, b = stems(dim=16, seed=2), stems(dim=16, seed=3)  # 24 stems of 16-d: n > dim
    save(tmp_path / "a.npz", a)
    save(tmp_path / "b.npz", b)
    result = run("a.npz", "b.npz", "--metrics", "fad", "--boot", "0", "--json", "d.json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads((tmp_path / "d.json").read_text())
    assert found["settings"]["fad_over"] == "stems" and "kd" not in found["overall"]
    assert found["overall"]["fad"] == {"estimate": pytest.approx(fad(pick(a), pick(b)),
                                                                 rel=1e-6),
                                       "low": None, "high": None}
    assert "no intervals (--boot 0)" in result.stdout


def one_error(result, text):
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert text in result.stderr, result.stderr


@pytest.mark.parametrize("key, plural", [("tagger", "taggers"), ("layer", "layers"),
                                         ("weights", "weights")])
def test_files_made_otherwise_are_refused(tmp_path, key, plural):
    save(tmp_path / "a.npz", stems())
    save(tmp_path / "b.npz", {**stems(seed=1), key: np.array("other")})
    one_error(run("a.npz", "b.npz", cwd=tmp_path),
              f"a.npz and b.npz hold embeddings of different {plural} ({MAKER[key]}; other)")


def test_sets_too_small_are_refused_naming_the_minimum(tmp_path):
    save(tmp_path / "a.npz", stems(tracks=1))  # 3 stems
    save(tmp_path / "b.npz", stems(tracks=2, seed=1))
    one_error(run("a.npz", "b.npz", cwd=tmp_path),
              "3 and 6 stems: too few for PRDC with k=5, which needs 6 per set")
    ok = run("a.npz", "b.npz", "--k", "2", "--by", "category", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "bass: 1 and 2 stems: too few for KD, which needs 2 per set" in ok.stdout
    assert "[-, -]: no interval" in ok.stdout  # one track in A: no resampling


def test_bad_options_and_outputs_are_refused_before_any_work(tmp_path):
    save(tmp_path / "a.npz", stems())
    save(tmp_path / "b.npz", stems(seed=1))
    one_error(run("a.npz", "b.npz", "--json", "a.npz", cwd=tmp_path),
              "cannot write the JSON file a.npz: it is the input file a.npz")
    one_error(run("a.npz", "b.npz", "--metrics", "fad,fid", cwd=tmp_path),
              "--metrics 'fad,fid': choose one or more of fad, kd, prdc")
    one_error(run("a.npz", "missing.npz", cwd=tmp_path), "missing.npz: no such file")
    one_error(run("a.npz", "b.npz", "--level", "95", cwd=tmp_path), "--level must lie")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.npz", "b.npz"]
