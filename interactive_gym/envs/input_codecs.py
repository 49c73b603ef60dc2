"""Fixed-size byte encodings of actions, for rollback inputs.

A rollback session moves each player's input as a fixed number of bytes. A codec turns an action into those bytes
and back. Decoding never fails: bytes that do not describe a valid action (a corrupt or hostile peer) decode to
the default action, so a bad input can never crash the environment. Spaces are recognised by duck typing, so this
works with Gymnasium spaces in CPython and with plain descriptions in the browser (no numpy needed).
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

UNSUPPORTED_HINT = (
    "supported: Discrete, MultiBinary, MultiDiscrete, Box (<= 16 elements). Give the human agents one of these "
    "action spaces (interactive_gym.envs.spaces.Discrete needs no numpy)"
)


class InputCodecError(ValueError):
    """An action space cannot be encoded (the message says which space and why)."""


class InputCodec(Protocol):
    """Encodes one player's action as ``size`` bytes."""

    size: int
    default: bytes

    def encode(self, action: Any) -> bytes:
        """Bytes for ``action`` (raises ``ValueError`` for an action outside the space)."""

    def decode(self, data: bytes) -> Any:
        """The action for ``data``; invalid bytes give the default action."""

    def random(self, rng: random.Random) -> bytes:
        """Bytes of a uniformly random valid action."""


def _int_size(count: int) -> int:
    return 1 if count <= 0x100 else 2 if count <= 0x10000 else 4


class DiscreteCodec:
    """Actions ``start .. start+n-1`` as a little-endian unsigned offset (1, 2 or 4 bytes)."""

    def __init__(self, n: int, start: int = 0) -> None:
        if not isinstance(n, int) or n < 1 or n > 2**32:
            raise InputCodecError(f"a discrete space needs 1..2**32 actions, got n={n!r}")
        self.n = n
        self.start = int(start)
        self.size = _int_size(n)
        self.default = bytes(self.size)

    def encode(self, action: Any) -> bytes:
        offset = int(action) - self.start
        if not 0 <= offset < self.n:
            raise ValueError(f"action {action!r} is outside {self.start}..{self.start + self.n - 1}")
        return offset.to_bytes(self.size, "little")

    def decode(self, data: bytes) -> int:
        offset = int.from_bytes(data[: self.size], "little")
        return self.start + (offset if offset < self.n else 0)

    def random(self, rng: random.Random) -> bytes:
        return rng.randrange(self.n).to_bytes(self.size, "little")


