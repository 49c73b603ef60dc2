"""Lossless JSON encoding of observations, actions, infos and other research values.

Gymnasium values are rarely plain JSON: observations are numpy arrays (often ``float32`` or ``uint8``),
rewards are numpy scalars, infos hold tuples, bytes, dicts keyed by integers, and floats can be NaN or
infinite. :func:`dumps` turns any such value into strict JSON text and :func:`loads` gives back an equal value
of the same type (arrays come back with their dtype and shape).

Format. JSON-native values (``None``, ``bool``, ``int``, ``str``, finite ``float``, lists, dicts with string
keys) are stored as themselves, so the database stays readable with SQLite's JSON functions. Everything
else becomes a *tagged object*, a dict whose key ``"__ig__"`` names the type:

==============  ==================================================================================
tag             fields
==============  ==================================================================================
``float``       ``v``: ``"nan"``, ``"inf"`` or ``"-inf"``
``complex``     ``re``, ``im``: encoded floats
``tuple``       ``items``: list of encoded values
``bytes``       ``b64``: standard base64 text
``dict``        ``items``: list of ``[key, value]`` pairs (used for non-string keys, or a ``"__ig__"`` key)
``npscalar``    ``dtype``: numpy dtype string (e.g. ``"<f4"``); ``v``: the encoded Python value, or ``b64``
                (raw bytes, for bytes/datetime/long-double scalars)
``ndarray``     ``dtype``, ``shape``; then ``data`` (flat C-order list), ``b64`` (raw bytes) or ``items``
                (flat list of encoded objects, for ``dtype=object``)
==============  ==================================================================================

Numpy is optional: without it (e.g. in a Pyodide build without numpy wheels) plain values still encode and
decode; decoding a numpy tag then raises :class:`CodecError` saying numpy is needed.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

try:  # numpy is optional so the same module works in a numpy-less Pyodide.
    import numpy as np
except ImportError:  # pragma: no cover - exercised by a subprocess test with numpy blocked
    np = None  # type: ignore[assignment]

__all__ = ["TAG", "CodecError", "decode", "dumps", "encode", "loads"]

TAG = "__ig__"

# Arrays of more raw bytes than this are stored as base64 rather than a JSON number list: smaller (4/3 of the
# raw size instead of ~3-20 characters per element) and much faster for image observations.
BASE64_MIN_BYTES = 2048

# Deeper nesting than this is almost certainly a reference cycle; fail with a clear message instead of
# Python's RecursionError.
MAX_DEPTH = 200

_LIST_DTYPE_KINDS = frozenset("biuf")  # bool, signed, unsigned, float: exact through Python numbers
_NON_FINITE_NAMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# One configured encoder instead of ``json.dumps(..., separators=...)``, which builds a new one per call.
# It holds only settings, so sharing it is safe.
_JSON_TEXT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class CodecError(ValueError):
    """A value cannot be encoded, or a stored document cannot be decoded. The message names where."""


def dumps(value: Any) -> str:
    """Encodes ``value`` as compact, strict JSON text (no NaN tokens) that :func:`loads` inverts exactly."""
    if _is_plain(value, 0):
        return _JSON_TEXT.encode(value)  # already what encode() would return: skip building a copy
    return _JSON_TEXT.encode(encode(value))


def loads(text: str | bytes) -> Any:
    """Decodes JSON text written by :func:`dumps` back to the original value."""
    try:
        document = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"not valid JSON: {exc}") from None
    return decode(document)


def encode(value: Any) -> Any:
    """Returns a JSON-compatible structure (dicts, lists, str, int, finite float, bool, None) for ``value``.

    Raises:
        CodecError: for a type the codec does not support; the message includes the path to the value,
            e.g. ``value['agent_0'][2]``.
    """
    try:
        return _encode_fast(value, 0)
    except CodecError:
        # The fast path does not track where it is; the reference encoder fails again, naming the path.
        return _encode(value, "value", 0)


def decode(document: Any) -> Any:
    """Inverse of :func:`encode`.

    Raises:
        CodecError: for an unknown or malformed tagged object, or a numpy tag when numpy is not installed.
    """
    return _decode(document, "value", 0)


# ----------------------------------------------------------------------------------------------- encoding


def _is_plain(value: Any, depth: int) -> bool:
    """True if ``value`` is JSON-native all the way down, so :func:`encode` would return an equal copy.

    Exact type checks: subclasses (numpy scalars, IntEnum, OrderedDict, str subclasses) need the encoder.
    Plain loops rather than ``all(...)`` with a generator: this runs on every step and loops are ~2x faster.
    """
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH or TAG in value:
            return False
        for key, item in value.items():
            if type(key) is not str or not _is_plain(item, depth + 1):
                return False
        return True
    if kind is list:
        if depth >= MAX_DEPTH:
            return False
        for item in value:  # noqa: SIM110 - a loop, not all(generator): see the docstring
            if not _is_plain(item, depth + 1):
                return False
        return True
    if kind is str or kind is int or kind is bool or value is None:
        return True
    # x - x is 0.0 exactly for finite x, NaN for NaN and the infinities: isfinite without a call.
    return kind is float and value - value == 0.0


def _encode_fast(value: Any, depth: int) -> Any:
    """Same output as :func:`_encode`, quicker for the plain JSON values that make up most step records.

    Exact type checks (``type(x) is float``) send numpy scalars, which subclass Python types, and every other
    non-plain value to :func:`_encode`, so nothing loses its dtype. No path strings are built: on any
    :class:`CodecError` the caller re-runs :func:`_encode` for the located message.
    """
    if depth > MAX_DEPTH:
        raise CodecError("too deep")
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        # x - x is 0.0 exactly for finite x and NaN for NaN and the infinities: isfinite without a call.
        return value if value - value == 0.0 else _encode_float(value)
    if kind is list:
        return [_encode_fast(item, depth + 1) for item in value]
    if kind is dict:
        if TAG not in value and all(type(key) is str for key in value):
            return {key: _encode_fast(item, depth + 1) for key, item in value.items()}
        return _encode_dict(value, "value", depth)
    if kind is tuple:
        return {TAG: "tuple", "items": [_encode_fast(item, depth + 1) for item in value]}
    return _encode(value, "value", depth)


def _encode(value: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError(f"{path}: nested deeper than {MAX_DEPTH} levels (a reference cycle?)")
    # numpy first: np.float64 and np.bool_-likes subclass Python types and would otherwise lose their dtype.
    if np is not None:
        if isinstance(value, np.ndarray):
            return _encode_array(value, path, depth)
        if isinstance(value, np.generic):
            return _encode_numpy_scalar(value, path, depth)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)  # int subclasses (IntEnum) are stored as their number
    if isinstance(value, float):
        return _encode_float(float(value))
    if isinstance(value, complex):
        return {TAG: "complex", "re": _encode_float(value.real), "im": _encode_float(value.imag)}
    if isinstance(value, list):
        return [_encode(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return {
            TAG: "tuple",
            "items": [_encode(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)],
        }
    if isinstance(value, dict):
        return _encode_dict(value, path, depth)
    if isinstance(value, bytes | bytearray | memoryview):
        return {TAG: "bytes", "b64": base64.b64encode(bytes(value)).decode("ascii")}
    raise CodecError(f"{path}: cannot encode a value of type {type(value).__qualname__}")


def _encode_float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {TAG: "float", "v": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _encode_dict(value: dict[Any, Any], path: str, depth: int) -> Any:
    if all(isinstance(key, str) for key in value) and TAG not in value:
        return {key: _encode(item, f"{path}[{key!r}]", depth + 1) for key, item in value.items()}
    items = [
        [_encode(key, f"{path}.keys()", depth + 1), _encode(item, f"{path}[{key!r}]", depth + 1)]
        for key, item in value.items()
    ]
    return {TAG: "dict", "items": items}


def _encode_numpy_scalar(value: Any, path: str, depth: int) -> Any:
    if value.dtype.kind in "OV":
        raise CodecError(f"{path}: cannot encode a numpy scalar of dtype {value.dtype}")
    item = value.item()
    if value.dtype.kind in "SMm" or isinstance(item, np.generic):
        # bytes, datetimes and long doubles have no exact Python twin: store their raw bytes.
        return {TAG: "npscalar", "dtype": value.dtype.str, "b64": _b64(np.asarray(value))}
    return {TAG: "npscalar", "dtype": value.dtype.str, "v": _encode(item, path, depth + 1)}


def _encode_array(array: Any, path: str, depth: int) -> Any:
    dtype = array.dtype
    header = {TAG: "ndarray", "dtype": dtype.str, "shape": list(array.shape)}
    if dtype.fields is not None:
        raise CodecError(f"{path}: structured numpy arrays (dtype {dtype}) are not supported")
    if dtype.kind == "O":
        flat = array.ravel()
        header["items"] = [_encode(item, f"{path}.flat[{i}]", depth + 1) for i, item in enumerate(flat)]
        return header
    small = array.nbytes < BASE64_MIN_BYTES
    exact_as_python = dtype.kind in _LIST_DTYPE_KINDS and dtype.itemsize <= 8  # not long double
    if dtype.kind == "U" or (small and exact_as_python and _all_finite(array)):
        header["data"] = array.ravel().tolist()
        return header
    header["b64"] = _b64(array)
    return header


def _all_finite(array: Any) -> bool:
    return array.dtype.kind != "f" or bool(np.isfinite(array).all())


def _b64(array: Any) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


# ----------------------------------------------------------------------------------------------- decoding


def _decode(document: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(document, list):
        return [_decode(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(document)]
    if not isinstance(document, dict):
        return document
    if TAG not in document:
        return {key: _decode(item, f"{path}[{key!r}]", depth + 1) for key, item in document.items()}
    tag = document[TAG]
    decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
    if decoder is None:
        raise CodecError(f"{path}: unknown tag {tag!r}")
    try:
        return decoder(document, path, depth)
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CodecError(f"{path}: malformed {tag!r} object ({type(exc).__name__}: {exc})") from None


def _decode_float(document: dict[str, Any], path: str, depth: int) -> float:
    if isinstance(document, int | float) and not isinstance(document, bool):
        return float(document)
    name = document["v"]
    if name not in _NON_FINITE_NAMES:
        raise CodecError(f"{path}: float value must be one of {sorted(_NON_FINITE_NAMES)}, got {name!r}")
    return _NON_FINITE_NAMES[name]


def _decode_complex(document: dict[str, Any], path: str, depth: int) -> complex:
    return complex(_decode_float(document["re"], path, depth), _decode_float(document["im"], path, depth))


def _decode_tuple(document: dict[str, Any], path: str, depth: int) -> tuple[Any, ...]:
    return tuple(_decode(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(_list(document["items"])))


def _decode_bytes(document: dict[str, Any], path: str, depth: int) -> bytes:
    return base64.b64decode(document["b64"], validate=True)


def _decode_dict(document: dict[str, Any], path: str, depth: int) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for i, pair in enumerate(_list(document["items"])):
        key_doc, value_doc = pair
        key = _decode(key_doc, f"{path}.items[{i}].key", depth + 1)
        result[key] = _decode(value_doc, f"{path}[{key!r}]", depth + 1)
    return result


def _decode_numpy_scalar(document: dict[str, Any], path: str, depth: int) -> Any:
    _require_numpy(path)
    dtype = np.dtype(document["dtype"])
    if "b64" in document:
        return np.frombuffer(base64.b64decode(document["b64"], validate=True), dtype=dtype)[0]
    return dtype.type(_decode(document["v"], path, depth + 1))


def _decode_array(document: dict[str, Any], path: str, depth: int) -> Any:
    _require_numpy(path)
    dtype = np.dtype(document["dtype"])
    shape = tuple(int(n) for n in _list(document["shape"]))
    if "b64" in document:
        raw = base64.b64decode(document["b64"], validate=True)
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()  # copy: writable, owns its memory
    if "items" in document:
        items = [
            _decode(item, f"{path}.flat[{i}]", depth + 1) for i, item in enumerate(_list(document["items"]))
        ]
        array = np.empty(len(items), dtype=dtype)
        for i, item in enumerate(items):  # element-wise: np.array() would broadcast nested lists
            array[i] = item
        return array.reshape(shape)
    return np.array(_list(document["data"]), dtype=dtype).reshape(shape)


def _require_numpy(path: str) -> None:
    if np is None:
        raise CodecError(f"{path}: decoding a numpy value needs numpy, which is not installed")


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise CodecError(f"expected a JSON list, got {type(value).__name__}")
    return value


_DECODERS: Mapping[str, Callable[[dict[str, Any], str, int], Any]] = MappingProxyType(
    {
        "float": _decode_float,
        "complex": _decode_complex,
        "tuple": _decode_tuple,
        "bytes": _decode_bytes,
        "dict": _decode_dict,
        "npscalar": _decode_numpy_scalar,
        "ndarray": _decode_array,
    }
)
