"""The analyze scripts, run for real on generated trees in both layouts (in this process as
their scripts run them, ``tests/helpers/cli.py``; the published branch in a process of its own).

Random AST weights with a biased head make ``Speech`` the top label and ``Drum kit`` the
next instrument; constant speech graphs force each branch of the speech gate. The expected
rows are written out here from the tree's layout, independently of the code under test.
"""

import csv
import io
import subprocess
import sys

import pytest
from pydub import AudioSegment

from stemeval.labels.audioset import AUDIOSET_LABELS
from tests.helpers import published
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.cli import ROOT, run_script
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

RATE = 22050

SPEECH_THEN_DRUM_KIT = {AUDIOSET_LABELS.index("Speech"): 10.0,
                        AUDIOSET_LABELS.index("Drum kit"): 6.0}


def _music(seed):
    return concat(tone(1.2, RATE, 200 + 50 * seed, seed=seed), silence(0.7, RATE),
                  tone(0.9, RATE, 300, seed=seed + 1))


def _write_mp3(path, seed):
    wav = write_wav(path.with_suffix(".tmp.wav"), _music(seed), RATE)
    AudioSegment.from_wav(str(wav)).export(str(path), format="mp3")
    wav.unlink()


def _make(tree, files):
    """Create ``files`` {relative path: kind} below ``tree``; kinds: music, mp3, silent, text."""
    for index, (relative, kind) in enumerate(sorted(files.items())):
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "music":
            write_wav(path, _music(index), RATE)
        elif kind == "mp3":
            _write_mp3(path, index)
        elif kind == "silent":
            write_wav(path, silence(2.0, RATE), RATE)
        else:
            path.write_text("not audio\n")


DSD100_FILES = {
    "Dev/001 - A, Song/bass.wav": "music",
    "Dev/001 - A, Song/drums.wav": "music",
    "Dev/001 - A, Song/vocals.wav": "music",
    "Dev/001 - A, Song/other.wav": "music",
    "Dev/001 - A, Song/mixture.wav": "music",
    "Dev/001 - A, Song/._bass.wav": "text",
    "Dev/001 - A, Song/notes.txt": "text",
    "Test/002 - B/BASS.WAV": "music",
    "Test/002 - B/drums.mp3": "mp3",
    "Test/002 - B/vocals.wav": "silent",
}
# (path below the tree, label, is it the silent stem)
DSD100_STEMS = [
    ("Dev/001 - A, Song/bass.wav", "bass", False),
    ("Dev/001 - A, Song/drums.wav", "drums", False),
    ("Dev/001 - A, Song/vocals.wav", "vocals", False),
    ("Test/002 - B/BASS.WAV", "BASS", False),
    ("Test/002 - B/drums.mp3", "drums", False),
    ("Test/002 - B/vocals.wav", "vocals", True),
]

MOISES_FILES = {
    "s1/bass/0a.wav": "music",
    "s1/drums/0b.WAV": "music",
    "s1/guitar/mix.wav": "music",
    "s1/other/0c.wav": "music",
    "s1/other/nested/0d.wav": "music",
    "s1/vocals/.0e.wav": "music",
    "s1/piano/readme.txt": "text",
    "s2/other_keys/0f.mp3": "mp3",
    "s2/vocals/0g.wav": "silent",
}
MOISES_STEMS = [
    ("s1/bass/0a.wav", "bass", False),
    ("s1/drums/0b.WAV", "drums", False),
    ("s1/guitar/mix.wav", "guitar", False),
    ("s1/other/nested/0d.wav", "nested", False),
    ("s2/other_keys/0f.mp3", "other_keys", False),
    ("s2/vocals/0g.wav", "vocals", True),
]

LAYOUTS = {
    "dsd100": ("analyze_dsd100.py", DSD100_FILES, DSD100_STEMS),
    "moisesdb": ("analyze_moisesdb.py", MOISES_FILES, MOISES_STEMS),
}

# speech score forced by the graph -> (prediction, proposed label) of a stem with audio;
# the silent stem is gated before trimming, so only the speech branch gives it a row.
BRANCHES = {
    "gated": (90.0, ("speech", "speech")),
    "speech_allowed": (30.0, ("speech", "other")),
    "speech_passed_over": (3.0, ("drum kit", "drums")),
}


def expected_csv(stems, branch):
    prediction = BRANCHES[branch][1]
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["label", "path", "prediction", "proposed_label"])
    for relative, label, silent in stems:
        row = ("error", "error") if silent and branch != "gated" else prediction
        writer.writerow([label, "tree/" + relative, *row])
    return out.getvalue()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "audio_mdl.pth"
    return save_original_checkpoint(random_model(label_bias=SPEECH_THEN_DRUM_KIT), path)


def run_cli(script, *args, cwd, process=False):
    """The script run in this process (``run_script``), or with ``process`` in its own."""
    if process:
        return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd,
                              capture_output=True, text=True, timeout=600)
    return run_script(script, *args, cwd=cwd)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_cli_writes_expected_rows(tmp_path, checkpoint, layout, branch):
    script, files, stems = LAYOUTS[layout]
    _make(tmp_path / "tree", files)
    graph = write_constant_speech_graph(tmp_path / "speech.pb",
                                        logit_for_score(BRANCHES[branch][0]))
    # the published branch in a process of its own, as users run it; the others in this one
    process = branch == "speech_passed_over"
    result = run_cli(script, "tree", "--checkpoint", checkpoint, "--speech-model", graph,
                     "--output", "out.csv", "--quiet", cwd=tmp_path, process=process)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_bytes().decode() == expected_csv(stems, branch)
    failed = [line for line in result.stderr.splitlines()
              if line.startswith("warning: stem failed: ")]
    assert len(failed) == (0 if branch == "gated" else 1)
    assert "error:" not in result.stderr
    # The run ends as the published one did: where the rows are, then their score.
    score = run_cli("computeaccuracy.py", "out.csv", cwd=tmp_path, process=process)
    assert score.stdout == published.computeaccuracy([str(tmp_path / "out.csv")])[0]
    assert result.stdout == "Analysis complete. Results written to 'out.csv'.\n" + score.stdout


def test_workers_and_batches_write_the_same_rows(tmp_path):
    """Threads and AST batches change the speed, never the rows."""
    from tests.helpers.tf_graphs import write_vggish_graph

    files = {f"s{song}/{name}/{song}{name}.wav": "music"
             for song in range(4) for name in ("bass", "drums", "vocals")}
    files["s9/vocals/quiet.wav"] = "silent"
    _make(tmp_path / "tree", files)
    checkpoint = save_original_checkpoint(random_model(seed=5), tmp_path / "ast.pth")
    graph = write_vggish_graph(tmp_path / "speech.pb", seed=3)
    outputs = []
    for workers, batch in (("0", "1"), ("2", "4"), ("1", "3")):
        output = f"w{workers}b{batch}.csv"
        result = run_cli("analyze_moisesdb.py", "tree", "--checkpoint", checkpoint,
                         "--speech-model", graph, "--output", output, "--quiet",
                         "--workers", workers, "--batch-size", batch, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs.append((tmp_path / output).read_bytes())
    assert outputs[0].count(b"\r\n") == 14
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
