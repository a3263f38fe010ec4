"""Each dataset's walker on a generated tree in its layout as distributed; the map files;
--split; the checks that stop a wrong layout; symlinked folders; FLAC decoding."""

import os

import numpy as np
import pytest
import soundfile

from stemeval.audio.decode import decode
from stemeval.common.errors import UserError
from stemeval.datasets import DATASETS, category_map
from stemeval.datasets.categories import dataset_map, read_map
from stemeval.datasets.selection import check_stem_labels, select
from tests.helpers import dataset_trees
from tests.helpers.cli import run_script


def stems_of(dataset, folder, **options):
    found = select(DATASETS[dataset], folder, category_map(dataset), **options)
    return [(stem.path, stem.label, stem.group, stem.split) for stem in found.stems], found


@pytest.mark.parametrize("dataset", sorted(dataset_trees.TREES))
def test_walker_gives_the_expected_stems(tmp_path, monkeypatch, dataset):
    expected = dataset_trees.TREES[dataset](tmp_path / "tree")
    monkeypatch.chdir(tmp_path)
    stems, _ = stems_of(dataset, dataset_trees.input_path(dataset, "tree"))
    assert stems == [(os.path.join("tree", path), label, group, split)
                     for path, label, group, split in expected]


@pytest.mark.parametrize("dataset", sorted(dataset_trees.UNKNOWN))
def test_unknown_labels_are_named_once_with_counts(tmp_path, dataset):
    dataset_trees.TREES[dataset](tmp_path)
    folder = dataset_trees.input_path(dataset, tmp_path)
    stems, found = stems_of(dataset, folder)
    warning = check_stem_labels(DATASETS[dataset], folder, found.stems, category_map(dataset))
    assert warning == (f"1 of {len(stems)} stems have a label that is not a category of the "
                       f"map, so they can never match: {dataset_trees.UNKNOWN[dataset]} (1)")


def test_slakh_notes_what_it_skips(tmp_path):
    dataset_trees.slakh2100(tmp_path)
    _, found = stems_of("slakh2100", str(tmp_path))
    assert found.notes == [
        "skipped 2 Slakh stems whose audio was not rendered",
        "skipped 2 stems of classes the map does not evaluate: Sound Effects (1), Synth Pad (1)"]


def test_metadata_walkers_count_unlisted_files(tmp_path):
    dataset_trees.medley_solos_db(tmp_path / "m")
    dataset_trees.tinysol(tmp_path / "t")
    assert stems_of("medley-solos-db", str(tmp_path / "m"))[1].notes == [
        "skipped 1 clips that Medley-solos-DB_metadata.csv does not list"]
    assert stems_of("tinysol", str(tmp_path / "t"))[1].notes == [
        "skipped 1 files that TinySOL_metadata.csv does not list"]


def test_metadata_file_missing_is_one_error(tmp_path):
    dataset_trees.audio(tmp_path / "Medley-solos-DB_training-0_x.wav")
    with pytest.raises(UserError, match="no Medley-solos-DB_metadata.csv below"):
        stems_of("medley-solos-db", str(tmp_path))


@pytest.mark.parametrize("dataset,split,count", [
    ("musdb18hq", "test", 2), ("slakh2100", "validation", 1), ("medley-solos-db", "training", 1),
    ("tinysol", "3", 1)])
def test_split(tmp_path, dataset, split, count):
    dataset_trees.TREES[dataset](tmp_path)
    stems, _ = stems_of(dataset, str(tmp_path), split=split)
    assert len(stems) == count and {stem[3] for stem in stems} == {split}


def test_split_the_dataset_lacks(tmp_path):
    with pytest.raises(UserError, match="--split dev: MUSDB18-HQ has no such split "
                                        r"\(its splits are train, test\)"):
        stems_of("musdb18hq", str(tmp_path), split="dev")
    with pytest.raises(UserError, match="IRMAS .* has no such split .it has no splits"):
        stems_of("irmas", str(tmp_path), split="train")


