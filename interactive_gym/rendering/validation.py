"""Argument checks for the Surface draw calls: clear errors instead of broken packets.

Numbers are accepted from anything registered as :class:`numbers.Real` (so ``numpy.float32`` positions
straight from an environment work) and stored as plain ``int``/``float``, rounded to 1/100 pixel: finer
detail is invisible and would only make the packet diff see changes that are not there.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 10_000
MAX_POINTS = 10_000
DECIMALS = 2


class DrawError(ValueError):
    """A draw call got an argument it cannot draw."""


def number(value: object, what: str) -> int | float:
    """Returns ``value`` as a finite ``int`` or ``float`` rounded to :data:`DECIMALS` places.

    Integral floats become ``int`` so the JSON stays short (``10`` rather than ``10.0``).

    Raises:
        DrawError: if ``value`` is not a real number (booleans included) or is NaN/infinite.
    """
    kind = type(value)
    if kind is int:  # fast paths for the common plain types; the general checks below cover the rest
        return value  # type: ignore[return-value]
    if kind is float:
        # An integral float (grid positions: cell * size + size / 2) is unchanged by rounding; NaN and the
        # infinities are not integral, so they fall through to the finite check.
        if value.is_integer():  # type: ignore[attr-defined]
            return int(value)  # type: ignore[call-overload]
        if math.isfinite(value):  # type: ignore[arg-type]
            rounded = round(value, DECIMALS)  # type: ignore[call-overload]
            return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DrawError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    as_float = float(value)
    if not math.isfinite(as_float):
        raise DrawError(f"{what} must be a finite number, got {as_float!r}")
    rounded = round(as_float, DECIMALS)
    return int(rounded) if rounded.is_integer() else rounded


def positive_number(value: object, what: str) -> int | float:
    """Like :func:`number`, but the value must be greater than zero."""
    result = number(value, what)
    if result <= 0:
        raise DrawError(f"{what} must be greater than 0, got {result!r}")
    return result


def non_negative_number(value: object, what: str) -> int | float:
    """Like :func:`number`, but the value must be zero or more."""
    result = number(value, what)
    if result < 0:
        raise DrawError(f"{what} must be 0 or more, got {result!r}")
    return result


def object_id(value: object) -> str | None:
    """Returns the id as a string (ints are accepted and compared as their decimal string), or ``None``.

    Raises:
        DrawError: for other types, empty strings and over-long ids.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DrawError(f"id must be a str or int, got {type(value).__name__} {value!r}")
    text = str(value)
    if not text or len(text) > MAX_ID_LENGTH:
        raise DrawError(f"id must be 1 to {MAX_ID_LENGTH} characters long, got {len(text)}")
    return text


def text_value(value: object, what: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Returns ``value`` if it is a string of acceptable length.

    Raises:
        DrawError: if ``value`` is not a ``str`` (the message suggests converting it) or is too long.
    """
    if not isinstance(value, str):
        raise DrawError(
            f"{what} must be a str, got {type(value).__name__} {value!r}; convert it first, e.g. f\"{{value}}\""
        )
    if len(value) > max_length:
        raise DrawError(f"{what} is {len(value)} characters long; the limit is {max_length}")
    return value


def choice(value: object, what: str, allowed: tuple[str, ...]) -> str:
    """Returns ``value`` if it is one of ``allowed``.

    Raises:
        DrawError: naming the allowed values otherwise.
    """
    if not isinstance(value, str) or value not in allowed:
        raise DrawError(f"{what} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def flat_points(points: object, what: str, minimum: int) -> list[int | float]:
    """Flattens ``[(x0, y0), (x1, y1), ...]`` into ``[x0, y0, x1, y1, ...]`` with each number checked.

    Any iterable of 2-item iterables works (lists, tuples, an N x 2 numpy array).

    Raises:
        DrawError: if there are fewer than ``minimum`` points, more than :data:`MAX_POINTS`, or a point is
            not a pair of numbers.
    """
    if isinstance(points, str | bytes) or not isinstance(points, Iterable):
        raise DrawError(f"{what} must be a list of (x, y) pairs, got {type(points).__name__}")
    flat: list[int | float] = []
    count = 0
    for index, point in enumerate(points):
        if isinstance(point, str | bytes) or not isinstance(point, Iterable):
            raise DrawError(f"{what}[{index}] must be an (x, y) pair, got {point!r}")
        pair = list(point)
        if len(pair) != 2:
            raise DrawError(f"{what}[{index}] must be an (x, y) pair, got {len(pair)} values")
        flat.append(number(pair[0], f"{what}[{index}].x"))
        flat.append(number(pair[1], f"{what}[{index}].y"))
        count += 1
        if count > MAX_POINTS:
            raise DrawError(f"{what} has more than {MAX_POINTS} points")
    if count < minimum:
        raise DrawError(f"{what} needs at least {minimum} points, got {count}")
    return flat
