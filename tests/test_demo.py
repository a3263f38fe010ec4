"""The demo (``./run.sh demo [options]``): options go to both evaluations, --output and
--embeddings name two files each, --help runs nothing, and bad input exits 2 as the analyze
scripts do."""

import csv

import pytest

from stemeval.commands import demo
from stemeval.runfiles.embeddings import load_arrays
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO", tmp_path / "demo")
    monkeypatch.setattr(demo, "SETS", tmp_path / "demo" / "sets")
    return ["--checkpoint", str(save_original_checkpoint(random_model(), tmp_path / "ast.pth")),
            "--speech-model",
            str(write_constant_speech_graph(tmp_path / "speech.pb", logit_for_score(20.0)))]


def test_output_names_two_files_and_quiet_is_passed_on(tmp_path, models, capfd):
    assert demo.main(["--output", str(tmp_path / "run.csv"), "--quiet", *models]) == 0
    for name, stems in (("run_dsd100.csv", 3), ("run_moises.csv", 4)):
        with open(tmp_path / name, newline="", encoding="utf-8") as handle:
            assert len(list(csv.DictReader(handle))) == stems
    err = capfd.readouterr().err
    assert "error:" not in err and " -> " not in err, err  # --quiet: no per-stem lines


def test_embeddings_are_named_as_the_outputs_are(tmp_path, models):
    assert demo.main(["--output", str(tmp_path / "run.csv"), "--embeddings",
                      str(tmp_path / "e.npz"), "--quiet", *models]) == 0
    for name, stems in (("e_dsd100.npz", 3), ("e_moises.npz", 4)):
        assert len(load_arrays(tmp_path / name)["paths"]) == stems
    assert not (tmp_path / "e.npz").exists()


def test_distances_compare_two_sets_that_differ_in_one_category(tmp_path, models, capfd):
    """--distances: set b is set a with its guitar stems clipped, so the other categories'
    stems, and so their embeddings, are the same in both: FAD 0 and full coverage there."""
    import json

    monkey_sets = demo.SETS
    assert demo.main(["--distances", *models]) == 0
    report = json.loads((monkey_sets / "d.json").read_text())
    categories = report["categories"]
    assert sorted(categories) == ["bass", "drums", "guitar", "vocals"]
    for name in ("bass", "drums", "vocals"):
        assert categories[name]["fad"]["estimate"] == pytest.approx(0, abs=1e-9)
        assert categories[name]["prdc"]["coverage"]["estimate"] == 1
    assert categories["guitar"]["fad"]["estimate"] > 1e-3
    assert report["overall"]["stems"] == [32, 32] and report["overall"]["paired"]
    out = capfd.readouterr().out
    assert out.startswith("A (reference): ") and "guitar" in out


def test_distances_write_their_own_files(tmp_path, models):
    from stemeval.common.errors import UserError

    with pytest.raises(UserError, match="--distances writes its files in demo/sets/"):
        demo.main(["--distances", "--output", "x.csv", *models])


def test_help_runs_nothing(tmp_path, models, capsys):
    with pytest.raises(SystemExit) as stop:
        demo.main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ./run.sh demo") and "PATH_dsd100.csv" in out
    assert not (tmp_path / "demo").exists()


def test_bad_input_exits_2_as_the_analyze_scripts_do(tmp_path, models):
    assert demo.main([*models, "--checkpoint", str(tmp_path / "none.pth")]) == 2
