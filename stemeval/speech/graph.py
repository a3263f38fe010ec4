"""Run the speech model, a frozen TensorFlow VGGish graph, in PyTorch.

The speech gate runs ``genre_rosamerica-vggish-audioset-1.pb`` (VGGish plus a classifier
head) through Essentia's ``TensorflowPredictVGGish``, which is slow. This module reads the
same ``.pb`` (with the GraphDef message that ships compiled in ``tensorboard``) and evaluates
the nodes the output depends on with PyTorch ops that compute what TensorFlow computes (NHWC
layout, TF's SAME/VALID padding, MatMul transposes), so the numbers agree with Essentia's to
float rounding.

It implements the ops of VGGish-family graphs only: TF-slim's VGGish (Reshape, Conv2D,
BiasAdd, Relu, MaxPool, a flatten that may compute its shape with Shape/StridedSlice/Pack,
MatMul) and the dense classifier heads Essentia trained on it (MatMul, BiasAdd/Add, Relu,
Sigmoid or Softmax), with Identity, Mul and constants. A graph with any other op is
``UnsupportedGraph`` and the caller runs it in Essentia's TensorFlow instead.

API:

- ``read_graph(path)`` -> ``[Node]``: the GraphDef as plain values (needs tensorboard);
  ``GraphRunner.from_nodes(nodes, ...)`` builds a runner from them (needs only torch).
- ``GraphRunner.from_pb(path, input_name='model/Placeholder', output_name='model/Sigmoid')``
  -> a ``torch.nn.Module``; ``runner(patches[B, 96, 64]) -> [B, 8]``; ``.to(device)`` moves it.
- ``run_batches(step, patches, batch, device)``: ``step`` (a function of a batch of patches
  giving a tuple of outputs) over many patches, ``batch`` at a time: the gate's eager runs.
- ``PatchActivations(runner, audio_16k)``: one stem's activations, each distinct patch run
  once and only on request (the speech gate's lazy path); it can move between processes
  and have its patches computed in one and run in another.
- ``UnsupportedGraph``: the graph uses ops (or op settings) this runner does not
  implement; the message names them. Callers fall back to Essentia's TensorFlow.
- ``InvalidGraph`` (a ``ValueError``): the file is not a GraphDef, or lacks the
  input/output nodes; the message is one line.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stemeval.speech.vggish_input import patch_bands, patch_count, patch_span

# Imported inside the functions that use them, so that what needs none of them starts without them:
# protobuf, tensorboard.


class UnsupportedGraph(Exception):
    """The graph needs an op (or an op setting) the PyTorch runner does not implement."""

    def __init__(self, message: str, op_types=()):
        super().__init__(message)
        self.op_types = tuple(op_types)


class InvalidGraph(ValueError):
    """The file is not a usable TensorFlow GraphDef for the requested input and output."""


@dataclass
class Node:
    """A GraphDef node as plain values: attributes as str/int/float/bool/list of ints
    (data types as numpy type names), and a Const's value as an array."""

    name: str
    op: str
    inputs: list = field(default_factory=list)  # data inputs; control inputs are dropped
    attrs: dict = field(default_factory=dict)
    value: np.ndarray | None = None


# ---------------------------------------------------------------------------
# GraphDef (protobuf) -> Nodes
# ---------------------------------------------------------------------------

_NUMPY_TYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64}
_VALUE_FIELDS = {"DT_FLOAT": "float_val", "DT_INT32": "int_val", "DT_INT64": "int64_val"}


