"""probe.py: grouped folds, an inner search on the training tracks, zero-shot side by side."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import probe as probe_cli
from stemeval.analyses import probes
from stemeval.common.errors import run_main
from stemeval.runfiles.embeddings import read_embeddings
from tests.helpers.cli import ROOT, run_script

CATEGORIES = ["bass", "drums", "piano", "vocals"]


def dataset(tracks=12, dim=8, seed=0, spread=0.3, shuffle=False):
    """Stems of ``tracks`` tracks (1 to 4 stems each, so folds are uneven) around one centre
    per category; ``spread`` small makes the categories linearly separable."""
    rng = np.random.default_rng(seed)
    centres = np.eye(len(CATEGORIES), dim) * 4.0
    rows = []
    for track in range(tracks):
        count = 4 if track < 4 else 1 + track % 4
        for category in rng.permutation(CATEGORIES)[:count]:
            rows.append((f"data/track{track:02d}/{category}.wav", str(category), f"track{track:02d}"))
    labels = [label for _, label, _ in rows]
    embeddings = np.stack([centres[CATEGORIES.index(label)] + rng.normal(0, spread, dim)
                           for label in labels]).astype(np.float32)
    if shuffle:
        labels = list(rng.permutation(labels))
    return {"embeddings": embeddings, "paths": np.array([path for path, _, _ in rows]),
            "labels": np.array(labels), "groups": np.array([group for _, _, group in rows]),
            "tagger": np.array("ast")}


def save(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def write_results(path, arrays, wrong=()):
    """A results CSV of the same stems (in reverse order): right except the paths ``wrong``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "path", "prediction", "proposed_label"])
        for path_, label in reversed(list(zip(arrays["paths"], arrays["labels"]))):
            writer.writerow([label, path_, "x", "other" if path_ in wrong else label])
    return str(path)


