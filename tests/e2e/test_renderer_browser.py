"""The Phaser renderer in real Chromium draws what the Python Surface describes, and keyboard capture sees real
key presses. Pixels are read back from the canvas (its size is the surface's size, whatever the CSS scaling)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from interactive_gym.rendering import AssetRegistry, Surface
from interactive_gym.server.static_files import static_mounts

PAGES_DIR = Path(__file__).parent / "pages"
BACKGROUND = (16, 16, 24, 255)
RED, GREEN, BLUE = (255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255)

pytestmark = pytest.mark.e2e


def png_bytes(width: int, height: int, pixel) -> bytes:
    """Encodes an RGBA PNG whose pixel (x, y) is ``pixel(x, y)``; just enough of the format for test images."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def registry(tmp_path: Path) -> AssetRegistry:
    """A red 4x4 image, a 2-frame sprite sheet (frame 0 green, frame 1 blue), and an atlas with the same two."""
    (tmp_path / "block.png").write_bytes(png_bytes(4, 4, lambda x, y: RED))
    (tmp_path / "sheet.png").write_bytes(png_bytes(16, 8, lambda x, y: GREEN if x < 8 else BLUE))
    (tmp_path / "sheet.json").write_text(json.dumps({"frames": {
        "go": {"frame": {"x": 0, "y": 0, "w": 8, "h": 8}, "sourceSize": {"w": 8, "h": 8},
               "spriteSourceSize": {"x": 0, "y": 0, "w": 8, "h": 8}, "rotated": False, "trimmed": False},
        "stop": {"frame": {"x": 8, "y": 0, "w": 8, "h": 8}, "sourceSize": {"w": 8, "h": 8},
                 "spriteSourceSize": {"x": 0, "y": 0, "w": 8, "h": 8}, "rotated": False, "trimmed": False},
    }}))
    registry = AssetRegistry()
    registry.add_image("block", tmp_path / "block.png")
    registry.add_spritesheet("walk", tmp_path / "sheet.png", frame_width=8, frame_height=8)
    registry.add_atlas("lights", tmp_path / "sheet.png", tmp_path / "sheet.json")
    return registry


@pytest.fixture
def page(live_server, new_context, registry: AssetRegistry):
    """The renderer harness page, served with the registry's files at /assets (as the real server does)."""

    async def asset(request: Request) -> Response:
        path = registry.resolve(request.path_params["name"])
        return FileResponse(path) if path else PlainTextResponse("not found", status_code=404)

    app = Starlette(routes=[
        Route("/assets/{name}", asset),
        *static_mounts(),
        Mount("/test-pages", app=StaticFiles(directory=PAGES_DIR)),
    ])
    server = live_server(app)
    page = new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/test-pages/render_harness.html")
    page.wait_for_function("window.harnessLoaded === true", timeout=30_000)
    yield page
    assert errors == []


def start(page, surface: Surface, manifest: dict[str, Any] | None = None) -> None:
    options = {"width": surface.width, "height": surface.height, "background": surface.background,
               "assets": manifest or {}}
    assert page.evaluate("options => harness.start(options)", options) is True


def draw(page, packet: dict[str, Any]) -> dict[str, Any]:
    return page.evaluate("packet => harness.draw(packet)", json.loads(json.dumps(packet)))


def pixels(page, *points: tuple[int, int]) -> list[tuple[int, ...]]:
    return [tuple(p) for p in page.evaluate("points => harness.pixels(points)", [list(p) for p in points])]


def test_shapes_are_drawn_at_their_surface_coordinates(page) -> None:
    surface = Surface(200, 100, background="#101018")
    start(page, surface)
    surface.rect(10, 10, 40, 30, color="red", id="box")
    surface.rect(60, 10, 30, 30, color=None, stroke="#00ff00", stroke_width=4)
    surface.circle(120, 25, 15, color="blue")
    surface.line([(0, 90), (200, 90)], color="#ffff00", width=4)
    surface.polygon([(150, 50), (190, 50), (170, 80)], color="#ff00ff", id="tri")
    surface.rect(0, 50, 20, 20, color="#ffffff80")  # half-transparent white over the background
    stats = draw(page, surface.commit())
    assert stats["objects"] == 6
    box_inside, box_outside, ring, ring_hole, disc, line, tri, half = pixels(
        page, (30, 25), (55, 25), (61, 25), (75, 25), (120, 25), (100, 90), (170, 60), (10, 60))
    assert box_inside == RED and box_outside == BACKGROUND
    assert ring == GREEN and ring_hole == BACKGROUND
    assert disc == BLUE
    assert line == (255, 255, 0, 255)
    assert tri == (255, 0, 255, 255)
    assert 130 <= half[0] <= 140 and 130 <= half[2] <= 141  # 16 + (255 - 16) / 2, rounding aside