def tensor_to_numpy(proto) -> np.ndarray:
    """The value of a TensorProto: ``tensor_content`` bytes, or the repeated ``*_val`` field.

    As in TensorFlow, a repeated field shorter than the shape is completed with
    its last value (one value fills the whole tensor).
    """
    from tensorboard.compat.proto import types_pb2

    type_name = types_pb2.DataType.Name(proto.dtype)
    if type_name not in _NUMPY_TYPES:
        raise UnsupportedGraph(f"constant of type {type_name}")
    dtype = np.dtype(_NUMPY_TYPES[type_name])
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    content = proto.tensor_content  # read once: each read copies the bytes out of the message
    if content:
        array = np.frombuffer(content, dtype=dtype.newbyteorder("<"))
        if array.size != count:
            raise InvalidGraph(f"constant holds {array.size} values for shape {list(shape)}")
        return array.astype(dtype).reshape(shape)  # native byte order, writable
    values = np.asarray(list(getattr(proto, _VALUE_FIELDS[type_name])), dtype)
    if values.size == count:
        return values.reshape(shape)
    if values.size == 0:
        return np.zeros(shape, dtype)
    if values.size > count:
        raise InvalidGraph(f"constant holds {values.size} values for shape {list(shape)}")
    filled = np.full(count, values[-1], dtype)
    filled[: values.size] = values
    return filled.reshape(shape)


def _attr_value(attr):
    from tensorboard.compat.proto import types_pb2

    kind = attr.WhichOneof("value")
    if kind == "s":
        return attr.s.decode(errors="replace")
    if kind == "type":
        name = types_pb2.DataType.Name(attr.type)
        return np.dtype(_NUMPY_TYPES[name]).name if name in _NUMPY_TYPES else name
    if kind == "list":
        return [int(v) for v in attr.list.i]
    if kind in ("i", "f", "b"):
        return getattr(attr, kind)
    return None  # shapes and tensors: read where needed


def read_graph(path) -> list[Node]:
    """The nodes of a frozen GraphDef file, as plain values."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import graph_pb2

    path = Path(path)
    if path.is_dir():
        raise InvalidGraph(f"{path} is a folder, not a frozen TensorFlow graph (.pb file)")
    graph = graph_pb2.GraphDef()
    try:
        # a missing file raises FileNotFoundError; the bytes are freed once parsed
        graph.ParseFromString(path.read_bytes())
    except (DecodeError, RuntimeError, ValueError):
        raise InvalidGraph(f"{path} is not a TensorFlow GraphDef (.pb): it does not parse as one") from None
    if not graph.node or any(not node.name or not node.op for node in graph.node):
        raise InvalidGraph(f"{path} is not a TensorFlow GraphDef (.pb): no usable nodes")
    nodes = []
    for node in graph.node:
        value = None
        if node.op == "Const":
            try:
                value = tensor_to_numpy(node.attr["value"].tensor)
            except (UnsupportedGraph, InvalidGraph) as error:
                value = error  # raised only if the output needs this constant
        nodes.append(Node(node.name, node.op, [i for i in node.input if not i.startswith("^")],
                          {key: _attr_value(attr) for key, attr in node.attr.items()}, value))
    return nodes


# ---------------------------------------------------------------------------
# Op implementations (TensorFlow semantics, NHWC)
# ---------------------------------------------------------------------------

def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after)."""
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _spatial_pads(x_nchw: torch.Tensor, ksize, strides, dilations, padding: str):
    if padding == "VALID":
        return (0, 0), (0, 0)
    h, w = x_nchw.shape[2], x_nchw.shape[3]
    return (_same_pads(h, ksize[0], strides[0], dilations[0]),
            _same_pads(w, ksize[1], strides[1], dilations[1]))


def _conv2d(node):
    """Conv2D on NHWC input with an OIHW weight (permuted once from TF's HWIO at load)."""
    strides = node.attrs.get("strides") or [1, 1, 1, 1]
    dilations = node.attrs.get("dilations") or [1, 1, 1, 1]
    padding = node.attrs["padding"]
    stride = (strides[1], strides[2])
    dilation = (dilations[1], dilations[2])

    def conv2d(x, w, bias=None):
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW view (channels_last memory, no copy)
        (top, bottom), (left, right) = _spatial_pads(x, w.shape[2:], stride, dilation, padding)
        if top == bottom and left == right:
            y = F.conv2d(x, w, bias, stride, (top, left), dilation)
        else:
            y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, bias, stride, 0, dilation)
        return y.permute(0, 2, 3, 1)

    return conv2d


