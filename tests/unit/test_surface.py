"""The Surface draw API: what each call records, the errors bad arguments get, the commit cycle, colours and
the asset registry."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from interactive_gym.rendering import (
    AssetError,
    AssetRegistry,
    ColorError,
    DrawError,
    Surface,
    normalize_color,
)


def only_object(packet: dict) -> dict:
    entries = packet.get("objects", []) + packet.get("transient", [])
    assert len(entries) == 1, packet
    return entries[0]


# --- colours ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("#F00", "#ff0000"),
        ("#ff8800", "#ff8800"),
        ("  #AbCdEf ", "#abcdef"),
        ("#f008", "#ff000088"),
        ("#11223344", "#11223344"),
        ("#112233ff", "#112233"),
        ("#f00f", "#ff0000"),
        ("Red", "#ff0000"),
        ("grey", "#808080"),
        ("transparent", "#00000000"),
    ],
)
def test_colours_normalise_to_one_form(given: str, expected: str) -> None:
    assert normalize_color(given) == expected


@pytest.mark.parametrize("bad", ["", "#", "#ff", "#fffff", "#gggggg", "ff0000", "rgb(1,2,3)", "chartreuse", 0xFF0000, None])
def test_bad_colours_are_rejected_with_the_accepted_forms(bad: object) -> None:
    with pytest.raises(ColorError, match="colou?r"):
        normalize_color(bad, "color")


def test_colour_error_names_the_argument() -> None:
    surface = Surface(10, 10)
    with pytest.raises(ColorError, match="rect stroke"):
        surface.rect(0, 0, 1, 1, stroke="nope")


# --- draw calls ------------------------------------------------------------------------------------------


def test_rect_records_geometry_paint_and_depth() -> None:
    surface = Surface(100, 50)
    surface.rect(1, 2, 3, 4, color="#0f0", id="r", depth=5, stroke="black", stroke_width=2)
    assert only_object(surface.commit()) == {
        "t": "rect", "id": "r", "x": 1, "y": 2, "w": 3, "h": 4, "d": 5, "c": "#00ff00", "s": "#000000", "sw": 2,
    }


def test_circle_line_polygon_text_image_fields() -> None:
    surface = Surface(100, 50)
    surface.circle(5, 6, 7, color=None, stroke="#fff")
    assert only_object(surface.commit()) == {"t": "circle", "x": 5, "y": 6, "r": 7, "c": None, "s": "#ffffff"}
    surface.line([(0, 0), (10, 5), (20, 0)], color="blue", width=3)
    assert only_object(surface.commit()) == {"t": "line", "p": [0, 0, 10, 5, 20, 0], "c": "#0000ff", "lw": 3}
    surface.polygon(((0, 0), (4, 0), (2, 3)), color="#123")
    assert only_object(surface.commit()) == {"t": "polygon", "p": [0, 0, 4, 0, 2, 3], "c": "#112233"}
    surface.text(50, 10, "Score: 3", size=20, color="yellow", align="center", font="monospace")
    assert only_object(surface.commit()) == {
        "t": "text", "x": 50, "y": 10, "text": "Score: 3", "size": 20, "c": "#ffff00", "align": "center",
        "font": "monospace",
    }
    surface.image("hero", 3, 4, w=16, frame=2, angle=90)
    assert only_object(surface.commit()) == {
        "t": "image", "name": "hero", "x": 3, "y": 4, "w": 16, "frame": 2, "angle": 90,
    }


def test_numbers_are_rounded_to_hundredths_and_integral_floats_become_ints() -> None:
    surface = Surface(100, 50)
    surface.rect(1.0, 2.123456, 3.999999, 0.005, id="r")
    entry = only_object(surface.commit())
    assert (entry["x"], entry["y"], entry["w"], entry["h"]) == (1, 2.12, 4, 0.01)
    assert isinstance(entry["x"], int) and isinstance(entry["w"], int)


def test_numpy_scalars_and_arrays_are_accepted_as_plain_numbers() -> None:
    surface = Surface(100, 50)
    surface.circle(np.float32(1.5), np.int64(2), np.float64(3.25), id="c")
    surface.line(np.array([[0, 0], [1.5, 2]]), id="l")
    packet = surface.commit()
    text = json.dumps(packet, allow_nan=False)  # numpy types would not serialise
    assert '"x": 1.5' in text and '"p": [0, 0, 1.5, 2]' in text
    assert all(type(v) in (int, float) for v in packet["objects"][1]["p"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.rect(math.nan, 0, 1, 1), "finite"),
        (lambda s: s.rect(0, math.inf, 1, 1), "finite"),
        (lambda s: s.rect("1", 0, 1, 1), "rect x must be a number"),
        (lambda s: s.rect(True, 0, 1, 1), "must be a number"),
        (lambda s: s.rect(0, 0, 0, 1), "rect w must be greater than 0"),
        (lambda s: s.rect(0, 0, 1, -2), "rect h must be greater than 0"),
        (lambda s: s.rect(0, 0, 1, 1, color=None), "invisible"),
        (lambda s: s.rect(0, 0, 1, 1, stroke="#fff", stroke_width=0), "stroke_width"),
        (lambda s: s.circle(0, 0, 0), "radius"),
        (lambda s: s.line([(0, 0)]), "at least 2 points"),
        (lambda s: s.line([(0, 0), (1, 2, 3)]), r"points\[1\] must be an \(x, y\) pair"),
        (lambda s: s.line("0,0 1,1"), "list of"),
        (lambda s: s.line([(0, 0), 5]), r"points\[1\]"),
        (lambda s: s.line([(0, 0), (1, 1)], width=0), "line width"),
        (lambda s: s.polygon([(0, 0), (1, 1)]), "at least 3 points"),
        (lambda s: s.polygon([(0, 0), (1, 1), (2, None)]), r"polygon points\[2\].y"),
        (lambda s: s.text(0, 0, 42), "convert it first"),
        (lambda s: s.text(0, 0, "x", align="middle"), "align must be one of"),
        (lambda s: s.text(0, 0, "x", size=-1), "text size"),
        (lambda s: s.text(0, 0, "x" * 10_001), "limit"),
        (lambda s: s.image("hero", 0, 0, frame=1.5), "frame must be"),
        (lambda s: s.image("hero", 0, 0, w=0), "image w"),
        (lambda s: s.image(7, 0, 0), "image name must be a str"),
        (lambda s: s.rect(0, 0, 1, 1, id=1.5), "id must be a str or int"),
        (lambda s: s.rect(0, 0, 1, 1, id=""), "id must be 1 to"),
        (lambda s: s.rect(0, 0, 1, 1, id=True), "id must be"),
        (lambda s: s.rect(0, 0, 1, 1, depth=math.nan), "depth"),
    ],
)
def test_bad_arguments_get_a_clear_error(call, message: str) -> None:
    surface = Surface(100, 50)
    with pytest.raises(DrawError, match=message):
        call(surface)
    packet = surface.commit()
    assert "objects" not in packet and "transient" not in packet  # the failed call drew nothing


def test_drawing_an_id_twice_in_one_frame_is_an_error() -> None:
    surface = Surface(100, 50)
    surface.rect(0, 0, 1, 1, id=7)
    with pytest.raises(DrawError, match="'7' was drawn twice"):
        surface.circle(0, 0, 1, id="7")  # ints are compared as their decimal string


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, -1), (10.5, 10), (True, 10), (9000, 10)])
def test_bad_surface_size_is_rejected(width: object, height: object) -> None:
    with pytest.raises(DrawError, match="Surface (width|height) must be an int"):
        Surface(width, height)  # type: ignore[arg-type]


# --- commit cycle ----------------------------------------------------------------------------------------


def test_first_commit_is_full_then_diffs_with_increasing_seq() -> None:
    surface = Surface(640, 480, background="#101018")
    surface.rect(0, 0, 1, 1, id="a")
    first = surface.commit()
    assert first["full"] is True and first["seq"] == 1 and first["size"] == [640, 480] and first["bg"] == "#101018"
    surface.rect(0, 0, 1, 1, id="a")
    second = surface.commit()
    assert second == {"v": 1, "seq": 2, "full": False}
    assert surface.seq == 2


def test_commit_empties_the_surface_for_the_next_frame() -> None:
    surface = Surface(10, 10)
    surface.rect(0, 0, 1, 1, id="a")
    surface.circle(0, 0, 1)
    surface.commit()
    assert surface.commit() == {"v": 1, "seq": 2, "full": False, "remove": ["a"]}


def test_reset_makes_the_next_commit_full() -> None:
    surface = Surface(10, 10)
    surface.rect(0, 0, 1, 1, id="a")
    surface.commit()
    surface.reset()
    surface.rect(0, 0, 1, 1, id="a")
    packet = surface.commit()
    assert packet["full"] is True and packet["seq"] == 2
    assert packet["objects"] == [{"t": "rect", "id": "a", "x": 0, "y": 0, "w": 1, "h": 1}]


def test_snapshot_is_the_last_committed_frame_and_does_not_disturb_diffs() -> None:
    surface = Surface(10, 10)
    assert surface.snapshot() == {"v": 1, "seq": 0, "full": True, "size": [10, 10], "bg": "#000000"}
    surface.rect(0, 0, 1, 1, id="a")
    surface.circle(5, 5, 1)
    surface.commit()
    surface.rect(2, 0, 1, 1, id="a")
    surface.commit()
    surface.rect(2, 0, 1, 1, id="half-drawn")  # not committed: not in the snapshot
    snapshot = surface.snapshot()
    assert snapshot["seq"] == 2 and snapshot["full"] is True
    assert snapshot["objects"] == [{"t": "rect", "id": "a", "x": 2, "y": 0, "w": 1, "h": 1}]
    assert "transient" not in snapshot
    assert surface.commit() == {
        "v": 1, "seq": 3, "full": False, "remove": ["a"],
        "objects": [{"t": "rect", "id": "half-drawn", "x": 2, "y": 0, "w": 1, "h": 1}],
    }


def test_background_is_settable_and_sent_when_changed() -> None:
    surface = Surface(10, 10, background="black")
    surface.commit()
    surface.background = "#fff"
    assert surface.background == "#ffffff"
    assert surface.commit()["bg"] == "#ffffff"
    assert "bg" not in surface.commit()
    with pytest.raises(ColorError):
        surface.background = "nope"


# --- assets ----------------------------------------------------------------------------------------------


@pytest.fixture
def asset_files(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / name for name in ("goal.png", "walk.png", "items.png", "tiles.JPG")}
    for path in files.values():
        path.write_bytes(b"not decoded by the registry")
    atlas = tmp_path / "items.json"
    atlas.write_text(json.dumps({"frames": {"key": {"frame": {"x": 0, "y": 0, "w": 8, "h": 8}}, "coin": {}}}))
    files["items.json"] = atlas
    return files


@pytest.fixture
def registry(asset_files: dict[str, Path]) -> AssetRegistry:
    registry = AssetRegistry()
    registry.add_image("goal", asset_files["goal.png"])
    registry.add_spritesheet("walk", asset_files["walk.png"], frame_width=16, frame_height=24)
    registry.add_atlas("items", asset_files["items.png"], asset_files["items.json"])
    return registry


def test_manifest_names_urls_and_frame_data(registry: AssetRegistry) -> None:
    assert registry.manifest("/assets/exp/") == {
        "goal": {"kind": "image", "url": "/assets/exp/goal.png"},
        "walk": {"kind": "spritesheet", "url": "/assets/exp/walk.png", "frame_width": 16, "frame_height": 24},
        "items": {
            "kind": "atlas", "url": "/assets/exp/items.png", "atlas_url": "/assets/exp/items.atlas.json",
            "frames": ["key", "coin"],
        },
    }
    assert registry.names() == ["goal", "walk", "items"] and "walk" in registry and len(registry) == 3


def test_served_names_resolve_to_registered_files_only(registry: AssetRegistry, asset_files) -> None:
    assert registry.resolve("goal.png") == asset_files["goal.png"]
    assert registry.resolve("items.atlas.json") == asset_files["items.json"]
    assert registry.resolve("../items.json") is None
    assert registry.resolve("items.json") is None
    assert set(registry.files()) == {"goal.png", "walk.png", "items.png", "items.atlas.json"}


def test_json_array_atlas_format(tmp_path: Path, asset_files) -> None:
    atlas = tmp_path / "array.json"
    atlas.write_text(json.dumps({"frames": [{"filename": "a"}, {"filename": "b"}]}))
    registry = AssetRegistry()
    registry.add_atlas("arr", asset_files["goal.png"], atlas)
    assert registry.catalog() == {"arr": {"kind": "atlas", "frames": ["a", "b"]}}


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (lambda r, f: r.add_image("goal", f["goal.png"]), "already registered"),
        (lambda r, f: r.add_image("bad name", f["goal.png"]), "asset name 'bad name' is invalid"),
        (lambda r, f: r.add_image("../x", f["goal.png"]), "is invalid"),
        (lambda r, f: r.add_image("other", f["goal.png"].parent / "missing.png"), "does not exist"),
        (lambda r, f: r.add_image("other", f["items.json"]), "must end in one of"),
        (lambda r, f: r.add_spritesheet("s", f["walk.png"], 0, 16), "frame_width must be a positive int"),
        (lambda r, f: r.add_spritesheet("s", f["walk.png"], 16, 2.5), "frame_height must be a positive int"),
        (lambda r, f: r.add_atlas("a", f["items.png"], f["goal.png"]), "not valid JSON"),
        (lambda r, f: r.add_atlas("a", f["items.png"], f["goal.png"].parent / "none.json"), "does not exist"),
    ],
)
def test_bad_registrations_fail_fast(registry: AssetRegistry, asset_files, register, message: str) -> None:
    with pytest.raises(AssetError, match=message):
        register(registry, asset_files)


def test_atlas_without_frames_is_rejected(tmp_path: Path, asset_files) -> None:
    atlas = tmp_path / "empty.json"
    atlas.write_text('{"meta": {}}')
    with pytest.raises(AssetError, match="has no frames"):
        AssetRegistry().add_atlas("e", asset_files["goal.png"], atlas)


def test_uppercase_suffix_is_served_lower_case(asset_files) -> None:
    registry = AssetRegistry()
    registry.add_image("tiles", asset_files["tiles.JPG"])
    assert registry.manifest("")["tiles"]["url"] == "/tiles.jpg"
    assert registry.resolve("tiles.jpg") == asset_files["tiles.JPG"]


@pytest.mark.parametrize("use_manifest", [False, True])
def test_surface_checks_image_references_against_the_assets(registry: AssetRegistry, use_manifest: bool) -> None:
    surface = Surface(100, 100, assets=registry.manifest("/a") if use_manifest else registry)
    surface.image("goal", 0, 0)
    surface.image("walk", 0, 0, frame=3)
    surface.image("items", 0, 0, frame="coin")
    assert len(surface.commit()["transient"]) == 3
    for call, message in [
        (lambda: surface.image("ghost", 0, 0), r"'ghost' is not a registered asset \(known: goal, items, walk\)"),
        (lambda: surface.image("goal", 0, 0, frame=1), "single image; do not pass frame"),
        (lambda: surface.image("walk", 0, 0, frame="x"), "frame must be an index"),
        (lambda: surface.image("walk", 0, 0, frame=-1), "frame must be an index"),
        (lambda: surface.image("items", 0, 0, frame="gem"), "no frame 'gem'"),
    ]:
        with pytest.raises(AssetError, match=message):
            call()


# --- Pyodide ---------------------------------------------------------------------------------------------

PYODIDE_SCRIPT = r"""
import { readFileSync } from "node:fs";
import { loadPyodide } from "pyodide";
const { files, program } = JSON.parse(readFileSync(0, "utf8"));
const py = await loadPyodide();
py.FS.mkdirTree("/pkg/interactive_gym/rendering");
for (const [path, text] of Object.entries(files)) py.FS.writeFile(`/pkg/${path}`, text);
py.runPython("import sys; sys.path.insert(0, '/pkg')");
console.log(py.runPython(program));
"""

SHARED_PROGRAM = """
import json, sys
from interactive_gym.rendering import Surface
surface = Surface(64, 48, background="#123")
packets = []
for step in range(5):
    surface.rect(step * 1.5, 2, 10, 10, color="#f80", id="agent")
    surface.text(32, 2, f"step {step}", align="center", id="label")
    if step % 2:
        surface.circle(5, 5, 2.25)
    packets.append(surface.commit())
