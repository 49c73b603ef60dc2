"""The JSON text of Socket.IO packets, encoded and decoded with parsers built once instead of once per call.

``json.dumps(data, separators=(",", ":"))`` (how python-socketio encodes every packet) builds a
``JSONEncoder`` and then a C encoder on every call, and engineio's ``json.loads(text, parse_int=...)`` builds a
``JSONDecoder`` on every call: for a render packet of a few hundred bytes that setup is about a third of the
cost. Here each is built once and reused. They are the same C encoder and decoder with the same settings, so
the text is the same, byte for byte (``tests/unit/test_wire_json.py`` checks it against the library calls on
generated values):

- :func:`compact_dumps` is ``json.dumps(data, separators=(",", ":"))``: ASCII-only output, NaN and the
  infinities written as ``NaN``/``Infinity``, the same ``TypeError`` for a value JSON cannot hold, and the same
  ``ValueError`` for a reference cycle (the reused encoder keeps no cycle marks between calls, so a cycle,
  which would recurse until ``RecursionError``, is re-encoded by ``json.dumps`` for its usual error);
- :func:`loads` is ``engineio.json.loads(text)``: integers of more than 100 digits are refused
  (``ValueError("Integer is too large")``), anything else decodes as ``json.loads`` would.

The encoder and decoder hold only settings (no state between calls), so module-level instances are shared
safely, in threads too.
"""

from __future__ import annotations

import json
from json import encoder as _encoder
from typing import Any

# engineio.json refuses integers of more than 100 digits (int() of a huge one is slow); the same rule here.
MAX_INTEGER_DIGITS = 100


def bounded_int(text: str) -> int:
    """``int(text)``, refusing more than :data:`MAX_INTEGER_DIGITS` characters as engineio does."""
    if len(text) > MAX_INTEGER_DIGITS:
        raise ValueError("Integer is too large")
    return int(text)


def _not_serializable(value: Any) -> Any:
    # json.JSONEncoder.default's message, so a caller sees the error json.dumps would raise.
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_C_ENCODER = getattr(_encoder, "c_make_encoder", None)  # the C accelerator (absent in some builds)
# markers=None: no cycle marks kept between calls (a cycle recurses instead; see compact_dumps).
_COMPACT = (_C_ENCODER(None, _not_serializable, _encoder.encode_basestring_ascii, None, ":", ",", False, False,
                       True) if _C_ENCODER is not None else None)
_DECODER = json.JSONDecoder(parse_int=bounded_int)


def compact_dumps(data: Any) -> str:
    """``json.dumps(data, separators=(",", ":"))``, with the encoder built once.

    Raises:
        TypeError: ``data`` holds a value JSON cannot encode (the message names its type).
        ValueError: ``data`` holds a reference cycle ("Circular reference detected").
    """
    if _COMPACT is None:  # no C accelerator in this Python: nothing to save
        return json.dumps(data, separators=(",", ":"))
    try:
        return "".join(_COMPACT(data, 0))
    except RecursionError:
        # A cycle (no marks to catch it here) or nesting too deep: json.dumps raises what it always raised.
        return json.dumps(data, separators=(",", ":"))


def loads(text: Any) -> Any:
    """``engineio.json.loads(text)``, with the decoder built once (``str`` input; anything else as engineio)."""
    if type(text) is not str or text.startswith("\ufeff"):  # bytes, a str subclass, a BOM: json.loads decides
        return json.loads(text, parse_int=bounded_int)
    return _DECODER.decode(text)


class WireJson:
    """A JSON namespace for a python-socketio packet class (``Packet.json``): :func:`compact_dumps` for the
    separators every packet is encoded with, :func:`loads` for decoding; any other ``dumps`` call as
    ``json.dumps``."""

    @staticmethod
    def dumps(data: Any, **kwargs: Any) -> str:
        if kwargs == {"separators": (",", ":")}:
            return compact_dumps(data)
        return json.dumps(data, **kwargs)

    loads = staticmethod(loads)