class MultiBinaryCodec:
    """Chords: ``n`` on/off buttons as a bit mask (bit i = button i)."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or not 1 <= n <= 256:
            raise InputCodecError(f"a multi-binary space needs 1..256 buttons, got n={n!r}")
        self.n = n
        self.size = (n + 7) // 8
        self.default = bytes(self.size)

    def encode(self, action: Any) -> bytes:
        bits = [int(b) for b in action]
        if len(bits) != self.n or any(b not in (0, 1) for b in bits):
            raise ValueError(f"a chord must be {self.n} values of 0 or 1, got {action!r}")
        mask = sum(bit << i for i, bit in enumerate(bits))
        return mask.to_bytes(self.size, "little")

    def decode(self, data: bytes) -> list[int]:
        mask = int.from_bytes(data[: self.size], "little")
        return [(mask >> i) & 1 for i in range(self.n)]

    def random(self, rng: random.Random) -> bytes:
        return rng.getrandbits(self.n).to_bytes(self.size, "little")


class MultiDiscreteCodec:
    """Several discrete choices, each as its own little-endian unsigned integer."""

    def __init__(self, nvec: Sequence[int]) -> None:
        self.nvec = [int(n) for n in nvec]
        if not self.nvec or any(n < 1 for n in self.nvec):
            raise InputCodecError(f"a multi-discrete space needs positive sizes, got {list(nvec)!r}")
        self.parts = [DiscreteCodec(n) for n in self.nvec]
        self.size = sum(p.size for p in self.parts)
        self.default = bytes(self.size)

    def encode(self, action: Any) -> bytes:
        values = list(action)
        if len(values) != len(self.parts):
            raise ValueError(f"expected {len(self.parts)} values, got {action!r}")
        return b"".join(p.encode(v) for p, v in zip(self.parts, values, strict=True))

    def decode(self, data: bytes) -> list[int]:
        result, offset = [], 0
        for part in self.parts:
            result.append(part.decode(data[offset : offset + part.size]))
            offset += part.size
        return result

    def random(self, rng: random.Random) -> bytes:
        return b"".join(p.random(rng) for p in self.parts)


class BoxCodec:
    """Small continuous inputs: each element as a float32, clipped to ``[low, high]`` when decoded.

    Args:
        low: Lower bound per element (flat sequence).
        high: Upper bound per element.
        shape: Shape reported back by ``as_array``.
        as_array: Optional converter for decoded values (e.g. to a numpy array of the space's dtype).
    """

    def __init__(
        self,
        low: Sequence[float],
        high: Sequence[float],
        shape: tuple[int, ...] | None = None,
        as_array: Callable[[list[float]], Any] | None = None,
    ) -> None:
        self.low = [float(v) for v in low]
        self.high = [float(v) for v in high]
        if not self.low or len(self.low) != len(self.high) or len(self.low) > 16:
            raise InputCodecError("a continuous input needs 1..16 elements with matching low/high bounds")
        if any(not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi) for lo, hi in zip(self.low, self.high, strict=True)):
            raise InputCodecError("continuous input bounds must be finite with low <= high")
        self.shape = shape or (len(self.low),)
        self._format = struct.Struct(f"<{len(self.low)}f")
        self.size = self._format.size
        self._as_array = as_array
        self.default = self._format.pack(*[min(max(0.0, lo), hi) for lo, hi in zip(self.low, self.high, strict=True)])

    def encode(self, action: Any) -> bytes:
        flat = _flatten_numbers(action)
        if len(flat) != len(self.low):
            raise ValueError(f"expected {len(self.low)} numbers, got {action!r}")
        return self._format.pack(*flat)

    def decode(self, data: bytes) -> Any:
        try:
            values = list(self._format.unpack(bytes(data[: self.size])))
        except struct.error:
            values = list(self._format.unpack(self.default))
        clipped = [
            lo if v != v else min(max(v, lo), hi) for v, lo, hi in zip(values, self.low, self.high, strict=True)
        ]
        return self._as_array(clipped) if self._as_array else clipped

    def random(self, rng: random.Random) -> bytes:
        return self._format.pack(*[rng.uniform(lo, hi) for lo, hi in zip(self.low, self.high, strict=True)])


def _flatten_numbers(value: Any) -> list[float]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (int, float)):
        return [float(value)]
    out: list[float] = []
    for item in value:
        out.extend(_flatten_numbers(item))
    return out


def codec_for_space(space: Any) -> InputCodec:
    """Chooses a codec for a Gymnasium-like action space (Discrete, MultiBinary, MultiDiscrete, Box).

    Raises:
        InputCodecError: The space is of another kind (e.g. Dict, Text); pass an explicit codec instead.
    """
    kind = type(space).__name__
    if kind == "Discrete" or (hasattr(space, "n") and not hasattr(space, "shape") and isinstance(space.n, int)):
        return DiscreteCodec(int(space.n), int(getattr(space, "start", 0)))
    if kind == "MultiBinary":
        n = space.n if isinstance(space.n, int) else math.prod(space.n)
        return MultiBinaryCodec(int(n))
    if kind == "MultiDiscrete":
        return MultiDiscreteCodec([int(n) for n in _flatten_numbers(space.nvec)])
    if kind == "Box":
        low, high = _flatten_numbers(space.low), _flatten_numbers(space.high)
        shape = tuple(space.shape)
        dtype = getattr(space, "dtype", None)

        def as_array(values: list[float]) -> Any:
            import numpy as np  # only reached for Gymnasium Box spaces, which imply numpy is present

            return np.asarray(values, dtype=dtype).reshape(shape)

        return BoxCodec(low, high, shape, as_array if dtype is not None else None)
    raise InputCodecError(f"cannot encode actions of a {kind} space as rollback inputs; {UNSUPPORTED_HINT}")


def describe_space(space: Any) -> dict[str, Any]:
    """A JSON description of an action space, from which :func:`codec_for_description` builds its codec.

    The server describes each player's space (it has Gymnasium) and sends the description to the page, so
    the browser needs neither Gymnasium nor a call to the env's ``action_space`` to encode inputs.

    Raises:
        InputCodecError: for a space no codec supports (the same spaces :func:`codec_for_space` refuses).
    """
    codec = codec_for_space(space)
    if isinstance(codec, DiscreteCodec):
        return {"kind": "discrete", "n": codec.n, "start": codec.start}
    if isinstance(codec, MultiBinaryCodec):
        return {"kind": "multi_binary", "n": codec.n}
    if isinstance(codec, MultiDiscreteCodec):
        return {"kind": "multi_discrete", "nvec": list(codec.nvec)}
    assert isinstance(codec, BoxCodec)
    dtype = getattr(space, "dtype", None)
    return {"kind": "box", "low": codec.low, "high": codec.high, "shape": list(codec.shape),
            "dtype": None if dtype is None else str(dtype)}


def codec_for_description(description: Mapping[str, Any]) -> InputCodec:
    """The codec of a :func:`describe_space` description (pure Python; numpy only for a typed Box if present).

    Raises:
        InputCodecError: for a malformed description.
    """
    kind = description.get("kind") if isinstance(description, Mapping) else None
    try:
        if kind == "discrete":
            return DiscreteCodec(description["n"], description.get("start", 0))
        if kind == "multi_binary":
            return MultiBinaryCodec(description["n"])
        if kind == "multi_discrete":
            return MultiDiscreteCodec(description["nvec"])
        if kind == "box":
            shape = tuple(int(n) for n in description["shape"])
            return BoxCodec(description["low"], description["high"], shape, _box_array(shape, description.get("dtype")))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InputCodecError):
            raise
        raise InputCodecError(f"malformed action space description {dict(description)!r}: {exc}") from None
    raise InputCodecError(f"unknown action space description {description!r}; {UNSUPPORTED_HINT}")


def _box_array(shape: tuple[int, ...], dtype: str | None) -> Callable[[list[float]], Any] | None:
    """Decoded Box values as a numpy array when the env declared a dtype and numpy is loaded, else lists."""
    if dtype is None:
        return None
    try:
        import numpy as np  # an env with a typed Box space runs where numpy is present
    except ImportError:
        return None
    return lambda values: np.asarray(values, dtype=dtype).reshape(shape)
