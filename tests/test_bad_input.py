"""Bad input never crashes, hangs or misleads, through the command line: malformed dataset
metadata, byte-order marks, FIFOs, float wav, truncated embeddings, probes that cannot be
split, a speech model that is a folder, sweep limits, missing optional packages and a
manifest listing a file twice. Each is one ``error:`` line and exit status 2 before any
work, or, for one bad stem, a row and the run goes on."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import dataset_trees
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.cli import run_script
from tests.helpers.python_hooks import hooked_env
from tests.helpers.signals import tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
BOM = "\ufeff"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return (save_original_checkpoint(random_model(), folder / "audio_mdl.pth"),
            write_constant_speech_graph(folder / "speech.pb", logit_for_score(5.0)))


def run(script, *args, cwd, env=None, timeout=300):
    """The script run in this process as its own would run it, or, with ``env`` (packages
    hidden at start-up), in a process of its own."""
    if env is None:
        return run_script(script, *args, cwd=cwd)
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def one_error(result, *fragments):
    """The run stopped with one ``error:`` line, its last, holding ``fragments`` (notes and
    warnings may come before it), and no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), result.stderr
    assert [line for line in lines if line.startswith("error")] == lines[-1:], result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


def rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- Slakh2100 ---------------------------------------------------------------------------

SLAKH_META = """audio_dir: stems
stems:
  S00:
    inst_class: Guitar
    is_drum: false
    audio_rendered: true
"""


def slakh_track(root, metadata=SLAKH_META):
    track = root / "train" / "Track00001"
    dataset_trees.text(track / "metadata.yaml", metadata)
    dataset_trees.audio(track / "stems" / "S00.flac")
    return track


@pytest.mark.parametrize("metadata, fragments", [
    ("stems:\n  S00: Guitar\n", ("stem S00 must be a table", "'Guitar'")),
    ("stems:\n  0:\n    inst_class: Guitar\n", ("stem 0 must be named as Slakh names stems",)),
    ("audio_dir: 5\nstems:\n  S00:\n    inst_class: Guitar\n",
     ("audio_dir must be the name of the track's audio folder", "not 5")),
    ("stems:\n  S00: [inst_class: Guitar\n  S01: x\n",
     ("not valid YAML (", "at line 3, column")),
])
def test_slakh_metadata_of_the_wrong_shape_is_one_line(tmp_path, metadata, fragments):
    slakh_track(tmp_path / "slakh", metadata)
    one_error(run("evaluate.py", "slakh2100", "slakh", cwd=tmp_path),
              str(Path("slakh/train/Track00001/metadata.yaml")), *fragments)


def test_slakh_without_metadata_says_so(tmp_path):
    dataset_trees.audio(tmp_path / "slakh" / "train" / "Track00001" / "stems" / "S00.flac")
    one_error(run("evaluate.py", "slakh2100", "slakh", cwd=tmp_path),
              "no metadata.yaml below slakh")


def test_slakh_with_its_audio_folder_renamed_says_which_folder_is_missing(tmp_path):
    track = slakh_track(tmp_path / "slakh")
    (track / "stems").rename(track / "audio")
    one_error(run("evaluate.py", "slakh2100", "slakh", cwd=tmp_path),
              "no .flac stems found under slakh: skipped 1 Slakh stems whose track has no "
              "audio folder", str(Path("slakh/train/Track00001/stems")) + " is missing")


def test_slakh_reads_upper_case_extensions_and_metadata_with_a_bom(tmp_path, models):
    track = slakh_track(tmp_path / "slakh", BOM + SLAKH_META)
    (track / "stems" / "S00.flac").rename(track / "stems" / "S00.FLAC")
    result = run("evaluate.py", "slakh2100", "slakh", "--checkpoint", models[0],
                 "--speech-model", models[1], "--quiet", "--output", "out.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [(row["label"], row["path"]) for row in rows(tmp_path / "out.csv")] == [
        ("Guitar", str(Path("slakh/train/Track00001/stems/S00.FLAC")))]


# --- Metadata and manifests --------------------------------------------------------------

def test_tinysol_metadata_with_a_short_row_names_its_line(tmp_path):
    dataset_trees.tinysol(tmp_path / "t")
    metadata = tmp_path / "t" / "TinySOL_metadata.csv"
    metadata.write_text(metadata.read_text() + "Winds/Flute/ordinario/Fl-ord-D4-mf-N-N.wav,2\n")
    one_error(run("evaluate.py", "tinysol", "t", cwd=tmp_path),
              "TinySOL_metadata.csv, line 6: the row ends before the column(s) "
              "Instrument (in full)")


