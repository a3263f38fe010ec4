"""Property: whatever bytes a user's file holds, each command that reads it answers with exit
status 0 or 2 (never a traceback, a hang or another status), and a refusal leaves the
outputs it was asked to write untouched (not created).

Generated inputs: manifests (evaluate.py manifest), results CSVs (computeaccuracy.py,
AST/list_labels.py, probe.py --zero-shot), category maps (evaluate.py --map) and sweep
configs (sweep.py): random bytes, and near-valid files with a byte-order mark, another
delimiter, missing or empty fields, control characters, or another encoding (latin-1,
UTF-16). Each command's ``main`` runs in this process through ``run_main`` (as its script
does) to save the start-up time, so an uncaught exception fails the test; evaluate.py is
given a missing checkpoint, so an input it accepts stops there, before any model work.
"""

import contextlib
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import computeaccuracy
import probe as probe_cli
from AST import list_labels
from commonutils import main as evaluate_main
from stemeval.commands.sweep import main as sweep_main
from stemeval.common.errors import run_main
from tests.helpers import dataset_trees

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
COUNTER = itertools.count()

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
field = st.one_of(text, st.sampled_from(["", " ", "Guitar", "bass", "one.wav", "missing.wav",
                                         "a\nb", "x\x00y", '"', "\ufeff", "é"]))
delimiter = st.sampled_from([",", ";", "\t", "|"])
encoding = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])


@st.composite
def table(draw, header):
    """A CSV-like file: maybe a BOM, a header of the expected or other columns, rows of
    random fields (short, long, quoted or not), joined by one delimiter, in one encoding."""
    columns = draw(st.one_of(st.just(header), st.permutations(header),
                             st.lists(field, max_size=5)))
    sep = draw(delimiter)
    rows = [sep.join(columns)] + [
        sep.join(draw(st.lists(field, max_size=len(columns) + 2)))
        for _ in range(draw(st.integers(0, 4)))]
    body = draw(st.sampled_from(["\n", "\r\n"])).join(rows)
    return body.encode(draw(encoding), errors="replace")


def random_or(strategy):
    return st.one_of(st.binary(max_size=300), strategy)


@st.composite
def toml_map(draw):
    names = st.lists(st.sampled_from(["Guitar", "Bass guitar", "Violin, fiddle", "Speech",
                                      "nonsense", "", "\\x"]) | text, max_size=3)
    keys = st.sampled_from(["guitar", "bass", '"a b"', "", "="])
    shapes = st.sampled_from(["{}", "[{}]", "{{{}}}"])
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        values = draw(shapes).format(", ".join(repr(name) for name in draw(names)))
        lines.append(f"{draw(keys)} = {values}")
    body = "\n".join(lines)
    return (draw(st.sampled_from(["", "\ufeff"])) + body).encode(draw(encoding), "replace")


SWEEP = """output = "{out}"
taggers = {taggers}
conditions = {conditions}
[datasets.toy]
layout = {layout}
folder = "{missing}"
{extra}
"""


@st.composite
def sweep_config(draw, out, missing):
    body = SWEEP.format(
        out=out, missing=missing,
        taggers=draw(st.sampled_from(['["ast"]', '["nope"]', "[]", '"ast"', "[1]"])),
        conditions=draw(st.sampled_from(['["clean"]', '["noise:snr=x"]', "[]", '["mp3"]'])),
        layout=draw(st.sampled_from(['"moisesdb"', '"nope"', "3"])),
        extra=draw(st.sampled_from(["", "limit = 0", "limit = true", "[options]\nchunk = -1",
                                    "nonsense = 1", "[[datasets]]"])))
    keep = draw(st.integers(0, len(body)))
    body = body if draw(st.booleans()) else body[:keep]
    return (draw(st.sampled_from(["", "\ufeff"])) + body).encode(draw(encoding), "replace")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A stem, an embeddings file of three tracks, and a fresh folder per example."""
    folder = tmp_path_factory.mktemp("properties")
    dataset_trees.audio(folder / "one.wav")
    rng = np.random.default_rng(0)
    paths = [f"t{n}/s{k}.wav" for n in range(3) for k in range(4)]
    np.savez(folder / "e.npz", embeddings=rng.normal(size=(12, 4)).astype(np.float32),
             paths=np.array(paths), labels=np.array(["bass", "drums"] * 6),
             groups=np.array([p.split("/")[0] for p in paths]), tagger=np.array("ast"))
    return folder


def fresh(base):
    folder = base / f"case{next(COUNTER)}"
    folder.mkdir()
    return folder


def command(main, argv):
    """``(exit status, stderr)`` of ``main(argv)`` run as its script runs it."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as exit_:
            run_main(lambda: main(list(map(str, argv))))
    return exit_.value.code, err.getvalue()


def answered(status, stderr, outputs):
    """Exit 0 or 2, no traceback, and on a refusal no output written."""
    assert status in (0, 2), stderr
    assert "Traceback" not in stderr
    if status == 2:
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, stderr
        assert not any(Path(path).exists() for path in outputs)


@SETTINGS
@given(content=random_or(table(["path", "label", "group"])))
def test_manifests(base, content):
    folder = fresh(base)
    (folder / "one.wav").symlink_to(base / "one.wav")
    (folder / "stems.csv").write_bytes(content)
    output = folder / "out.csv"
    status, stderr = command(
        lambda argv: evaluate_main(argv, dataset="manifest"),
        [folder / "stems.csv", "--checkpoint", folder / "none.pth", "--output", output])
    assert status == 2  # the checkpoint is missing when the manifest is accepted
    answered(status, stderr, [output, f"{output}.json"])


@SETTINGS
@given(content=random_or(table(["label", "path", "prediction", "proposed_label"])))
def test_results_csvs(base, content):
    folder = fresh(base)
    (folder / "r.csv").write_bytes(content)
    for main, argv, outputs in (
            (computeaccuracy.main, [folder / "r.csv", "--json", folder / "a.json"],
             []),
            (list_labels.main, [folder / "r.csv", "--counts"], []),
            (probe_cli.main, [base / "e.npz", "--zero-shot", folder / "r.csv", "--folds", "3",
                              "--json", folder / "p.json"], [folder / "p.json"])):
        answered(*command(main, argv), outputs)


@SETTINGS
@given(content=random_or(toml_map()))
def test_category_maps(base, content):
    folder = fresh(base)
    dataset_trees.write_csv(folder / "stems.csv", [["path", "label"], [base / "one.wav", "guitar"]])
    (folder / "map.toml").write_bytes(content)
    output = folder / "out.csv"
    status, stderr = command(
        lambda argv: evaluate_main(argv, dataset="manifest"),
        [folder / "stems.csv", "--map", folder / "map.toml", "--checkpoint", folder / "none.pth",
         "--output", output])
    assert status == 2
    answered(status, stderr, [output])


@SETTINGS
@given(data=st.data())
def test_sweep_configs(base, data):
    folder = fresh(base)
    content = data.draw(random_or(sweep_config(folder / "out", folder / "no-tree")))
    (folder / "sweep.toml").write_bytes(content)
    status, stderr = command(sweep_main, [folder / "sweep.toml", "--quiet"])
    assert status == 2  # the dataset folder never exists
    answered(status, stderr, [folder / "out"])
