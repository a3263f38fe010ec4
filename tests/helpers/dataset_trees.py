"""Generated trees in each dataset's layout as distributed, with the awkward cases (a stem not
rendered, hidden files, an unknown class, flac), and the stems each must give."""

import csv
import os

import numpy as np
import soundfile

RATE = 16000


def audio(path, seconds=1.2, seed=0):
    """A short tone with a gap, as wav or flac by the extension (16-bit PCM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.4 * np.sin(2 * np.pi * (220 + 40 * seed) * t)
    wave[len(t) // 2: len(t) // 2 + RATE // 2] = 0
    soundfile.write(str(path), wave, RATE, subtype="PCM_16")
    return path


def text(path, content="not audio\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def musdb18hq(root):
    for name in ("bass", "drums", "vocals", "other", "mixture"):
        audio(root / "train" / "A - One" / f"{name}.wav")
    audio(root / "test" / "B - Two" / "vocals.wav", seed=1)
    audio(root / "test" / "B - Two" / "guitar.wav", seed=2)  # not a MUSDB stem: unknown
    text(root / "test" / "B - Two" / "._vocals.wav")
    text(root / "test" / "B - Two" / "notes.txt")
    return [  # (path below root, label, group, split)
        ("test/B - Two/guitar.wav", "guitar", "B - Two", "test"),
        ("test/B - Two/vocals.wav", "vocals", "B - Two", "test"),
        ("train/A - One/bass.wav", "bass", "A - One", "train"),
        ("train/A - One/drums.wav", "drums", "A - One", "train"),
        ("train/A - One/vocals.wav", "vocals", "A - One", "train"),
    ]


SLAKH_TRACK_1 = """\
UUID: 1a81ae092884234f3264e2f45927f00a
audio_dir: stems
midi_dir: MIDI
normalized: true
stems:
  S00:
    audio_rendered: true
    inst_class: Guitar
    is_drum: false
    midi_program_name: Distortion Guitar
    program_num: 30
  S01:
    audio_rendered: true
    inst_class: Drums
    is_drum: true
    midi_program_name: Drums
    program_num: 128
  S02:
    audio_rendered: false
    inst_class: Piano
    is_drum: false
    program_num: 1
  S03:
    audio_rendered: true
    inst_class: Sound Effects
    is_drum: false
    program_num: 103
  S04:
    audio_rendered: true
    inst_class: Bass
    is_drum: false
    program_num: 33
target_peak: -1.0
"""

SLAKH_TRACK_2 = """\
audio_dir: stems
stems:
  S00:
    audio_rendered: true
    inst_class: Strings (continued)
    is_drum: false
    program_num: 48
  S01:
    audio_rendered: true
    inst_class: Synth Pad
    is_drum: false
    program_num: 88
