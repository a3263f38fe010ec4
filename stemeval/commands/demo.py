"""A small end-to-end demonstration on generated stems, for a first run without a dataset.

Writes a few synthetic stems into ``demo/`` (both layouts), runs both analyze scripts on them
(with the options given, ``--output`` naming the two files) and scores the results. The exit
status is the first failing command's (2 for bad input, as the analyze scripts). Synthetic tones are not music: the point is to see every step work
once the model files are in place, not to measure anything.

The stems and results go under ``demo/`` in the current folder. ``--distances`` shows
``stemeval distance`` (``setdistance.py``) instead: two MoisesDB-shaped sets of the same songs
in ``demo/sets/`` that differ in one category (set B's guitar stems are clipped hard, a
distortion), each run with ``--embeddings``, then compared per category.
"""

import contextlib
import io
import os
import sys
from pathlib import Path

from stemeval.common.errors import ArgumentParser, UserError, exit_status

# Imported inside the functions that use them, so that what needs none of them starts without them:
# numpy, soundfile, stemeval.commands.distance, stemeval.commands.evaluate (--help, which
# ./run.sh demo --help answers before the environment is built).

DEMO = Path("demo")
SETS = DEMO / "sets"
RATE = 44100


def _bass(t, transpose=1.0):
    import numpy as np

    return 0.5 * np.sign(np.sin(2 * np.pi * 55 * transpose * t)) * np.exp(-3 * (t % 0.5))


def _drums(t, rng):
    import numpy as np

    beat = t % 0.5
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-30 * beat)
    hat = rng.standard_normal(len(t)) * np.exp(-60 * (t % 0.25)) * 0.3
    return 0.6 * kick + hat


def _voice(t, transpose=1.0):
    import numpy as np

    pitch = 220 * transpose * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    return 0.3 * sum(np.sin(k * phase) / k for k in range(1, 8)) * (np.sin(np.pi * t / 2) ** 2)


def _guitar(t, rng, transpose=1.0):
    import numpy as np

    period = int(RATE / (196 * transpose))
    out = np.zeros(len(t))
    buffer = rng.uniform(-1, 1, period)
    for i in range(len(t)):
        out[i] = buffer[i % period]
        buffer[i % period] = 0.996 * 0.5 * (buffer[i % period] + buffer[(i + 1) % period])
        if i % RATE == 0:
            buffer = rng.uniform(-1, 1, period)
    return 0.5 * out


def _stems(seconds=8.0, seed=0, transpose=1.0):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return {"bass": _bass(t, transpose), "drums": _drums(t, rng), "vocals": _voice(t, transpose),
            "guitar": _guitar(t, rng, transpose)}


def write_two_sets(songs=8):
    """Two MoisesDB-shaped sets in ``demo/sets/``, ``a`` and ``b``, of the same ``songs``
    songs (each its own key and noise), equal but for the guitar stems, clipped hard in
    ``b``; returns their folders."""
    import numpy as np
    import soundfile

    folders = SETS / "a", SETS / "b"
    for song in range(songs):
        for name, audio in _stems(seed=song, transpose=2 ** (song / 12)).items():
            for folder in folders:
                if folder.name == "b" and name == "guitar":
                    audio = np.clip(6 * audio, -0.4, 0.4)
                (folder / f"song{song}" / name).mkdir(parents=True, exist_ok=True)
                soundfile.write(folder / f"song{song}" / name / f"{name}.wav", audio, RATE,
                                subtype="PCM_16")
    return folders


