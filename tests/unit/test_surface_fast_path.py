"""The Surface's fast paths change nothing observable: for any sequence of draw calls (good and bad arguments
alike) it raises the same errors and makes byte-identical packets as the general path, written out here as a
test-local oracle that does what the Surface did before the fast paths (every argument through the checks in
validation.py, ``make_spec``, and a diff that patches every kept object)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.rendering import Surface
from interactive_gym.rendering import validation as check
from interactive_gym.rendering.colors import normalize_color
from interactive_gym.rendering.packets import (
    PACKET_VERSION,
    Frame,
    ObjectSpec,
    encode_definition,
    encode_patch,
    full_packet,
    implied_order,
    make_spec,
)


class Frame3(IntEnum):
    """An int subclass: numbers of this kind must take the general path and come out as plain ints."""

    THREE = 3


class Label(str):
    """A str subclass: accepted wherever a str is, through the general checks."""


def oracle_diff(previous: Frame, current: Frame, seq: int) -> dict[str, Any]:
    """The packet diff without the equal-spec shortcut: every kept object of the same type gets encode_patch."""
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
        elif old["t"] != spec["t"]:
            objects.append(encode_definition(spec))
        else:
            patch = encode_patch(old, spec)
            if patch is not None:
                objects.append(patch)
    removed = [object_id for object_id in previous.persistent if object_id not in current.persistent]
    if objects:
        packet["objects"] = objects
    if removed:
        packet["remove"] = removed
    if list(current.persistent) != implied_order(previous, current, new_ids):
        packet["order"] = list(current.persistent)
    if current.transient:
        packet["transient"] = [encode_definition(spec) for spec in current.transient]
    return packet


class OracleSurface:
    """The general path: each argument checked by validation.py in declaration order, then make_spec."""

    def __init__(self, width: int, height: int, background: str = "#000000") -> None:
        self.width, self.height = width, height
        self.drawing = Frame(background=normalize_color(background, "background"))
        self.committed = Frame(background=self.drawing.background)
        self.seq = 0
        self.in_sync = False

    def set_background(self, value: object) -> None:
        self.drawing.background = normalize_color(value, "background")

    def rect(self, x, y, w, h, color="#ffffff", id=None, depth=0, stroke=None, stroke_width=1) -> None:
        fields = {"x": check.number(x, "rect x"), "y": check.number(y, "rect y"),
                  "w": check.positive_number(w, "rect w"), "h": check.positive_number(h, "rect h"),
                  **self.paint(color, stroke, stroke_width, "rect"), "d": check.number(depth, "depth")}
        self.add("rect", id, fields)

    def circle(self, x, y, radius, color="#ffffff", id=None, depth=0, stroke=None, stroke_width=1) -> None:
        fields = {"x": check.number(x, "circle x"), "y": check.number(y, "circle y"),
                  "r": check.positive_number(radius, "circle radius"),
                  **self.paint(color, stroke, stroke_width, "circle"), "d": check.number(depth, "depth")}
        self.add("circle", id, fields)

    def line(self, points, color="#ffffff", width=2, id=None, depth=0) -> None:
        fields = {"p": check.flat_points(points, "line points", minimum=2),
                  "c": normalize_color(color, "line color"), "lw": check.positive_number(width, "line width"),
                  "d": check.number(depth, "depth")}
        self.add("line", id, fields)

    def polygon(self, points, color="#ffffff", id=None, depth=0, stroke=None, stroke_width=1) -> None:
        fields = {"p": check.flat_points(points, "polygon points", minimum=3),
                  **self.paint(color, stroke, stroke_width, "polygon"), "d": check.number(depth, "depth")}
        self.add("polygon", id, fields)

    def text(self, x, y, text, size=16, color="#ffffff", align="left", id=None, depth=0, font="sans-serif") -> None:
        fields = {"x": check.number(x, "text x"), "y": check.number(y, "text y"),
                  "text": check.text_value(text, "text"), "size": check.positive_number(size, "text size"),
                  "c": normalize_color(color, "text color"),
                  "align": check.choice(align, "text align", ("left", "center", "right")),
                  "font": check.text_value(font, "text font", max_length=100), "d": check.number(depth, "depth")}
        self.add("text", id, fields)

    def image(self, name, x, y, w=None, h=None, frame=None, angle=0, id=None, depth=0) -> None:
        check.text_value(name, "image name", max_length=64)
        if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int | str)):
            raise check.DrawError(f"image frame must be an int index or a str name, got {frame!r}")
        fields = {"name": name, "x": check.number(x, "image x"), "y": check.number(y, "image y"),
                  "w": None if w is None else check.positive_number(w, "image w"),
                  "h": None if h is None else check.positive_number(h, "image h"), "frame": frame,
                  "angle": check.number(angle, "image angle"), "d": check.number(depth, "depth")}
        self.add("image", id, fields)

    def paint(self, color: object, stroke: object, stroke_width: object, kind: str) -> dict[str, Any]:
        fill = None if color is None else normalize_color(color, f"{kind} color")
        outline = None if stroke is None else normalize_color(stroke, f"{kind} stroke")
        if fill is None and outline is None:
            raise check.DrawError(f"{kind} has neither a fill color nor a stroke: it would be invisible")
        return {"c": fill, "s": outline, "sw": check.positive_number(stroke_width, f"{kind} stroke_width")}

    def add(self, kind: str, object_id: object, fields: dict[str, Any]) -> None:
        key = check.object_id(object_id)
        spec: ObjectSpec = make_spec(kind, key, fields)
        if key is None:
            self.drawing.transient.append(spec)
        elif key in self.drawing.persistent:
            raise check.DrawError(f"id {key!r} was drawn twice in one frame; ids must be unique within a frame")
        else:
            self.drawing.persistent[key] = spec

    def commit(self) -> dict[str, Any]:
        self.seq += 1
        frame = self.drawing
        if self.in_sync:
            packet = oracle_diff(self.committed, frame, self.seq)
        else:
            packet = full_packet(frame, self.seq, self.width, self.height)
            self.in_sync = True
        self.committed = frame
        self.drawing = Frame(background=frame.background)
        return packet

    def snapshot(self) -> dict[str, Any]:
        return full_packet(self.committed, self.seq, self.width, self.height)

    def reset(self) -> None:
        self.in_sync = False


# --- argument strategies: the values researchers pass, and the mistakes they make -----------------------------

plain_ints = st.integers(min_value=-3, max_value=40)
plain_floats = st.floats(min_value=-50, max_value=50, allow_nan=False).map(lambda v: round(v, 3))
odd_numbers = st.sampled_from([
    0, -1, 0.0, -0.0, 0.004, 0.005, 2.675, 1e300, math.nan, math.inf, -math.inf, True, False, None, "1",
    np.float32(1.5), np.float64(2.25), np.int64(7), np.int32(-2), Fraction(1, 3), Decimal("1.5"), Frame3.THREE,
    [1], 2**70,
])
numbers = st.one_of(plain_ints, plain_ints, plain_floats, odd_numbers)
colors = st.sampled_from([
    "#fff", "#FFF", "#ffffff", "white", " White ", "#ff0000ff", "#f008", "red", "#123456", "transparent",
    Label("red"), None, "nope", "", 0xFF0000, ["#fff"], b"#fff",
])
ids = st.one_of(
    st.sampled_from(["a", "b", "c", "score", 1, 2, None, None, None]),
    st.sampled_from(["", "x" * 200, "x" * 201, True, 1.5, Label("a"), np.int64(1), ("a",)]),
)
texts = st.one_of(st.text(max_size=12), st.sampled_from([42, None, "x" * 10_001, Label("hi")]))
aligns = st.sampled_from(["left", "center", "right", "middle", Label("center"), None, 1])
fonts = st.sampled_from(["sans-serif", "monospace", "f" * 100, "f" * 101, 5, Label("serif")])
names = st.sampled_from(["hero", "tiles", "n" * 64, "n" * 65, 7, None, Label("hero")])
frames = st.sampled_from([None, 0, 3, "walk", 1.5, True, Frame3.THREE, np.int64(2)])
optional_sizes = st.one_of(st.none(), numbers)
points = st.one_of(
    st.lists(st.tuples(numbers, numbers), min_size=0, max_size=5),
    st.sampled_from(["0,0 1,1", [(0, 0), 5], [(0, 0), (1, 2, 3)], [(0, 0), "ab"], 7,
                     np.array([[0, 0], [1.5, 2], [3, 4.25]]), [[0, 0], [1, 1], [2, 2]]]),
)

draw_calls = st.one_of(
    st.builds(lambda *a: ("rect", a), numbers, numbers, numbers, numbers, colors, ids, numbers, colors, numbers),
    st.builds(lambda *a: ("circle", a), numbers, numbers, numbers, colors, ids, numbers, colors, numbers),
    st.builds(lambda *a: ("line", a), points, colors, numbers, ids, numbers),
    st.builds(lambda *a: ("polygon", a), points, colors, ids, numbers, colors, numbers),
    st.builds(lambda *a: ("text", a), numbers, numbers, texts, numbers, colors, aligns, ids, numbers, fonts),
    st.builds(lambda *a: ("image", a), names, numbers, numbers, optional_sizes, optional_sizes, frames, numbers,
              ids, numbers),
    st.tuples(st.just("background"), colors),
    st.tuples(st.just("reset"), st.just(())),
)
# Valid calls only, so that frames hold many objects and persistent ids survive (and change) across commits.
good_numbers = st.one_of(plain_ints, plain_floats, st.sampled_from([np.float32(1.5), Frame3.THREE, 0.004]))
good_positive = st.one_of(st.integers(1, 40), st.sampled_from([0.5, 2.25, np.float64(3.0)]))
good_colors = st.sampled_from(["#fff", "red", "#ff0000ff", " Red ", "#123", Label("blue")])
good_ids = st.sampled_from(["a", "b", "c", 1, 2, None])
good_calls = st.one_of(
    st.builds(lambda *a: ("rect", a), good_numbers, good_numbers, good_positive, good_positive, good_colors,
              good_ids),
    st.builds(lambda *a: ("circle", a), good_numbers, good_numbers, good_positive, good_colors, good_ids,
              good_numbers),
    st.builds(lambda *a: ("text", a), good_numbers, good_numbers, st.sampled_from(["t=1", "t=2"]), good_positive,
              good_colors, st.sampled_from(["left", "center"]), good_ids),
    st.builds(lambda *a: ("line", a), st.lists(st.tuples(good_numbers, good_numbers), min_size=2, max_size=4),
              good_colors, good_positive, good_ids),
)


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call did: its result as JSON text (key order included), or its error's type and message."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - comparing whatever either path raises is the point
        return "error", (type(error).__name__, str(error))
    return "ok", json.dumps(result, allow_nan=False)


def apply(target: Any, name: str, args: tuple[Any, ...]) -> tuple[str, Any]:
    if name == "background":
        setter = target.set_background if isinstance(target, OracleSurface) else (
            lambda value: setattr(target, "background", value))
        return outcome(lambda: setter(args[0]))
    return outcome(lambda: getattr(target, name)(*args))


def assert_same_behaviour(frames_of_calls: list[list[tuple[str, tuple[Any, ...]]]]) -> None:
    fast, oracle = Surface(120, 80, background="#101018"), OracleSurface(120, 80, background="#101018")
    for calls in frames_of_calls:
        for name, args in calls:
            assert apply(fast, name, args) == apply(oracle, name, args), (name, args)
        assert outcome(fast.commit) == outcome(oracle.commit)
        assert outcome(fast.snapshot) == outcome(oracle.snapshot)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(draw_calls, max_size=8), min_size=1, max_size=5))
def test_any_draw_calls_give_the_errors_and_packets_of_the_general_path(frames_of_calls) -> None:
    assert_same_behaviour(frames_of_calls)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(good_calls, min_size=1, max_size=10), min_size=2, max_size=6))
def test_valid_scenes_redrawn_over_many_frames_give_identical_packets(frames_of_calls) -> None:
    assert_same_behaviour(frames_of_calls)


def test_a_scene_redrawn_unchanged_gives_bare_headers_on_both_paths() -> None:
    scene = [("rect", (0, 0, 10, 10, "#fff", "ground")), ("circle", (5.5, 5, 2.25, "red", "ball")),
             ("text", (1, 2, "score", 12, "white", "left", "hud"))]
    assert_same_behaviour([scene] * 4)
    surface = Surface(20, 20)
    for _ in range(2):
        for name, args in scene:
            getattr(surface, name)(*args)
        packet = surface.commit()
    assert packet == {"v": PACKET_VERSION, "seq": 2, "full": False}


def test_colour_cache_overflow_keeps_results_identical() -> None:
    """More distinct colour strings than the cache holds: it is cleared and refilled without changing a packet."""
    colours = [f"#{value:06x}" for value in range(300)] * 2
    calls = [("circle", (index % 50, 3, 1, colour, None)) for index, colour in enumerate(colours)]
    assert_same_behaviour([calls[:300], calls[300:]])
