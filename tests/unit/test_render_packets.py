"""Render packets: the diff is minimal, and applying packets (in Python and in the real JS module) rebuilds
exactly what the Surface drew."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.rendering import DEFAULTS, PACKET_VERSION, Surface
from interactive_gym.rendering.packets import REQUIRED, Frame, diff_packet, full_packet, make_spec

ROOT = Path(__file__).resolve().parents[2]
PACKET_APPLY_JS = ROOT / "interactive_gym" / "server" / "static" / "js" / "packet_apply.js"
NODE = shutil.which("node")


def run_node(script: str, stdin: str = "") -> Any:
    """Runs an ES module snippet with node (``stdin`` readable as ``process.stdin``) and returns the JSON it prints."""
    assert NODE, "node (20+) must be on PATH: the JS packet model is tested against the Python Surface"
    completed = subprocess.run([NODE, "--input-type=module", "-e", script], input=stdin, capture_output=True,
                               text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def reference_apply(state: dict[str, Any] | None, packet: dict[str, Any]) -> dict[str, Any]:
    """Test-local decoder written from the format description in packets.py."""
    assert packet["v"] == PACKET_VERSION
    if packet["full"]:
        state = {"objects": {}, "order": [], "bg": packet["bg"], "size": packet["size"]}
    else:
        assert state is not None and packet["seq"] == state["seq"] + 1
        state = {**state, "objects": dict(state["objects"]), "order": list(state["order"])}
        state["bg"] = packet.get("bg", state["bg"])
    added = []
    for entry in packet.get("objects", []):
        if "t" in entry:
            if entry["id"] not in state["objects"]:
                added.append(entry["id"])
            state["objects"][entry["id"]] = {**DEFAULTS[entry["t"]], **entry}
        else:
            state["objects"][entry["id"]] = {**state["objects"][entry["id"]], **entry}
    for object_id in packet.get("remove", []):
        del state["objects"][object_id]
    kept = [object_id for object_id in state["order"] if object_id in state["objects"]]
    state["order"] = packet.get("order", kept + added)
    state["transient"] = [{**DEFAULTS[entry["t"]], **entry} for entry in packet.get("transient", [])]
    state["seq"] = packet["seq"]
    return state


def expected_state(surface: Surface) -> dict[str, Any]:
    """What a client should show after the last commit: the decoded full snapshot, which
    test_snapshot_decodes_to_exactly_what_was_drawn checks against the draw calls themselves."""
    state = reference_apply(None, surface.snapshot())
    return {key: state[key] for key in ("objects", "order", "transient", "bg")}


def draw_random_frame(surface: Surface, rng: random.Random) -> None:
    """Draws a random scene from a small pool of ids, so objects appear, move, change type, reorder and vanish."""
    ids = [f"obj{i}" for i in range(8)]
    rng.shuffle(ids)
    for object_id in ids[: rng.randint(0, 8)]:
        draw_one(surface, rng, object_id)
    for _ in range(rng.randint(0, 3)):
        draw_one(surface, rng, None)
    if rng.random() < 0.1:
        surface.background = rng.choice(["#000", "#123456", "white"])


def draw_one(surface: Surface, rng: random.Random, object_id: str | None) -> None:
    x, y = rng.randint(0, 3) * 10, rng.choice([0, 5, 7.5])
    color = rng.choice(["#fff", "#ff0000", "#00ff0080"])
    depth = rng.choice([0, 0, 1, -1])
    kind = rng.choice(["rect", "rect", "circle", "text", "line", "polygon", "image"])
    if kind == "rect":
        surface.rect(x, y, 5, rng.choice([5, 6]), color=color, id=object_id, depth=depth,
                     stroke=rng.choice([None, "#000"]))
    elif kind == "circle":
        surface.circle(x, y, 3, color=color, id=object_id, depth=depth)
    elif kind == "text":
        surface.text(x, y, rng.choice(["a", "b"]), align=rng.choice(["left", "center"]), id=object_id, depth=depth)
    elif kind == "line":
        surface.line([(x, y), (x + 1, y + 1)], color=color, width=rng.choice([1, 2]), id=object_id, depth=depth)
    elif kind == "polygon":
        surface.polygon([(0, 0), (x, 1), (1, y + 1)], color=color, id=object_id, depth=depth)
    else:
        surface.image("hero", x, y, w=rng.choice([None, 10]), frame=rng.choice([None, 1]), id=object_id, depth=depth)


def random_session(seed: int, frames: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Returns (packets, expected client state after each packet), with occasional resets and snapshots."""
    rng = random.Random(seed)
    surface = Surface(width=64, height=48)
    packets, states = [], []
    for _ in range(frames):
        draw_random_frame(surface, rng)
        if rng.random() < 0.05:
            surface.reset()
        packets.append(surface.commit())
        states.append(expected_state(surface))
        if rng.random() < 0.05:
            packets.append(surface.snapshot())
            states.append(states[-1])
    return packets, states


