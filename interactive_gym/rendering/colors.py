"""Colour strings accepted by the Surface, normalised to one canonical form.

Render packets carry colours as lower-case ``"#rrggbb"`` (opaque) or ``"#rrggbbaa"`` (with alpha), so the
diffing in :mod:`interactive_gym.rendering.packets` sees ``"#F00"`` and ``"red"`` as the same colour and the
JavaScript side needs only one parser.
"""

from __future__ import annotations

# A deliberately short list: enough for quick sketches, and every name means the same thing as in CSS.
NAMED_COLORS: dict[str, str] = {
    "black": "#000000",
    "white": "#ffffff",
    "red": "#ff0000",
    "green": "#008000",
    "lime": "#00ff00",
    "blue": "#0000ff",
    "yellow": "#ffff00",
    "cyan": "#00ffff",
    "magenta": "#ff00ff",
    "orange": "#ffa500",
    "purple": "#800080",
    "gray": "#808080",
    "grey": "#808080",
    "transparent": "#00000000",
}

_HEX_DIGITS = frozenset("0123456789abcdef")


class ColorError(ValueError):
    """A colour argument is not one of the accepted forms."""


def normalize_color(value: object, what: str = "color") -> str:
    """Returns ``value`` as ``"#rrggbb"`` or ``"#rrggbbaa"`` (lower case).

    Accepted forms: ``"#rgb"``, ``"#rgba"``, ``"#rrggbb"``, ``"#rrggbbaa"`` (hex digits in either case) and the
    names in :data:`NAMED_COLORS`. Fully opaque alpha (``ff``) is dropped so equal colours compare equal.

    Args:
        value: The colour given by the caller.
        what: The argument's name, used in the error message.

    Raises:
        ColorError: if ``value`` is not a string in one of the accepted forms.
    """
    if not isinstance(value, str):
        raise ColorError(f"{what} must be a colour string such as '#ff8800', got {type(value).__name__}")
    text = value.strip().lower()
    if text in NAMED_COLORS:
        return NAMED_COLORS[text]
    digits = text[1:]
    if not text.startswith("#") or len(digits) not in (3, 4, 6, 8) or not set(digits) <= _HEX_DIGITS:
        raise ColorError(
            f"{what} {value!r} is not a colour: use '#rgb', '#rrggbb', '#rrggbbaa' or one of "
            + ", ".join(sorted(NAMED_COLORS))
        )
    if len(digits) in (3, 4):
        digits = "".join(ch * 2 for ch in digits)
    if len(digits) == 8 and digits.endswith("ff"):
        digits = digits[:6]
    return "#" + digits