def write_demo_trees():
    """Write the demo stems; returns the DSD100 Sources and MoisesDB folders."""
    import soundfile

    stems = _stems()
    dsd = DEMO / "DSD100" / "Sources" / "Dev" / "001 - Demo - Tones"
    moises = DEMO / "moisesdb" / "moisesdb_v0.1" / "demo-song"
    dsd.mkdir(parents=True, exist_ok=True)
    for name in ("bass", "drums", "vocals"):
        soundfile.write(dsd / f"{name}.wav", stems[name], RATE, subtype="PCM_16")
    soundfile.write(dsd / "mixture.wav", sum(stems.values()) / 4, RATE, subtype="PCM_16")
    for name, audio in stems.items():
        (moises / name).mkdir(parents=True, exist_ok=True)
        soundfile.write(moises / name / f"{name}-1.wav", audio, RATE, subtype="PCM_16")
    return DEMO / "DSD100" / "Sources", DEMO / "moisesdb" / "moisesdb_v0.1"


def build_parser(prog="./run.sh demo"):
    parser = ArgumentParser(
        prog=prog,
        description="Write a few synthetic stems in both layouts into demo/, run both "
                    "evaluations on them and score the results. Every other option goes to "
                    "both evaluations: see ./run.sh dsd100 --help.")
    parser.add_argument("--output", metavar="PATH",
                        help="name the two results files after PATH: PATH_dsd100.csv and "
                             "PATH_moises.csv (default: demo/results_dsd100.csv and "
                             "demo/results_moises.csv)")
    parser.add_argument("--embeddings", metavar="PATH",
                        help="also save each evaluation's embeddings, named after PATH as "
                             "--output is: PATH_dsd100.npz and PATH_moises.npz")
    parser.add_argument("--distances", action="store_true",
                        help="show setdistance.py instead: two sets of the same songs in "
                             "demo/sets/, set b's guitar stems distorted, each evaluated with "
                             "--embeddings (demo/sets/a.npz, b.npz), then compared per category")
    return parser


def output_names(output, extension=".csv"):
    """The two files of the two evaluations, named after ``output`` (PATH_dsd100.csv and
    PATH_moises.csv); in demo/ when it is None."""
    if output is None:
        return DEMO / f"results_dsd100{extension}", DEMO / f"results_moises{extension}"
    root, given = os.path.splitext(output)
    return (Path(f"{root}_dsd100{given or extension}"),
            Path(f"{root}_moises{given or extension}"))


def show_distances(options):
    """The ``--distances`` demo: both sets evaluated with ``options``, then compared."""
    from stemeval.commands import distance, evaluate

    for folder in write_two_sets():
        print(f"demo set written in {folder}", file=sys.stderr)
        with contextlib.redirect_stdout(io.StringIO()):
            status = exit_status(lambda: evaluate.main(
                [str(folder), "--output", f"{folder}.csv", "--embeddings", f"{folder}.npz",
                 *options], dataset="moisesdb"))
        if status != 0:
            return status
    return exit_status(lambda: distance.main([f"{SETS}/a.npz", f"{SETS}/b.npz", "--by",
                                               "category", "--json", f"{SETS}/d.json"]))


def main(argv=None, prog="./run.sh demo"):
    """The demo; returns the first failing command's exit status, else 0."""
    args, options = build_parser(prog).parse_known_args(argv)
    if args.distances:
        if args.output or args.embeddings:
            raise UserError("--distances writes its files in demo/sets/: drop --output and "
                            "--embeddings")
        return show_distances(options + ["--quiet"] * (not {"--quiet", "--verbose"} &
                                                      set(options)))
    if not {"--quiet", "--verbose"} & set(options):
        options.append("--verbose")
    from stemeval.commands import evaluate

    dsd, moises = write_demo_trees()
    print(f"demo stems written under {DEMO}", file=sys.stderr)
    embeddings = (output_names(args.embeddings, ".npz") if args.embeddings is not None
                  else (None, None))
    for dataset, folder, output, saved in zip(("dsd100", "moisesdb"), (dsd, moises),
                                              output_names(args.output), embeddings):
        argv = [str(folder), "--output", str(output),
                *(["--embeddings", str(saved)] if saved else []), *options]
        status = exit_status(lambda: evaluate.main(  # each run ends with its scores
            argv, prog=f"stemeval evaluate {dataset}", dataset=dataset))
        if status != 0:
            return status
    return 0

