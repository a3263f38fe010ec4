"""A tagger's rows through the analyze script on generated stems, and the rows its scores imply.

The tree holds DSD100-named stems (tones with a silent gap); the speech graph says "music"
for every stem, so each row comes from the tagger's scores alone. The expected row is
derived from reference scores with the published rules (the 91-label filter, the DSD100 map).
"""

import csv

import numpy as np

from stemeval.audio.decode import decode
from stemeval.audio.silence import trim_silence
from stemeval.datasets import category_map
from stemeval.labels.pick import choose_label
from tests.helpers.cli import run_script
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

RATE = 22050
STEMS = ("a/bass.wav", "a/drums.wav", "b/vocals.wav")


def analyze_tree(base, *args, stems=STEMS):
    """``(rows, excerpts)``: the CSV rows of analyze_dsd100.py (run in this process as its own
    would run it, tests/helpers/cli.py) with ``args`` and each row's
    trimmed excerpt (a ``Pcm``), for stems written below ``base / "tree"``."""
    for index, relative in enumerate(stems):
        path = base / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, concat(tone(1.6 + index / 2, RATE, 180 + 130 * index, seed=index),
                               silence(0.7, RATE), tone(0.5, RATE, 700, seed=index)), RATE)
    music = write_constant_speech_graph(base / "music.pb", logit_for_score(3.0))
    result = run_script("analyze_dsd100.py", "tree", "--quiet", "--workers", "0",
                        "--speech-model", music, "--details", "--output", "rows.csv", *args,
                        cwd=base)
    assert result.returncode == 0, result.stderr
    with open(base / "rows.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(stems)
    return rows, [trim_silence(decode(str(base / row["path"])).pcm_mono) for row in rows]


def expected_row(scores):
    """``(prediction, proposed_label, score)`` of AudioSet ``scores`` when speech is gated off."""
    label, score = choose_label(np.asarray(scores), lambda: False)
    return label, category_map("dsd100").category(label), score