def cli(capsys, *args):
    """Run probe.py in this process: ``(exit status, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exit_:
        run_main(lambda: probe_cli.main([str(arg) for arg in args]))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_no_track_is_in_both_the_training_and_the_test_stems_of_any_fold(tmp_path):
    data = read_embeddings(save(tmp_path / "e.npz", dataset(tracks=23, seed=3)))
    groups = np.asarray(data.groups)
    seen = []
    for train, test in probes.outer_folds(data, 5, seed=0):
        assert not set(groups[train]) & set(groups[test])
        seen += list(test)
        search = probes._fit(data, train, mlp=False, seed=0, fold=1)
        for inner_train, inner_test in search.cv.split(train, groups=groups[train]):
            assert not set(groups[train][inner_train]) & set(groups[train][inner_test])
    assert sorted(seen) == list(range(len(groups)))  # every stem is tested once


def test_separable_embeddings_reach_100_percent(tmp_path):
    data = read_embeddings(save(tmp_path / "e.npz", dataset()))
    for mlp in (False, True):
        result = probes.probe_embeddings(data, folds=4, seed=0, mlp=mlp)
        for entry in result["fold_results"]:
            assert entry["scores"]["probe"] == {"accuracy": 1.0, "balanced_accuracy": 1.0,
                                                "macro_f1": 1.0}
        assert result["pooled"]["probe"]["correct"] == result["pooled"]["probe"]["support"]


def test_shuffled_labels_stay_near_chance(tmp_path):
    data = read_embeddings(save(tmp_path / "e.npz",
                                      dataset(tracks=40, shuffle=True, seed=1)))
    result = probes.probe_embeddings(data, folds=5, seed=0)
    assert 0.1 < result["summary"]["probe"]["balanced_accuracy"]["mean"] < 0.42  # chance: 0.25


def test_zero_shot_is_scored_on_the_same_test_stems(tmp_path, capsys):
    arrays = dataset()
    wrong = set(arrays["paths"][::3])
    npz = save(tmp_path / "e.npz", arrays)
    results = write_results(tmp_path / "r.csv", arrays, wrong)
    data = read_embeddings(npz)
    zero_shot = probes.zero_shot_labels(data, results)
    result = probes.probe_embeddings(data, folds=3, seed=0, zero_shot=zero_shot)
    folds = probes.outer_folds(data, 3, seed=0)
    for entry, (_, test) in zip(result["fold_results"], folds):
        right = sum(1 for index in test if data.paths[index] not in wrong)
        assert entry["test_stems"] == len(test)
        assert entry["scores"]["zero-shot"]["accuracy"] == right / len(test)
    status, out, err = cli(capsys, npz, "--zero-shot", results, "--folds", 3,
                           "--json", tmp_path / "p.json", "--plot", tmp_path / "p.png")
    assert (status, err) == (0, "")
    assert "Confusion matrix, zero-shot, all test stems" in out
    recall = [line.split() for line in out.split("Recall per category")[1].splitlines()[2:6]]
    pooled = result["pooled"]
    assert recall[0] == ["bass", f"{100 * pooled['probe']['recall'][0]:.2f}%",
                         f"({pooled['probe']['correct'][0]}/{pooled['probe']['support'][0]})",
                         f"{100 * pooled['zero-shot']['recall'][0]:.2f}%",
                         f"({pooled['zero-shot']['correct'][0]}/{pooled['zero-shot']['support'][0]})"]
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["results"][0]["summary"]["zero-shot"] == result["summary"]["zero-shot"]
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_several_files_give_one_table(tmp_path, capsys):
    first, second = dataset(seed=0), dataset(seed=0, spread=3.0)
    second["tagger"] = np.array("clap")
    files = [save(tmp_path / "ast.npz", first), save(tmp_path / "clap.npz", second)]
    results = [write_results(tmp_path / "ast.csv", first),
               write_results(tmp_path / "clap.csv", second, set(second["paths"]))]
    status, out, err = cli(capsys, *files, "--zero-shot", *results, "--folds", 3)
    assert (status, err) == (0, "")
    board = out.split("Leaderboard")[1].split("\n\n")[0].splitlines()
    assert [line.split()[:2] for line in board[2:]] == [
        ["ast", "probe"], ["ast", "zero-shot"], ["clap", "probe"], ["clap", "zero-shot"]]
    assert "100.00% ± 0.00*" in board[2] and "0.00% ± 0.00 " in board[5]
    assert "ast probe" in out.split("Recall per category")[1]


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("groups"),
     "no groups (the track of each stem), so the folds cannot be grouped by track; save the "
     "embeddings of a dataset that has tracks"),
    (lambda a: a.update(groups=np.array([""] * len(a["paths"]))),
     "{n} of {n} stems have no group (track), so the folds cannot be grouped by track"),
    (lambda a: a.update(groups=np.array(["one"] * len(a["paths"]))),
     "all {n} stems are from one track (one); a grouped split needs at least 5 tracks"),
    (lambda a: a.update(embeddings=a["embeddings"][:3]),
     "paths must hold one value per stem (3), not shape [{n}]"),
])
def test_bad_embeddings_are_one_error_line(tmp_path, capsys, change, message):
    arrays = dataset(tracks=15)
    arrays["labels"] = arrays["labels"].astype("<U8")
    n = len(arrays["paths"])
    change(arrays)
    npz = save(tmp_path / "e.npz", arrays)
    assert cli(capsys, npz) == (2, "", f"error: {npz}: {message.format(n=n)}\n")


def test_bad_arguments_are_one_error_line(tmp_path, capsys):
    arrays = dataset(tracks=4)
    npz = save(tmp_path / "e.npz", arrays)
    other = dict(arrays, paths=np.array([f"elsewhere/{i}.wav" for i in range(len(arrays["paths"]))]))
    elsewhere = write_results(tmp_path / "r.csv", other)
    for args, message in [
        ([tmp_path / "absent.npz"], f"{tmp_path / 'absent.npz'}: no such file"),
        ([npz], f"{npz}: 4 tracks are too few for 5 folds grouped by track (use --folds 4 or "
                f"fewer)"),
        ([npz, "--folds", 1], "--folds must be at least 2, not 1"),
        ([npz, npz, "--zero-shot", elsewhere],
         "--zero-shot takes one results CSV per embeddings file: 1 for 2"),
        ([npz, "--folds", 2, "--zero-shot", elsewhere],
         f"{elsewhere}: 16 of the 16 stems of {npz} are not in it (e.g. "
         f"{arrays['paths'][0]}); give the results CSV of the run that wrote the embeddings"),
        ([tmp_path / "r.csv"], f"{tmp_path / 'r.csv'}: not a readable embeddings .npz file "),
    ]:
        status, out, err = cli(capsys, *args)
        assert (status, out) == (2, "") and err.count("\n") == 1
        assert err.startswith(f"error: {message}"), err


def test_command_line(tmp_path):
    """probe.py in a process of its own, as users run it."""
    npz = save(tmp_path / "e.npz", dataset())
    done = subprocess.run([sys.executable, "probe.py", npz, "--folds", "3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    means = done.stdout.split("Mean ± std over the folds:")[1].splitlines()
    assert means[2].split() == ["probe"] + ["100.00%", "±", "0.00"] * 3


def test_pooled_intervals_and_probe_against_zero_shot(tmp_path):
    """Separable embeddings (the probe names every stem) and zero-shot rows wrong on whole
    tracks: McNemar by statsmodels, the intervals by a bootstrap over tracks by hand."""
    from statsmodels.stats.contingency_tables import mcnemar

    from tests.helpers.cluster_bootstrap import numpy_cluster_bootstrap

    arrays = dataset(tracks=30)
    groups = arrays["groups"]
    wrong = {path for path, group in zip(arrays["paths"], groups)
             if int(group[-2:]) % 3 == 0 or path.endswith("bass.wav")}
    npz = save(tmp_path / "e.npz", arrays)
    results = write_results(tmp_path / "r.csv", arrays, wrong)
    done = run_script("probe.py", npz, "--zero-shot", results, "--folds", "3", "--json",
                      tmp_path / "p.json", cwd=ROOT)
    assert (done.returncode, done.stderr) == (0, "")
    [result] = json.loads((tmp_path / "p.json").read_text())["results"]
    zero_shot = np.array([path not in wrong for path in arrays["paths"]], dtype=int)
    pair = result["paired"]
    n, fixed = len(zero_shot), int(np.sum(zero_shot == 0))
    assert (pair["fixed"], pair["broken"], pair["both_right"], pair["both_wrong"]) == (
        fixed, 0, n - fixed, 0)
    assert pair["p_value"] == pytest.approx(
        mcnemar([[n - fixed, 0], [fixed, 0]], exact=True).pvalue, rel=1e-9)
    assert pair["difference"] == pytest.approx(fixed / n)
    assert (pair["low"], pair["high"]) == pytest.approx(
        numpy_cluster_bootstrap(zero_shot, np.ones(n), groups, 0.95, 20000, seed=1), abs=0.02)
    accuracy = result["intervals"]["zero-shot"]["accuracy"]
    assert (accuracy["value"], accuracy["groups"]) == (zero_shot.mean(), 30)
    assert (accuracy["low"], accuracy["high"]) == pytest.approx(
        numpy_cluster_bootstrap(None, zero_shot, groups, 0.95, 20000, seed=2), abs=0.02)
    assert result["intervals"]["probe"]["accuracy"]["low"] == 1.0
    line = next(line for line in done.stdout.splitlines() if line.startswith("ast: probe"))
    assert line.startswith(f"ast: probe against zero-shot on the same {n} stems: fixed {fixed} "
                           f"(zero-shot wrong, probe right), broken 0, McNemar's exact p = ")