def _max_pool(node):
    ksize, strides = node.attrs["ksize"], node.attrs["strides"]
    padding = node.attrs["padding"]
    k, stride = (ksize[1], ksize[2]), (strides[1], strides[2])

    def max_pool(x):
        x = x.permute(0, 3, 1, 2)
        (top, bottom), (left, right) = _spatial_pads(x, k, stride, (1, 1), padding)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=-math.inf)
        return F.max_pool2d(x, k, stride).permute(0, 2, 3, 1)

    return max_pool


def _ints(t) -> list[int]:
    return [int(v) for v in torch.as_tensor(t).reshape(-1).tolist()]


def _reshape(x, shape):
    return x.reshape(_ints(shape))


def _strided_slice(node):
    """StridedSlice with positive strides and begin/end/shrink masks (a flatten's shape[0])."""
    begin_mask, end_mask = node.attrs.get("begin_mask", 0), node.attrs.get("end_mask", 0)
    shrink_mask = node.attrs.get("shrink_axis_mask", 0)

    def strided_slice(x, begin, end, strides):
        index = []
        for i, (b, e, step) in enumerate(zip(_ints(begin), _ints(end), _ints(strides))):
            if (shrink_mask >> i) & 1:
                index.append(b)
            else:
                index.append(slice(None if (begin_mask >> i) & 1 else b,
                                   None if (end_mask >> i) & 1 else e, step))
        return x[tuple(index)]

    return strided_slice


def _shape(node):
    dtype = torch.int64 if node.attrs.get("out_type") == "int64" else torch.int32
    return lambda x: torch.tensor(list(x.shape), dtype=dtype)  # on the CPU, where shapes are read


def _pack(node):
    axis = node.attrs.get("axis", 0)
    return lambda *xs: torch.stack([torch.as_tensor(v) for v in xs], dim=axis)


def _matmul(node):
    ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)

    def matmul(a, b):
        return torch.matmul(a.t() if ta else a, b.t() if tb else b)

    return matmul


def _softmax(x):
    return torch.softmax(x, dim=-1)


# op type -> fn(*inputs) -> tensor, or factory(node) returning one
_SIMPLE = {
    "Relu": torch.relu, "Sigmoid": torch.sigmoid, "Softmax": _softmax,
    "Add": torch.add, "AddV2": torch.add, "BiasAdd": torch.add, "Mul": torch.mul,
    "Reshape": _reshape,
}
_FACTORIES = {
    "Conv2D": _conv2d, "MaxPool": _max_pool, "MatMul": _matmul, "Shape": _shape,
    "StridedSlice": _strided_slice, "Pack": _pack,
}
_ALIASES = frozenset({"Identity"})
SUPPORTED_OPS = frozenset(_SIMPLE) | frozenset(_FACTORIES) | _ALIASES | {"Const", "Placeholder"}


def _check_node(node) -> str | None:
    """Why this node cannot be run (an op setting TF graphs may use that we do not implement)."""
    attrs = node.attrs
    if node.op in ("Conv2D", "MaxPool", "BiasAdd") and attrs.get("data_format", "NHWC") != "NHWC":
        return f"{node.op} with data_format={attrs['data_format']}"
    if node.op in ("Conv2D", "MaxPool"):
        if attrs.get("padding") not in ("SAME", "VALID"):
            return f"{node.op} with padding={attrs.get('padding')}"
        strides = attrs.get("strides") or [1, 1, 1, 1]
        windows = [attrs.get("dilations") or [1, 1, 1, 1]] if node.op == "Conv2D" else [attrs["ksize"]]
        if any(len(v) != 4 or v[0] != 1 or v[3] != 1 for v in [strides] + windows):
            return f"{node.op} along batch or channels"
    if node.op == "StridedSlice" and (attrs.get("ellipsis_mask") or attrs.get("new_axis_mask")):
        return "StridedSlice with an ellipsis or new axis"
    if attrs.get("T", "float32") not in ("float32", "int32", "int64"):
        return f"{node.op} of type {attrs['T']}"
    return None


