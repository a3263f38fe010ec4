"""--embeddings-from vggish: the speech graph's 128-d VGGish embedding of every patch.

Oracles: the graph's embedding node run on its own, on every patch of the stem as
Essentia's MonoLoader and TensorflowPredictVGGish see it, by Essentia's TensorFlow (up to
the -100 dB noise Essentia adds to silent frames) and by a GraphRunner whose output is
that node; the rows of the same run without embeddings. Also: the node is found by
structure (TF-slim's and Essentia's spellings, no Identity at all), the patches run in the
main process (as on a GPU) give the same embeddings, and the refusals."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stemeval.runfiles.embeddings import read_embeddings
from stemeval.speech.graph import GraphRunner, read_graph
from stemeval.speech.vggish_embeddings import find_embedding_node
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.speech_patches import vggish_patches
from tests.helpers.tf_graphs import write_linear_graph, write_vggish_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 22050
STEMS = {"Dev/a/bass.wav": 3.1, "Dev/a/drums.wav": 2.2, "Dev/b/vocals.wav": 1.7,
         "Test/c/bass.wav": 0.5}  # seconds of tone; the last is shorter than a patch
TF_SLIM_NODE = "model/vggish/embedding"


def write_tree(base):
    for index, (relative, seconds) in enumerate(STEMS.items()):
        path = base / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [tone(seconds, RATE, 150 + 90 * index, seed=index)]
        if seconds > 1:
            parts += [silence(0.7, RATE), tone(0.6, RATE, 500 + 40 * index, seed=index)]
        write_wav(path, concat(*parts), RATE)
    save_original_checkpoint(random_model(seed=5), base / "ast.pth")
    return write_vggish_graph(base / "speech.pb", seed=3)


def analyze(base, *args, output="r"):
    return subprocess.run(
        [sys.executable, str(ROOT / "analyze_dsd100.py"), "tree", "--quiet", "--details",
         "--checkpoint", "ast.pth", "--speech-model", "speech.pb", "--output", f"{output}.csv",
         *map(str, args)], cwd=base, capture_output=True, text=True, timeout=600)


def audio_16k(path):
    from stemeval.common.essentia_setup import essentia_standard

    return essentia_standard().MonoLoader(filename=str(path), sampleRate=16000,
                                          resampleQuality=4)()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("vggish")
    graph = write_tree(base)
    result = analyze(base, "--embeddings", "v.npz", "--embeddings-from", "vggish",
                     "--workers", "2")
    assert result.returncode == 0, result.stderr
    plain = analyze(base, "--workers", "0", output="plain")
    assert plain.returncode == 0, plain.stderr
    return base, graph, read_embeddings(base / "v.npz")


def test_the_rows_are_those_of_a_run_without_embeddings(run):
    base, _, _ = run
    assert (base / "r.csv").read_bytes() == (base / "plain.csv").read_bytes()


def test_each_patch_embedding_is_the_graph_node_run_alone(run):
    base, graph, saved = run
    node = GraphRunner.from_pb(graph, output_name=TF_SLIM_NODE).eval()
    assert saved.tagger == "vggish"
    assert saved.layer == f"{TF_SLIM_NODE}; mean over 0.96 s patches"
    assert sorted(saved.paths) == sorted(f"tree/{path}" for path, s in STEMS.items() if s > 1)
    import torch

    for path, vector, windows in zip(saved.paths, saved.embeddings, saved.windows):
        patches = vggish_patches(audio_16k(base / path))
        with torch.inference_mode():
            expected = node(torch.from_numpy(patches)).numpy()
        assert windows.shape == (len(patches), 128)
        np.testing.assert_allclose(windows, expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(vector, expected.mean(0), rtol=0, atol=1e-5)


def test_each_patch_embedding_is_essentias_tensorflow_on_that_node(run):
    from stemeval.common.essentia_setup import essentia_standard

    base, graph, saved = run
    predict = essentia_standard().TensorflowPredictVGGish(
        graphFilename=str(graph), input="model/Placeholder", output=TF_SLIM_NODE)
    for path, windows in zip(saved.paths, saved.windows):
        expected = np.asarray(predict(audio_16k(base / path)))
        np.testing.assert_allclose(windows, expected, rtol=0, atol=1e-3)


def test_patches_run_in_the_main_process_give_the_same_embeddings(run, monkeypatch):
    """As on a GPU: the workers find each stem's distinct patches, the main process computes
    their input patches with PyTorch (``DevicePatches``) and runs the graph on many stems'
    at once. Those patches differ from Essentia's by float32 rounding (1e-7 in log-mel on
    average, at most 4e-4), which moves the embeddings by about 2e-5 (of values up to 7 here)."""
    from stemeval.datasets import Stem
    from stemeval.engine.pipeline import Evaluator
    from stemeval.engine.run import run_stems
    from stemeval.speech.gate import SpeechModels
    from stemeval.taggers.ast import AstTagger
    from stemeval.taggers.interface import unpack

    base, graph, saved = run
    monkeypatch.setattr(SpeechModels, "on_gpu", property(lambda self: True))
    stems = [Stem(str(base / path), "bass") for path in saved.paths]
    found = {}
    run_stems(Evaluator(AstTagger(random_model(seed=5), "random"),
                        SpeechModels(graph, embeddings=True), "dsd100", embeddings="vggish"),
              stems, lambda row: None, batch_size=2, workers=2,
              embed=lambda stem, packed: found.setdefault(stem.path, unpack(packed)))
    for path, vector, windows in zip(saved.paths, saved.embeddings, saved.windows):
        np.testing.assert_allclose(found[str(base / path)][0], vector, rtol=0, atol=1e-4)
        np.testing.assert_allclose(found[str(base / path)][1], windows, rtol=0, atol=1e-4)


def rewrite(path, out, edit):
    """The graph at ``path`` with ``edit(graph_def)`` applied, written to ``out``."""
    from tensorboard.compat.proto import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(Path(path).read_bytes())
    edit(graph)
    out.write_bytes(graph.SerializeToString())
    return out


def test_the_embedding_node_is_found_by_structure(tmp_path):
    graph = write_vggish_graph(tmp_path / "g.pb", seed=1)
    assert find_embedding_node(read_graph(graph), "model/Sigmoid") == TF_SLIM_NODE

    def essentia_spelling(graph_def):
        for node in graph_def.node:
            node.name = node.name.replace(TF_SLIM_NODE, "model/vggish/embeddings")
            node.input[:] = [name.replace(TF_SLIM_NODE, "model/vggish/embeddings")
                             for name in node.input]

    def no_identity(graph_def):
        kept = [node for node in graph_def.node if node.name != TF_SLIM_NODE]
        del graph_def.node[:]
        graph_def.node.extend(kept)
        for node in graph_def.node:
            node.input[:] = [name.replace(TF_SLIM_NODE, "model/vggish/fc2/Relu")
                             for name in node.input]

    for edit, expected in ((essentia_spelling, "model/vggish/embeddings"),
                           (no_identity, "model/vggish/fc2/Relu")):
        edited = rewrite(graph, tmp_path / f"{expected.rsplit('/', 1)[1]}.pb", edit)
        assert find_embedding_node(read_graph(edited), "model/Sigmoid") == expected
    assert find_embedding_node(read_graph(write_linear_graph(
        tmp_path / "linear.pb", np.zeros((6144, 8), np.float32), np.zeros(8, np.float32))),
        "model/Sigmoid") is None


def one_error(result, text):
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert text in result.stderr, result.stderr


def test_refusals(run, tmp_path):
    base, _, _ = run
    one_error(analyze(base, "--embeddings-from", "vggish", output="x"),
              "--embeddings-from vggish says where --embeddings come from; give --embeddings")
    one_error(analyze(base, "--embeddings", "x.npz", "--embeddings-from", "vggish",
                      "--speech-backend", "essentia", output="x"),
              "--embeddings-from vggish runs the speech graph in PyTorch, not with "
              "--speech-backend essentia")
    one_error(analyze(base, "--embeddings", "v.npz", "--resume", "--workers", "0"),
              "cannot resume the embeddings v.npz: they are of tagger vggish, this run uses ast")
    assert not (base / "x.csv").exists()
    linear = write_linear_graph(base / "linear.pb", np.zeros((6144, 8), np.float32),
                                np.zeros(8, np.float32))
    one_error(analyze(base, "--embeddings", "x.npz", "--embeddings-from", "vggish",
                      "--speech-model", linear.name, output="x"),
              "the speech graph linear.pb has no node in the scope model/vggish/")
    with open(base / "r.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(STEMS)
