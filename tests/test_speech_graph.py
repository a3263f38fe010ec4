"""The PyTorch graph runner computes what Essentia's TensorFlow computes.

Oracle: Essentia's ``TensorflowPredictVGGish`` (essentia-tensorflow, the
version of the published numbers) running the same ``.pb`` on the same
audio. The graphs are built by ``tests/helpers/tf_graphs.py`` into a temporary folder:
VGGish-shaped classifiers with random weights, a graph that exercises the
less common ops, the linear graph, and a graph whose output is its input
(which makes Essentia hand back the very patches it feeds to a graph).

Tolerance: activations are compared as percentages (100 * sigmoid), the unit
of the speech score. Both sides compute in float32 with different summation
orders; on these graphs TensorFlow's own result is ~1e-4 percentage points
away from an exact (float64) evaluation, and so is the runner's, so the
difference between them is held to 1e-3 points. A wrong padding, layout or
flatten order moves the outputs by whole percentage points. The speech score,
the mean over patches that the gate uses, is held to 1e-4 points.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import torch

from stemeval.speech.gate import speech_model_factory, speech_score
from stemeval.speech.graph import SUPPORTED_OPS, GraphRunner, InvalidGraph, UnsupportedGraph
from stemeval.speech.vggish_input import frame_count, patch_count
from tests.helpers import tf_graphs
from tests.helpers.speech_patches import speech_activations, vggish_patches

es = pytest.importorskip("essentia.standard")

TOLERANCE_PERCENT = 1e-3
SCORE_TOLERANCE = 1e-4  # the speech score (a mean over patches) must match to 1e-4 points
SR = 16000


def _audios():
    rng = np.random.default_rng(1234)
    t = np.arange(6 * SR) / SR
    gaps = rng.normal(0, 0.2, 6 * SR)
    gaps[SR:2 * SR] = 0.0  # digital silence inside a stem
    gaps[3 * SR:int(3.5 * SR)] = 0.0
    mixture = (0.3 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * 2 * t))
               + 0.2 * np.sign(np.sin(2 * np.pi * 523 * t)) * (t % 0.5 < 0.25)
               + rng.normal(0, 0.02, len(t)))
    return {
        "noise": rng.normal(0, 0.1, 5 * SR),
        "loud_noise": np.clip(rng.normal(0, 1.0, 4 * SR), -1, 1),
        "tone": 0.5 * np.sin(2 * np.pi * 440 * t[: 3 * SR]),
        "chirp": 0.3 * np.sin(2 * np.pi * (100 + 1500 * t[: 4 * SR]) * t[: 4 * SR]),
        "silence": np.zeros(3 * SR),
        "gaps": gaps,
        "mixture": mixture,
        "one_patch_min": rng.normal(0, 0.3, 15041),  # the shortest audio with one patch
        "one_patch": rng.normal(0, 0.3, 15200),
        "two_patches_min": rng.normal(0, 0.3, 29921),
        "short": rng.normal(0, 0.3, 15040),  # one frame short of a patch
        "tiny": rng.normal(0, 0.3, 1000),
    }


AUDIOS = {name: audio.astype(np.float32) for name, audio in _audios().items()}


def _essentia(graph, audio, output="model/Sigmoid"):
    model = es.TensorflowPredictVGGish(graphFilename=str(graph), input="model/Placeholder", output=output)
    return np.asarray(model(audio), np.float32)


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("graphs")


# (seed, dynamic flatten, weights in tensor_content or float_val, classifier hidden layer)
VGGISH_VARIANTS = [
    (0, True, True, 32),
    (1, False, True, None),
    (2, True, False, 16),
]


@pytest.fixture(scope="module", params=VGGISH_VARIANTS, ids=lambda v: f"vggish-seed{v[0]}")
def vggish_graph(request, graph_dir):
    seed, dynamic, packed, hidden = request.param
    return tf_graphs.write_vggish_graph(graph_dir / f"vggish_{seed}.pb", seed, dynamic_flatten=dynamic,
                                        packed_weights=packed, head_hidden=hidden)


def _assert_same_activations(graph, audios=AUDIOS, runner=None):
    runner = runner or GraphRunner.from_pb(graph)
    model = es.TensorflowPredictVGGish(graphFilename=str(graph), input="model/Placeholder",
                                       output="model/Sigmoid")
    worst = 0.0
    for name, audio in audios.items():
        expected = np.asarray(model(audio), np.float32).reshape(-1, 8)
        got = speech_activations(runner, audio, batch_size=4)
        assert got.shape == expected.shape == (patch_count(len(audio)), 8), name
        assert got.dtype == np.float32
        if len(expected):
            diff = float(np.abs(100.0 * got - 100.0 * expected).max())
            assert diff < TOLERANCE_PERCENT, f"{name}: max |diff| = {diff} percentage points"
            worst = max(worst, diff)
        score_diff = abs(speech_score(got) - speech_score(expected))
        assert score_diff < SCORE_TOLERANCE, f"{name}: speech scores differ by {score_diff}"
    return worst


def test_vggish_graphs_match_essentia(vggish_graph):
    _assert_same_activations(vggish_graph)


def test_op_zoo_graph_matches_essentia(graph_dir):
    for seed in (0, 1):
        graph = tf_graphs.write_op_zoo_graph(graph_dir / f"zoo_{seed}.pb", seed)
        _assert_same_activations(graph, {k: AUDIOS[k] for k in ("noise", "mixture", "gaps", "one_patch", "short")})


def test_linear_graph_matches_essentia(graph_dir):
    rng = np.random.default_rng(5)
    graph = tf_graphs.write_linear_graph(graph_dir / "linear.pb", rng.normal(0, 0.01, (6144, 8)),
                                         rng.normal(0, 1, 8))
    _assert_same_activations(graph)


def test_float64_runner_agrees_too(vggish_graph):
    """Evaluated in float64 (closer to exact), the runner is as close to TensorFlow."""
    runner = GraphRunner.from_pb(vggish_graph).double()
    audio = AUDIOS["mixture"]
    expected = _essentia(vggish_graph, audio)
    with torch.inference_mode():
        got = runner(torch.from_numpy(vggish_patches(audio)))
    assert got.dtype == torch.float64
    assert np.abs(100.0 * got.numpy() - 100.0 * expected).max() < TOLERANCE_PERCENT


@pytest.mark.parametrize("logit", [10.0, -10.0, 0.0, tf_graphs.logit_for_score(50.0), tf_graphs.logit_for_score(8.0)])
def test_constant_speech_graph(graph_dir, logit):
    graph = tf_graphs.write_constant_speech_graph(graph_dir / "constant.pb", logit)
    runner = GraphRunner.from_pb(graph)
    want = 1.0 / (1.0 + np.exp(-logit))
    for name in ("noise", "silence", "one_patch"):
        audio = AUDIOS[name]
        got = speech_activations(runner, audio)
        expected = _essentia(graph, audio)
        assert np.allclose(got[:, 7], want, rtol=0, atol=1e-6)
        assert np.allclose(expected[:, 7], want, rtol=0, atol=1e-6)
        assert np.allclose(got[:, :7], 0.5, atol=1e-6)
    assert abs(100 / (1 + np.exp(-tf_graphs.logit_for_score(8.0))) - 8.0) < 1e-9


def test_patches_are_essentias(graph_dir):
    """A graph whose output is its input makes Essentia return the patches it feeds."""
    graph = tf_graphs.write_identity_graph(graph_dir / "identity.pb")
    for name, audio in AUDIOS.items():
        expected = _essentia(graph, audio).reshape(-1, 96, 64)
        got = vggish_patches(audio)
        assert got.shape == expected.shape and got.dtype == np.float32, name
        if name in ("silence", "gaps"):
            # Essentia adds fresh -100 dB noise to digitally silent frames on every run.
            assert np.abs(got - expected).max() < 1e-4, name
        else:
            assert np.array_equal(got, expected), name


def test_device_patches_are_essentias_to_float_rounding(graph_dir):
    """PyTorch's patches (computed on the GPU where the graph runs there) against the
    patches Essentia feeds its graph, in any order of patches: equal to float32 rounding,
    which reaches 4e-4 in the near-empty bands beside a pure tone (where Essentia's own
    float32 FFT is as far from a float64 one) and stays near 1e-7 on average elsewhere."""
    from stemeval.speech.vggish_input import DevicePatches

    graph = tf_graphs.write_identity_graph(graph_dir / "identity.pb")
    patches = DevicePatches("cpu")
    for name, audio in AUDIOS.items():
        expected = _essentia(graph, audio).reshape(-1, 96, 64)
        order = np.random.default_rng(0).permutation(len(expected))
        with torch.inference_mode():
            got = patches(audio, order).numpy()
        assert got.shape == expected.shape and got.dtype == np.float32, name
        difference = np.abs(got - expected[order])
        if not difference.size:
            continue
        assert difference.max() < 1e-3, name
        assert difference.mean() < (1e-4 if name in ("tone", "chirp") else 1e-6), name


def test_patch_count_edges():
    for n_samples in (0, 1, 160, 161, 15040, 15041, 15200, 15201, 29920, 29921, 30080, 10 * SR + 7):
        audio = np.full(n_samples, 0.1, np.float32)
        assert len(vggish_patches(audio)) == patch_count(n_samples)
        if n_samples:
            cutter = es.FrameCutter(frameSize=400, hopSize=160)
            frames = 0
            while len(cutter(audio)):
                frames += 1
            assert frame_count(n_samples) == frames
    assert patch_count(15040) == 0 and patch_count(15041) == 1
    assert vggish_patches(np.zeros(0, np.float32)).shape == (0, 96, 64)


def test_short_audio_gives_empty_activations(graph_dir):
    graph = tf_graphs.write_constant_speech_graph(graph_dir / "short.pb", 3.0)
    runner = GraphRunner.from_pb(graph)
    for n in (0, 10, 15040):
        out = speech_activations(runner, np.zeros(n, np.float32) + 0.1)
        assert out.shape == (0, 8) and out.dtype == np.float32


def test_batches_are_independent(vggish_graph):
    runner = GraphRunner.from_pb(vggish_graph)
    patches = torch.from_numpy(vggish_patches(AUDIOS["mixture"]))
    with torch.inference_mode():
        whole = runner(patches)
        single = torch.cat([runner(patches[i:i + 1]) for i in range(len(patches))])
    assert whole.shape == (len(patches), 8)
    assert torch.allclose(whole, single, rtol=0, atol=1e-6)


def test_runner_is_moved_once_where_it_is_built(graph_dir, monkeypatch):
    """A device named without its index ("cuda" against the runner's "cuda:0"; here "cpu:0"
    against "cpu") must not make every stem move the shared runner again."""
    graph = tf_graphs.write_vggish_graph(graph_dir / "moves.pb", 3)
    moves = []
    original_to = GraphRunner.to
    monkeypatch.setattr(GraphRunner, "to", lambda self, *a, **k: moves.append(a) or original_to(self, *a, **k))
    model = speech_model_factory(graph, "torch", torch.device("cpu:0"))()
    for name in ("noise", "tone", "mixture"):
        model.evidence(AUDIOS[name]).score()
    assert len(moves) == 1


def test_integer_constants_stay_on_the_cpu(vggish_graph):
    """Shapes and axes are read on the host: on a device ("meta" stands in for CUDA, and has
    no values to read back) the forward pass never copies a tensor back."""
    runner = GraphRunner.from_pb(vggish_graph).to("meta")
    assert all(buffer.is_floating_point() for buffer in runner.buffers())
    with torch.inference_mode():
        out = runner(torch.zeros(3, 96, 64, device="meta"))
    assert out.shape == (3, 8) and out.device.type == "meta"


def test_unknown_op_on_the_path_is_unsupported(graph_dir):
    graph = tf_graphs.write_graph_with_op(graph_dir / "erf.pb", "Erf")
    with pytest.raises(UnsupportedGraph) as info:
        GraphRunner.from_pb(graph)
    assert "Erf" in str(info.value)
    assert info.value.op_types == ("Erf",)
    assert "Erf" not in SUPPORTED_OPS


def test_all_unknown_ops_are_named(graph_dir):
    g = tf_graphs.GraphBuilder()
    x = g.placeholder("model/Placeholder", [-1, 96, 64])
    a = g.unary("Erf", "model/erf", x)
    b = g.unary("Lgamma", "model/lgamma", a)
    mean = g.node("Mean", "model/mean", [b, g.const("model/axes", np.array([2], np.int32))],
                  T=tf_graphs._FLOAT, keep_dims=False)
    g.unary("Sigmoid", "model/Sigmoid", mean)
    path = g.write(graph_dir / "two_unknown.pb")
    with pytest.raises(UnsupportedGraph, match="Erf, Lgamma"):
        GraphRunner.from_pb(path)


def test_unknown_op_off_the_path_is_ignored(graph_dir):
    g = tf_graphs.GraphBuilder()
    x = g.placeholder("model/Placeholder", [-1, 96, 64])
    shape = g.const("model/Reshape/shape", np.array([-1, 6144], np.int32))
    flat = g.reshape("model/Reshape", x, shape)
    w = g.const("model/w", np.zeros((6144, 8), np.float32))
    out = g.unary("Sigmoid", "model/Sigmoid", g.matmul("model/MatMul", flat, w))
    g.unary("Erf", "model/unused_erf", out)  # e.g. a training-only branch
    runner = GraphRunner.from_pb(g.write(graph_dir / "side_erf.pb"))
    with torch.inference_mode():
        assert torch.allclose(runner(torch.zeros(2, 96, 64)), torch.full((2, 8), 0.5))


def test_non_graph_files_are_invalid(tmp_path):
    text = tmp_path / "notes.pb"
    text.write_text("this is not a graph\n" * 20)
    junk = tmp_path / "junk.pb"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    for path in (text, junk, empty):
        with pytest.raises(InvalidGraph) as info:
            GraphRunner.from_pb(path)
        assert isinstance(info.value, ValueError)
        assert "\n" not in str(info.value) and str(info.value)


def test_missing_nodes_are_invalid(graph_dir):
    graph = tf_graphs.write_constant_speech_graph(graph_dir / "names.pb", 1.0)
    with pytest.raises(InvalidGraph, match="model/Nope"):
        GraphRunner.from_pb(graph, output_name="model/Nope")
    with pytest.raises(InvalidGraph, match="input"):
        GraphRunner.from_pb(graph, input_name="model/Input")


def test_unfed_placeholder_is_invalid(graph_dir):
    g = tf_graphs.GraphBuilder()
    x = g.placeholder("model/Placeholder", [-1, 96, 64])
    other = g.placeholder("model/Placeholder_1", [-1, 96, 64])
    g.unary("Sigmoid", "model/Sigmoid", g.binary("Add", "model/add", x, other))
    with pytest.raises(InvalidGraph, match="model/Placeholder_1"):
        GraphRunner.from_pb(g.write(graph_dir / "two_inputs.pb"))


def test_unsupported_setting_is_named(graph_dir):
    g = tf_graphs.GraphBuilder()
    x = g.placeholder("model/Placeholder", [-1, 96, 64])
    net = g.reshape("model/Reshape", x, g.const("model/shape", np.array([-1, 96, 64, 1], np.int32)))
    net = g.node("Conv2D", "model/Conv2D", [net, g.const("model/w", np.ones((3, 3, 1, 2), np.float32))],
                 T=tf_graphs._FLOAT, strides=tf_graphs._Ints([1, 1, 1, 1]), padding=b"EXPLICIT",
                 explicit_paddings=tf_graphs._Ints([0, 0, 1, 1, 1, 1, 0, 0]), data_format=b"NHWC")
    g.unary("Sigmoid", "model/Sigmoid", net)
    with pytest.raises(UnsupportedGraph, match="padding=EXPLICIT") as info:
        GraphRunner.from_pb(g.write(graph_dir / "explicit.pb"))
    assert info.value.op_types == ("Conv2D",)
