"""The engine's worker processes (stemeval.engine.workers, stemeval.engine.run): rows and embeddings made
with worker processes equal those made in one process, for every tagger and with --deform;
a worker killed while preparing a stem gives that stem an error row and the run goes on;
memory stays flat however many stems a run has; the speech graph is checked and run without
Essentia's TensorFlow where only plain essentia is installed.

The oracle is the run with ``--workers 0``: the published pipeline computed in one process,
whose rows the other tests hold to the published code."""

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stemeval.datasets import Stem
from stemeval.speech.gate import SpeechModelError, SpeechModels, check_speech_graph
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.clap_models import save_tiny_clap
from tests.helpers.cli import run_script
from tests.helpers.hf_models import hf_wav2vec2
from tests.helpers.python_hooks import hooked_env
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import write_graph_with_op, write_vggish_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 22050
STEMS = ["Dev/a/bass.wav", "Dev/a/drums.wav", "Dev/a/vocals.wav", "Test/b/bass.wav",
         "Test/b/drums.wav", "Test/b/vocals.wav", "Test/c/vocals.wav"]


def write_tree(base):
    for index, relative in enumerate(STEMS):
        path = base / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = (silence(1.0, RATE) if relative == "Test/c/vocals.wav" else  # an error row
                 concat(tone(1.2 + index / 3, RATE, 150 + 70 * index, seed=index),
                        silence(0.7, RATE), tone(0.6, RATE, 500 + 40 * index, seed=index)))
        write_wav(path, audio, RATE)
    return write_vggish_graph(base / "speech.pb", seed=3)  # scores vary from stem to stem


def panns_weights(folder):
    from stemeval.taggers import panns

    torch.manual_seed(0)
    state = panns.Cnn14().state_dict()
    state.update({name: torch.zeros(shape) for name, shape in panns.FRONT_END.items()})
    torch.save({"model": state}, folder / "cnn14.pth")
    return ["--tagger", "panns-cnn14", "--checkpoint", folder / "cnn14.pth"]


def passt_weights(folder):
    from stemeval.taggers import passt

    torch.manual_seed(0)
    torch.save(passt.PaSST(dim=64, depth=1, mlp_hidden=128).state_dict(), folder / "passt.pt")
    return ["--tagger", "passt", "--checkpoint", folder / "passt.pt"]


TAGGERS = {
    "ast": lambda folder: ["--checkpoint", save_original_checkpoint(random_model(seed=5),
                                                                    folder / "ast.pth")],
    "ast --deform": lambda folder: ["--deform", "noise:snr=10+lowpass:cutoff=4000",
                                    "--checkpoint", save_original_checkpoint(
                                        random_model(seed=5), folder / "ast.pth")],
    "panns-cnn14": panns_weights,
    "passt": passt_weights,
    "clap": lambda folder: ["--tagger", "clap", "--checkpoint", save_tiny_clap(folder / "clap")],
    "hf:": lambda folder: hf_wav2vec2(folder / "w2v") and ["--tagger", "hf:someone/w2v",
                                                           "--checkpoint", folder / "w2v"],
}


def _rows(data):
    return list(csv.DictReader(io.StringIO(data.decode())))


def assert_same_rows(one, other):
    """The same rows: labels, errors and groups exactly; the --details scores up to float
    rounding (the main process's network may run on another number of threads)."""
    assert len(one) == len(other)
    for row, twin in zip(one, other):
        for name in ("label", "path", "prediction", "proposed_label", "error", "group"):
            assert row[name] == twin[name], (name, row, twin)
        for name in ("score", "speech_score"):
            assert float(row[name] or 0) == pytest.approx(float(twin[name] or 0), abs=1e-6)
        assert [label.rsplit(" (", 1)[0] for label in row["top5"].split("; ")] == \
            [label.rsplit(" (", 1)[0] for label in twin["top5"].split("; ")]


