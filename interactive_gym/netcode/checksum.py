"""Stable checksums of arbitrary simulation state, identical in CPython and Pyodide for identical state.

The state is walked into a canonical byte stream: every value is tagged with its kind; floats are encoded by their
exact IEEE-754 bits; dict entries and sets are sorted by their own encoding (so insertion order never matters);
objects contribute their class name and attributes; numpy arrays and generators are recognised by duck typing
(no numpy import). Memory addresses, ids and reprs never enter the stream. The stream is hashed with SHA-256 and
the first 8 bytes give a 64-bit checksum.

:func:`flatten` turns the same walk into ``{path: leaf}`` so that two states can be compared field by field.
"""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Any

_FLOAT = struct.Struct("<d")
_MAX_DEPTH = 200


class ChecksumError(TypeError):
    """The state cannot be serialised canonically (too deep, e.g. a cycle through containers)."""


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _attributes(value: Any) -> dict[str, Any] | None:
    """Attributes of a plain object (``__dict__`` and ``__slots__``), or ``None`` for opaque objects."""
    attrs: dict[str, Any] = {}
    found = False
    if hasattr(value, "__dict__") and isinstance(value.__dict__, dict):
        attrs.update(value.__dict__)
        found = True
    for cls in type(value).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                attrs[slot] = getattr(value, slot)
                found = True
    return attrs if found else None


def _canonical(value: Any) -> Any:
    """Replaces special objects (RNGs, arrays) by plain data describing their state, else returns ``value``."""
    if isinstance(value, random.Random):
        return ("random.Random", value.getstate())
    bit_generator = getattr(value, "bit_generator", None)
    if bit_generator is not None and hasattr(bit_generator, "state"):
        return ("numpy.Generator", bit_generator.state)
    if _type_name(value).startswith("numpy.random") and hasattr(value, "state"):
        return ("numpy.BitGenerator", value.state)
    if hasattr(value, "dtype") and hasattr(value, "tobytes") and hasattr(value, "shape"):
        return ("ndarray", str(value.dtype), tuple(value.shape), value.tobytes())
    return value


def _walk(value: Any, out: list[bytes], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ChecksumError("state nests deeper than 200 levels (a reference cycle through containers?)")
    if value is None:
        out.append(b"N")
    elif value is True or value is False:
        out.append(b"T" if value else b"F")
    elif isinstance(value, int):
        text = str(int(value)).encode()
        out.append(b"i%d:%s" % (len(text), text))
    elif isinstance(value, float):
        # Exact bits (so -0.0 and 0.0 differ); every NaN is written the same way.
        out.append(b"f" + _FLOAT.pack(value if value == value else float("nan")))
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        out.append(b"s%d:" % len(data) + data)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        out.append(b"b%d:" % len(data) + data)
    elif isinstance(value, (list, tuple)):
        kind = b"l" if isinstance(value, list) else b"t"
        if len(value) > 8:
            first = type(value[0])
            if first is int and all(type(item) is int for item in value):
                # Fast path for long runs of plain ints (RNG states): packed as 64-bit when they all fit.
                try:
                    out.append(kind + b"q%d:" % len(value) + struct.pack(f"<{len(value)}q", *value))
                    return
                except struct.error:
                    pass
            elif first is float and all(type(item) is float and item == item for item in value):
                # Fast path for long runs of (non-NaN) floats, e.g. particle positions: exact IEEE-754 bits.
                out.append(kind + b"e%d:" % len(value) + struct.pack(f"<{len(value)}d", *value))
                return
        out.append(kind + b"%d:" % len(value))
        for item in value:
            _walk(item, out, depth + 1)
    elif isinstance(value, dict):
        items = sorted((_encode(k, depth + 1), _encode(v, depth + 1)) for k, v in value.items())
        out.append(b"d%d:" % len(items))
        for key, item in items:
            out.append(key)
            out.append(item)
    elif isinstance(value, (set, frozenset)):
        members = sorted(_encode(m, depth + 1) for m in value)
        out.append(b"S%d:" % len(members))
        out.extend(members)
    else:
        special = _canonical(value)
        if special is not value:
            out.append(b"x")
            _walk(special, out, depth + 1)
            return
        name = _type_name(value).encode()
        attrs = _attributes(value)
        out.append(b"o%d:" % len(name) + name)
        if attrs is not None and not callable(value):
            _walk(attrs, out, depth + 1)
        else:
            out.append(b"N")


def _encode(value: Any, depth: int) -> bytes:
    out: list[bytes] = []
    _walk(value, out, depth)
    return b"".join(out)


def canonical_bytes(state: Any) -> bytes:
    """The canonical serialisation of ``state`` (see module docstring)."""
    return _encode(state, 0)


def stable_checksum(state: Any) -> int:
    """64-bit checksum of ``state``: the first 8 bytes of SHA-256 of its canonical serialisation."""
    digest = hashlib.sha256(canonical_bytes(state)).digest()
    return int.from_bytes(digest[:8], "little")


def flatten(state: Any, prefix: str = "state", depth: int = 0) -> dict[str, Any]:
    """``{path: leaf value}`` for every leaf of ``state``, using the same canonical view as the checksum."""
    if depth > _MAX_DEPTH:
        raise ChecksumError("state nests deeper than 200 levels")
    result: dict[str, Any] = {}
    if value_is_leaf(state):
        result[prefix] = state
    elif isinstance(state, (list, tuple)):
        for i, item in enumerate(state):
            result.update(flatten(item, f"{prefix}[{i}]", depth + 1))
        if not state:
            result[prefix] = state
    elif isinstance(state, dict):
        for key in sorted(state, key=lambda k: _encode(k, 0)):
            result.update(flatten(state[key], f"{prefix}[{key!r}]", depth + 1))
        if not state:
            result[prefix] = {}
    elif isinstance(state, (set, frozenset)):
        result[prefix] = sorted(state, key=lambda m: _encode(m, 0))
    else:
        special = _canonical(state)
        if special is not state:
            if special[0] == "ndarray":
                result[prefix] = f"array(dtype={special[1]}, shape={special[2]}, sha={_short(special[3])})"
            else:
                result.update(flatten(special[1], f"{prefix}<{special[0]}>", depth + 1))
            return result
        attrs = _attributes(state)
        if attrs is None or callable(state):
            result[prefix] = f"<{_type_name(state)}>"
        else:
            for key in sorted(attrs):
                result.update(flatten(attrs[key], f"{prefix}.{key}", depth + 1))
    return result


def value_is_leaf(value: Any) -> bool:
    """Whether ``value`` is a scalar leaf in :func:`flatten`'s view."""
    return value is None or isinstance(value, (bool, int, float, str, bytes, bytearray))


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def describe_difference(a: Any, b: Any, limit: int = 12) -> list[str]:
    """Human-readable lines naming the leaves where states ``a`` and ``b`` differ (at most ``limit``)."""
    flat_a, flat_b = flatten(a), flatten(b)
    lines = []
    for path in sorted(set(flat_a) | set(flat_b)):
        left = flat_a.get(path, "<missing>")
        right = flat_b.get(path, "<missing>")
        if left != right or type(left) is not type(right) or _encode(left, 0) != _encode(right, 0):
            lines.append(f"{path}: {_show(left)} != {_show(right)}")
            if len(lines) >= limit:
                lines.append("... (more differences not shown)")
                break
    return lines


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
