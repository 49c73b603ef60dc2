"""Drawing for every mode: the :class:`Surface` draw API, its render packets and the asset registry.

Standard library only, so the same code runs on the server and inside Pyodide.
"""

from interactive_gym.rendering.assets import AssetError, AssetRegistry
from interactive_gym.rendering.colors import ColorError, normalize_color
from interactive_gym.rendering.packets import DEFAULTS, PACKET_VERSION
from interactive_gym.rendering.surface import Surface
from interactive_gym.rendering.validation import DrawError

__all__ = [
    "DEFAULTS",
    "PACKET_VERSION",
    "AssetError",
    "AssetRegistry",
    "ColorError",
    "DrawError",
    "Surface",
    "normalize_color",
]
