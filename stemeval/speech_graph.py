"""Run a frozen TensorFlow GraphDef (the speech model) in PyTorch.

The speech gate runs ``genre_rosamerica-vggish-audioset-1.pb`` (VGGish plus a
classifier head) through Essentia's ``TensorflowPredictVGGish``. Essentia's
TensorFlow is slow; this module reads the same ``.pb`` (with the GraphDef
message that ships compiled in ``tensorboard``) and evaluates the nodes the
output depends on with PyTorch ops that compute what TensorFlow computes
(NHWC layout, TF's SAME/VALID padding, MatMul transposes, ...), so the numbers
agree with Essentia's to float rounding.

API:

- ``GraphRunner.from_pb(path, input_name='model/Placeholder', output_name='model/Sigmoid')``
  -> a ``torch.nn.Module``; ``runner(patches[B, 96, 64]) -> [B, 8]``; ``.to(device)`` moves it.
- ``PatchActivations(runner, audio_16k)``: one stem's activations, each distinct
  patch run once and only on request (the speech gate's lazy path).
- ``speech_activations(runner, audio_16k, device='cpu', batch_size=64)`` -> ``[n_patches, 8]``
  numpy float32, the same rows Essentia's ``TensorflowPredictVGGish`` returns.
- ``UnsupportedGraph``: the graph uses ops (or op settings) this runner does not
  implement; the message names them. Callers fall back to Essentia's TensorFlow.
- ``InvalidGraph`` (a ``ValueError``): the file is not a GraphDef, or lacks the
  input/output nodes; the message is one line.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tensorboard.compat.proto import types_pb2


class UnsupportedGraph(Exception):
    """The graph needs an op (or an op setting) the PyTorch runner does not implement."""

    def __init__(self, message: str, op_types=()):
        super().__init__(message)
        self.op_types = tuple(op_types)


class InvalidGraph(ValueError):
    """The file is not a usable TensorFlow GraphDef for the requested input and output."""


# ---------------------------------------------------------------------------
# TensorProto -> torch
# ---------------------------------------------------------------------------

_T = types_pb2
_NUMPY_OF = {
    _T.DT_FLOAT: np.float32, _T.DT_DOUBLE: np.float64, _T.DT_HALF: np.float16,
    _T.DT_INT32: np.int32, _T.DT_INT64: np.int64, _T.DT_INT16: np.int16, _T.DT_INT8: np.int8,
    _T.DT_UINT8: np.uint8, _T.DT_UINT16: np.uint16, _T.DT_BOOL: np.bool_,
}
_FIELD_OF = {
    _T.DT_FLOAT: "float_val", _T.DT_DOUBLE: "double_val", _T.DT_HALF: "half_val",
    _T.DT_INT32: "int_val", _T.DT_INT16: "int_val", _T.DT_INT8: "int_val", _T.DT_UINT8: "int_val",
    _T.DT_UINT16: "int_val", _T.DT_INT64: "int64_val", _T.DT_BOOL: "bool_val",
}
_TORCH_OF = {
    np.float32: torch.float32, np.float64: torch.float64, np.float16: torch.float16,
    np.int32: torch.int32, np.int64: torch.int64, np.int16: torch.int16, np.int8: torch.int8,
    np.uint8: torch.uint8, np.bool_: torch.bool,
}


def _dtype_name(dtype: int) -> str:
    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return str(dtype)


def tensor_to_numpy(proto) -> np.ndarray:
    """The value of a TensorProto: ``tensor_content`` bytes, or the repeated ``*_val`` field.

    As in TensorFlow, a repeated field shorter than the shape is completed with
    its last value (one value fills the whole tensor).
    """
    if proto.dtype not in _NUMPY_OF:
        raise UnsupportedGraph(f"constant of type {_dtype_name(proto.dtype)}")
    dtype = np.dtype(_NUMPY_OF[proto.dtype])
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if proto.tensor_content:
        array = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        if array.size != count:
            raise InvalidGraph(f"constant holds {array.size} values for shape {list(shape)}")
        return array.astype(dtype).reshape(shape)
    field = getattr(proto, _FIELD_OF[proto.dtype])
    if proto.dtype == _T.DT_HALF:
        values = np.asarray(list(field), np.uint16).view(np.float16)
    else:
        values = np.asarray(list(field), dtype)
    if values.size == count:
        return values.reshape(shape)
    if values.size == 0:
        return np.zeros(shape, dtype)
    if values.size > count:
        raise InvalidGraph(f"constant holds {values.size} values for shape {list(shape)}")
    filled = np.full(count, values[-1], dtype)
    filled[: values.size] = values
    return filled.reshape(shape)


# ---------------------------------------------------------------------------
# Op implementations (TensorFlow semantics, NHWC)
# ---------------------------------------------------------------------------

def _s(attr) -> str:
    return attr.s.decode() if isinstance(attr.s, bytes) else str(attr.s)


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


def _make_conv2d(node, weight_is_oihw: bool):
    strides = list(node.attr["strides"].list.i) or [1, 1, 1, 1]
    dilations = list(node.attr["dilations"].list.i) or [1, 1, 1, 1]
    padding = _s(node.attr["padding"])
    stride = (int(strides[1]), int(strides[2]))
    dilation = (int(dilations[1]), int(dilations[2]))

    def conv2d(x, w, bias=None):
        if not weight_is_oihw:
            w = w.permute(3, 2, 0, 1)
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW view (channels_last memory, no copy)
        (top, bottom), (left, right) = _spatial_pads(x, w.shape[2:], stride, dilation, padding)
        if top == bottom and left == right:
            y = F.conv2d(x, w, bias, stride, (top, left), dilation)
        else:
            y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, bias, stride, 0, dilation)
        return y.permute(0, 2, 3, 1)

    return conv2d


def _make_pool(node, kind: str):
    ksize = [int(v) for v in node.attr["ksize"].list.i]
    strides = [int(v) for v in node.attr["strides"].list.i]
    padding = _s(node.attr["padding"])
    k = (ksize[1], ksize[2])
    stride = (strides[1], strides[2])

    def max_pool(x):
        x = x.permute(0, 3, 1, 2)
        (top, bottom), (left, right) = _spatial_pads(x, k, stride, (1, 1), padding)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=-math.inf)
        return F.max_pool2d(x, k, stride).permute(0, 2, 3, 1)

    def avg_pool(x):
        x = x.permute(0, 3, 1, 2)
        (top, bottom), (left, right) = _spatial_pads(x, k, stride, (1, 1), padding)
        if not (top or bottom or left or right):
            return F.avg_pool2d(x, k, stride).permute(0, 2, 3, 1)
        # TensorFlow averages over the window's valid (unpadded) cells only.
        pads = (left, right, top, bottom)
        total = F.avg_pool2d(F.pad(x, pads), k, stride, divisor_override=1)
        ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
        count = F.avg_pool2d(F.pad(ones, pads), k, stride, divisor_override=1)
        return (total / count).permute(0, 2, 3, 1)

    return max_pool if kind == "max" else avg_pool


def _ints(t) -> list[int]:
    return [int(v) for v in torch.as_tensor(t).reshape(-1).tolist()]


def _reshape(x, shape):
    return x.reshape(_ints(shape))


def _make_strided_slice(node):
    begin_mask = node.attr["begin_mask"].i
    end_mask = node.attr["end_mask"].i
    ellipsis_mask = node.attr["ellipsis_mask"].i
    new_axis_mask = node.attr["new_axis_mask"].i
    shrink_mask = node.attr["shrink_axis_mask"].i

    def bit(mask, i):
        return (mask >> i) & 1

    def strided_slice(x, begin, end, strides):
        begin, end, strides = _ints(begin), _ints(end), _ints(strides)
        n_spec = len(begin)
        n_real = sum(1 for i in range(n_spec) if not bit(ellipsis_mask, i) and not bit(new_axis_mask, i))
        index: list = []
        flip_dims: list[int] = []
        dim = 0  # input dimension the next spec entry addresses
        out_dim = 0  # output dimension it produces
        for i in range(n_spec):
            if bit(ellipsis_mask, i):
                skip = x.dim() - n_real
                index.extend([slice(None)] * skip)
                dim += skip
                out_dim += skip
            elif bit(new_axis_mask, i):
                index.append(None)
                out_dim += 1
            elif bit(shrink_mask, i):
                index.append(begin[i])
                dim += 1
            else:
                b = None if bit(begin_mask, i) else begin[i]
                e = None if bit(end_mask, i) else end[i]
                step = strides[i]
                if step > 0:
                    index.append(slice(b, e, step))
                else:
                    # torch has no negative steps: take the same cells forwards, then flip.
                    picked = range(x.shape[dim])[slice(b, e, step)]
                    if len(picked):
                        index.append(slice(picked[-1], picked[0] + 1, -step))
                        flip_dims.append(out_dim)
                    else:
                        index.append(slice(0, 0))
                dim += 1
                out_dim += 1
        out = x[tuple(index)]
        return torch.flip(out, flip_dims) if flip_dims else out

    return strided_slice


def _prod(x, dim, keepdim):
    for d in sorted((d % x.dim() for d in dim), reverse=True):
        x = torch.prod(x, dim=d, keepdim=keepdim)
    return x


def _reduction(fn, node):
    keep = node.attr["keep_dims"].b

    def reduce(x, axes):
        dims = _ints(axes)
        if not dims:
            return x
        return fn(x, dim=dims, keepdim=keep)

    return reduce


def _make_fused_batch_norm(node):
    epsilon = node.attr["epsilon"].f if "epsilon" in node.attr else 1e-4
    fmt = _s(node.attr["data_format"]) if "data_format" in node.attr else "NHWC"
    if node.attr["is_training"].b:
        raise UnsupportedGraph(f"{node.op} with is_training=true", [node.op])

    def batch_norm(x, scale, offset, mean, variance):
        inv = torch.rsqrt(variance + epsilon) * scale
        if fmt == "NCHW":
            shape = (1, -1) + (1,) * (x.dim() - 2)
            return x * inv.reshape(shape) + (offset - mean * inv).reshape(shape)
        return x * inv + (offset - mean * inv)

    return batch_norm


def _cast(node):
    dst = node.attr["DstT"].type
    if dst not in _NUMPY_OF or _NUMPY_OF[dst] not in _TORCH_OF:
        raise UnsupportedGraph(f"Cast to {_dtype_name(dst)}", ["Cast"])
    dtype = _TORCH_OF[_NUMPY_OF[dst]]
    return lambda x: x.to(dtype)


def _shape(node):
    out = torch.int64 if node.attr["out_type"].type == _T.DT_INT64 else torch.int32
    return lambda x: torch.tensor(list(x.shape), dtype=out)  # on the CPU, as shapes are read there


def _softmax(x):
    return torch.softmax(x, dim=-1)


def _pack(node):
    axis = node.attr["axis"].i
    return lambda *xs: torch.stack([torch.as_tensor(v) for v in xs], dim=axis)


def _concat(node):
    def concat(*args):
        *xs, axis = args
        return torch.cat(list(xs), dim=int(axis))

    return concat


def _squeeze(node):
    dims = [int(d) for d in node.attr["squeeze_dims"].list.i]

    def squeeze(x):
        if not dims:
            return x.squeeze()
        out = x
        for d in sorted((d % x.dim() for d in dims), reverse=True):
            out = out.squeeze(d)
        return out

    return squeeze


def _matmul(node):
    ta, tb = node.attr["transpose_a"].b, node.attr["transpose_b"].b

    def matmul(a, b):
        return torch.matmul(a.t() if ta else a, b.t() if tb else b)

    return matmul


def _bias_add(node):
    fmt = _s(node.attr["data_format"]) if "data_format" in node.attr else "NHWC"
    if fmt == "NCHW":
        return lambda x, b: x + b.reshape((1, -1) + (1,) * (x.dim() - 2))
    return lambda x, b: x + b


def _leaky_relu(node):
    alpha = node.attr["alpha"].f if "alpha" in node.attr else 0.2
    return lambda x: F.leaky_relu(x, alpha)


def _pad(node):
    mode = {"Pad": "constant", "PadV2": "constant"}.get(node.op)
    if node.op == "MirrorPad":
        mode = "reflect" if _s(node.attr["mode"]) == "REFLECT" else "symmetric"

    def pad(x, paddings, value=None):
        pairs = torch.as_tensor(paddings).reshape(-1, 2).tolist()
        flat = [int(v) for pair in reversed(pairs) for v in pair]
        if mode == "constant":
            return F.pad(x, flat, value=0.0 if value is None else float(value))
        if mode == "reflect":
            return F.pad(x, flat, mode="reflect")
        raise UnsupportedGraph("MirrorPad SYMMETRIC", ["MirrorPad"])

    return pad


def _gather(node):
    if node.attr["batch_dims"].i:
        raise UnsupportedGraph("GatherV2 with batch_dims", ["GatherV2"])

    def gather(params, indices, axis):
        axis = int(axis) % params.dim()
        flat = params.index_select(axis, indices.reshape(-1).long())
        return flat.reshape(tuple(params.shape[:axis]) + tuple(indices.shape) + tuple(params.shape[axis + 1:]))

    return gather


def _slice(x, begin, size):
    index = tuple(slice(b, None if n == -1 else b + n) for b, n in zip(_ints(begin), _ints(size)))
    return x[index]


def _identity(x):
    return x


def _transpose(x, perm):
    return x.permute(_ints(perm))


def _expand_dims(x, axis):
    return x.unsqueeze(int(axis))


def _fill(dims, value):
    return torch.full(_ints(dims), value.item(), dtype=value.dtype, device=value.device)


def _square(x):
    return x * x


def _squared_difference(a, b):
    d = a - b
    return d * d


def _relu6(x):
    return torch.clamp(x, 0.0, 6.0)


def _floordiv(a, b):
    return torch.div(a, b, rounding_mode="floor")


# op type -> factory(node) returning fn(*inputs) -> tensor
_SIMPLE: dict[str, Callable] = {
    "Identity": _identity, "StopGradient": _identity, "Snapshot": _identity,
    "PreventGradient": _identity,
    "Relu": torch.relu, "Relu6": _relu6, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
    "Elu": F.elu, "Selu": F.selu, "Softplus": F.softplus, "Softmax": _softmax,
    "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt, "Rsqrt": torch.rsqrt,
    "Square": _square, "Neg": torch.neg, "Abs": torch.abs, "Reciprocal": torch.reciprocal,
    "Add": torch.add, "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul,
    "RealDiv": torch.div, "Div": torch.div, "FloorDiv": _floordiv, "Maximum": torch.maximum,
    "Minimum": torch.minimum, "SquaredDifference": _squared_difference, "Pow": torch.pow,
    "Reshape": _reshape, "ExpandDims": _expand_dims, "Transpose": _transpose, "Fill": _fill,
    "Slice": _slice,
}
_FACTORIES: dict[str, Callable] = {
    "Conv2D": lambda node: _make_conv2d(node, weight_is_oihw=False),
    "MaxPool": lambda node: _make_pool(node, "max"),
    "AvgPool": lambda node: _make_pool(node, "avg"),
    "MatMul": _matmul, "BiasAdd": _bias_add, "Squeeze": _squeeze, "Shape": _shape,
    "StridedSlice": _make_strided_slice, "Pack": _pack, "ConcatV2": _concat,
    "Mean": lambda node: _reduction(torch.mean, node), "Sum": lambda node: _reduction(torch.sum, node),
    "Max": lambda node: _reduction(torch.amax, node), "Min": lambda node: _reduction(torch.amin, node),
    "Prod": lambda node: _reduction(_prod, node), "GatherV2": _gather,
    "FusedBatchNorm": _make_fused_batch_norm, "FusedBatchNormV2": _make_fused_batch_norm,
    "FusedBatchNormV3": _make_fused_batch_norm, "Cast": _cast, "LeakyRelu": _leaky_relu,
    "Pad": _pad, "PadV2": _pad, "MirrorPad": _pad,
}
_ALIASES = frozenset({"Identity", "StopGradient", "Snapshot", "PreventGradient", "PlaceholderWithDefault"})
SUPPORTED_OPS = frozenset(_SIMPLE) | frozenset(_FACTORIES) | {"Const", "Placeholder", "PlaceholderWithDefault"}

def _check_node(node) -> str | None:
    """Why this node cannot be run (an op setting TF graphs may use that we do not implement)."""
    attrs = node.attr
    if node.op in ("Conv2D", "MaxPool", "AvgPool"):
        fmt = _s(attrs["data_format"]) if "data_format" in attrs else "NHWC"
        if fmt != "NHWC":
            return f"{node.op} with data_format={fmt}"
        padding = _s(attrs["padding"])
        if padding not in ("SAME", "VALID"):
            return f"{node.op} with padding={padding}"
        if node.op == "Conv2D":
            dil = list(attrs["dilations"].list.i)
            if dil and (dil[0] != 1 or dil[3] != 1):
                return "Conv2D dilated along batch or channels"
            strides = list(attrs["strides"].list.i)
            if strides and (strides[0] != 1 or strides[3] != 1):
                return "Conv2D strided along batch or channels"
        else:
            ksize = list(attrs["ksize"].list.i)
            strides = list(attrs["strides"].list.i)
            if len(ksize) != 4 or ksize[0] != 1 or ksize[3] != 1 or strides[0] != 1 or strides[3] != 1:
                return f"{node.op} pooling along batch or channels"
    if node.op == "MatMul" and "T" in attrs and attrs["T"].type != _T.DT_FLOAT:
        return f"MatMul of type {_dtype_name(attrs['T'].type)}"
    if node.op in ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3") and attrs["is_training"].b:
        return f"{node.op} with is_training=true"
    if node.op == "MirrorPad" and _s(attrs["mode"]) != "REFLECT":
        return "MirrorPad SYMMETRIC"
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


def _load_graphdef(path):
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import graph_pb2

    path = Path(path)
    if path.is_dir():
        raise InvalidGraph(f"{path} is a folder, not a frozen TensorFlow graph (.pb file)")
    data = path.read_bytes()  # a missing file raises FileNotFoundError
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        raise InvalidGraph(f"{path} is not a TensorFlow GraphDef (.pb): it does not parse as one") from None
    if not graph.node or any(not node.name or not node.op for node in graph.node):
        raise InvalidGraph(f"{path} is not a TensorFlow GraphDef (.pb): no usable nodes")
    return graph


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
        return cls.from_graphdef(_load_graphdef(path), input_name, output_name, source=str(path))

    @classmethod
    def from_graphdef(cls, graph, input_name: str = "model/Placeholder",
                      output_name: str = "model/Sigmoid", source: str = "graph") -> "GraphRunner":
        nodes = {}
        for node in graph.node:
            nodes[node.name] = node
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
            for source_name in reversed(nodes[name].input):
                if source_name.startswith("^"):
                    continue
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
            for source_name in node.input:
                if source_name.startswith("^"):
                    continue
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
            const_values[slot] = torch.from_numpy(tensor_to_numpy(node.attr["value"].tensor).copy())
            return None
        if node.op == "Placeholder":
            raise InvalidGraph(f"the output needs placeholder {node.name!r}, which is not fed")
        if node.op in _ALIASES:
            # Identity-like: the output is the input's value, so it shares its slot.
            slot_of[(node.name, 0)] = input_slots(node)[0]
            return None
        ins = input_slots(node)
        if node.op == "Conv2D" and ins[1] in const_values:
            # Weights stored HWIO by TF: permute once to OIHW for torch.
            weight = const_values[ins[1]].permute(3, 2, 0, 1).contiguous()
            ins = [ins[0], new_slot()]
            const_values[ins[1]] = weight
            fn = _make_conv2d(node, weight_is_oihw=True)
        elif node.op in _SIMPLE:
            fn = _SIMPLE[node.op]
        else:
            fn = _FACTORIES[node.op](node)
        n_out = {"FusedBatchNorm": 5, "FusedBatchNormV2": 5, "FusedBatchNormV3": 6}.get(node.op, 1)
        outs = [new_slot() for _ in range(n_out)]
        for i, slot in enumerate(outs):
            slot_of[(node.name, i)] = slot
        if n_out > 1:
            fn = _first_output(fn, n_out)
        if all(i in const_values for i in ins):
            with torch.no_grad():
                value = fn(*[const_values[i] for i in ins])
            results = value if n_out > 1 else (value,)
            for slot, result in zip(outs, results):
                if result is not None:
                    const_values[slot] = torch.as_tensor(result).contiguous()
            return None
        return fn, tuple(ins), tuple(outs)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        values: list = [None] * self._n_slots
        buffers = self._buffers
        for slot, name in self._const_names:
            values[slot] = buffers[name]
        for slot, value in self._cpu_constants:
            values[slot] = value
        values[self._input_slot] = patches.to(dtype=self._probe.dtype)
        for (fn, ins, outs), free in zip(self._steps, self._free_after):
            result = fn(*[values[i] for i in ins])
            if len(outs) == 1:
                values[outs[0]] = result
            else:
                for slot, item in zip(outs, result):
                    values[slot] = item
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
            fmt = _s(node.attr["data_format"]) if "data_format" in node.attr else "NHWC"
            if (isinstance(layer, _Layer) and not layer.has_bias and not layer.relu
                    and readers.get(x) == 1 and bias is not None and bias.dim() == 1
                    and bias.is_floating_point() and fmt == "NHWC"
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
        if op == "Conv2D" or (op == "MatMul" and not node.attr["transpose_a"].b):
            fn = _Layer(op, fn, node.attr["transpose_b"].b if op == "MatMul" else False)
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


def _first_output(fn, n_out):
    """Multi-output ops we implement compute only output 0 (the others are training statistics)."""
    def wrapped(*args):
        return (fn(*args),) + (None,) * (n_out - 1)

    return wrapped


class PatchActivations:
    """The graph's outputs for one stem's VGGish patches, run once per distinct patch.

    Identical patches (digital silence, loops) give identical outputs, so each distinct
    patch is a *unit* run once and weighted by how often it occurs. Units are ordered by
    that weight, most frequent first, which lets the speech gate settle its question with
    few runs on stems with long silences. ``compute(start, stop)`` runs units on request.
    """

    def __init__(self, runner: GraphRunner, audio_16k: np.ndarray):
        from .vggish_input import patch_count, patch_span

        self._runner = runner  # already on its device: moved once, where it was built
        self._audio = np.ascontiguousarray(audio_16k, dtype=np.float32)
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

    @property
    def units(self):
        return len(self.weights)

    def compute(self, start: int, stop: int) -> np.ndarray:
        """Activations of units ``start`` to ``stop`` (exclusive): [n, 8] float32."""
        from .vggish_input import patch_bands

        patches = patch_bands(self._audio, self._patch_of_unit[start:stop])
        batch = torch.from_numpy(patches).to(self._runner.device)
        with torch.inference_mode():
            return self._runner(batch).float().cpu().numpy()

    def expand(self, unit_activations: np.ndarray) -> np.ndarray:
        """Per-unit activations laid out per patch, in patch order: [total, 8]."""
        return unit_activations[self._inverse]


def speech_activations(runner: GraphRunner, audio_16k: np.ndarray, device="cpu",
                       batch_size: int = 64) -> np.ndarray:
    """The graph's outputs for every VGGish patch of ``audio_16k``: [n_patches, 8] float32.

    The same rows as Essentia's ``TensorflowPredictVGGish`` on the same audio
    (patches of 96 frames, hop 93, last partial patch dropped); audio shorter
    than one patch gives an empty [0, 8] array.
    """
    activations = PatchActivations(runner.to(device), audio_16k)
    parts = [activations.compute(start, start + batch_size)
             for start in range(0, activations.units, batch_size)]
    units = np.concatenate(parts) if parts else np.zeros((0, 8), np.float32)
    return activations.expand(units).astype(np.float32, copy=False)