def test_dsd100_groups_and_splits(tmp_path):
    dataset_trees.audio(tmp_path / "Dev" / "001 - A" / "bass.wav")
    dataset_trees.audio(tmp_path / "Test" / "002 - B" / "vocals.mp3.wav")
    stems, _ = stems_of("dsd100", str(tmp_path))
    assert [stem[2:] for stem in stems] == [("001 - A", "Dev"), ("002 - B", "Test")]
    assert [stem[0] for stem in stems_of("dsd100", str(tmp_path), split="Test")[0]] == [
        str(tmp_path / "Test" / "002 - B" / "vocals.mp3.wav")]


def test_moisesdb_group_is_the_song(tmp_path):
    dataset_trees.audio(tmp_path / "0a1b" / "bass" / "x.wav")
    assert stems_of("moisesdb", str(tmp_path))[0][0][1:3] == ("bass", "0a1b")


@pytest.mark.parametrize("content,fragment", [
    ('bass = ["Bass guitar", "Gutar"]\n',
     "'Gutar' (category 'bass') is not an AudioSet label (did you mean 'Guitar'?)"),
    ('bass = ["Dog"]\n', "'Dog' (category 'bass') is an AudioSet label but not one of the 91"),
    ('bass = ["Bass guitar"\n', "not valid TOML"),
    ('bass = "Bass guitar"\n', "category 'bass' must be a list of AudioSet labels"),
    ('bass = ["Bass guitar"]\nlow = ["bass guitar"]\n',
     "'Bass guitar' is in two categories, 'bass' and 'low'"),
    ("", "no category in it"),
])
def test_bad_map_is_one_error(tmp_path, content, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as error:
        read_map(path)
    assert str(error.value).startswith(f"map {path}: ") and fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_every_shipped_map_reads_and_the_published_names_work():
    from stemeval.datasets.categories import UNMAPPED_CATEGORY

    for dataset in DATASETS.values():
        assert dataset_map(dataset.map_name).labels
    assert dataset_map("dsd100").labels["synthesizer"] == "bass"
    assert category_map("moisesdb").category("Violin, fiddle") == "bowed_strings"
    assert category_map("dsd100").category("dog") == UNMAPPED_CATEGORY == "other"
    assert category_map("manifest").category("electric guitar") == "electric guitar"


def test_a_map_file_replaces_the_dataset_map(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('strings = ["Cello", "Violin, fiddle"]  # bowed\n', encoding="utf-8")
    mine = read_map(path)
    assert mine.categories == ("strings",)
    assert mine.category("cello") == "strings" and mine.category("Piano") == "other"


def test_flac_decodes_as_the_wav_of_its_samples(tmp_path):
    samples = np.random.default_rng(0).integers(-30000, 30000, (4000, 2)).astype(np.int16)
    for suffix in ("flac", "wav"):
        soundfile.write(str(tmp_path / f"a.{suffix}"), samples, 22050, subtype="PCM_16")
    flac, wav = decode(str(tmp_path / "a.flac")), decode(str(tmp_path / "a.wav"))
    assert np.array_equal(flac.essentia_mono, wav.essentia_mono)
    assert np.array_equal(flac.pcm_mono.samples, wav.pcm_mono.samples)


def one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_dsd100_tree_given_to_moisesdb_stops_before_any_work(tmp_path):
    for song in ("001 - A", "002 - B"):
        for name in ("bass", "drums", "vocals", "mixture"):
            dataset_trees.audio(tmp_path / "Sources" / "Dev" / song / f"{name}.wav")
    line = one_error_line(run_script("analyze_moisesdb.py", "Sources", cwd=tmp_path))
    assert line.startswith("error: none of the 8 stems under Sources has a MoisesDB category "
                           "as its label (labels found: 001 - A (4), 002 - B (4)); ")
    assert "it looks like dsd100 or musdb18hq (python evaluate.py dsd100 Sources)" in line
    assert "for MoisesDB pass the moisesdb_v0.1 folder" in line
    assert not (tmp_path / "results_moises.csv").exists()


def test_moisesdb_tree_given_to_dsd100_stops_before_any_work(tmp_path):
    song = "0a1b2c3d-uuid"
    for category in ("bass", "drums", "guitar"):
        dataset_trees.audio(tmp_path / "moisesdb_v0.1" / song / category / "f00d.wav")
    line = one_error_line(run_script("analyze_dsd100.py", "moisesdb_v0.1", cwd=tmp_path))
    assert "labels found: f00d (3)" in line
    assert "it looks like moisesdb (python evaluate.py moisesdb moisesdb_v0.1)" in line


def test_symlinked_folders_are_counted_and_followed_on_request(tmp_path):
    dataset_trees.audio(tmp_path / "elsewhere" / "002 - B" / "drums.wav")
    dataset_trees.audio(tmp_path / "Sources" / "Dev" / "001 - A" / "bass.wav")
    os.symlink(tmp_path / "elsewhere" / "002 - B", tmp_path / "Sources" / "Dev" / "002 - B")
    os.symlink(tmp_path / "Sources", tmp_path / "Sources" / "Dev" / "loop")
    stems, found = stems_of("dsd100", str(tmp_path / "Sources"))
    assert [stem[1] for stem in stems] == ["bass"] and found.skipped_links == 2
    stems, found = stems_of("dsd100", str(tmp_path / "Sources"), follow_links=True)
    assert sorted(stem[1] for stem in stems) == ["bass", "drums"] and found.skipped_links == 0


def test_a_tree_of_links_says_how_to_follow_them(tmp_path):
    dataset_trees.audio(tmp_path / "real" / "001 - A" / "bass.wav")
    (tmp_path / "Sources").mkdir()
    os.symlink(tmp_path / "real" / "001 - A", tmp_path / "Sources" / "001 - A")
    line = one_error_line(run_script("analyze_dsd100.py", "Sources", cwd=tmp_path))
    assert line == ("error: no .wav or .mp3 stems found under Sources: 1 symlinked folder(s) "
                    "were not followed (pass --follow-links to include them)")


def test_evaluate_help_lists_every_dataset(tmp_path):
    result = run_script("evaluate.py", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for name, dataset in DATASETS.items():
        assert f"  {name}" in result.stdout
    for option in ("--map FILE", "--split NAME", "--limit N", "--follow-links", "--details"):
        assert option in result.stdout
    line = one_error_line(run_script("evaluate.py", "nosuch", "x", cwd=tmp_path))
    assert "argument DATASET: invalid choice: 'nosuch'" in line


def test_skipped_links_are_reported_before_any_work(tmp_path):
    dataset_trees.audio(tmp_path / "Sources" / "Dev" / "001 - A" / "bass.wav")
    dataset_trees.audio(tmp_path / "elsewhere" / "002 - B" / "drums.wav")
    os.symlink(tmp_path / "elsewhere" / "002 - B", tmp_path / "Sources" / "Dev" / "002 - B")
    result = run_script("analyze_dsd100.py", "Sources", "--checkpoint", "missing.pth",
                        cwd=tmp_path)
    assert result.stderr.splitlines()[0] == (
        "warning: 1 symlinked folder(s) under Sources were not followed (pass --follow-links "
        "to include them)")
    assert result.returncode == 2 and "missing.pth" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("dataset", sorted(dataset_trees.TREES))
def test_the_track_rule_read_from_a_path_gives_the_walkers_group(tmp_path, dataset):
    """What stemeval/scoring/tracks.py reads back from a results CSV's paths (also written the
    Windows way) is each walker's group; layouts whose paths do not say it have no rule."""
    from stemeval.datasets.walker import path_parts

    dataset_trees.TREES[dataset](tmp_path / "tree")
    stems, _ = stems_of(dataset, dataset_trees.input_path(dataset, str(tmp_path / "tree")))
    rule = DATASETS[dataset].track_of
    if dataset in ("medley-solos-db", "manifest"):
        assert rule is None
        return
    for path, _, group, _ in stems:
        assert rule(path_parts(path)) == group
        assert rule(path_parts(path.replace("/", "\\"))) == group