@pytest.mark.parametrize("dataset, metadata", [
    ("tinysol", "TinySOL_metadata.csv"),
    ("medley-solos-db", "annotation/Medley-solos-DB_metadata.csv"),
    ("manifest", "lists/stems.csv")])
def test_metadata_with_a_byte_order_mark_is_read(tmp_path, dataset, metadata):
    """Excel's UTF-8 CSVs start with a BOM; the run then goes as far as the weights (missing
    here), so the metadata was read."""
    dataset_trees.TREES[dataset](tmp_path / "d")
    path = tmp_path / "d" / metadata
    path.write_bytes(BOM.encode() + path.read_bytes())
    one_error(run("evaluate.py", dataset, dataset_trees.input_path(dataset, tmp_path / "d"),
                  "--checkpoint", "none.pth", cwd=tmp_path), "none.pth")


def test_a_map_with_a_byte_order_mark_is_read(tmp_path):
    dataset_trees.manifest(tmp_path / "d")
    (tmp_path / "map.toml").write_text(BOM + 'guitar = ["Guitar"]\nviolin = ["Violin, fiddle"]\n',
                                       encoding="utf-8")
    one_error(run("evaluate.py", "manifest", "d/lists/stems.csv", "--map", "map.toml",
                  "--checkpoint", "none.pth", cwd=tmp_path), "none.pth")


def test_a_manifest_listing_a_file_twice_is_refused_with_both_lines(tmp_path):
    dataset_trees.manifest(tmp_path / "d")
    with open(tmp_path / "d" / "lists" / "stems.csv", "a", encoding="utf-8") as handle:
        handle.write("../audio/one.wav,Violin,t1\n")
    one_error(run("evaluate.py", "manifest", "d/lists/stems.csv", cwd=tmp_path),
              "lines 3 and 5 list the same file", "list each stem once")


@pytest.mark.parametrize("label, shown", [("Gui\ntar", "Gui tar"), ("Gui\x00tar", "Gui\\x00tar")])
def test_a_label_holding_a_newline_or_a_nul_stays_on_one_line(tmp_path, label, shown):
    dataset_trees.audio(tmp_path / "one.wav")
    dataset_trees.write_csv(tmp_path / "stems.csv", [["path", "label"], ["one.wav", label]])
    one_error(run("evaluate.py", "manifest", "stems.csv", cwd=tmp_path), shown)


# --- Files that are not regular, float wav ---------------------------------------------------

def test_a_fifo_stem_is_skipped_and_a_float64_wav_is_decoded(tmp_path, models):
    """Reading a FIFO named drums.wav would wait forever; a float wav used to be `KeyError: 8`."""
    song = tmp_path / "Sources" / "Dev" / "song"
    song.mkdir(parents=True)
    write_wav(song / "bass.wav", tone(1.5, 16000), 16000)
    soundfile.write(str(song / "vocals.wav"), tone(1.5, 16000, 330), 16000, subtype="DOUBLE")
    os.mkfifo(song / "drums.wav")
    result = run("analyze_dsd100.py", "Sources", "--checkpoint", models[0], "--speech-model",
                 models[1], "--quiet", "--details", "--output", "out.csv", cwd=tmp_path,
                 timeout=240)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 file(s) that are not regular files" in result.stderr
    found = rows(tmp_path / "out.csv")
    assert [Path(row["path"]).name for row in found] == ["bass.wav", "vocals.wav"]
    assert [row["error"] for row in found] == ["", ""]


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_wav_views_are_essentias_floats_and_pydubs_32_bit_pcm(tmp_path, subtype):
    """Essentia's loader gives a float wav's own floats; pydub holds a 32-bit float wav as
    ffmpeg's 32-bit PCM (for 64-bit float, which pydub cannot hold, the same rule)."""
    from pydub import AudioSegment

    from stemeval.audio.decode import decode
    from stemeval.common.essentia_setup import essentia_standard

    rng = np.random.default_rng(0)
    frames = np.clip(rng.normal(0, 0.4, (16000, 2)), -1.2, 1.2)
    soundfile.write(str(tmp_path / "f.wav"), frames, 16000, subtype=subtype)
    soundfile.write(str(tmp_path / "f32.wav"), frames, 16000, subtype="FLOAT")
    decoded = decode(str(tmp_path / "f.wav"))
    loader = essentia_standard().MonoLoader(filename=str(tmp_path / "f.wav"), sampleRate=16000)
    np.testing.assert_allclose(decoded.essentia_mono, loader(), rtol=0, atol=1e-7)
    pydub = AudioSegment.from_file(str(tmp_path / "f32.wav")).set_channels(1)
    assert decoded.pcm_mono.sample_width == pydub.sample_width == 4
    expected = np.frombuffer(pydub.raw_data, dtype=np.int32)
    if subtype == "FLOAT":
        np.testing.assert_array_equal(decoded.pcm_mono.samples, expected)
    else:  # the float64 samples round to the float32 file's within one step of 2**-24
        assert np.abs(decoded.pcm_mono.samples.astype(np.int64) - expected).max() <= 2 ** 7