def test_text_appears_where_anchored(page) -> None:
    surface = Surface(200, 100, background="#000000")
    start(page, surface)
    surface.text(100, 20, "WWWW", size=30, color="#ffff00", align="center", id="title")
    draw(page, surface.commit())
    region = page.evaluate("() => { const c = harness.renderer.canvas.getContext('2d');"
                           " return Array.from(c.getImageData(0, 0, 200, 100).data); }")
    yellow_columns = {
        (index // 4) % 200 for index in range(0, len(region), 4)
        if region[index] > 200 and region[index + 1] > 200 and region[index + 2] < 60
    }
    yellow_rows = {(index // 4) // 200 for index in range(0, len(region), 4)
                   if region[index] > 200 and region[index + 1] > 200 and region[index + 2] < 60}
    assert yellow_columns, "no text pixels at all"
    # Centred on x = 100, top at y = 20, 30 px font.
    assert abs((min(yellow_columns) + max(yellow_columns)) / 2 - 100) <= 3
    assert 20 <= min(yellow_rows) <= 30 and max(yellow_rows) <= 55


def test_moved_object_follows_and_removed_object_disappears(page) -> None:
    surface = Surface(200, 100, background="#101018")
    start(page, surface)
    surface.rect(10, 10, 20, 20, color="red", id="mover")
    surface.rect(100, 10, 20, 20, color="blue", id="doomed")
    surface.circle(50, 80, 5, color="lime")  # transient
    draw(page, surface.commit())
    assert pixels(page, (20, 20), (110, 20), (50, 80)) == [RED, BLUE, GREEN]

    surface.rect(150, 60, 20, 20, color="red", id="mover")
    packet = surface.commit()
    assert packet["objects"] == [{"id": "mover", "x": 150, "y": 60}] and packet["remove"] == ["doomed"]
    stats = draw(page, packet)
    assert stats["objects"] == 1
    old_place, new_place, removed, transient_gone = pixels(page, (20, 20), (160, 70), (110, 20), (50, 80))
    assert old_place == BACKGROUND and new_place == RED
    assert removed == BACKGROUND and transient_gone == BACKGROUND


def test_stacking_follows_depth_then_draw_order(page) -> None:
    surface = Surface(100, 100, background="#101018")
    start(page, surface)
    surface.rect(0, 0, 50, 50, color="red", id="over", depth=1)
    surface.rect(0, 0, 50, 50, color="blue", id="under")
    surface.rect(60, 0, 30, 30, color="red", id="first")
    draw(page, surface.commit())
    assert pixels(page, (25, 25), (75, 15)) == [RED, RED]

    # A new persistent object drawn before "first" must end up below it: the packet carries an order.
    surface.rect(0, 0, 50, 50, color="red", id="over", depth=1)
    surface.rect(0, 0, 50, 50, color="blue", id="under")
    surface.rect(55, 0, 40, 40, color="lime", id="new-below")
    surface.rect(60, 0, 30, 30, color="red", id="first")
    packet = surface.commit()
    assert "order" in packet
    draw(page, packet)
    assert pixels(page, (75, 15), (57, 35)) == [RED, GREEN]

    # Lowering a depth restacks.
    surface.rect(0, 0, 50, 50, color="red", id="over", depth=-1)
    surface.rect(0, 0, 50, 50, color="blue", id="under")
    draw(page, surface.commit())
    assert pixels(page, (25, 25)) == [BLUE]


def test_images_sprite_frames_and_atlas_frames(page, registry: AssetRegistry) -> None:
    surface = Surface(120, 60, background="#101018", assets=registry)
    start(page, surface, registry.manifest("/assets"))
    surface.image("block", 0, 0, w=20, h=20, id="block")
    surface.image("walk", 30, 0, w=20, frame=1, id="walking")  # aspect kept: 20 x 20
    surface.image("lights", 60, 0, frame="go")  # natural size 8 x 8
    surface.image("walk", 80, 30, w=30, h=10, angle=90, frame=0)  # rotated about its centre: 10 wide, 30 tall
    draw(page, surface.commit())
    block, block_edge, walking, walking_below, light, light_outside, rotated_mid, rotated_side = pixels(
        page, (10, 10), (22, 10), (40, 15), (40, 22), (64, 4), (64, 10), (95, 35), (83, 35))
    assert block == RED and block_edge == BACKGROUND
    assert walking == BLUE and walking_below == BACKGROUND
    assert light == GREEN and light_outside == BACKGROUND
    assert rotated_mid == GREEN and rotated_side == BACKGROUND
    assert pixels(page, (95, 22))[0] == GREEN  # 30 px tall after rotation: from y = 20 to 50

    surface.image("block", 0, 0, w=20, h=20, id="block")
    surface.image("walk", 30, 0, w=20, frame=0, id="walking")  # frame change only
    packet = surface.commit()
    assert packet["objects"] == [{"id": "walking", "frame": 0}]
    draw(page, packet)
    assert pixels(page, (40, 15)) == [GREEN]


def test_full_snapshot_and_background_change(page) -> None:
    surface = Surface(100, 50, background="#101018")
    start(page, surface)
    surface.rect(0, 0, 10, 10, color="red", id="a")
    draw(page, surface.commit())
    surface.background = "#0000ff"
    surface.rect(0, 0, 10, 10, color="red", id="a")
    draw(page, surface.commit())
    assert pixels(page, (50, 25), (5, 5)) == [BLUE, RED]
    # A snapshot replaces whatever the client shows.
    other = Surface(100, 50, background="#00ff00")
    other.circle(80, 25, 10, color="red")
    other.commit()
    draw(page, other.snapshot())
    assert pixels(page, (5, 5), (80, 25)) == [GREEN, RED]


def test_surface_scales_to_fit_its_container_keeping_aspect(page) -> None:
    surface = Surface(200, 100)
    start(page, surface)
    size = page.evaluate("harness.canvasSize()")
    # The harness container is 400 x 300 CSS pixels: a 2:1 surface fits as 400 x 200.
    assert (size["width"], size["height"]) == (200, 100)
    assert abs(size["cssWidth"] - 400) < 1 and abs(size["cssHeight"] - 200) < 1


def test_bad_and_out_of_sequence_packets_are_reported_not_drawn(page) -> None:
    surface = Surface(100, 50, background="#101018")
    start(page, surface)
    surface.rect(0, 0, 10, 10, color="red", id="a")
    draw(page, surface.commit())
    surface.rect(50, 0, 10, 10, color="red", id="a")
    surface.commit()  # lost on the way
    surface.rect(80, 0, 10, 10, color="red", id="a")
    error = page.evaluate("p => harness.drawError(p)", surface.commit())
    assert error["name"] == "PacketError" and error["code"] == "gap"
    error = page.evaluate("() => harness.drawError({v: 1, seq: 99, full: true, size: [1, 1], bg: 'nope'})")
    assert error["code"] == "invalid" and "colour" in error["message"]
    assert page.evaluate("() => harness.drawError({v: 1, seq: 1, full: false})") is not None
    draw(page, surface.snapshot())  # recovery: a snapshot always applies
    assert pixels(page, (5, 5), (85, 5)) == [BACKGROUND, RED]


def test_keyboard_capture_with_real_key_presses(page) -> None:
    page.evaluate("harness.listen(['ArrowLeft', 'ArrowRight', 'Space', 'w'])")
    keyboard = page.keyboard
    keyboard.down("ArrowLeft")
    keyboard.down("w")
    keyboard.down("Space")
    keyboard.down("q")  # not a game key
    assert page.evaluate("harness.keyboard.heldKeys()") == ["ArrowLeft", "w", "Space"]
    keyboard.up("ArrowLeft")
    keyboard.down("Shift")
    keyboard.up("w")  # reported as "W" with Shift held: must still release
    keyboard.up("Shift")
    assert page.evaluate("harness.keyboard.heldKeys()") == ["Space"]
    assert page.evaluate("harness.keyboard.sample()") == ["ArrowLeft", "w", "Space"]
    keyboard.press("ArrowRight")  # a tap between two ticks
    assert page.evaluate("harness.keyboard.heldKeys()") == ["Space"]
    assert page.evaluate("harness.keyboard.sample()") == ["Space", "ArrowRight"]
    assert page.evaluate("harness.keyboard.sample()") == ["Space"]
    page.evaluate("window.dispatchEvent(new Event('blur'))")
    assert page.evaluate("harness.keyboard.heldKeys()") == []
    keyboard.up("Space")
    keyboard.up("q")


def test_game_keys_do_not_scroll_the_page(page) -> None:
    page.evaluate("document.body.style.height = '5000px'; harness.listen(['ArrowDown', 'Space'])")
    page.evaluate("window.lastPrevented = null; window.addEventListener('keydown', e => {"
                  " window.lastPrevented = e.defaultPrevented; })")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("window.lastPrevented") is True
    page.keyboard.press("PageDown")
    assert page.evaluate("window.lastPrevented") is False
