"""A small ONNX policy network evaluated in plain Python, so a p2p simulation can run it inside a rollback.

A p2p game re-simulates frames synchronously whenever a late input corrects a prediction, and every peer must
compute the same action for the AI agent on every (re-)simulated frame. onnxruntime-web answers asynchronously
and outside the simulation, so a p2p ONNX agent is evaluated here instead: the model's bytes are read by a
minimal protocol-buffer reader (no ``onnx`` package exists in Pyodide) into a plan of dense layers, and
:meth:`MlpModel.forward` computes the outputs in IEEE double precision, one fixed order of operations, each dot
product summed exactly rounded (``math.fsum``, the same result in every Python version). Every peer of a game runs
the same Pyodide, so peers agree bit for bit; CPython agrees on the dense layers too (``tanh``/``exp`` come from
the platform's maths library and may differ from Pyodide's in the last bit).

Supported: one float input ``[1, n]`` (or ``[n]``) and one output, nodes ``Gemm`` and ``MatMul`` with a
constant weight, ``Add``/``Sub``/``Mul`` with a constant or a same-size value, ``Relu``, ``LeakyRelu``, ``Tanh``,
``Sigmoid``, ``Softmax`` (last axis), ``Identity``, ``Flatten``, ``Reshape``: the multi-layer perceptrons
policies are usually exported as. Anything else is refused with :class:`OnnxModelError` naming the node, so a
researcher learns it at start-up, not from a participant. Pure standard library; runs in Pyodide.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

FLOAT = 1  # TensorProto.DataType.FLOAT
INT64 = 7
ELEMENTWISE = ("Relu", "LeakyRelu", "Tanh", "Sigmoid", "Softmax", "Identity", "Flatten", "Reshape")
BINARY = {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul}
SUPPORTED_OPS = ("Gemm", "MatMul", *BINARY, *ELEMENTWISE)
MAX_MODEL_BYTES = 4 * 1024 * 1024
MAX_NODES = 256


class OnnxModelError(ValueError):
    """The model cannot be evaluated here; the message says what in the model is the problem."""


# -- protocol buffers (wire format only: the few ONNX messages and fields read below) --------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise OnnxModelError("the model file is truncated (not an ONNX model?)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise OnnxModelError("the model file has a malformed number (not an ONNX model?)")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of each field of one message, in file order."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise OnnxModelError(f"the model file has an unsupported field encoding {wire} (not an ONNX model?)")
        if pos > len(buf):
            raise OnnxModelError("the model file is truncated (not an ONNX model?)")
        yield field, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(wire: int, value: Any) -> list[int]:
    """A repeated int64 field's values from one occurrence (packed or not)."""
    if wire == 0:
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(_signed(number))
    return out


@dataclass(frozen=True)
class _Tensor:
    name: str
    dims: tuple[int, ...]
    values: tuple[float, ...]


def _tensor(buf: bytes) -> _Tensor:
    name, dims, data_type = "", [], FLOAT
    raw: bytes | None = None
    floats: list[float] = []
    int64s: list[int] = []
    for field, wire, value in _fields(buf):
        if field == 1:
            dims.extend(_ints(wire, value))
        elif field == 2:
            data_type = value
        elif field == 4:
            floats.extend(struct.unpack(f"<{len(value) // 4}f", value))  # packed, or one fixed32 value
        elif field == 7:
            int64s.extend(_ints(wire, value))
        elif field == 8:
            name = value.decode("utf-8", "replace")
        elif field == 9:
            raw = bytes(value)
        elif field == 14 and value == 1:
            raise OnnxModelError(f"initializer {name!r} is stored in an external file; save the model as one file")
    count = math.prod(dims)
    if data_type == FLOAT:
        values: tuple[float, ...] = tuple(struct.unpack(f"<{count}f", raw)) if raw is not None else tuple(floats)
    elif data_type == INT64:
        values = tuple(float(v) for v in (struct.unpack(f"<{count}q", raw) if raw is not None else int64s))
    else:
        raise OnnxModelError(f"initializer {name!r} has data type {data_type}; only float32 (and int64 shapes) "
                             "are supported")
    if len(values) != count:
        raise OnnxModelError(f"initializer {name!r} has {len(values)} values for shape {dims}")
    return _Tensor(name, tuple(dims), values)


def _value_info(buf: bytes) -> tuple[str, list[int | None]]:
    """A graph input's or output's name and shape (``None`` for a symbolic dimension)."""
    name, shape = "", []
    for field, _, value in _fields(buf):
        if field == 1:
            name = value.decode("utf-8", "replace")
        elif field == 2:
            for f_type, _, tensor_type in _fields(value):
                if f_type != 1:
                    continue
                for f_tensor, _, shape_msg in _fields(tensor_type):
                    if f_tensor != 2:
                        continue
                    for f_dim, _, dim in _fields(shape_msg):
                        if f_dim == 1:
                            size = [v for f, _, v in _fields(dim) if f == 1]
                            shape.append(size[0] if size else None)
    return name, shape


@dataclass(frozen=True)
class _Node:
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


