"""Nothing lost, round two (issue 36): a full disk, killed workers and the misleading cases,
each one ``error:`` line and exit status 2 (or a note, or a row), no traceback, a message
naming the real cause.

Before: a full disk gave tracebacks ending ``OSError: [Errno 28]`` (exit 1), a resume on it
a traceback writing the lock file, and numpy writing a log could lose a short write without
a word, so a resume then refused the file; workers killed with SIGKILL printed
``Terminated`` tracebacks; ``--oracle`` on rows all gated as speech blamed the folds,
``probe.py`` on single stems asked for ``--folds 0``; ``ftp://`` weights "did not exist";
ADPCM WAVs and a float WAV whose name is not UTF-8 became error rows; a Slakh class with no
name, a Medley-solos uuid listed twice and a path too long were passed over without a fit
note; a newline in the output's name split the final message.

The runs are the analyze script's, in this process (``tests/helpers/cli.py``), on a small
random AST; the full disk is a write that raises ENOSPC (and a real small tmpfs where this
user may mount one).
"""

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from stemeval.commands import probe as probe_command
from stemeval.commands import weights as weights_command
from stemeval.common import errors
from stemeval.common.errors import exit_status
from stemeval.datasets import DATASETS
from stemeval.datasets.selection import find_stems
from tests.helpers import dataset_trees
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.cli import run_script
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
STEMS = ("bass", "drums", "vocals")
DISK_FULL = "the disk is full (No space left on device)"


def song(folder, seed, subtype="PCM_16", stems=STEMS):
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(stems):
        write_wav(folder / f"{name}.wav",
                  concat(tone(0.9, RATE, 150 + 70 * index + 9 * seed, seed=seed),
                         silence(0.4, RATE), tone(0.3, RATE, 600, seed=index)), RATE, subtype)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A DSD100 tree of 2 songs, random AST weights, a speech graph that says music and one
    that says speech, and ``full.csv``: the tree's rows with embeddings (the tree named by
    its absolute path, as the runs in other folders name it)."""
    base = tmp_path_factory.mktemp("nothing_lost")
    for seed in range(2):
        song(base / "tree" / "Dev" / f"00{seed} - S", seed)
    save_original_checkpoint(random_model(seed=3), base / "ast.pth")
    write_constant_speech_graph(base / "speech.pb", logit_for_score(5.0))
    write_constant_speech_graph(base / "speaking.pb", logit_for_score(90.0))
    assert analyze(base, "--output", "full.csv", "--embeddings", "full.npz",
                   folder=base / "tree").returncode == 0
    return base


def analyze(base, *args, cwd=None, speech="speech.pb", folder="tree"):
    """analyze_dsd100.py in this process; a CompletedProcess."""
    return run_script("analyze_dsd100.py", folder, "--checkpoint", base / "ast.pth",
                      "--speech-model", base / speech, "--quiet", "--workers", "0",
                      "--batch-size", "1",  # a resume batches no stem otherwise: exact scores
                      *map(str, args), cwd=cwd or base)


def refused(result):
    """The one ``error:`` line of a command that stopped (exit status 2, no traceback)."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and result.stderr.strip().endswith(lines[0]), result.stderr
    return lines[0][len("error: "):]


def arrays(path):
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


def assert_same_run(base, folder):
    """``folder``'s out.csv, embeddings and kept scores are ``full.csv``'s."""
    assert (folder / "out.csv").read_bytes() == (base / "full.csv").read_bytes()
    for mine, theirs in (("out.npz", "full.npz"), ("out.csv.scores.npz", "full.csv.scores.npz")):
        found, expected = arrays(folder / mine), arrays(base / theirs)
        assert sorted(found) == sorted(expected)
        for name, value in expected.items():
            if name != "identity":
                assert np.array_equal(found[name], value, equal_nan=value.dtype.kind == "f")
    assert not list(folder.glob("*.part")) and not list(folder.glob("*.lock"))


def full_disk_after(calls):
    """A write that raises ENOSPC from its ``calls``-th call on, as a full disk does."""
    count = 0

    def write(real):
        def hooked(*args, **kwargs):
            nonlocal count
            count += 1
            if count >= calls:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args, **kwargs)
        return hooked
    return write


@pytest.mark.parametrize("where, calls", [("kept scores log", 5), ("embeddings log", 4),
                                          ("assembling", 1)])
def test_a_full_disk_is_one_line_and_a_resume_goes_on(base, tmp_path, monkeypatch, where,
                                                      calls):
    from stemeval.runfiles import embeddings, record_log

    hook = full_disk_after(calls)
    if where == "kept scores log":
        monkeypatch.setattr(record_log, "append", hook(record_log.append))
    elif where == "embeddings log":
        monkeypatch.setattr(embeddings, "_append", hook(embeddings._append))
    else:
        monkeypatch.setattr(embeddings, "save_npz", hook(embeddings.save_npz))
    args = ["--output", "out.csv", "--embeddings", "out.npz"]
    message = refused(analyze(base, *args, cwd=tmp_path, folder=base / "tree"))
    assert DISK_FULL in message and message.endswith(
        "what was written is kept: free some space, then the same command goes on from there "
        "(an evaluation run with --resume, a sweep as it is)")
    written = (tmp_path / "out.csv").read_bytes()
    assert (base / "full.csv").read_bytes().startswith(written) and written.count(b"\n") >= 2
    monkeypatch.undo()
    result = analyze(base, *args, "--resume", cwd=tmp_path, folder=base / "tree")
    assert result.returncode == 0, result.stderr
    assert_same_run(base, tmp_path)