def test_a_fifo_listed_in_a_manifest_is_skipped(tmp_path, models):
    dataset_trees.audio(tmp_path / "one.wav")
    os.mkfifo(tmp_path / "two.wav")
    dataset_trees.write_csv(tmp_path / "stems.csv", [["path", "label"], ["one.wav", "Guitar"],
                                                     ["two.wav", "Guitar"]])
    result = run("evaluate.py", "manifest", "stems.csv", "--checkpoint", models[0],
                 "--speech-model", models[1], "--quiet", "--output", "out.csv", cwd=tmp_path,
                 timeout=240)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 file(s) that are not regular files" in result.stderr
    assert [row["path"] for row in rows(tmp_path / "out.csv")] == [str(Path("one.wav"))]


def test_a_speech_model_folder_is_refused_not_a_segfault(tmp_path):
    # in a process of its own: a segfault would end the test run itself
    (tmp_path / "graph").mkdir()
    result = subprocess.run([sys.executable, "-m", "stemeval", "weights", "status", "speech-model",
                             "--speech-model", str(tmp_path / "graph")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "check failed: it is a folder, not a .pb graph file" in result.stdout


# --- Embeddings and probes ---------------------------------------------------------------

def embeddings(path, spec, tagger="ast"):
    """An embeddings file of ``spec``: (track, category, stems) triples."""
    rng = np.random.default_rng(0)
    stems = [(f"{track}/{label}{index}.wav", label, track)
             for track, label, count in spec for index in range(count)]
    np.savez(path, embeddings=rng.normal(size=(len(stems), 8)).astype(np.float32),
             paths=np.array([s[0] for s in stems]), labels=np.array([s[1] for s in stems]),
             groups=np.array([s[2] for s in stems]), tagger=np.array(tagger))
    return stems


def test_a_truncated_npz_is_one_line(tmp_path):
    embeddings(tmp_path / "e.npz", [("t1", "bass", 3), ("t2", "bass", 3)])
    (tmp_path / "cut.npz").write_bytes((tmp_path / "e.npz").read_bytes()[:200])
    one_error(run("probe.py", "cut.npz", cwd=tmp_path),
              "cut.npz: not a readable embeddings .npz file")


def test_resuming_onto_a_truncated_npz_is_one_line(tmp_path, models):
    dataset_trees.audio(tmp_path / "Sources" / "Dev" / "s" / "bass.wav")
    (tmp_path / "e.npz").write_bytes(b"PK\x03\x04 cut short")
    (tmp_path / "out.csv").write_text("label,path,prediction,proposed_label\r\n")
    one_error(run("analyze_dsd100.py", "Sources", "--checkpoint", models[0], "--speech-model",
                  models[1], "--output", "out.csv", "--embeddings", "e.npz", "--resume",
                  "--quiet", cwd=tmp_path), "e.npz: not a readable embeddings .npz file")


def test_categories_tied_to_their_tracks_are_named(tmp_path):
    embeddings(tmp_path / "e.npz", [("t1", "bass", 3), ("t2", "bass", 3), ("t3", "drums", 3),
                                    ("t4", "drums", 3)])
    one_error(run("probe.py", "e.npz", "--folds", "2", cwd=tmp_path),
              "categories bass, drums cannot be separated by track",
              "each of their tracks holds no other category")


def test_a_category_of_one_stem_is_left_out_with_a_warning(tmp_path):
    spec = [(f"t{n}", label, 2) for n in range(1, 7) for label in ("bass", "drums")]
    embeddings(tmp_path / "e.npz", spec + [("t1", "piano", 1)])
    result = run("probe.py", "e.npz", "--folds", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("warning: e.npz: left out 1 category with a single stem, which a "
                             "probe can never both train on and test: piano\n")
    assert "24 stems, 6 tracks, 2 categories" in result.stdout


def results_of(path, stems, tagger, npz):
    """A results CSV of ``stems`` and its sidecar, as the run with ``--embeddings npz`` writes."""
    dataset_trees.write_csv(path, [["label", "path", "prediction", "proposed_label"]] +
                            [[label, stem, "x", label] for stem, label, _ in stems])
    Path(f"{path}.json").write_text(json.dumps({"tagger": tagger, "options": {
        "embeddings": npz, "output": str(path)}}))


def test_zero_shot_csvs_swapped_between_taggers_are_refused(tmp_path):
    spec = [(f"t{n}", label, 2) for n in range(1, 7) for label in ("bass", "drums")]
    stems = embeddings(tmp_path / "ast.npz", spec, "ast")
    embeddings(tmp_path / "clap.npz", spec, "clap")
    results_of(tmp_path / "ast.csv", stems, "ast", "ast.npz")
    results_of(tmp_path / "clap.csv", stems, "clap", "clap.npz")
    ok = run("probe.py", "ast.npz", "clap.npz", "--zero-shot", "ast.csv", "clap.csv",
             "--folds", "3", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    one_error(run("probe.py", "ast.npz", "clap.npz", "--zero-shot", "clap.csv", "ast.csv",
                  "--folds", "3", cwd=tmp_path),
              "clap.csv: its sidecar says tagger clap wrote it, but ast.npz holds embeddings "
              "of ast")
    results_of(tmp_path / "other.csv", stems, "ast", "ast-run2.npz")
    one_error(run("probe.py", "ast.npz", "--zero-shot", "other.csv", "--folds", "3",
                  cwd=tmp_path), "other.csv: its run saved its embeddings as ast-run2.npz, "
                                 "not ast.npz")


# --- Sweeps ------------------------------------------------------------------------------

SWEEP = """output = "out"
taggers = ["ast"]
conditions = ["clean"]
[datasets.toy]
layout = "moisesdb"
folder = "tree"
{extra}
"""


@pytest.mark.parametrize("limit, said", [("0", "not 0"), ("-1", "not -1"), ("true", "not True")])
def test_a_sweep_limit_must_be_a_positive_count(tmp_path, limit, said):
    dataset_trees.audio(tmp_path / "tree" / "s1" / "bass" / "a.wav")
    (tmp_path / "sweep.toml").write_text(SWEEP.format(extra=f"limit = {limit}"))
    one_error(run("sweep.py", "sweep.toml", cwd=tmp_path),
              "sweep.toml: datasets.toy: limit must be a whole number of stems, 1 or more", said)


def test_a_sweep_config_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "sweep.toml").write_text(BOM + SWEEP.format(extra=""), encoding="utf-8")
    one_error(run("sweep.py", "sweep.toml", cwd=tmp_path),
              "sweep.toml: datasets.toy: tree: no such folder")


# --- Missing optional packages -----------------------------------------------------------

@pytest.mark.parametrize("script, args, package, what", [
    ("analyze_dsd100.py", ("Sources", "--deform", "noise:snr=5"), "audiomentations", "--deform"),
    ("analyze_dsd100.py", ("Sources", "--deform", "mp3:bitrate=64"), "pydub", "--deform"),
    ("sweep.py", ("sweep.toml",), "audiomentations", "sweep.py"),
    ("sweep.py", ("sweep.toml", "--ray"), "ray", "--ray"),
])
def test_a_missing_optional_package_is_named_with_its_requirements_file(
        tmp_path, script, args, package, what):
    dataset_trees.audio(tmp_path / "Sources" / "Dev" / "s" / "bass.wav")
    dataset_trees.audio(tmp_path / "tree" / "s1" / "bass" / "a.wav")
    # a deformed condition: a sweep of clean stems alone needs no audiomentations
    (tmp_path / "sweep.toml").write_text(SWEEP.format(extra="").replace(
        '["clean"]', '["clean", "noise:snr=5"]'))
    one_error(run(script, *args, cwd=tmp_path, env=hooked_env(tmp_path / "hooks", (package,))),
              f"{what} needs the Python package {package}, which is not installed: pip install "
              f"-r requirements.txt")
