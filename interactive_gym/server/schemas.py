"""Declared schemas for every Socket.IO event a participant's page may send, and their validation.

One table says what each payload must look like; :func:`validate_payload` checks a payload against it and
returns a cleaned copy or raises :class:`PayloadError` with a message naming the field and the problem. The
Socket.IO handlers never touch a payload that has not passed through here. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interactive_gym.server.game_over import P2P_END_REASONS

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEY_PATTERN = re.compile(r"^[\x20-\x7e]{1,32}$")


class PayloadError(ValueError):
    """A payload that does not match its event's schema."""


@dataclass(frozen=True)
class Field:
    """One field of a payload.

    Attributes:
        kind: Expected JSON type: "str", "int", "float", "bool", "list", "dict", "any".
        required: Whether the field must be present.
        pattern: For strings, a regex the whole value must match.
        max_len: Longest string / list / dict allowed.
        low: Smallest number allowed.
        high: Largest number allowed.
        items: For lists, the schema of each item.
    """

    kind: str
    required: bool = True
    pattern: re.Pattern[str] | None = None
    max_len: int | None = None
    low: float | None = None
    high: float | None = None
    items: Field | None = None


def _check(name: str, spec: Field, value: Any) -> Any:
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            raise PayloadError(f"{name}: expected a string")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise PayloadError(f"{name}: longer than {spec.max_len} characters")
        if spec.pattern is not None and not spec.pattern.fullmatch(value):
            raise PayloadError(f"{name}: invalid format")
        return value
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PayloadError(f"{name}: expected a number")
        if kind == "int" and not (isinstance(value, int) or float(value).is_integer()):
            raise PayloadError(f"{name}: expected a whole number")
        if isinstance(value, float) and not math.isfinite(value):
            raise PayloadError(f"{name}: expected a finite number")
        if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
            raise PayloadError(f"{name}: out of range [{spec.low}, {spec.high}]")
        return int(value) if kind == "int" else float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise PayloadError(f"{name}: expected true or false")
        return value
    if kind == "list":
        if not isinstance(value, list):
            raise PayloadError(f"{name}: expected a list")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise PayloadError(f"{name}: more than {spec.max_len} items")
        if spec.items is None:
            return list(value)
        return [_check(f"{name}[{i}]", spec.items, v) for i, v in enumerate(value)]
    if kind == "dict":
        if not isinstance(value, dict):
            raise PayloadError(f"{name}: expected an object")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise PayloadError(f"{name}: more than {spec.max_len} fields")
        return dict(value)
    return value


def validate_payload(event: str, payload: Any, schemas: Mapping[str, Mapping[str, Field]] | None = None) -> dict:
    """Checks ``payload`` of ``event`` against its schema.

    Returns:
        A new dict with exactly the declared fields that were present (unknown fields are an error).

    Raises:
        PayloadError: unknown event, payload not an object, unknown/missing field, or a bad value.
    """
    table = EVENT_SCHEMAS if schemas is None else schemas
    schema = table.get(event)
    if schema is None:
        raise PayloadError(f"unknown event {event!r}")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise PayloadError("payload must be an object")
    if not payload.keys() <= schema.keys():  # a set comparison of the key views, without building two sets
        unknown = sorted(set(payload) - set(schema))
        raise PayloadError(f"unknown field(s): {', '.join(str(u)[:32] for u in unknown[:5])}")
    cleaned = {}
    for name, spec in schema.items():
        if name not in payload:
            if spec.required:
                raise PayloadError(f"{name}: missing")
            continue
        cleaned[name] = _check(name, spec, payload[name])
    return cleaned


_ID = Field("str", pattern=ID_PATTERN)
_INDEX = Field("int", low=0, high=100_000)

# What each client event carries. Browser-mode and p2p events add their own tables next to their handlers.
EVENT_SCHEMAS: dict[str, dict[str, Field]] = {
    # The participant continues past the scene shown at scene_index, with form answers (if any).
    "advance": {"scene_index": _INDEX, "scene_id": _ID, "answers": Field("dict", required=False, max_len=100)},
    # The participant's page is ready to play the game scene at scene_index.
    "join_game": {"scene_index": _INDEX, "scene_id": _ID},
    # The participant's page is ready to play the p2p scene at scene_index (rtt_ms: its measured RTT to us).
    "p2p_join": {"scene_index": _INDEX, "scene_id": _ID, "rtt_ms": Field("float", required=False, low=0, high=60_000)},
    # This player's p2p game is over (after uploading its episodes).
    "p2p_game_end": {"game_id": Field("str", pattern=re.compile(r"p2p-[0-9a-f]{1,32}")),
                     "reason": Field("str", pattern=re.compile("|".join(P2P_END_REASONS))),
                     # The page's error text (Python traceback tail) when reason is "error".
                     "error": Field("str", required=False, max_len=4000)},
    # Keys held right now in a server-mode game, ordered by press time (most recent last).
    "keys": {"game_id": _ID, "held": Field("list", max_len=16, items=Field("str", pattern=KEY_PATTERN)),
             "seq": Field("int", low=0, high=2**53)},
    # The page became hidden or visible (presence, pauses).
    "visibility": {"visible": Field("bool")},
    # Entry screening: what the page sees of itself (interactive_gym/screening judges it; the page decides
    # nothing). brands: navigator.userAgentData brands as "Brand/Version"; relay: the TURN pre-test's outcome.
    "screening_report": {"user_agent": Field("str", max_len=512),
                         "brands": Field("list", required=False, max_len=16, items=Field("str", max_len=100)),
                         "ua_mobile": Field("bool", required=False), "touch_points": Field("int", low=0, high=1000),
                         "width": Field("int", low=0, high=100_000), "height": Field("int", low=0, high=100_000),
                         "webassembly": Field("bool"), "webrtc": Field("bool"),
                         "relay": Field("bool", required=False),
                         "relay_ms": Field("float", required=False, low=0, high=600_000)},
    # The participant pressed a key or clicked (sent at most every 2 s while it lasts): the idle rule's input.
    "activity": {"scene_index": _INDEX},
    # Round-trip probe; the server answers through the ack.
    "ping": {"t": Field("float", low=0, high=1e15)},
}