def test_a_full_lock_file_is_one_line(base, tmp_path, monkeypatch):
    """Before: a resume on a full disk was a traceback writing the lock file."""
    import builtins

    real = builtins.open

    def full_for_locks(file, mode="r", *args, **kwargs):
        if str(file).endswith(".lock") and "w" in mode:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full_for_locks)
    message = refused(analyze(base, "--output", "out.csv", cwd=tmp_path, folder=base / "tree"))
    assert message == (f"cannot write the lock file out.csv.lock: {DISK_FULL}; nothing else "
                       f"was written: free some space, then run the same command again")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 200 kB tmpfs at tmp_path/full (only where this user may mount one), unmounted
    afterwards."""
    folder = tmp_path / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "none", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("free", [140, 30])
def test_a_real_full_disk(base, small_tmpfs, free):
    """The issue's own case: the output folder on a small tmpfs (``free`` kB left), then
    grown, as freeing space does."""
    (small_tmpfs / "pad").write_bytes(b"\0" * (200 - free) * 1024)
    args = ["--output", "out.csv", "--embeddings", "out.npz"]
    assert DISK_FULL in refused(analyze(base, *args, cwd=small_tmpfs, folder=base / "tree"))
    subprocess.run(["mount", "-o", "remount,size=2m", str(small_tmpfs)], check=True)
    (small_tmpfs / "pad").unlink()
    result = analyze(base, *args, "--resume", cwd=small_tmpfs, folder=base / "tree")
    assert result.returncode == 0, result.stderr
    assert_same_run(base, small_tmpfs)


def test_adpcm_and_a_float_wav_named_in_other_bytes_get_their_rows(base, tmp_path):
    """Before: IMA and MS ADPCM WAVs were error rows (``ffmpeg: Unknown encoder
    'pcm_s4le'``), and so was a float WAV whose file name is not UTF-8; and a newline in
    the output's name split the final message in two."""
    tree = tmp_path / "tree" / "Dev"
    song(tree / "000 - ima", 0, "IMA_ADPCM", stems=STEMS[:1])
    song(tree / "001 - ms", 1, "MS_ADPCM", stems=STEMS[:1])
    song(tmp_path / "float", 2, "FLOAT", stems=STEMS[:1])  # soundfile cannot write to its name
    os.rename(tmp_path / "float", os.fsdecode(os.fsencode(tree) + b"/002 - \xff"))
    result = analyze(base, "--output", "a\nb.csv", "--details", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote 3 rows to a\\nb.csv (0 kept from before, 0 errors)" in result.stderr
    assert "Analysis complete. Results written to 'a\\nb.csv'." in result.stdout.splitlines()
    rows = (tmp_path / "a\nb.csv").read_text().splitlines()[1:]
    assert len(rows) == 3 and not any(",error," in row for row in rows), rows


@pytest.mark.parametrize("subtype, codec", [("IMA_ADPCM", "adpcm_ima_wav"),
                                            ("MS_ADPCM", "adpcm_ms")])
def test_adpcm_decodes_as_ffmpeg_decodes_it(tmp_path, subtype, codec):
    from stemeval.audio.decode import decode

    path = tmp_path / "x.wav"
    soundfile.write(str(path), tone(0.5, RATE, 300)[:, 0], RATE, subtype=subtype)
    expected = np.frombuffer(subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-acodec", "pcm_s16le", "-"],
        capture_output=True, check=True).stdout, np.int16)
    decoded = decode(str(path))
    assert decoded.pcm_mono.sample_width == 2
    assert np.array_equal(decoded.pcm_mono.samples, expected)


def test_oracle_on_rows_all_gated_says_so(base, tmp_path):
    """Before: "raw_labels is empty among the rows ... (--folds sets the folds)"."""
    assert analyze(base, "--output", "gated.csv", speech="speaking.pb",
                   cwd=tmp_path, folder=base / "tree").returncode == 0
    result = run_script("computeaccuracy.py", "gated.csv", "--oracle", "--folds", "2",
                        cwd=tmp_path)
    assert refused(result) == ("gated.csv: --oracle: each of its 6 rows was gated as speech or "
                               "is an error row, so the tagger picked for none of them and "
                               "there is no map to learn; --labels shows where they went")


def test_a_probe_on_single_stems_says_so(tmp_path, capsys):
    """Before: "0 tracks are too few for 2 folds grouped by track (use --folds 0 or fewer)"."""
    np.savez(tmp_path / "e.npz", embeddings=np.eye(3, 4, dtype=np.float32),
             paths=np.array(["a.wav", "b.wav", "c.wav"]),
             labels=np.array(["bass", "drums", "piano"]), groups=np.array(["t1", "t2", "t3"]),
             tagger=np.array("ast"))
    status = exit_status(lambda: probe_command.main([str(tmp_path / "e.npz"), "--folds", "2"]))
    captured = capsys.readouterr()
    assert (status, captured.out) == (2, "")
    assert captured.err == (f"error: {tmp_path}/e.npz: each of its 3 categories has a single "
                            f"stem (bass, drums, piano), which a probe can never both train on "
                            f"and test; a probe needs at least 2 categories of 2 stems or more\n")