def analyze(base, output, *args):
    result = run_script("analyze_dsd100.py", "tree", "--quiet", "--details", "--speech-model",
                        "speech.pb", "--output", f"{output}.csv", "--embeddings",
                        f"{output}.npz", *args, cwd=base)
    assert result.returncode == 0, result.stderr
    with np.load(base / f"{output}.npz") as saved:
        embeddings = {name: saved[name] for name in saved.files}
    return (base / f"{output}.csv").read_bytes(), embeddings


@pytest.mark.parametrize("tagger", list(TAGGERS))
def test_worker_processes_give_the_rows_and_embeddings_of_one_process(tagger, tmp_path):
    write_tree(tmp_path)
    args = TAGGERS[tagger](tmp_path)
    alone, alone_embeddings = analyze(tmp_path, "alone", "--workers", "0", *args)
    shared, shared_embeddings = analyze(tmp_path, "shared", "--workers", "2", *args)
    assert alone.count(b"\r\n") == len(STEMS) + 1 and b",error," in alone  # a silent stem
    assert_same_rows(_rows(alone), _rows(shared))
    assert sorted(alone_embeddings) == sorted(shared_embeddings)
    for name, values in alone_embeddings.items():
        if values.dtype.kind == "f":
            np.testing.assert_allclose(values, shared_embeddings[name], rtol=0, atol=1e-6)
        else:
            assert np.array_equal(values, shared_embeddings[name]), name
    assert len(alone_embeddings["paths"]) == len(STEMS) - 1


def test_a_worker_killed_while_preparing_a_stem_gives_it_an_error_row(tmp_path, monkeypatch):
    """The stem whose preparation kills its process (as the kernel's out-of-memory killer
    would) gets an error row; every other stem gets the row a run in one process gives it."""
    import stemeval.engine.pipeline as pipeline
    from stemeval.engine.pipeline import Evaluator
    from stemeval.engine.run import run_stems
    from stemeval.taggers.ast import AstTagger

    graph = write_tree(tmp_path)
    stems = [Stem(str(tmp_path / "tree" / relative), relative.split("/")[-1][:-4])
             for relative in STEMS]
    evaluator = Evaluator(AstTagger(random_model(seed=5), "random"), SpeechModels(graph),
                          "dsd100")
    alone = []  # the other stems in one process, batched as the shared run batches them (a
    # stem's scores can differ in their last bits with the stems batched with it)
    run_stems(evaluator, stems[:2] + stems[3:], alone.append, batch_size=2, workers=0)
    poison = stems[2].path
    real_decode = pipeline.decode

    def decode(path):
        if path == poison:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_decode(path)

    monkeypatch.setattr(pipeline, "decode", decode)  # the forked workers inherit it

    def hung(*_):
        raise TimeoutError("the run hung after a worker died")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        shared = []
        run_stems(evaluator, stems, shared.append, batch_size=2, workers=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [row["path"] for row in shared] == [stem.path for stem in stems]
    assert shared[2]["prediction"] == shared[2]["proposed_label"] == "error"
    assert shared[2]["error"].startswith("the process preparing it died")
    assert shared[:2] + shared[3:] == alone  # the same threads here


def _parent_if_living(pid):
    """A process's parent's id, None once it has ended (Linux's /proc; a zombie has ended)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    state, parent = stat.rsplit(")", 1)[1].split()[:2]  # after the name, which may hold ")"
    return None if state == "Z" else int(parent)


def _living(pid):
    return _parent_if_living(pid) is not None


def _children(pid):
    """The process ids of ``pid``'s living children."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _parent_if_living(entry.name) == pid]


def test_the_workers_of_a_run_killed_outright_end_with_it(tmp_path):
    """A run killed with SIGKILL (as the out-of-memory killer kills) cannot stop its worker
    processes: they end by themselves, so none is left holding its memory and the run's
    output pipes (``run | tee log`` ends), and --resume completes the run's rows."""
    write_tree(tmp_path)
    args = [*map(str, TAGGERS["ast"](tmp_path)), "--speech-model", "speech.pb"]
    command = [sys.executable, str(ROOT / "analyze_dsd100.py"), "tree", "--quiet", "--workers",
               "2", "--batch-size", "1", *args, "--output", "killed.csv"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                               env=hooked_env(tmp_path / "hooks", pause_after_rows=2))
    workers = []
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (
                (tmp_path / "killed.csv").exists() and
                (tmp_path / "killed.csv").read_bytes().count(b"\r\n") >= 3):
            time.sleep(0.05)
        workers = _children(process.pid)
        assert workers, "the run has no worker processes"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)  # the pipes close: no worker holds them
        deadline = time.time() + 10
        while time.time() < deadline and any(map(_living, workers)):
            time.sleep(0.05)
        assert not any(map(_living, workers))
    finally:
        process.kill()
        for pid in filter(_living, workers):
            os.kill(pid, signal.SIGKILL)
    assert (tmp_path / "killed.csv").read_bytes().count(b"\r\n") < len(STEMS) + 1
    for output, extra in (("killed.csv", ["--resume"]), ("whole.csv", [])):
        result = run_script("analyze_dsd100.py", *command[2:-1], output, *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "killed.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


MEASURE = """
import resource, sys
sys.argv = ["analyze_dsd100.py", *sys.argv[1:]]
from commonutils import main
status = main(dataset="dsd100", default_output="results_dsd100.csv")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(status)
"""


def peak_memory_mb(base, count):
    """Peak resident memory (MB) of a run over ``count`` stems: of the main process, and of
    the largest worker process."""
    tree = base / f"tree{count}"
    for index in range(count):
        path = tree / "Dev" / f"song{index:04d}" / "bass.wav"
        path.parent.mkdir(parents=True)
        write_wav(path, tone(0.4, RATE, 100 + index % 200, seed=index), RATE)
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tree), "--quiet", "--workers", "1", "--checkpoint",
         "ast.pth", "--speech-model", "speech.pb", "--output", f"{count}.csv"],
        cwd=base, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    main, worker = map(int, result.stdout.split()[-2:])
    return main / 1024, worker / 1024


