"""Options every command checks before any work: a seed outside numpy's range, or a count
below its least value, is argparse's one-line usage error (exit 2), never the traceback
of the library the value would reach (numpy: "Seed must be between 0 and 2**32 - 1")."""

import pytest

from stemeval.commands import distance, evaluate, probe, score
from stemeval.common.errors import exit_status


@pytest.mark.parametrize("main, argv, option", [
    (distance.main, ["a.npz", "b.npz", "--seed", "-1"], "--seed"),
    (probe.main, ["e.npz", "--seed", "-1"], "--seed"),
    (probe.main, ["e.npz", "--seed", str(2 ** 32)], "--seed"),
    (score.main, ["out.csv", "--oracle", "--seed", "-5"], "--seed"),
    (evaluate.main, ["dsd100", "tree", "--workers", "-1"], "--workers"),
    (evaluate.main, ["dsd100", "tree", "--batch-size", "0"], "--batch-size"),
])
def test_a_bad_value_is_one_usage_line_before_any_work(tmp_path, monkeypatch, capsys, main,
                                                       argv, option):
    monkeypatch.chdir(tmp_path)  # none of the files exists: the option is checked first
    assert exit_status(lambda: main(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: argument {option}: takes a whole "
                                                   f"number of "), lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [-1, 0, 2 ** 32 - 1, 2 ** 32])
def test_a_seed_is_accepted_exactly_where_numpy_takes_it(value):
    import argparse

    import numpy as np

    from stemeval.commands.options import seed

    try:
        np.random.RandomState(value)
        numpy_takes = True
    except ValueError:
        numpy_takes = False
    try:
        accepted = seed(str(value)) == value
    except argparse.ArgumentTypeError:
        accepted = False
    assert accepted == numpy_takes
