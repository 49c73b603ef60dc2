"""The drawing API researchers use in ``render(env, surface)``: draw calls in, render packets out.

Pure Python, standard library only: the same file runs on the server (server mode) and inside Pyodide in the
participant's browser (browser and p2p modes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from interactive_gym.rendering import validation as check
from interactive_gym.rendering.assets import check_image_reference
from interactive_gym.rendering.colors import normalize_color
from interactive_gym.rendering.packets import Frame, ObjectSpec, diff_packet, full_packet
from interactive_gym.rendering.validation import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    DrawError,
    number,
    object_id,
    positive_number,
)

TEXT_ALIGNS = ("left", "center", "right")
MAX_SURFACE_SIZE = 8192
# Render functions use a handful of colours over and over; remembering their canonical form is a measurable
# share of a frame's cost. The cache is per Surface and bounded.
COLOR_CACHE_LIMIT = 256
MAX_FONT_LENGTH = 100
MAX_IMAGE_NAME_LENGTH = 64
# Names used in the error messages of shapes with fill and stroke: shape, fill, stroke, stroke width.
_RECT_LABELS = ("rect", "rect color", "rect stroke", "rect stroke_width")
_CIRCLE_LABELS = ("circle", "circle color", "circle stroke", "circle stroke_width")
_POLYGON_LABELS = ("polygon", "polygon color", "polygon stroke", "polygon stroke_width")


class Surface:
    """A canvas of ``width`` x ``height`` pixels that turns draw calls into compact render packets.

    Write the render function like an ordinary draw loop: every frame, draw everything that should be on
    screen, then :meth:`commit`. Coordinates are pixels, origin top-left, y downwards; the browser scales the
    whole surface to fit its container, keeping the aspect ratio.

    Objects with an ``id`` are *persistent*: the client keeps them between frames, so a packet only carries
    the ones that are new or changed (moving a sprite sends just its new ``x``/``y``). A persistent object
    that is not drawn in a frame is removed, exactly as if the screen were cleared every frame. Objects
    without ``id`` are *transient*: sent in full in every frame that draws them. Give an ``id`` to anything
    drawn every frame (agents, walls, score text); leave it out for one-off effects.

    Stacking: higher ``depth`` is drawn on top. At equal depth later calls are on top, except that objects
    without ``id`` always sit above objects with ``id`` of the same depth. Use ``depth`` when it matters.

    Example:
        >>> surface = Surface(width=200, height=100, background="#101018")
        >>> surface.rect(10, 10, 20, 20, color="red", id="player")
        >>> packet = surface.commit()
        >>> packet["full"], packet["objects"][0]["id"]
        (True, 'player')
    """

    def __init__(
        self,
        width: int,
        height: int,
        background: str = "#000000",
        assets: Mapping[str, Mapping[str, Any]] | Any | None = None,
    ) -> None:
        """Creates an empty surface.

        Args:
            width: Width in pixels (int, 1 to 8192).
            height: Height in pixels (int, 1 to 8192).
            background: Background colour ("#rgb", "#rrggbb", "#rrggbbaa" or a basic name).
            assets: Optional catalog used to check :meth:`image` calls early: an
                :class:`~interactive_gym.rendering.assets.AssetRegistry`, or its ``catalog()``/``manifest()``
                output. Without it, image names are checked by the browser only.

        Raises:
            ValueError: if the size or background is invalid.
        """
        for label, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SURFACE_SIZE:
                raise DrawError(f"Surface {label} must be an int from 1 to {MAX_SURFACE_SIZE}, got {value!r}")
        self._width = width
        self._height = height
        # An AssetRegistry is read once, here: assets registered later are unknown to this Surface.
        catalog = getattr(assets, "catalog", None)
        self._catalog: Mapping[str, Mapping[str, Any]] | None = catalog() if callable(catalog) else assets
        self._drawing = Frame(background=normalize_color(background, "background"))
        self._committed = Frame(background=self._drawing.background)
        self._seq = 0
        self._client_in_sync = False
        self._colors: dict[str, str] = {}

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self._width

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self._height

    @property
    def seq(self) -> int:
        """Number of the last committed frame (0 before the first commit)."""
        return self._seq

    @property
    def background(self) -> str:
        """Background colour of the frame being drawn, as "#rrggbb"/"#rrggbbaa". Assigning changes it."""
        return self._drawing.background

    @background.setter
    def background(self, value: str) -> None:
        self._drawing.background = normalize_color(value, "background")

    # Every draw call below validates its arguments in the same order, with the same messages, as the general
    # checks in validation.py, but lets the common cases through without a function call: a plain int, a
    # colour string already seen (cached per surface), a str id. Anything else takes the full check. The spec
    # is built as one dict literal whose key order is make_spec's (type, id, required fields, defaults), so
    # packets are byte-for-byte those of the general path (tests/unit/test_surface_fast_path.py compares them).

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        color: str | None = "#ffffff",
        id: str | int | None = None,  # shadows the builtin on purpose: the name researchers expect
        depth: float = 0,
        stroke: str | None = None,
        stroke_width: float = 1,
    ) -> None:
        """Draws a rectangle with top-left corner (``x``, ``y``).

        Args:
            x: Left edge in pixels.
            y: Top edge in pixels.
            w: Width (> 0).
            h: Height (> 0).
            color: Fill colour, or ``None`` for no fill.
            id: Makes the object persistent (see the class docstring).
            depth: Stacking depth; higher is on top.
            stroke: Outline colour, or ``None`` for no outline.
            stroke_width: Outline width in pixels (used only with ``stroke``).
        """
        if type(x) is not int:
            x = number(x, "rect x")
        if type(y) is not int:
            y = number(y, "rect y")
        if type(w) is not int or w <= 0:
            w = positive_number(w, "rect w")
        if type(h) is not int or h <= 0:
            h = positive_number(h, "rect h")
        fill, outline, stroke_width = self._paint(color, stroke, stroke_width, _RECT_LABELS)
        if type(depth) is not int:
            depth = number(depth, "depth")
        key = id if type(id) is str and 0 < len(id) <= MAX_ID_LENGTH else object_id(id)
        self._store(key, {"t": "rect", "id": key, "x": x, "y": y, "w": w, "h": h, "d": depth, "c": fill,
                          "s": outline, "sw": stroke_width})

    def circle(
        self,
        x: float,
        y: float,
        radius: float,
        color: str | None = "#ffffff",
        id: str | int | None = None,
        depth: float = 0,
        stroke: str | None = None,
        stroke_width: float = 1,
    ) -> None:
        """Draws a circle centred on (``x``, ``y``) with ``radius`` > 0. Other arguments as :meth:`rect`."""
        if type(x) is not int:
            x = number(x, "circle x")
        if type(y) is not int:
            y = number(y, "circle y")
        if type(radius) is not int or radius <= 0:
            radius = positive_number(radius, "circle radius")
        fill, outline, stroke_width = self._paint(color, stroke, stroke_width, _CIRCLE_LABELS)
        if type(depth) is not int:
            depth = number(depth, "depth")
        key = id if type(id) is str and 0 < len(id) <= MAX_ID_LENGTH else object_id(id)
        self._store(key, {"t": "circle", "id": key, "x": x, "y": y, "r": radius, "d": depth, "c": fill,
                          "s": outline, "sw": stroke_width})

    def line(
        self,
        points: Iterable[tuple[float, float]],
        color: str = "#ffffff",
        width: float = 2,
        id: str | int | None = None,
        depth: float = 0,
    ) -> None:
        """Draws an open polyline through ``points`` (at least two (x, y) pairs), ``width`` pixels wide."""
        flat = check.flat_points(points, "line points", minimum=2)
        canonical = self._colors.get(color) if type(color) is str else None
        if canonical is None:
            canonical = self._color(color, "line color")
        if type(width) is not int or width <= 0:
            width = positive_number(width, "line width")
        if type(depth) is not int:
            depth = number(depth, "depth")
        key = id if type(id) is str and 0 < len(id) <= MAX_ID_LENGTH else object_id(id)
        self._store(key, {"t": "line", "id": key, "p": flat, "d": depth, "c": canonical, "lw": width})

    def polygon(
        self,
        points: Iterable[tuple[float, float]],
        color: str | None = "#ffffff",
        id: str | int | None = None,
        depth: float = 0,
        stroke: str | None = None,
        stroke_width: float = 1,
    ) -> None:
        """Draws a closed polygon through ``points`` (at least three (x, y) pairs). Other arguments as :meth:`rect`."""
        flat = check.flat_points(points, "polygon points", minimum=3)
        fill, outline, stroke_width = self._paint(color, stroke, stroke_width, _POLYGON_LABELS)
        if type(depth) is not int:
            depth = number(depth, "depth")
        key = id if type(id) is str and 0 < len(id) <= MAX_ID_LENGTH else object_id(id)
        self._store(key, {"t": "polygon", "id": key, "p": flat, "d": depth, "c": fill, "s": outline,
                          "sw": stroke_width})

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float = 16,
        color: str = "#ffffff",
        align: str = "left",
        id: str | int | None = None,
        depth: float = 0,
        font: str = "sans-serif",
    ) -> None:
        """Writes ``text`` (newlines allowed) with its top edge at ``y``.

        Args:
            x: Where the text is anchored horizontally: its left edge, centre or right edge per ``align``.
            y: Top edge in pixels.
            text: The string to show; convert numbers yourself, e.g. ``f"Score: {score}"``.
            size: Font size in pixels (> 0).
            color: Text colour.
            align: ``"left"``, ``"center"`` or ``"right"``.
            id: Makes the object persistent.
            depth: Stacking depth.
            font: CSS font family, e.g. ``"monospace"``.
        """
        if type(x) is not int:
            x = number(x, "text x")
        if type(y) is not int:
            y = number(y, "text y")
        if type(text) is not str or len(text) > MAX_TEXT_LENGTH:
            text = check.text_value(text, "text")
        if type(size) is not int or size <= 0:
            size = positive_number(size, "text size")
        canonical = self._colors.get(color) if type(color) is str else None
        if canonical is None:
            canonical = self._color(color, "text color")
        if type(align) is not str or align not in TEXT_ALIGNS:
            align = check.choice(align, "text align", TEXT_ALIGNS)
        if type(font) is not str or len(font) > MAX_FONT_LENGTH:
            font = check.text_value(font, "text font", max_length=MAX_FONT_LENGTH)
        if type(depth) is not int:
            depth = number(depth, "depth")
        key = id if type(id) is str and 0 < len(id) <= MAX_ID_LENGTH else object_id(id)
        self._store(key, {"t": "text", "id": key, "x": x, "y": y, "text": text, "d": depth, "c": canonical,
                          "size": size, "align": align, "font": font})

    def image(
        self,
        name: str,
        x: float,
        y: float,
        w: float | None = None,
        h: float | None = None,
        frame: int | str | None = None,
        angle: float = 0,
        id: str | int | None = None,
        depth: float = 0,
    ) -> None:
        """Draws a registered image (or one frame of a sprite sheet or atlas) with top-left corner (``x``, ``y``).

        Args:
            name: Asset name, as registered in the experiment's
                :class:`~interactive_gym.rendering.assets.AssetRegistry`.
            x: Left edge of the unrotated image in pixels.
            y: Top edge of the unrotated image in pixels.
            w: Display width; ``None`` keeps the natural width, or the aspect ratio if ``h`` is given.
            h: Display height; ``None`` keeps the natural height, or the aspect ratio if ``w`` is given.
            frame: Sprite-sheet frame index, or atlas frame name; ``None`` for a plain image.
            angle: Clockwise rotation in degrees about the image's centre.
            id: Makes the object persistent.
            depth: Stacking depth.
        """
        if type(name) is not str or len(name) > MAX_IMAGE_NAME_LENGTH:
            check.text_value(name, "image name", max_length=MAX_IMAGE_NAME_LENGTH)
        if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int | str)):
            raise DrawError(f"image frame must be an int index or a str name, got {frame!r}")
        if self._catalog is not None:
            check_image_reference(self._catalog, name, frame)
        if type(x) is not int:
            x = number(x, "image x")
        if type(y) is not int:
            y = number(y, "image y")
        if w is not None and (type(w) is not int or w <= 0):
            w = positive_number(w, "image w")
        if h is not None and (type(h) is not int or h <= 0):
            h = positive_number(h, "image h")
        if type(angle) is not int:
            angle = number(angle, "image angle")
        if type(depth) is not int:
            depth = number(depth, "depth")
        key = id if type(id) is str and 0 < len(id) <= MAX_ID_LENGTH else object_id(id)
        self._store(key, {"t": "image", "id": key, "name": name, "x": x, "y": y, "d": depth, "w": w, "h": h,
                          "frame": frame, "angle": angle})

    def commit(self) -> dict[str, Any]:
        """Ends the frame and returns its render packet (a JSON-serialisable dict).

        The packet is a diff against the previous commit, or a full snapshot on the first commit and after
        :meth:`reset`. The surface is then empty, ready for the next frame's draw calls.
        """
        self._seq += 1
        frame = self._drawing
        if self._client_in_sync:
            packet = diff_packet(self._committed, frame, self._seq)
        else:
            packet = full_packet(frame, self._seq, self._width, self._height)
            self._client_in_sync = True
        self._committed = frame
        self._drawing = Frame(background=frame.background)
        return packet

    def snapshot(self) -> dict[str, Any]:
        """Returns a full packet of the last committed frame, without changing what :meth:`commit` sends next.

        Use it for a client that joins or reconnects while others keep receiving diffs: the diffs that follow
        apply on top of this snapshot.
        """
        return full_packet(self._committed, self._seq, self._width, self._height)

    def reset(self) -> None:
        """Makes the next :meth:`commit` a full snapshot (e.g. at a new episode, or when clients were lost)."""
        self._client_in_sync = False

    def _paint(
        self, color: object, stroke: object, stroke_width: Any, labels: tuple[str, str, str, str]
    ) -> tuple[str | None, str | None, int | float]:
        """Checks fill, outline and outline width; ``labels`` name the shape and its three arguments in errors."""
        colors = self._colors
        fill = None
        if color is not None:
            fill = colors.get(color) if type(color) is str else None
            if fill is None:
                fill = self._color(color, labels[1])
        outline = None
        if stroke is not None:
            outline = colors.get(stroke) if type(stroke) is str else None
            if outline is None:
                outline = self._color(stroke, labels[2])
        if fill is None and outline is None:
            raise DrawError(f"{labels[0]} has neither a fill color nor a stroke: it would be invisible")
        if type(stroke_width) is not int or stroke_width <= 0:
            stroke_width = positive_number(stroke_width, labels[3])
        return fill, outline, stroke_width

    def _color(self, value: object, what: str) -> str:
        if isinstance(value, str):
            known = self._colors.get(value)
            if known is not None:
                return known
        canonical = normalize_color(value, what)
        if len(self._colors) >= COLOR_CACHE_LIMIT:
            self._colors.clear()
        self._colors[value] = canonical  # type: ignore[index]  # value is a str: normalize_color checked
        return canonical

    def _store(self, key: str | None, spec: ObjectSpec) -> None:
        """Adds a checked spec (built with an ``"id"`` entry) to the frame being drawn."""
        if key is None:
            del spec["id"]  # transient: no id; deleting keeps the order of the other keys
            self._drawing.transient.append(spec)
            return
        persistent = self._drawing.persistent
        if key in persistent:
            raise DrawError(f"id {key!r} was drawn twice in one frame; ids must be unique within a frame")
        persistent[key] = spec