def _node(buf: bytes) -> _Node:
    op, inputs, outputs, attrs = "", [], [], {}
    for field, _, value in _fields(buf):
        if field == 1:
            inputs.append(value.decode("utf-8", "replace"))
        elif field == 2:
            outputs.append(value.decode("utf-8", "replace"))
        elif field == 4:
            op = value.decode("utf-8", "replace")
        elif field == 5:
            name, attr = "", None
            for f_attr, w_attr, v_attr in _fields(value):
                if f_attr == 1:
                    name = v_attr.decode("utf-8", "replace")
                elif f_attr == 2 and w_attr == 5:
                    attr = struct.unpack("<f", v_attr)[0]
                elif f_attr == 3 and w_attr == 0:
                    attr = _signed(v_attr)
            attrs[name] = attr
    return _Node(op, tuple(inputs), tuple(outputs), attrs)


# -- the plan -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Step:
    """One node ready to run: ``kind`` and its prepared constants."""

    kind: str
    source: str
    other: str | None
    target: str
    columns: tuple[tuple[float, ...], ...] = ()  # dense layers: one weight column per output
    bias: tuple[float, ...] = ()
    constant: tuple[float, ...] | None = None  # binary ops with a constant operand
    alpha: float = 1.0


@dataclass(frozen=True)
class MlpModel:
    """A readable policy network.

    Attributes:
        input_size: Floats the network takes.
        output_size: Values (logits) it gives.
        macs: Multiply-adds per evaluation (what the p2p compute budget counts).
    """

    input_name: str
    output_name: str
    input_size: int
    output_size: int
    macs: int
    steps: tuple[_Step, ...]

    def forward(self, inputs: Sequence[float]) -> list[float]:
        """The network's outputs for one input vector, in double precision.

        Raises:
            OnnxModelError: if ``inputs`` does not have :attr:`input_size` values.
        """
        if len(inputs) != self.input_size:
            raise OnnxModelError(f"the model takes {self.input_size} inputs, got {len(inputs)}")
        values: dict[str, list[float]] = {self.input_name: [float(v) for v in inputs]}
        for step in self.steps:
            values[step.target] = _run(step, values)
        return values[self.output_name]


def _run(step: _Step, values: dict[str, list[float]]) -> list[float]:
    x = values[step.source]
    kind = step.kind
    if kind == "dense":
        mul, fsum = operator.mul, math.fsum
        if step.bias:
            return [fsum(map(mul, x, column)) + b for column, b in zip(step.columns, step.bias, strict=True)]
        return [fsum(map(mul, x, column)) for column in step.columns]
    if kind in BINARY:
        fn = BINARY[kind]
        other = step.constant if step.constant is not None else values[step.other or ""]
        if len(other) == 1:
            return [fn(v, other[0]) for v in x]
        if len(other) != len(x):
            raise OnnxModelError(f"{kind} of {len(x)} and {len(other)} values")
        return [fn(a, b) for a, b in zip(x, other, strict=True)]
    if kind == "Relu":
        return [v if v > 0.0 else 0.0 for v in x]
    if kind == "LeakyRelu":
        return [v if v > 0.0 else step.alpha * v for v in x]
    if kind == "Tanh":
        return [math.tanh(v) for v in x]
    if kind == "Sigmoid":
        return [_sigmoid(v) for v in x]
    if kind == "Softmax":
        return softmax(x)
    return list(x)  # Identity, Flatten, Reshape: batch-1 vectors keep their values


def _sigmoid(v: float) -> float:
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)  # never overflows for v < 0
    return e / (1.0 + e)