@pytest.mark.slow
def test_memory_stays_flat_over_600_stems(tmp_path):
    save_original_checkpoint(random_model(seed=5), tmp_path / "ast.pth")
    write_vggish_graph(tmp_path / "speech.pb", seed=3)
    few, many = peak_memory_mb(tmp_path, 60), peak_memory_mb(tmp_path, 600)
    assert many[0] - few[0] < 60 and many[1] - few[1] < 60, (few, many)


def test_the_speech_graph_is_checked_and_run_without_essentias_tensorflow(tmp_path,
                                                                         monkeypatch):
    """Plain essentia (no TensorFlow): the file check and the gate use the PyTorch runner;
    a graph only TensorFlow could run is refused with the reason, before any work."""
    import stemeval.speech.gate as speech

    graph = write_vggish_graph(tmp_path / "speech.pb", seed=3)
    with_tensorflow = SpeechModels(graph)().evidence(tone(2.0, 16000)[:, 0]).score()
    monkeypatch.setattr(speech, "has_essentia_tensorflow", lambda: False)
    assert check_speech_graph(graph) == graph
    assert SpeechModels(graph)().evidence(tone(2.0, 16000)[:, 0]).score() == with_tensorflow
    erf = write_graph_with_op(tmp_path / "erf.pb", "Erf")
    with pytest.raises(SpeechModelError, match="Erf.*essentia-tensorflow.*is not installed"):
        check_speech_graph(erf)


ONE_TAGGER_SWEEP = """output = "swept"
taggers = ["ast"]
conditions = ["clean", "gain:db=-12"]
[datasets.tree]
layout = "dsd100"
folder = "tree"
[checkpoints]
ast = "ast.pth"
[options]
speech_model = "speech.pb"
speech_backend = "torch"
"""