@pytest.mark.parametrize("seed", range(20))
def test_reference_decoder_rebuilds_every_frame(seed: int) -> None:
    packets, states = random_session(seed, frames=150)
    state = None
    for packet, expected in zip(packets, states, strict=True):
        json.dumps(packet, allow_nan=False)  # must be JSON as is
        state = reference_apply(state, packet)
        assert {key: state[key] for key in expected} == expected


def test_javascript_model_rebuilds_every_frame() -> None:
    """The browser's packet_apply.js, fed the same packets, ends each frame with the Surface's exact scene."""
    packets, states = [], []
    for seed in range(5):
        session_packets, session_states = random_session(100 + seed, frames=120)
        packets += session_packets
        states += session_states
        # A fresh session starts from a full packet with seq 1: model the client reconnecting.
    script = f"""
        import {{ applyPacket, createModel }} from {json.dumps(PACKET_APPLY_JS.as_uri())};
        import {{ readFileSync }} from "node:fs";
        const packets = JSON.parse(readFileSync(0, "utf8"));
        let model = createModel();
        const out = [];
        for (const packet of packets) {{
          if (packet.full && packet.seq === 1) model = createModel();
          applyPacket(model, packet);
          out.push({{objects: Object.fromEntries(model.objects), order: model.order,
                     transient: model.transient, bg: model.background}});
        }}
        console.log(JSON.stringify(out));
    """
    results = run_node(script, json.dumps(packets))
    assert len(results) == len(states)
    for index, (got, expected) in enumerate(zip(results, states, strict=True)):
        assert got == expected, f"packet {index}: {packets[index]}"


def test_javascript_defaults_and_required_fields_match_python() -> None:
    script = f"""
        import {{ DEFAULTS, REQUIRED, PACKET_VERSION }} from {json.dumps(PACKET_APPLY_JS.as_uri())};
        console.log(JSON.stringify({{DEFAULTS, REQUIRED, PACKET_VERSION}}));
    """
    js = run_node(script)
    assert js["DEFAULTS"] == DEFAULTS
    assert js["REQUIRED"] == {kind: list(fields) for kind, fields in REQUIRED.items()}
    assert js["PACKET_VERSION"] == PACKET_VERSION


def test_snapshot_decodes_to_exactly_what_was_drawn() -> None:
    surface = Surface(50, 40, background="#abc")
    surface.rect(1, 2, 3, 4, id="r", depth=2, stroke="#000")
    surface.circle(5, 5, 2)
    surface.text(0, 0, "t", id=9, align="right")
    surface.commit()
    assert expected_state(surface) == {
        "objects": {
            "r": {"t": "rect", "id": "r", "x": 1, "y": 2, "w": 3, "h": 4, "d": 2, "c": "#ffffff", "s": "#000000",
                  "sw": 1},
            "9": {"t": "text", "id": "9", "x": 0, "y": 0, "text": "t", "d": 0, "c": "#ffffff", "size": 16,
                  "align": "right", "font": "sans-serif"},
        },
        "order": ["r", "9"],
        "transient": [{"t": "circle", "x": 5, "y": 5, "r": 2, "d": 0, "c": "#ffffff", "s": None, "sw": 1}],
        "bg": "#aabbcc",
    }


def test_unchanged_frame_is_a_bare_header() -> None:
    surface = Surface(100, 100)
    for _ in range(2):
        surface.rect(1, 2, 3, 4, id="a")
        surface.text(0, 0, "score", id="s")
        packet = surface.commit()
    assert packet == {"v": PACKET_VERSION, "seq": 2, "full": False}


def test_moving_an_object_sends_only_the_changed_fields() -> None:
    surface = Surface(100, 100)
    surface.image("hero", 10, 20, w=16, id="hero", depth=2)
    surface.commit()
    surface.image("hero", 11, 20, w=16, id="hero", depth=2)
    assert surface.commit()["objects"] == [{"id": "hero", "x": 11}]


def test_patch_back_to_a_default_value_names_the_field() -> None:
    surface = Surface(100, 100)
    surface.rect(0, 0, 5, 5, stroke="#000", id="r")
    surface.commit()
    surface.rect(0, 0, 5, 5, id="r")
    assert surface.commit()["objects"] == [{"id": "r", "s": None}]