@pytest.mark.parametrize("args, said", [
    (["--checkpoint", "ftp://example/x.pth"],
     "--checkpoint ftp://example/x.pth: addresses of scheme ftp:// are not supported (it takes "
     "a local path, an http:// or https:// URL, or hf:<repo id>)"),
    (["speech-model", "--speech-model", "s3://bucket/x.pb"],
     "--speech-model s3://bucket/x.pb: addresses of scheme s3:// are not supported (it takes a "
     "local path)"),
])
def test_weights_of_an_unsupported_scheme_say_so(capsys, args, said):
    """Before: "AST weights ftp:/example/x.pth do not exist" (a mangled URL)."""
    which = ["checkpoint"] if args[0].startswith("--") else args[:1]
    options = args[1:] if which == args[:1] else args
    status = exit_status(lambda: weights_command.main(["fetch", *which, *options]))
    captured = capsys.readouterr()
    assert status == 2 and captured.err == f"error: {said}\n"


def test_a_slakh_class_with_no_name_is_noted(tmp_path, capsys):
    """Before: "classes the map does not evaluate:  (2)" (an empty name)."""
    dataset_trees.slakh2100(tmp_path)
    metadata = tmp_path / "train/Track00001/metadata.yaml"
    metadata.write_text(metadata.read_text().replace("inst_class: Sound Effects",
                                                     "inst_class:"))
    stems, _ = find_stems(DATASETS["slakh2100"], str(tmp_path))
    assert len(stems) == 3
    notes = capsys.readouterr().err
    assert ("skipped 1 Slakh stems whose metadata names no class (an empty inst_class, e.g. "
            "Track00001 S03)") in notes
    assert ":  (" not in notes


def test_a_medley_uuid_listed_twice_is_noted(tmp_path, capsys):
    """Before: the second row's label was taken without a word."""
    dataset_trees.medley_solos_db(tmp_path)
    metadata = tmp_path / "annotation" / "Medley-solos-DB_metadata.csv"
    uuid = dataset_trees.MEDLEY_UUIDS[0]
    with open(metadata, "a", newline="") as handle:
        handle.write(f"training,violin,7,11,{uuid}\r\n")
        handle.write(f"validation,female singer,2,12,{dataset_trees.MEDLEY_UUIDS[1]}\r\n")
    stems, _ = find_stems(DATASETS["medley-solos-db"], str(tmp_path))
    assert [stem.label for stem in stems] == ["banjo", "female singer"]  # twice alike: kept
    assert (f"skipped 1 clips that Medley-solos-DB_metadata.csv lists more than once, with "
            f"another label, split or song (e.g. {uuid}: clarinet and violin)"
            in capsys.readouterr().err)


def test_a_stem_under_a_path_too_long_is_noted(tmp_path, capsys):
    """Before: left out without a word (os.walk passes over what it cannot list)."""
    from stemeval.datasets.walker import PATH_MAX

    dataset_trees.audio(tmp_path / "tree" / "Dev" / "000 - A" / "bass.wav")
    folder = os.open(tmp_path / "tree" / "Dev", os.O_RDONLY)
    try:
        for _ in range(PATH_MAX // 250 + 1):
            os.mkdir("d" * 250, dir_fd=folder)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = inner
        os.mkdir("001 - B", dir_fd=folder)
    finally:
        os.close(folder)
    stems, _ = find_stems(DATASETS["dsd100"], str(tmp_path / "tree"))
    assert [os.path.basename(stem.path) for stem in stems] == ["bass.wav"]
    assert (f"whose path is longer than the system opens ({PATH_MAX} bytes)"
            in capsys.readouterr().err)


def test_killed_workers_print_no_traceback(capfd):
    """Workers killed with SIGKILL while the run goes: the pool's SIGTERM to the others
    ended them with the command's ``Terminated`` traceback each; now they end quietly."""
    from stemeval.engine import workers

    class Preparer:
        speech_models = type("Models", (), {"backend": "torch"})()
        deformers = [None]

        def __call__(self, stem):
            if stem == 1:  # killed while the other worker waits for work
                time.sleep(0.5)
                os.kill(os.getpid(), signal.SIGKILL)
            return stem

    saved = signal.signal(signal.SIGTERM, errors._terminate)  # as run_main sets it
    try:
        done = list(workers.prepared_in_order(Preparer(), list(range(4)), workers=2))
    finally:
        signal.signal(signal.SIGTERM, saved)
    printed = capfd.readouterr().err
    assert [item for item in done if isinstance(item, int)] == [0, 2, 3]
    assert done[1].conditions[0].failure.startswith(workers.WORKER_DIED)
    assert "Traceback" not in printed and "Terminated" not in printed, printed
