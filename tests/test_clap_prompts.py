"""CLAP's prompts as data: one file per dataset map, chosen by the run's categories or given
with --prompts, recorded in the sidecar's identity (a resume with other prompts is refused),
and the prompts a run scored against, checked through transformers' own ClapModel."""

import csv
import json
import os

import numpy as np
import pytest
import torch

from stemeval.common.toml_files import load_toml
from stemeval.datasets import DATASETS
from stemeval.datasets.categories import MAPS, dataset_map
from stemeval.datasets.clap_prompts import PROMPTS, prompts_for
from tests.helpers.clap_models import save_tiny_clap
from tests.helpers.cli import ROOT, run_script
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

MOISESDB = ["vocals", "drums", "bass", "piano", "guitar", "wind", "bowed_strings",
            "other_keys", "other_plucked", "percussion"]


def test_each_map_has_a_prompts_file_of_its_categories():
    names = {path.stem for path in MAPS.glob("*.toml")}
    assert {path.stem for path in PROMPTS.glob("*.toml")} == names
    seen = set()
    for name in names:
        categories = list(load_toml(MAPS / f"{name}.toml"))
        texts = load_toml(PROMPTS / f"{name}.toml")
        assert list(texts) == categories, name  # the map's categories, in its order
        assert all(text.startswith("the sound of ") for text in texts.values()), name
        assert frozenset(categories) not in seen  # so the categories name one file
        seen.add(frozenset(categories))
    for dataset in DATASETS.values():
        if dataset.map_name is not None:
            found = prompts_for(dataset_map(dataset.map_name).categories)
            assert found.source == f"stemeval/datasets/prompts/{dataset.map_name}.toml"
    template = prompts_for(["bass", "other_keys"])  # no file has these categories alone
    assert template.texts == {"bass": "the sound of bass", "other_keys": "the sound of other keys"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("prompts")
    for song in range(3):
        for number, label in enumerate(["bass", "drums"]):
            (base / "tree" / f"song{song}" / label).mkdir(parents=True)
            write_wav(base / "tree" / f"song{song}" / label / f"{label}.wav",
                      concat(tone(1.5, 22050, 80 + 400 * number + 20 * song, seed=song),
                             silence(0.7, 22050), tone(1.0, 22050, 300, seed=song)), 22050)
    write_constant_speech_graph(base / "speech.pb", logit_for_score(3.0))
    save_tiny_clap(base / "clap")
    (base / "mine.toml").write_text("".join(f'{category} = "the sound of {category} keys"\n'
                                            for category in MOISESDB))
    for name, extra in (("default", []), ("mine", ["--prompts", "mine.toml"])):
        result = analyze(base, "--output", f"{name}.csv", "--embeddings", f"{name}.npz", *extra)
        assert result.returncode == 0, result.stderr
    return base


def analyze(base, *args, tagger="clap"):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(base / "hub"))
    return run_script("analyze_moisesdb.py", "tree", "--tagger", tagger, "--checkpoint", "clap",
                      "--speech-model", "speech.pb", "--quiet", "--workers", "0", *args,
                      cwd=base, env=env)


def one_line_error(result):
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: "):]


def reference_scores(base, texts, embeddings):
    """transformers' ClapModel: logit scale x the saved audio embeddings . the texts'."""
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(base / "clap").eval()
    processor = ClapProcessor.from_pretrained(base / "clap")
    with torch.no_grad():
        tokens = processor(text=texts, return_tensors="pt", padding=True)
        text = model.get_text_features(**tokens).pooler_output
        return (model.logit_scale_a.exp() * torch.from_numpy(embeddings) @ text.T).numpy()


@pytest.mark.parametrize("name, source", [
    ("default", "stemeval/datasets/prompts/moisesdb.toml"), ("mine", "mine.toml")])
def test_a_run_scores_against_its_prompts_and_records_them(setup, name, source):
    texts = list(load_toml(setup / source if name == "mine" else ROOT / source).values())
    identity = json.loads((setup / f"{name}.csv.json").read_text())["identity"]
    assert identity["prompts"]["path"] == source
    assert list(identity["prompts"]["texts"].values()) == texts
    with np.load(setup / f"{name}.npz") as saved, \
            np.load(setup / f"{name}.csv.scores.npz") as kept:
        embeddings, paths = saved["embeddings"], list(saved["paths"])
        assert list(kept["paths"]) == paths and list(kept["classes"]) == MOISESDB
        assert bool(kept["zero_shot"]) and str(kept["tagger"]) == "clap"
        expected = reference_scores(setup, texts, embeddings)
        np.testing.assert_allclose(kept["scores"], expected, rtol=1e-4, atol=1e-4)
    with open(setup / f"{name}.csv", newline="", encoding="utf-8") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    for path, scores in zip(paths, expected):
        assert rows[path]["prediction"] == MOISESDB[int(np.argmax(scores))]


def test_a_resume_with_other_prompts_is_refused(setup):
    message = one_line_error(analyze(setup, "--output", "default.csv", "--embeddings",
                                     "default.npz", "--prompts", "mine.toml", "--resume"))
    assert message.startswith("cannot resume default.csv: its sidecar default.csv.json names "
                              "prompts stemeval/datasets/prompts/moisesdb.toml (sha256 ")
    assert message.split("this run uses ")[1].startswith("mine.toml (sha256 ")


def test_bad_prompts_are_one_line(setup, tmp_path):
    (tmp_path / "few.toml").write_text('bass = "a bass"\n')
    (tmp_path / "bad.toml").write_text('bass = 3\n')
    assert one_line_error(analyze(setup, "--prompts", "mine.toml", "--output", tmp_path / "a.csv",
                                  tagger="ast")) == (
        "--prompts is for a zero-shot tagger (clap), whose scores are its categories' prompts; "
        "--tagger ast scores AudioSet's labels")
    assert one_line_error(analyze(setup, "--prompts", tmp_path / "few.toml", "--output",
                                  tmp_path / "a.csv")) == (
        f"prompts {tmp_path}/few.toml: no prompt for 9 of the run's categories: vocals, drums, "
        f"piano, guitar, wind, bowed_strings, other_keys, other_plucked, percussion")
    assert one_line_error(analyze(setup, "--prompts", tmp_path / "bad.toml", "--output",
                                  tmp_path / "a.csv")) == (
        f"prompts {tmp_path}/bad.toml: category 'bass' must be a prompt text in quotes")
    assert list(tmp_path.glob("a.csv*")) == []


def test_a_zero_shot_run_is_remapped_only_onto_its_own_categories(setup, tmp_path):
    def computeaccuracy(*args):
        return run_script("computeaccuracy.py", *args, cwd=setup)

    (tmp_path / "three.toml").write_text('bass = ["Bass guitar"]\ndrums = ["Drum kit"]\n'
                                         'vocals = ["Singing"]\n')
    assert one_line_error(computeaccuracy("default.csv", "--map", tmp_path / "three.toml")) == (
        "default.csv: its tagger clap is zero-shot: its scores are over its own categories "
        f"({', '.join(MOISESDB)}), so another map's categories need a new run (evaluate.py "
        "--map)")
    done = computeaccuracy("default.csv", "--map", MAPS / "moisesdb.toml", "--compare",
                           "default.csv")
    assert done.returncode == 0, done.stderr
    assert "  Rows identical: 6\n  Rows that differ: 0\n" in done.stdout