def test_definitions_leave_out_default_fields() -> None:
    surface = Surface(100, 100)
    surface.circle(5, 6, 7, id="c")
    surface.circle(5, 6, 7, color="#000", depth=3)
    packet = surface.commit()
    assert packet["objects"] == [{"t": "circle", "id": "c", "x": 5, "y": 6, "r": 7}]
    assert packet["transient"] == [{"t": "circle", "x": 5, "y": 6, "r": 7, "d": 3, "c": "#000000"}]


def test_objects_not_redrawn_are_removed() -> None:
    surface = Surface(100, 100)
    surface.rect(0, 0, 5, 5, id="a")
    surface.rect(0, 0, 5, 5, id="b")
    surface.commit()
    surface.rect(0, 0, 5, 5, id="b")
    packet = surface.commit()
    assert packet["remove"] == ["a"]
    assert "order" not in packet  # removal alone keeps the implied order


def test_new_object_drawn_below_existing_ones_sends_order() -> None:
    surface = Surface(100, 100)
    surface.rect(0, 0, 5, 5, id="top")
    surface.commit()
    surface.rect(0, 0, 5, 5, id="under")
    surface.rect(0, 0, 5, 5, id="top")
    packet = surface.commit()
    assert packet["order"] == ["under", "top"]
    assert packet["objects"] == [{"t": "rect", "id": "under", "x": 0, "y": 0, "w": 5, "h": 5}]


def test_new_object_appended_on_top_needs_no_order() -> None:
    surface = Surface(100, 100)
    surface.rect(0, 0, 5, 5, id="a")
    surface.commit()
    surface.rect(0, 0, 5, 5, id="a")
    surface.rect(0, 0, 5, 5, id="b")
    assert "order" not in surface.commit()


def test_type_change_under_same_id_sends_a_new_definition() -> None:
    surface = Surface(100, 100)
    surface.rect(0, 0, 5, 5, id="x")
    surface.commit()
    surface.circle(1, 1, 1, id="x")
    assert surface.commit()["objects"] == [{"t": "circle", "id": "x", "x": 1, "y": 1, "r": 1}]


def test_transient_objects_are_sent_every_frame_and_vanish_when_not_drawn() -> None:
    surface = Surface(100, 100)
    surface.circle(1, 1, 1)
    surface.commit()
    surface.circle(1, 1, 1)
    assert surface.commit()["transient"] == [{"t": "circle", "x": 1, "y": 1, "r": 1}]
    assert "transient" not in surface.commit()


def test_full_packet_has_size_background_and_draw_order() -> None:
    frame = Frame(background="#101018")
    frame.persistent["b"] = make_spec("rect", "b", {"x": 0, "y": 0, "w": 1, "h": 1})
    frame.persistent["a"] = make_spec("rect", "a", {"x": 0, "y": 0, "w": 1, "h": 1})
    packet = full_packet(frame, seq=9, width=30, height=20)
    assert packet["size"] == [30, 20] and packet["bg"] == "#101018" and packet["seq"] == 9 and packet["full"]
    assert [entry["id"] for entry in packet["objects"]] == ["b", "a"]


def test_background_change_is_sent_once() -> None:
    previous, current = Frame(background="#000000"), Frame(background="#ffffff")
    assert diff_packet(previous, current, seq=2)["bg"] == "#ffffff"
    assert "bg" not in diff_packet(current, current, seq=3)


def test_make_spec_rejects_fields_of_another_type() -> None:
    with pytest.raises(KeyError, match="unknown fields"):
        make_spec("circle", None, {"x": 0, "y": 0, "r": 1, "w": 3})
    with pytest.raises(KeyError, match="missing fields"):
        make_spec("circle", None, {"x": 0, "y": 0})


coordinates = st.integers(min_value=-50, max_value=50)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from("abcdef"), coordinates, coordinates), max_size=6), max_size=8))
def test_any_sequence_of_frames_round_trips(frames: list[list[tuple[str, int, int]]]) -> None:
    surface = Surface(100, 100)
    state = None
    for frame in frames:
        drawn = {}
        for object_id, x, y in frame:
            if object_id not in drawn:
                surface.rect(x, y, 1, 1, id=object_id)
                drawn[object_id] = (x, y)
        state = reference_apply(state, surface.commit())
        assert state["order"] == list(drawn)
        assert {k: (v["x"], v["y"]) for k, v in state["objects"].items()} == drawn