def count_reads(monkeypatch, folder, *args):
    """(Reads of the graph file for PyTorch, Essentia TensorFlow models built) in a run of
    analyze_dsd100.py, or with "sweep" first of sweep.py (in this process, as its own would
    run it; nothing a file check kept is left from an earlier run, as in a fresh process)."""
    import stemeval.speech.graph as speech_graph
    from stemeval.common.essentia_setup import essentia_standard
    from stemeval.speech.gate import forget_checked_graphs

    reads = {"pytorch": 0, "tensorflow": 0}
    read_graph, standard = speech_graph.read_graph, essentia_standard()
    tensorflow = standard.TensorflowPredictVGGish

    def counted_read_graph(*args, **kwargs):
        reads["pytorch"] += 1
        return read_graph(*args, **kwargs)

    def counted_tensorflow(*args, **kwargs):
        reads["tensorflow"] += 1
        return tensorflow(*args, **kwargs)

    forget_checked_graphs()
    with monkeypatch.context() as patch:
        patch.setattr(speech_graph, "read_graph", counted_read_graph)
        patch.setattr(standard, "TensorflowPredictVGGish", counted_tensorflow)
        if args[0] == "sweep":
            result = run_script("sweep.py", *args[1:], cwd=folder)
        else:
            result = run_script("analyze_dsd100.py", *args, cwd=folder)
    assert result.returncode == 0, result.stderr
    return reads["pytorch"], reads["tensorflow"]


def test_a_run_reads_the_speech_graph_once_with_the_backend_that_runs_it(tmp_path,
                                                                         monkeypatch):
    """Where Essentia's TensorFlow is installed too, --speech-backend torch checks the graph
    with the PyTorch runner that then runs the gate (the file parsed once, TensorFlow never
    built), in a run, in a run that keeps the VGGish embeddings (its runner built from what
    the check read) and in a local sweep; --speech-backend essentia checks and runs it in
    TensorFlow; the published check (no backend) stays Essentia's, whose message names it.
    A file changed since its check is read again."""
    import stemeval.speech.gate as speech
    import stemeval.speech.graph as speech_graph

    write_tree(tmp_path)
    save_original_checkpoint(random_model(seed=5), tmp_path / "ast.pth")
    reads = {}
    for backend in ("torch", "essentia"):
        reads[backend] = count_reads(monkeypatch, tmp_path, "tree", "--quiet", "--workers", "0",
                                     "--speech-backend", backend, "--checkpoint", "ast.pth",
                                     "--speech-model", "speech.pb", "--output", f"{backend}.csv")
    assert reads["torch"] == (1, 0)
    assert count_reads(monkeypatch, tmp_path, "tree", "--quiet", "--workers", "0",
                       "--speech-backend", "torch", "--checkpoint", "ast.pth", "--speech-model",
                       "speech.pb", "--embeddings-from", "vggish", "--embeddings", "vggish.npz",
                       "--output", "vggish.csv") == (1, 0)
    assert (tmp_path / "vggish.csv").read_bytes() == (tmp_path / "torch.csv").read_bytes()
    assert reads["essentia"][0] == 0 and reads["essentia"][1] >= 2  # the check, the gate
    (tmp_path / "sweep.toml").write_text(ONE_TAGGER_SWEEP)
    # a local sweep checks the graph twice (before any work, then where its cells run)
    assert count_reads(monkeypatch, tmp_path, "sweep", "sweep.toml", "--quiet") == (1, 0)
    assert (tmp_path / "torch.csv").read_bytes() == (tmp_path / "essentia.csv").read_bytes()
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"not a graph")
    with pytest.raises(SpeechModelError, match="^not a speech graph"):
        check_speech_graph(bad, "torch")
    for backend in ("essentia", None):
        with pytest.raises(SpeechModelError, match="^Essentia cannot run it"):
            check_speech_graph(bad, backend)
    assert speech.has_essentia_tensorflow()
    built = []
    read_graph = speech_graph.read_graph
    monkeypatch.setattr(speech_graph, "read_graph",
                        lambda *args: built.append(args) or read_graph(*args))
    graph = tmp_path / "speech.pb"
    check_speech_graph(graph, "torch")
    check_speech_graph(graph, "torch")
    assert len(built) == 1
    write_vggish_graph(graph, seed=4)
    check_speech_graph(graph, "torch")
    assert len(built) == 2


