"""Render packets: the wire format between a Python :class:`~interactive_gym.rendering.surface.Surface` and
the JavaScript renderer, and the diff that keeps them small. Pure functions, no I/O.

Packet (a JSON object)::

    {
      "v": 1,                  # PACKET_VERSION
      "seq": 17,               # commit counter; a diff applies only on top of seq - 1
      "full": false,           # true: forget everything, this packet is the whole scene
      "size": [600, 400],      # full packets only: surface width and height in pixels
      "bg": "#101018",         # full packets, and diffs in which the background changed
      "objects": [...],        # persistent objects (with an id) that are new or changed
      "remove": ["id", ...],   # persistent objects no longer drawn
      "order": ["id", ...],    # only when the stacking order differs from the implied one (see below)
      "transient": [...]       # objects without id: the complete list for this frame
    }

Empty lists are left out: a frame in which nothing changed is ``{"v": 1, "seq": 18, "full": false}``.

Each entry of ``objects`` is either a *definition* (has ``"t"``, the type: the object is created, or replaced
if the id exists) or a *patch* (no ``"t"``: only the listed fields changed). Definitions leave out fields
equal to :data:`DEFAULTS`; patches list changed fields with their new value, defaults included.
``transient`` entries are definitions without ``id``.

Stacking order of persistent objects: the client keeps the order it has, drops removed ids and appends new
ids in the order they appear in ``objects``. When the surface's draw order differs from that, ``order``
gives the complete list of persistent ids, bottom first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PACKET_VERSION = 1

# Field values the client assumes when a definition leaves a field out. Keep in sync with DEFAULTS in
# interactive_gym/server/static/js/packet_apply.js (a test compares the two).
COMMON_DEFAULTS: dict[str, Any] = {"d": 0}
DEFAULTS: dict[str, dict[str, Any]] = {
    "rect": {**COMMON_DEFAULTS, "c": "#ffffff", "s": None, "sw": 1},
    "circle": {**COMMON_DEFAULTS, "c": "#ffffff", "s": None, "sw": 1},
    "line": {**COMMON_DEFAULTS, "c": "#ffffff", "lw": 2},
    "polygon": {**COMMON_DEFAULTS, "c": "#ffffff", "s": None, "sw": 1},
    "text": {**COMMON_DEFAULTS, "c": "#ffffff", "size": 16, "align": "left", "font": "sans-serif"},
    "image": {**COMMON_DEFAULTS, "w": None, "h": None, "frame": None, "angle": 0},
}
# Fields every definition carries.
REQUIRED: dict[str, tuple[str, ...]] = {
    "rect": ("x", "y", "w", "h"),
    "circle": ("x", "y", "r"),
    "line": ("p",),
    "polygon": ("p",),
    "text": ("x", "y", "text"),
    "image": ("name", "x", "y"),
}
OBJECT_TYPES = tuple(DEFAULTS)

ObjectSpec = dict[str, Any]
"""A complete object: ``"t"``, every field of its type, and ``"id"`` if persistent."""


@dataclass
class Frame:
    """Everything drawn in one committed frame.

    Attributes:
        persistent: id -> complete spec, in draw order (dicts keep insertion order).
        transient: specs without id, in draw order.
        background: canonical background colour.
    """

    persistent: dict[str, ObjectSpec] = field(default_factory=dict)
    transient: list[ObjectSpec] = field(default_factory=list)
    background: str = "#000000"


def make_spec(kind: str, object_id: str | None, fields: Mapping[str, Any]) -> ObjectSpec:
    """Builds a complete spec from already-validated fields, filling in defaults.

    Raises:
        KeyError: if ``kind`` is unknown, a required field is missing, or a field does not belong to the type
            (all programming errors inside this package, not user input).
    """
    defaults = DEFAULTS[kind]
    unknown = set(fields) - set(defaults) - set(REQUIRED[kind])
    missing = set(REQUIRED[kind]) - set(fields)
    if unknown or missing:
        raise KeyError(f"{kind}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
    spec: ObjectSpec = {"t": kind}
    if object_id is not None:
        spec["id"] = object_id
    for key in REQUIRED[kind]:
        spec[key] = fields[key]
    for key, default in defaults.items():
        spec[key] = fields.get(key, default)
    return spec


def encode_definition(spec: ObjectSpec) -> dict[str, Any]:
    """Returns the wire form of ``spec``: type, id, required fields, and fields that differ from the defaults."""
    defaults = DEFAULTS[spec["t"]]
    return {key: value for key, value in spec.items() if key not in defaults or defaults[key] != value}


def encode_patch(old: ObjectSpec, new: ObjectSpec) -> dict[str, Any] | None:
    """Returns ``{"id": ..., <changed fields>}``, or ``None`` if nothing changed. Both specs share a type."""
    changed = {key: value for key, value in new.items() if old.get(key) != value}
    if not changed:
        return None
    return {"id": new["id"], **changed}


def full_packet(frame: Frame, seq: int, width: int, height: int) -> dict[str, Any]:
    """Returns the packet that rebuilds ``frame`` from nothing."""
    packet: dict[str, Any] = {
        "v": PACKET_VERSION,
        "seq": seq,
        "full": True,
        "size": [width, height],
        "bg": frame.background,
    }
    if frame.persistent:
        packet["objects"] = [encode_definition(spec) for spec in frame.persistent.values()]
    if frame.transient:
        packet["transient"] = [encode_definition(spec) for spec in frame.transient]
    return packet


def diff_packet(previous: Frame, current: Frame, seq: int) -> dict[str, Any]:
    """Returns the packet that turns a client showing ``previous`` into one showing ``current``."""
    packet: dict[str, Any] = {"v": PACKET_VERSION, "seq": seq, "full": False}
    if current.background != previous.background:
        packet["bg"] = current.background
    objects: list[dict[str, Any]] = []
    new_ids: list[str] = []
    for object_id, spec in current.persistent.items():
        old = previous.persistent.get(object_id)
        if old is None:
            new_ids.append(object_id)
            objects.append(encode_definition(spec))
        elif old == spec:
            continue  # the common case, a persistent object drawn as before: one C-level dict comparison
        elif old["t"] != spec["t"]:
            objects.append(encode_definition(spec))
        else:
            patch = encode_patch(old, spec)
            if patch is not None:
                objects.append(patch)
    if new_ids or len(previous.persistent) != len(current.persistent):
        removed = [object_id for object_id in previous.persistent if object_id not in current.persistent]
        implied = implied_order(previous, current, new_ids)
    else:
        # The usual frame: the same ids as before (none new and as many, so none gone); the client keeps the
        # previous order, which is what implied_order would compute, without the membership scans.
        removed = []
        implied = list(previous.persistent)
    if objects:
        packet["objects"] = objects
    if removed:
        packet["remove"] = removed
    order = list(current.persistent)
    if order != implied:
        packet["order"] = order
    if current.transient:
        packet["transient"] = [encode_definition(spec) for spec in current.transient]
    return packet


def implied_order(previous: Frame, current: Frame, new_ids: list[str]) -> list[str]:
    """The stacking order a client computes without an ``order`` field: kept ids in their old order, then new ids."""
    kept = [object_id for object_id in previous.persistent if object_id in current.persistent]
    return kept + new_ids
