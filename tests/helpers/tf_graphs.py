"""Write small frozen TensorFlow GraphDef files (``.pb``) without TensorFlow.

The real speech model (``genre_rosamerica-vggish-audioset-1.pb``) cannot be
downloaded on the development machines, so the tests build graphs of the same
shape themselves, using only the GraphDef protobuf messages that ship compiled
in the ``tensorboard`` package. Essentia's TensorFlow loads and runs these
files, which makes them an oracle for the project's PyTorch graph runner.

Builders:

- ``write_linear_graph(path, weight, bias)``: Placeholder [-1, 96, 64] ->
  Reshape [-1, 6144] -> MatMul -> Add -> Sigmoid ``model/Sigmoid`` [-1, 8].
- ``write_constant_speech_graph(path, speech_logit)``: the linear graph with a
  zero weight, so column 7 (speech) is ``sigmoid(speech_logit)`` for any input.
- ``write_vggish_graph(path, seed, channels=...)``: a VGGish-shaped classifier
  with random weights, laid out as TF-slim VGGish graphs are once frozen.
- ``write_op_zoo_graph(path, seed)``: the settings VGGish does not use (strides, uneven
  and VALID padding, dilation, a Softmax head).

Generate these into a temporary folder in tests; never commit ``.pb`` files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import (
    attr_value_pb2,
    graph_pb2,
    node_def_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

INPUT_NAME = "model/Placeholder"
OUTPUT_NAME = "model/Sigmoid"
PATCH_FRAMES = 96
MEL_BANDS = 64
N_CLASSES = 8
SPEECH_COLUMN = 7

# The real VGGish layer sizes (conv1..conv4/conv4_2, fc1_1, fc1_2, embedding).
REAL_VGGISH_CHANNELS = (64, 128, 256, 256, 512, 512)
REAL_VGGISH_FC = (4096, 4096)
EMBEDDING_SIZE = 128

_DTYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
}


def _shape_proto(shape) -> tensor_shape_pb2.TensorShapeProto:
    proto = tensor_shape_pb2.TensorShapeProto()
    for size in shape:
        proto.dim.add(size=int(size))
    return proto


def tensor_proto(value, dtype=None, packed: bool = True) -> tensor_pb2.TensorProto:
    """A TensorProto for ``value``: bytes in tensor_content, or the repeated *_val fields."""
    array = np.asarray(value, dtype=dtype)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    proto = tensor_pb2.TensorProto(dtype=_DTYPES[array.dtype], tensor_shape=_shape_proto(array.shape))
    if packed:
        proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    elif array.dtype == np.float32:
        proto.float_val.extend(array.ravel().tolist())
    elif array.dtype == np.int64:
        proto.int64_val.extend(array.ravel().tolist())
    else:
        proto.int_val.extend(array.ravel().tolist())
    return proto


class GraphBuilder:
    """Adds NodeDefs to a GraphDef with the attributes TensorFlow expects for each op."""

    def __init__(self):
        self.graph = graph_pb2.GraphDef()
        self.graph.versions.producer = 27
        self._names: set[str] = set()

    # -- plumbing -----------------------------------------------------------
    def _unique(self, name: str) -> str:
        if name not in self._names:
            return name
        index = 1
        while f"{name}_{index}" in self._names:
            index += 1
        return f"{name}_{index}"

    def node(self, op: str, name: str, inputs=(), **attrs) -> str:
        name = self._unique(name)
        self._names.add(name)
        node = node_def_pb2.NodeDef(name=name, op=op, input=list(inputs))
        for key, value in attrs.items():
            node.attr[key].CopyFrom(_attr(value))
        self.graph.node.append(node)
        return name

    def write(self, path) -> Path:
        path = Path(path)
        path.write_bytes(self.graph.SerializeToString())
        return path

    # -- ops ----------------------------------------------------------------
    def placeholder(self, name: str, shape) -> str:
        return self.node("Placeholder", name, dtype=_Type(types_pb2.DT_FLOAT), shape=_shape_proto(shape))

    def const(self, name: str, value, dtype=None, packed: bool = True) -> str:
        proto = tensor_proto(value, dtype, packed)
        return self.node("Const", name, dtype=_Type(proto.dtype), value=proto)

    def variable(self, name: str, value, packed: bool = True) -> str:
        """A frozen variable: ``name`` Const read through ``name/read`` Identity."""
        const = self.const(name, value, np.float32, packed)
        return self.node("Identity", f"{name}/read", [const], T=_FLOAT)

    def unary(self, op: str, name: str, x: str) -> str:
        return self.node(op, name, [x], T=_FLOAT)

    def binary(self, op: str, name: str, x: str, y: str) -> str:
        return self.node(op, name, [x, y], T=_FLOAT)

    def reshape(self, name: str, x: str, shape: str) -> str:
        return self.node("Reshape", name, [x, shape], T=_FLOAT, Tshape=_Type(types_pb2.DT_INT32))

    def matmul(self, name: str, x: str, w: str, transpose_b: bool = False) -> str:
        return self.node("MatMul", name, [x, w], T=_FLOAT, transpose_a=False, transpose_b=transpose_b)

    def bias_add(self, name: str, x: str, b: str) -> str:
        return self.node("BiasAdd", name, [x, b], T=_FLOAT, data_format=b"NHWC")

    def conv2d(self, name: str, x: str, w: str, strides=(1, 1), padding: str = "SAME") -> str:
        return self.node(
            "Conv2D", name, [x, w], T=_FLOAT,
            strides=_Ints([1, strides[0], strides[1], 1]), padding=padding.encode(),
            data_format=b"NHWC", dilations=_Ints([1, 1, 1, 1]), use_cudnn_on_gpu=True,
            explicit_paddings=_Ints([]),
        )

    def pool(self, op: str, name: str, x: str, ksize=(2, 2), strides=(2, 2), padding: str = "SAME") -> str:
        return self.node(
            op, name, [x], T=_FLOAT,
            ksize=_Ints([1, ksize[0], ksize[1], 1]), strides=_Ints([1, strides[0], strides[1], 1]),
            padding=padding.encode(), data_format=b"NHWC",
        )

    def dynamic_flatten(self, name: str, x: str) -> str:
        """``reshape(x, (shape(x)[0], -1))``, as ``tf.layers.flatten`` writes it."""
        shape = self.node("Shape", f"{name}/Shape", [x], T=_FLOAT, out_type=_Type(types_pb2.DT_INT32))
        begin = self.const(f"{name}/strided_slice/stack", np.array([0], np.int32))
        end = self.const(f"{name}/strided_slice/stack_1", np.array([1], np.int32))
        step = self.const(f"{name}/strided_slice/stack_2", np.array([1], np.int32))
        batch = self.node(
            "StridedSlice", f"{name}/strided_slice", [shape, begin, end, step],
            T=_Type(types_pb2.DT_INT32), Index=_Type(types_pb2.DT_INT32),
            begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=1,
        )
        minus_one = self.const(f"{name}/Reshape/shape/1", np.int32(-1))
        target = self.node(
            "Pack", f"{name}/Reshape/shape", [batch, minus_one],
            N=2, T=_Type(types_pb2.DT_INT32), axis=0,
        )
        return self.reshape(f"{name}/Reshape", x, target)


class _Type(int):
    """Marks an int attribute as a DataType."""


class _Ints(list):
    """Marks a list attribute as a list of ints."""


_FLOAT = _Type(types_pb2.DT_FLOAT)


def _attr(value) -> attr_value_pb2.AttrValue:
    if isinstance(value, attr_value_pb2.AttrValue):
        return value
    if isinstance(value, _Type):
        return attr_value_pb2.AttrValue(type=int(value))
    if isinstance(value, bool):
        return attr_value_pb2.AttrValue(b=value)
    if isinstance(value, int):
        return attr_value_pb2.AttrValue(i=value)
    if isinstance(value, float):
        return attr_value_pb2.AttrValue(f=value)
    if isinstance(value, bytes):
        return attr_value_pb2.AttrValue(s=value)
    if isinstance(value, _Ints):
        return attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(i=list(value)))
    if isinstance(value, tensor_shape_pb2.TensorShapeProto):
        return attr_value_pb2.AttrValue(shape=value)
    if isinstance(value, tensor_pb2.TensorProto):
        return attr_value_pb2.AttrValue(tensor=value)
    raise TypeError(f"no attribute form for {value!r}")


# ---------------------------------------------------------------------------
# The builders the tests use
# ---------------------------------------------------------------------------

def write_linear_graph(path, weight, bias) -> Path:
    """Placeholder [-1,96,64] -> Reshape [-1,6144] -> MatMul(weight [6144,8]) -> Add(bias [8]) -> Sigmoid."""
    weight = np.asarray(weight, np.float32)
    bias = np.asarray(bias, np.float32)
    if weight.shape != (PATCH_FRAMES * MEL_BANDS, N_CLASSES) or bias.shape != (N_CLASSES,):
        raise ValueError(f"weight must be [6144, 8] and bias [8], got {weight.shape} and {bias.shape}")
    g = GraphBuilder()
    x = g.placeholder(INPUT_NAME, [-1, PATCH_FRAMES, MEL_BANDS])
    shape = g.const("model/Reshape/shape", np.array([-1, PATCH_FRAMES * MEL_BANDS], np.int32))
    flat = g.reshape("model/Reshape", x, shape)
    w = g.const("model/weight", weight)
    b = g.const("model/bias", bias)
    logits = g.binary("Add", "model/add", g.matmul("model/MatMul", flat, w), b)
    g.unary("Sigmoid", OUTPUT_NAME, logits)
    return g.write(path)


def write_constant_speech_graph(path, speech_logit: float, other_logit: float = 0.0) -> Path:
    """A graph whose speech column (7) is ``sigmoid(speech_logit)`` whatever the input.

    The speech score of the gate is then ``100 * sigmoid(speech_logit)``; see
    :func:`logit_for_score` to ask for a given score.
    """
    bias = np.full(N_CLASSES, other_logit, np.float32)
    bias[SPEECH_COLUMN] = speech_logit
    return write_linear_graph(path, np.zeros((PATCH_FRAMES * MEL_BANDS, N_CLASSES), np.float32), bias)


def logit_for_score(score: float) -> float:
    """The logit whose sigmoid times 100 is ``score`` (0 < score < 100)."""
    p = score / 100.0
    return math.log(p / (1.0 - p))


def write_vggish_graph(
    path,
    seed: int,
    channels=(8, 16, 32, 32),
    fc=(64,),
    embedding: int = EMBEDDING_SIZE,
    head_hidden: int | None = 32,
    dynamic_flatten: bool = True,
    packed_weights: bool = True,
    speech_bias: float = 0.0,
    speech_scale: float = 1.0,
) -> Path:
    """A VGGish-shaped classifier with random weights, laid out as a frozen TF-slim graph.

    ``channels`` lists the conv layers (3x3, SAME, each + BiasAdd + Relu). With
    six entries (the real VGGish layout is 64, 128, 256, 256, 512, 512) the
    2x2 max pools sit where VGGish has them: after conv1, conv2, conv3_2 and
    conv4_2; otherwise a pool follows every conv (four convs give VGGish's
    final 6 x 4 grid). ``fc`` are the fully connected Relu layers before the
    ``embedding`` layer (VGGish: 4096, 4096, then 128). The classifier head has
    one hidden Relu layer of ``head_hidden`` units (None: none) and ends in an
    8-way Sigmoid named ``model/Sigmoid``. ``dynamic_flatten`` flattens with
    Shape/StridedSlice/Pack/Reshape as ``tf.layers.flatten`` does, else with a
    constant Reshape; ``packed_weights=False`` stores weights in float_val.

    Weights are scaled (He-like) so activations stay in a useful range and the
    outputs are spread over (0, 1) rather than saturated. ``speech_scale`` multiplies the
    speech column's weights and ``speech_bias`` is added to its logit, to place the speech
    scores of a set of stems on either side of the gate.
    """
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    x = g.placeholder(INPUT_NAME, [-1, PATCH_FRAMES, MEL_BANDS])
    # Essentia's VGGish models scale the log-mel input; a Mul exercises the op.
    scale = g.const("model/vggish/input_scale", np.float32(rng.uniform(0.5, 1.5)))
    x = g.binary("Mul", "model/vggish/mul", x, scale)
    shape = g.const("model/vggish/Reshape/shape", np.array([-1, PATCH_FRAMES, MEL_BANDS, 1], np.int32))
    net = g.reshape("model/vggish/Reshape", x, shape)

    if len(channels) == 6:
        pool_after = {0, 1, 3, 5}
        names = ["conv1", "conv2", "conv3/conv3_1", "conv3/conv3_2", "conv4/conv4_1", "conv4/conv4_2"]
    else:
        pool_after = set(range(len(channels)))
        names = [f"conv{i + 1}" for i in range(len(channels))]
    height, width, depth = PATCH_FRAMES, MEL_BANDS, 1
    pool_index = 0
    for i, (out_channels, name) in enumerate(zip(channels, names)):
        scope = f"model/vggish/{name}"
        w = rng.normal(0.0, math.sqrt(2.0 / (9 * depth)), (3, 3, depth, out_channels))
        b = rng.normal(0.0, 0.05, out_channels)
        net = g.conv2d(f"{scope}/Conv2D", net, g.variable(f"{scope}/weights", w, packed_weights))
        net = g.bias_add(f"{scope}/BiasAdd", net, g.variable(f"{scope}/biases", b, packed_weights))
        net = g.unary("Relu", f"{scope}/Relu", net)
        depth = out_channels
        if i in pool_after:
            pool_index += 1
            net = g.pool("MaxPool", f"model/vggish/pool{pool_index}/MaxPool", net)
            height, width = (height + 1) // 2, (width + 1) // 2

    if dynamic_flatten:
        net = g.dynamic_flatten("model/vggish/Flatten/flatten", net)
    else:
        flat_shape = g.const("model/vggish/Flatten/Reshape/shape", np.array([-1, height * width * depth], np.int32))
        net = g.reshape("model/vggish/Flatten/Reshape", net, flat_shape)
    width_in = height * width * depth

    layers = [(f"model/vggish/fc1/fc1_{i + 1}", units) for i, units in enumerate(fc)]
    layers.append(("model/vggish/fc2", embedding))
    for scope, units in layers:
        w = rng.normal(0.0, math.sqrt(2.0 / width_in), (width_in, units))
        b = rng.normal(0.0, 0.05, units)
        net = g.matmul(f"{scope}/MatMul", net, g.variable(f"{scope}/weights", w, packed_weights))
        net = g.bias_add(f"{scope}/BiasAdd", net, g.variable(f"{scope}/biases", b, packed_weights))
        net = g.unary("Relu", f"{scope}/Relu", net)
        width_in = units
    net = g.unary("Identity", "model/vggish/embedding", net)

    # Classifier head: dense layers written as MatMul + Add (tf.matmul + bias), frozen.
    if head_hidden:
        w = rng.normal(0.0, math.sqrt(2.0 / width_in), (width_in, head_hidden))
        b = rng.normal(0.0, 0.05, head_hidden)
        net = g.matmul("model/dense/MatMul", net, g.variable("model/dense/kernel", w, packed_weights))
        net = g.binary("AddV2", "model/dense/add", net, g.variable("model/dense/bias", b, packed_weights))
        net = g.unary("Relu", "model/dense/Relu", net)
        width_in = head_hidden
    w = rng.normal(0.0, math.sqrt(1.0 / width_in), (width_in, N_CLASSES))
    b = rng.normal(0.0, 0.5, N_CLASSES)
    w[:, SPEECH_COLUMN] *= speech_scale
    b[SPEECH_COLUMN] += speech_bias
    # The last layer stores its kernel transposed so MatMul's transpose_b is exercised.
    net = g.matmul("model/dense_1/MatMul", net,
                   g.variable("model/dense_1/kernel", w.T.copy(), packed_weights), transpose_b=True)
    net = g.binary("Add", "model/dense_1/add", net, g.variable("model/dense_1/bias", b, packed_weights))
    g.unary("Sigmoid", OUTPUT_NAME, net)
    return g.write(path)


def write_graph_with_op(path, op: str) -> Path:
    """The linear graph with one extra unary node of type ``op`` before the Sigmoid."""
    g = GraphBuilder()
    x = g.placeholder(INPUT_NAME, [-1, PATCH_FRAMES, MEL_BANDS])
    shape = g.const("model/Reshape/shape", np.array([-1, PATCH_FRAMES * MEL_BANDS], np.int32))
    flat = g.reshape("model/Reshape", x, shape)
    w = g.const("model/weight", np.zeros((PATCH_FRAMES * MEL_BANDS, N_CLASSES), np.float32))
    logits = g.matmul("model/MatMul", flat, w)
    odd = g.unary(op, f"model/{op}", logits)
    g.unary("Sigmoid", OUTPUT_NAME, odd)
    return g.write(path)


def write_identity_graph(path) -> Path:
    """A graph whose ``model/Sigmoid`` output is its input patch, flattened to [-1, 6144].

    Run through Essentia's TensorflowPredictVGGish it returns the very patches
    Essentia feeds to a graph, which is the oracle for ``vggish_patches``.
    """
    g = GraphBuilder()
    x = g.placeholder(INPUT_NAME, [-1, PATCH_FRAMES, MEL_BANDS])
    shape = g.const("model/Reshape/shape", np.array([-1, PATCH_FRAMES * MEL_BANDS], np.int32))
    flat = g.reshape("model/Reshape", x, shape)
    g.unary("Identity", OUTPUT_NAME, flat)
    return g.write(path)


def write_op_zoo_graph(path, seed: int) -> Path:
    """A graph that exercises the settings VGGish itself does not: strided SAME convolutions
    and pools with uneven padding, a dilated VALID convolution, float_val constants and a
    Softmax head, ending in an 8-way Sigmoid."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    x = g.placeholder(INPUT_NAME, [-1, PATCH_FRAMES, MEL_BANDS])
    net = g.reshape("model/zoo/Reshape", x, g.const("model/zoo/Reshape/shape",
                                                    np.array([-1, PATCH_FRAMES, MEL_BANDS, 1], np.int32)))

    def conv(name, net, cin, cout, k, strides=(1, 1), padding="SAME", dilation=1, packed=True):
        w = rng.normal(0.0, math.sqrt(2.0 / (k * k * cin)), (k, k, cin, cout))
        node = g.node(
            "Conv2D", f"model/zoo/{name}/Conv2D", [net, g.variable(f"model/zoo/{name}/weights", w, packed)],
            T=_FLOAT, strides=_Ints([1, strides[0], strides[1], 1]), padding=padding.encode(),
            data_format=b"NHWC", dilations=_Ints([1, dilation, dilation, 1]), use_cudnn_on_gpu=True,
            explicit_paddings=_Ints([]),
        )
        node = g.bias_add(f"model/zoo/{name}/BiasAdd", node,
                          g.variable(f"model/zoo/{name}/biases", rng.normal(0, 0.1, cout), packed))
        return g.unary("Relu", f"model/zoo/{name}/Relu", node)

    net = conv("conv1", net, 1, 6, 3, strides=(2, 2))  # 96x64 -> 48x32
    net = g.pool("MaxPool", "model/zoo/pool1/MaxPool", net, ksize=(3, 3), strides=(2, 2), padding="SAME")  # 24x16
    net = conv("conv2", net, 6, 8, 5, strides=(1, 2), padding="SAME", packed=False)  # 24x8
    net = g.pool("MaxPool", "model/zoo/pool2/MaxPool", net, ksize=(3, 2), strides=(2, 2), padding="VALID")  # 11x4
    net = conv("conv3", net, 8, 12, 2, padding="VALID", dilation=2)  # 9x2
    flat = g.dynamic_flatten("model/zoo/flat", net)
    width = 9 * 2 * 12
    hidden = g.binary("AddV2", "model/zoo/dense/add",
                      g.matmul("model/zoo/dense/MatMul", flat,
                               g.variable("model/zoo/dense/kernel", rng.normal(0.0, 0.1, (width, 16)))),
                      g.variable("model/zoo/dense/bias", rng.normal(0, 0.1, 16)))
    probs = g.unary("Softmax", "model/zoo/Softmax", hidden)
    logits = g.binary("Add", "model/zoo/out/add",
                      g.matmul("model/zoo/out/MatMul", probs,
                               g.variable("model/zoo/out/kernel", rng.normal(0.0, 4.0, (16, N_CLASSES)))),
                      g.const("model/zoo/out/bias", rng.normal(0, 0.5, N_CLASSES).astype(np.float32), packed=False))
    g.unary("Sigmoid", OUTPUT_NAME, logits)
    return g.write(path)