"""


def slakh2100(root):
    track = root / "train" / "Track00001"
    text(track / "metadata.yaml", SLAKH_TRACK_1)
    text(track / "._metadata.yaml")
    audio(track / "stems" / "S00.flac")
    audio(track / "stems" / "S01.flac", seed=1)
    audio(track / "stems" / "S03.flac", seed=2)  # Sound Effects: not a category
    text(track / "stems" / "._S00.flac")  # S02 not rendered, S04's file missing
    audio(track / "mix.flac", seed=3)
    text(track / "MIDI" / "S00.mid")
    track = root / "validation" / "Track00002"
    text(track / "metadata.yaml", SLAKH_TRACK_2)
    audio(track / "stems" / "S00.flac", seed=4)
    audio(track / "stems" / "S01.flac", seed=5)  # Synth Pad: not a category
    return [
        ("train/Track00001/stems/S00.flac", "Guitar", "Track00001", "train"),
        ("train/Track00001/stems/S01.flac", "Drums", "Track00001", "train"),
        ("validation/Track00002/stems/S00.flac", "Strings (continued)", "Track00002",
         "validation"),
    ]


MEDLEY_UUIDS = ("d07b1fc0-567d-52c2-fef4-239f31c9d40e", "0f4c22e2-1b5d-5b3a-f5b2-53a3cc2ae7d9",
                "5a9c4b1e-2d1f-5f0c-a8a2-1e4c8f1d2b3a", "77777777-2d1f-5f0c-a8a2-1e4c8f1d2b3a")


def medley_solos_db(root):
    a, b, c, unlisted = MEDLEY_UUIDS
    write_csv(root / "annotation" / "Medley-solos-DB_metadata.csv", [
        ["subset", "instrument", "instrument_id", "song_id", "uuid4"],
        ["training", "clarinet", "0", "11", a],
        ["validation", "female singer", "2", "12", b],
        ["test", "banjo", "9", "13", c],  # not a Medley-solos-DB class: unknown
        ["test", "violin", "7", "14", "99999999-0000-0000-0000-000000000000"],  # no audio here
    ])
    audio(root / "audio" / f"Medley-solos-DB_training-0_{a}.wav")
    audio(root / "audio" / f"Medley-solos-DB_validation-2_{b}.wav", seed=1)
    audio(root / "audio" / f"Medley-solos-DB_test-9_{c}.wav", seed=2)
    audio(root / "audio" / f"Medley-solos-DB_test-7_{unlisted}.wav", seed=3)
    text(root / "audio" / f"._Medley-solos-DB_training-0_{a}.wav")
    return [
        (f"audio/Medley-solos-DB_test-9_{c}.wav", "banjo", "13", "test"),
        (f"audio/Medley-solos-DB_training-0_{a}.wav", "clarinet", "11", "training"),
        (f"audio/Medley-solos-DB_validation-2_{b}.wav", "female singer", "12", "validation"),
    ]


def tinysol(root):
    write_csv(root / "TinySOL_metadata.csv", [
        ["Path", "Fold", "Family", "Instrument (abbr.)", "Instrument (in full)",
         "Technique (abbr.)", "Technique (in full)", "Pitch", "Pitch ID", "Dynamics",
         "Dynamics ID", "Instance ID", "String ID", "Needed digital retuning"],
        ["Winds/Flute/ordinario/Fl-ord-C4-mf-N-N.wav", "2", "Winds", "Fl", "Flute", "ord",
         "ordinario", "C4", "60", "mf", "2", "0", "", "FALSE"],
        ["Strings/Contrabass/ordinario/Cb-ord-A2-mf-3c-R.wav", "3", "Strings", "Cb",
         "Contrabass", "ord", "ordinario", "A2", "45", "mf", "2", "0", "3", "TRUE"],
        ["Winds/Kazoo/ordinario/Kz-ord-C4-mf-N-N.wav", "0", "Winds", "Kz", "Kazoo", "ord",
         "ordinario", "C4", "60", "mf", "2", "0", "", "FALSE"],  # unknown class
        ["Keyboards/Accordion/ordinario/Acc-ord-C4-mf-N-N.wav", "1", "Keyboards", "Acc",
         "Accordion", "ord", "ordinario", "C4", "60", "mf", "2", "0", "", "FALSE"],  # no audio
    ])
    audio(root / "TinySOL" / "Winds" / "Flute" / "ordinario" / "Fl-ord-C4-mf-N-N.wav")
    audio(root / "TinySOL" / "Strings" / "Contrabass" / "ordinario" / "Cb-ord-A2-mf-3c-R.wav",
          seed=1)
    audio(root / "TinySOL" / "Winds" / "Kazoo" / "ordinario" / "Kz-ord-C4-mf-N-N.wav", seed=2)
    audio(root / "TinySOL" / "Winds" / "Flute" / "ordinario" / "Fl-ord-D4-mf-N-N.wav", seed=3)
    text(root / "TinySOL" / "Winds" / "Flute" / "ordinario" / "._Fl-ord-C4-mf-N-N.wav")
    return [
        ("TinySOL/Strings/Contrabass/ordinario/Cb-ord-A2-mf-3c-R.wav", "Contrabass",
         "Cb-ord-A2-mf-3c-R", "3"),
        ("TinySOL/Winds/Flute/ordinario/Fl-ord-C4-mf-N-N.wav", "Flute", "Fl-ord-C4-mf-N-N", "2"),
        ("TinySOL/Winds/Kazoo/ordinario/Kz-ord-C4-mf-N-N.wav", "Kazoo", "Kz-ord-C4-mf-N-N", "0"),
    ]


def irmas(root):
    audio(root / "cel" / "008__[cel][nod][cla]0058__1.wav")
    audio(root / "cel" / "008__[cel][nod][cla]0058__2.wav", seed=1)
    audio(root / "voi" / "[voi][pop_roc]0100__1.wav", seed=2)
    audio(root / "xyz" / "[xyz][cla]0001__1.wav", seed=3)  # not an IRMAS instrument: unknown
    text(root / "cel" / "._008__[cel][nod][cla]0058__1.wav")
    text(root / "README.txt")
    return [
        ("cel/008__[cel][nod][cla]0058__1.wav", "cel", "008__[cel][nod][cla]0058", ""),
        ("cel/008__[cel][nod][cla]0058__2.wav", "cel", "008__[cel][nod][cla]0058", ""),
        ("voi/[voi][pop_roc]0100__1.wav", "voi", "[voi][pop_roc]0100", ""),
        ("xyz/[xyz][cla]0001__1.wav", "xyz", "[xyz][cla]0001", ""),
    ]


def manifest(root):
    """The manifest is ``root/lists/stems.csv``; paths are relative to ``root/lists``."""
    audio(root / "audio" / "one.wav")
    audio(root / "audio" / "two.flac", seed=1)
    audio(root / "audio" / "three.wav", seed=2)
    write_csv(root / "lists" / "stems.csv", [
        ["path", "label", "group"],
        ["../audio/two.flac", "Violin, fiddle", "t2"],
        ["../audio/one.wav", "Guitar", "t1"],
        ["../audio/three.wav", "kazoo", ""],  # not an AudioSet label: unknown
    ])
    return [
        ("lists/../audio/one.wav", "Guitar", "t1", ""),
        ("lists/../audio/three.wav", "kazoo", "", ""),
        ("lists/../audio/two.flac", "Violin, fiddle", "t2", ""),
    ]


TREES = {"musdb18hq": musdb18hq, "slakh2100": slakh2100, "medley-solos-db": medley_solos_db,
         "tinysol": tinysol, "irmas": irmas, "manifest": manifest}

UNKNOWN = {"musdb18hq": "guitar", "medley-solos-db": "banjo", "tinysol": "Kazoo",
           "irmas": "xyz", "manifest": "kazoo"}


def input_path(dataset, root):
    """FOLDER for a generated tree: the tree, or the manifest's CSV."""
    return os.path.join(root, "lists", "stems.csv") if dataset == "manifest" else str(root)