def test_the_gate_on_every_patch_in_the_main_process_gives_the_rows_of_the_lazy_gate(
        tmp_path, monkeypatch):
    """On a GPU the main process computes the speech graph's input patches with PyTorch
    and runs the graph on every patch of many stems at once; on a CPU the workers run it
    lazily on Essentia's patches. Both give the same rows (here both on the CPU, the first
    as it runs on a GPU); the exact speech score of --details moves by float rounding only."""
    from stemeval.engine.pipeline import Evaluator
    from stemeval.engine.run import run_stems
    from stemeval.taggers.ast import AstTagger

    graph = write_tree(tmp_path)
    stems = [Stem(str(tmp_path / "tree" / relative), relative.split("/")[-1][:-4])
             for relative in STEMS]
    tagger = AstTagger(random_model(seed=5), "random")
    lazy, batched = [], []
    run_stems(Evaluator(tagger, SpeechModels(graph), "dsd100", details=True), stems,
              lazy.append, batch_size=3, workers=2)
    monkeypatch.setattr(SpeechModels, "on_gpu", property(lambda self: True))
    run_stems(Evaluator(tagger, SpeechModels(graph), "dsd100", details=True), stems,
              batched.append, batch_size=3, workers=2)
    assert len(lazy) == len(STEMS) and {row["prediction"] for row in lazy} != {"error"}
    for one, other in zip(lazy, batched):
        assert float(one.pop("speech_score", 0)) == pytest.approx(
            float(other.pop("speech_score", 0)), abs=1e-4)
        assert one == other


SWEEP = """
output = "out"
taggers = ["clap", "passt"]
conditions = ["clean", "gain:db=-6"]
[datasets.moises]
layout = "moisesdb"
folder = "moises"
[datasets.dsd]
layout = "dsd100"
folder = "tree"
[checkpoints]
clap = "clap"
passt = "passt.pt"
[options]
speech_model = "speech.pb"
workers = 1
chunk = 3
"""


@pytest.mark.slow
def test_a_local_sweep_runs_other_taggers_each_cell_a_plain_run(tmp_path):
    """Taggers other than the AST in a local sweep, clap included (its prompts made per
    dataset from one loaded model), on the engine's worker processes: each clean cell is
    what evaluate.py writes for it (tests/test_sweep.py does the same for the AST)."""
    write_tree(tmp_path)
    for song, category in enumerate(("bass", "drums", "guitar")):
        path = tmp_path / "moises" / f"song{song}" / category / "a.wav"
        path.parent.mkdir(parents=True)
        write_wav(path, concat(tone(1.5, RATE, 200 + 90 * song, seed=song), silence(0.6, RATE),
                               tone(0.5, RATE, 600, seed=song)), RATE)
    TAGGERS["clap"](tmp_path)
    passt_weights(tmp_path)
    (tmp_path / "sweep.toml").write_text(SWEEP)
    result = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "sweep.toml", "--quiet"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    checkpoints = {"clap": "clap", "passt": "passt.pt"}
    for layout, folder, dataset in (("moisesdb", "moises", "moises"), ("dsd100", "tree", "dsd")):
        for tagger, checkpoint in checkpoints.items():
            plain = subprocess.run(
                [sys.executable, str(ROOT / "evaluate.py"), layout, folder, "--quiet",
                 "--tagger", tagger, "--checkpoint", checkpoint, "--speech-model", "speech.pb",
                 "--output", f"{dataset}_{tagger}.csv"],
                cwd=tmp_path, capture_output=True, text=True, timeout=600)
            assert plain.returncode == 0, plain.stderr
            cell = tmp_path / "out" / dataset / tagger / "clean.csv"
            assert cell.read_bytes() == (tmp_path / f"{dataset}_{tagger}.csv").read_bytes()
            deformed = (tmp_path / "out" / dataset / tagger / "gain_db=-6.csv").read_text()
            assert deformed.count("\n") == cell.read_text().count("\n")