# ---------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------

def _split_input(name: str) -> tuple[str, int]:
    """'node:1' -> ('node', 1); 'node' -> ('node', 0)."""
    node, sep, index = name.rpartition(":")
    if sep and index.isdigit():
        return node, int(index)
    return name, 0


class GraphRunner(torch.nn.Module):
    """Evaluates one output of a frozen TensorFlow graph from one fed input, in PyTorch.

    Build it with :meth:`from_pb`. Float constants (weights) are buffers, so
    ``.to(device)`` moves them; integer constants (shapes, axes) stay on the CPU, where ops
    read them without a device sync. Constant subgraphs (Const -> Identity -> ...) are
    folded at load time and the rest is a precomputed list of steps.
    """

    def __init__(self, steps, const_slots, n_slots, input_slot, output_slot, free_after,
                 input_name: str, output_name: str):
        super().__init__()
        self.input_name = input_name
        self.output_name = output_name
        self._steps = steps  # [(fn, input slots, output slots)]
        self._const_names = []
        self._cpu_constants = []
        for slot, value in const_slots.items():
            if value.is_floating_point():
                name = f"const_{slot}"
                self.register_buffer(name, value, persistent=False)
                self._const_names.append((slot, name))
            else:
                self._cpu_constants.append((slot, value))
        self._n_slots = n_slots
        self._input_slot = input_slot
        self._output_slot = output_slot
        self._free_after = free_after  # per step: slots no longer needed afterwards
        # Follows .to(device) and .double(): the device and float type inputs are cast to.
        self.register_buffer("_probe", torch.zeros((), dtype=torch.float32), persistent=False)

    @property
    def device(self) -> torch.device:
        return self._probe.device

    @property
    def dtype(self) -> torch.dtype:
        return self._probe.dtype

    @classmethod
    def from_pb(cls, path, input_name: str = "model/Placeholder",
                output_name: str = "model/Sigmoid") -> "GraphRunner":
        return cls.from_nodes(read_graph(path), input_name, output_name, source=str(path))

    @classmethod
    def from_nodes(cls, graph, input_name: str = "model/Placeholder",
                   output_name: str = "model/Sigmoid", source: str = "graph") -> "GraphRunner":
        """A runner for the output ``output_name`` of the ``Node`` list ``graph``."""
        nodes = {node.name: node for node in graph}
        input_node, input_index = _split_input(input_name)
        output_node, output_index = _split_input(output_name)
        for role, name in (("input", input_node), ("output", output_node)):
            if name not in nodes:
                raise InvalidGraph(f"{source} has no {role} node named {name!r}")

        # The nodes the output depends on (data inputs only; control inputs are ignored).
        order: list[str] = []
        state: dict[str, int] = {}
        stack = [(output_node, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise InvalidGraph(f"{source} has a cycle through node {name!r}")
            if name not in nodes:
                raise InvalidGraph(f"{source} refers to a missing node {name!r}")
            state[name] = 1
            stack.append((name, True))
            if name == input_node:
                continue
            for source_name in reversed(nodes[name].inputs):
                dep = _split_input(source_name)[0]
                if state.get(dep) != 2:
                    stack.append((dep, False))
        if input_node not in state:
            raise InvalidGraph(f"{source}: output {output_name!r} does not depend on input {input_name!r}")

        unknown = sorted({nodes[n].op for n in order if n != input_node and nodes[n].op not in SUPPORTED_OPS})
        if unknown:
            raise UnsupportedGraph(
                f"{source} uses TensorFlow ops the PyTorch runner does not implement: {', '.join(unknown)}",
                unknown)
        problems = sorted({p for n in order if n != input_node for p in [_check_node(nodes[n])] if p})
        if problems:
            ops = sorted({nodes[n].op for n in order if n != input_node and _check_node(nodes[n])})
            raise UnsupportedGraph(f"{source} uses op settings the PyTorch runner does not implement: "
                                   f"{'; '.join(problems)}", ops)

        # Assign slots and build steps; fold everything that does not depend on the input.
        slot_of: dict[tuple[str, int], int] = {}
        const_values: dict[int, torch.Tensor] = {}
        steps = []
        next_slot = 0

        def new_slot():
            nonlocal next_slot
            next_slot += 1
            return next_slot - 1

        def input_slots(node):
            slots = []
            for source_name in node.inputs:
                key = _split_input(source_name)
                if key not in slot_of:
                    raise InvalidGraph(f"{source}: node {node.name!r} reads {source_name!r}, "
                                       "an output that node does not have")
                slots.append(slot_of[key])
            return slots

        input_slot = new_slot()
        slot_of[(input_node, input_index)] = input_slot
        for name in order:
            node = nodes[name]
            if name == input_node:
                continue
            try:
                step = cls._compile_node(node, input_slots, new_slot, slot_of, const_values)
            except UnsupportedGraph as error:
                raise UnsupportedGraph(f"{source}: node {name!r} ({node.op}): {error}",
                                       error.op_types or [node.op]) from None
            except InvalidGraph as error:
                raise InvalidGraph(f"{source}: {error}") from None
            if step is not None:
                steps.append(step + (node,))
        output_key = (output_node, output_index)
        if output_key not in slot_of:
            raise InvalidGraph(f"{source}: node {output_node!r} has no output {output_index}")
        output_slot = slot_of[output_key]
        steps = _fuse_layers(steps, const_values, output_slot)

        # Keep only the constants steps read; free every value after its last use.
        used = {i for _, ins, _ in steps for i in ins} | {output_slot}
        const_values = {slot: value for slot, value in const_values.items() if slot in used}
        last_use: dict[int, int] = {}
        for k, (_, ins, outs) in enumerate(steps):
            for i in ins:
                if i not in const_values:
                    last_use[i] = k
            for o in outs:
                last_use.setdefault(o, k)
        free_after = [[] for _ in steps]
        for slot, k in last_use.items():
            if slot != output_slot:
                free_after[k].append(slot)
        return cls(steps, const_values, next_slot, input_slot, output_slot, free_after,
                   input_name, output_name)

    @staticmethod
    def _compile_node(node, input_slots, new_slot, slot_of, const_values):
        """Assign ``node``'s output slots; fold it into ``const_values`` or return its step."""
        if node.op == "Const":
            slot = new_slot()
            slot_of[(node.name, 0)] = slot
            if isinstance(node.value, Exception):
                raise node.value
            # the node's own array, not a copy: a graph's constants are most of its bytes
            const_values[slot] = torch.from_numpy(np.require(node.value, requirements="W"))
            return None
        if node.op == "Placeholder":
            raise InvalidGraph(f"the output needs placeholder {node.name!r}, which is not fed")
        if node.op in _ALIASES:
            # Identity-like: the output is the input's value, so it shares its slot.
            slot_of[(node.name, 0)] = input_slots(node)[0]
            return None
        ins = input_slots(node)
        if node.op == "StridedSlice" and not (
                ins[3] in const_values and bool((const_values[ins[3]] > 0).all())):
            raise UnsupportedGraph("StridedSlice with strides that are not constant and positive",
                                   [node.op])
        if node.op == "Conv2D":
            if ins[1] not in const_values:
                raise UnsupportedGraph("Conv2D with weights computed in the graph", [node.op])
            # Weights stored HWIO by TF: permute once to OIHW for torch.
            weight = const_values[ins[1]].permute(3, 2, 0, 1).contiguous()
            ins = [ins[0], new_slot()]
            const_values[ins[1]] = weight
            fn = _conv2d(node)
        elif node.op in _SIMPLE:
            fn = _SIMPLE[node.op]
        else:
            fn = _FACTORIES[node.op](node)
        out = new_slot()
        slot_of[(node.name, 0)] = out
        if all(i in const_values for i in ins):
            with torch.no_grad():
                const_values[out] = torch.as_tensor(fn(*[const_values[i] for i in ins])).contiguous()
            return None
        return fn, tuple(ins), (out,)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        values: list = [None] * self._n_slots
        buffers = self._buffers
        for slot, name in self._const_names:
            values[slot] = buffers[name]
        for slot, value in self._cpu_constants:
            values[slot] = value
        values[self._input_slot] = patches.to(dtype=self._probe.dtype)
        for (fn, ins, outs), free in zip(self._steps, self._free_after):
            values[outs[0]] = fn(*[values[i] for i in ins])
            for slot in free:
                values[slot] = None
        return values[self._output_slot]


class _Layer:
    """A Conv2D or MatMul step with the BiasAdd and Relu that follow it folded in.

    Conv2D takes the bias inside ``F.conv2d`` (oneDNN adds it to the finished
    sum, as TF's separate BiasAdd does); MatMul adds it in place afterwards;
    Relu runs in place. Same arithmetic as the separate ops, fewer passes
    over memory.
    """

    def __init__(self, op: str, fn, transpose_b: bool = False):
        self.op = op
        self.fn = fn
        self.transpose_b = transpose_b
        self.has_bias = False
        self.relu = False

    def __call__(self, x, w, bias=None):
        if self.op == "Conv2D":
            y = self.fn(x, w, bias)
        else:
            y = self.fn(x, w)
            if bias is not None:
                y = y.add_(bias)
        return y.relu_() if self.relu else y


def _fuse_layers(steps, const_values, output_slot):
    """Fold ``BiasAdd``/``Add`` of a constant vector and ``Relu`` into the Conv2D/MatMul before them.

    ``steps`` are ``(fn, ins, outs, node)``; returns ``(fn, ins, outs)`` steps.
    Only a value read by nothing else is folded away.
    """
    readers: dict[int, int] = {output_slot: 1}
    for _, ins, _, _ in steps:
        for i in ins:
            readers[i] = readers.get(i, 0) + 1
    fused: list[list] = []
    producer: dict[int, int] = {}  # slot -> index in ``fused`` of the step that writes it
    for fn, ins, outs, node in steps:
        op = node.op
        if op in ("BiasAdd", "Add", "AddV2") and len(ins) == 2:
            x, b = ins
            if op != "BiasAdd" and x in const_values:
                x, b = b, x
            j = producer.get(x)
            layer = fused[j][0] if j is not None else None
            bias = const_values.get(b)
            if (isinstance(layer, _Layer) and not layer.has_bias and not layer.relu
                    and readers.get(x) == 1 and bias is not None and bias.dim() == 1
                    and bias.is_floating_point()
                    and _layer_width(layer, fused[j][1], const_values) == bias.shape[0]):
                layer.has_bias = True
                fused[j][1] = fused[j][1] + (b,)
                fused[j][2] = outs
                producer[outs[0]] = j
                continue
        if op == "Relu":
            j = producer.get(ins[0])
            layer = fused[j][0] if j is not None else None
            if isinstance(layer, _Layer) and not layer.relu and readers.get(ins[0]) == 1:
                layer.relu = True
                fused[j][2] = outs
                producer[outs[0]] = j
                continue
        if op == "Conv2D" or (op == "MatMul" and not node.attrs.get("transpose_a")):
            fn = _Layer(op, fn, node.attrs.get("transpose_b", False) if op == "MatMul" else False)
        fused.append([fn, ins, outs])
        for o in outs:
            producer[o] = len(fused) - 1
    return [(fn, tuple(ins), tuple(outs)) for fn, ins, outs in fused]


def _layer_width(layer: "_Layer", ins, const_values):
    """The number of output channels (Conv2D, OIHW weight) or units (MatMul) of a step, if constant."""
    w = const_values.get(ins[1])
    if w is None or w.dim() != (4 if layer.op == "Conv2D" else 2):
        return None
    if layer.op == "Conv2D" or layer.transpose_b:
        return w.shape[0]
    return w.shape[1]


def run_batches(step, patches, batch, device):
    """Each output of ``step`` (a function of a batch of patches giving a tuple of tensors)
    for ``patches`` [n, 96, 64] (numpy or a tensor, n >= 1), run ``batch`` patches at a time
    on ``device``: float32 numpy arrays with one row per patch."""
    parts = []
    with torch.inference_mode():
        for start in range(0, len(patches), batch):
            chunk = torch.as_tensor(patches[start:start + batch]).to(device)
            parts.append([output.float().reshape(len(chunk), -1).cpu().numpy()
                          for output in step(chunk)])
    return [np.concatenate(column) for column in zip(*parts)]


class PatchActivations:
    """The graph's outputs for one stem's VGGish patches, run once per distinct patch.

    Identical patches (digital silence, loops) give identical outputs, so each distinct
    patch is a *unit* run once and weighted by how often it occurs. Units are ordered by
    that weight, most frequent first, which lets the speech gate settle its question with
    few runs on stems with long silences. ``compute(start, stop)`` runs units on request.

    It travels between processes without its runner (``attach`` gives it the receiving
    process's). Where the graph runs on a GPU, ``device_patches`` computes the input patches
    there (``vggish_input.DevicePatches``), and ``approximate`` says that the activations
    taken from them are PyTorch's patches' rather than Essentia's (``compute`` always runs
    Essentia's).
    """

    def __init__(self, runner: GraphRunner | None, audio_16k: np.ndarray):
        self._runner = runner  # already on its device: moved once, where it was built
        self._audio = np.ascontiguousarray(audio_16k, dtype=np.float32)
        self.approximate = False
        self.total = patch_count(len(self._audio))
        # a patch is a function of its samples: equal sample spans give equal patches
        padded = np.concatenate([self._audio, np.zeros(patch_span(0)[1], np.float32)])
        keys = np.array([hashlib.blake2b(padded[max(start, 0):stop], digest_size=16).digest()
                         for start, stop in map(patch_span, range(self.total))], dtype="S16")
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                              return_counts=True)
        order = np.lexsort((first, -counts))  # most frequent first, then by position
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self._patch_of_unit = first[order]
        self.weights = counts[order]
        self._inverse = rank[inverse]

    def __getstate__(self):
        """Without the runner, and the audio as a tensor: PyTorch hands it to another
        process through shared memory rather than through the pipe."""
        state = dict(self.__dict__)
        state["_runner"] = None
        state["_audio"] = torch.from_numpy(np.require(self._audio, requirements="W"))
        return state

    def __setstate__(self, state):
        self.__dict__.update(state, _audio=state["_audio"].numpy())

    def attach(self, runner: GraphRunner) -> "PatchActivations":
        """Run the remaining units with ``runner`` (this process's)."""
        self._runner = runner
        return self

    @property
    def units(self):
        return len(self.weights)

    def unit_patches(self, start: int, stop: int) -> np.ndarray:
        """The input patches of units ``start`` to ``stop``: [n, 96, 64] float32."""
        return patch_bands(self._audio, self._patch_of_unit[start:stop])

    def device_patches(self, start: int, stop: int, patches) -> torch.Tensor:
        """Units ``start`` to ``stop``'s input patches by ``patches`` (a ``DevicePatches``),
        on its device; the activations taken from them are then ``approximate``."""
        self.approximate = True
        return patches(self._audio, self._patch_of_unit[start:stop])

    def compute(self, start: int, stop: int) -> np.ndarray:
        """Activations of units ``start`` to ``stop`` (exclusive): [n, 8] float32."""
        batch = torch.from_numpy(self.unit_patches(start, stop)).to(self._runner.device)
        with torch.inference_mode():
            return self._runner(batch).float().cpu().numpy()

    def expand(self, unit_activations: np.ndarray) -> np.ndarray:
        """Per-unit activations laid out per patch, in patch order: [total, 8]."""
        return unit_activations[self._inverse]