def softmax(values: Sequence[float], temperature: float = 1.0) -> list[float]:
    """``softmax(values / temperature)``, the maximum subtracted first (the order ``seeded_rng.js`` uses)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scaled = [v / temperature for v in values]
    top = max(scaled)
    exps = [math.exp(v - top) for v in scaled]
    total = math.fsum(exps)
    return [v / total for v in exps]


def read_model(data: bytes) -> MlpModel:
    """Reads an ONNX model's bytes into a :class:`MlpModel`.

    Raises:
        OnnxModelError: for a file that is not an ONNX model or uses what this evaluator does not support.
    """
    if len(data) > MAX_MODEL_BYTES:
        raise OnnxModelError(f"the model is {len(data)} bytes; a p2p policy model may be at most {MAX_MODEL_BYTES}")
    graphs = [value for field, wire, value in _fields(bytes(data)) if field == 7 and wire == 2]
    if not graphs:
        raise OnnxModelError("the file has no graph (not an ONNX model?)")
    nodes, constants, inputs, outputs = [], {}, [], []
    for field, _, value in _fields(graphs[-1]):
        if field == 1:
            nodes.append(_node(value))
        elif field == 5:
            tensor = _tensor(value)
            constants[tensor.name] = tensor
        elif field == 11:
            inputs.append(_value_info(value))
        elif field == 12:
            outputs.append(_value_info(value))
    if len(nodes) > MAX_NODES:
        raise OnnxModelError(f"the model has {len(nodes)} nodes; at most {MAX_NODES} are supported")
    feeds = [(name, shape) for name, shape in inputs if name not in constants]
    if len(feeds) != 1 or len(outputs) < 1:
        raise OnnxModelError(f"the model must have one input and an output, it has inputs {[n for n, _ in feeds]}")
    input_name, shape = feeds[0]
    # 0: the input's size is not in its shape (symbolic); the first dense layer then tells it.
    sizes: dict[str, int] = {input_name: int(shape[-1]) if shape and isinstance(shape[-1], int) else 0}
    steps, macs = [], 0
    for node in nodes:
        step, size, cost = _plan(node, constants, sizes)
        steps.append(step)
        sizes[step.target] = size
        macs += cost
    output_name = outputs[0][0]
    if output_name not in sizes:
        raise OnnxModelError(f"the model's output {output_name!r} is not computed by any node")
    if not sizes[input_name]:
        raise OnnxModelError(f"the size of the model's input {input_name!r} is unknown; export it as [1, n]")
    return MlpModel(input_name, output_name, sizes[input_name], sizes[output_name], macs, tuple(steps))


def _plan(node: _Node, constants: dict[str, _Tensor], sizes: dict[str, int]) -> tuple[_Step, int, int]:
    """The step of one node, the size of its output and its multiply-adds."""
    where = f"node {node.op} ({', '.join(node.inputs)} -> {', '.join(node.outputs)})"
    if node.op not in SUPPORTED_OPS:
        raise OnnxModelError(f"{where}: operator {node.op!r} is not supported in p2p mode (supported: "
                             f"{', '.join(SUPPORTED_OPS)}); export the policy as a multi-layer perceptron")
    if not node.inputs or len(node.outputs) != 1:
        raise OnnxModelError(f"{where}: expected one output")
    source, target = node.inputs[0], node.outputs[0]
    if source in constants:
        raise OnnxModelError(f"{where}: its first input must be computed from the observation, not a constant")
    if node.op in ("Gemm", "MatMul"):
        return _dense(node, constants, sizes, where)
    size = sizes.get(source)
    if size is None:
        raise OnnxModelError(f"{where}: input {source!r} is not computed before this node")
    if not size:
        raise OnnxModelError(f"{where}: the size of input {source!r} is unknown; export the input as [1, n]")
    if node.op in BINARY:
        other = node.inputs[1] if len(node.inputs) > 1 else ""
        constant = constants.get(other)
        if constant is None and sizes.get(other) not in (1, size):
            raise OnnxModelError(f"{where}: input {other!r} must be a constant or a value of size {size}")
        if constant is not None and len(constant.values) not in (1, size):
            raise OnnxModelError(f"{where}: constant {other!r} has {len(constant.values)} values, not 1 or {size}")
        return _Step(node.op, source, None if constant else other, target,
                     constant=None if constant is None else constant.values), size, 0
    if node.op == "Softmax" and node.attrs.get("axis", -1) not in (-1, 1):
        raise OnnxModelError(f"{where}: only a softmax over the last axis is supported")
    alpha = float(node.attrs.get("alpha", 0.01)) if node.op == "LeakyRelu" else 1.0
    return _Step(node.op, source, None, target, alpha=alpha), size, 0


def _dense(node: _Node, constants: dict[str, _Tensor], sizes: dict[str, int], where: str) -> tuple[_Step, int, int]:
    source, target = node.inputs[0], node.outputs[0]
    weight = constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if weight is None or len(weight.dims) != 2:
        raise OnnxModelError(f"{where}: its weight must be a constant matrix")
    if node.attrs.get("transA", 0):
        raise OnnxModelError(f"{where}: transA is not supported")
    rows, cols = weight.dims
    flat = weight.values
    if node.attrs.get("transB", 0):  # weight is [out, in]
        columns = tuple(tuple(flat[o * cols:(o + 1) * cols]) for o in range(rows))
        fan_in, fan_out = cols, rows
    else:  # weight is [in, out]
        columns = tuple(tuple(flat[i * cols + o] for i in range(rows)) for o in range(cols))
        fan_in, fan_out = rows, cols
    known = sizes.get(source)
    if known is None:
        raise OnnxModelError(f"{where}: input {source!r} is not computed before this node")
    if known and known != fan_in:
        raise OnnxModelError(f"{where}: takes {fan_in} values but its input has {known}")
    sizes[source] = fan_in  # the graph input's size, when its shape was symbolic
    alpha = float(node.attrs.get("alpha", 1.0))
    beta = float(node.attrs.get("beta", 1.0))
    if alpha != 1.0:
        columns = tuple(tuple(alpha * w for w in column) for column in columns)
    bias: tuple[float, ...] = ()
    if node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2]:
        c = constants.get(node.inputs[2])
        if c is None or len(c.values) not in (1, fan_out):
            raise OnnxModelError(f"{where}: its bias must be a constant of 1 or {fan_out} values")
        bias = tuple(beta * v for v in (c.values * fan_out if len(c.values) == 1 else c.values))
    return _Step("dense", source, None, target, columns=columns, bias=bias), fan_out, fan_in * fan_out