packets.append(surface.snapshot())
json.dumps({"platform": sys.platform, "packets": packets})
"""


def test_surface_runs_in_pyodide_and_makes_the_same_packets() -> None:
    """Browser and p2p modes run the Surface inside Pyodide: standard library only, identical output."""
    root = Path(__file__).resolve().parents[2]
    node = shutil.which("node")
    assert node, "node (20+) must be on PATH"
    rendering = root / "interactive_gym" / "rendering"
    # The parent package's own __init__ may import server code; only the rendering package must be stdlib-only.
    files = {"interactive_gym/__init__.py": ""}
    files.update({f"interactive_gym/rendering/{p.name}": p.read_text() for p in rendering.glob("*.py")})
    completed = subprocess.run(
        [node, "--input-type=module", "-e", PYODIDE_SCRIPT],
        input=json.dumps({"files": files, "program": SHARED_PROGRAM}),
        capture_output=True, text=True, timeout=120, check=False, cwd=root,
    )
    assert completed.returncode == 0, completed.stderr
    in_pyodide = json.loads(completed.stdout.strip().splitlines()[-1])
    namespace: dict = {}
    exec(SHARED_PROGRAM.replace("json.dumps(", "result = json.dumps("), namespace)
    in_cpython = json.loads(namespace["result"])
    assert in_pyodide["platform"] == "emscripten"  # really ran inside Pyodide
    assert in_pyodide["packets"] == in_cpython["packets"]
