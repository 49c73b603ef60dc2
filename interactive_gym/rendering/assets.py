"""Images and sprite sheets the renderer can draw, registered by name on the server.

Render packets name assets only; the files stay on the server, which serves them at URLs built from a prefix
it chooses. No file path ever comes from a client: :meth:`AssetRegistry.resolve` maps a served file name back
to a registered path and knows nothing else.

Three kinds:

* ``image``: one picture, drawn whole.
* ``spritesheet``: a grid of equal frames, ``frame`` is the 0-based index (left to right, top to bottom).
* ``atlas``: a picture plus a JSON atlas (Phaser/TexturePacker "JSON hash" or "JSON array" format) naming
  frames of any size; ``frame`` is the frame's name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg")
_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class AssetError(ValueError):
    """An asset registration or an image reference is invalid."""


@dataclass(frozen=True)
class _Asset:
    kind: str
    image: Path
    atlas: Path | None = None
    frame_width: int | None = None
    frame_height: int | None = None
    frames: tuple[str, ...] = ()


class AssetRegistry:
    """Named images, sprite sheets and atlases of one experiment.

    Example:
        >>> registry = AssetRegistry()
        >>> registry.add_image("goal", "assets/goal.png")               # doctest: +SKIP
        >>> registry.manifest("/assets")["goal"]                        # doctest: +SKIP
        {'kind': 'image', 'url': '/assets/goal.png'}
    """

    def __init__(self) -> None:
        self._assets: dict[str, _Asset] = {}

    def add_image(self, name: str, path: str | Path) -> None:
        """Registers a single image under ``name``.

        Raises:
            AssetError: if the name is taken or malformed, or the file is missing or not an image type.
        """
        self._add(name, _Asset("image", self._image_file(name, path)))

    def add_spritesheet(self, name: str, path: str | Path, frame_width: int, frame_height: int) -> None:
        """Registers a grid of ``frame_width`` x ``frame_height`` pixel frames under ``name``.

        Raises:
            AssetError: as :meth:`add_image`, or if a frame size is not a positive int.
        """
        for label, value in (("frame_width", frame_width), ("frame_height", frame_height)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise AssetError(f"asset {name!r}: {label} must be a positive int, got {value!r}")
        image = self._image_file(name, path)
        self._add(name, _Asset("spritesheet", image, frame_width=frame_width, frame_height=frame_height))

    def add_atlas(self, name: str, image_path: str | Path, atlas_path: str | Path) -> None:
        """Registers an image with a JSON atlas describing its named frames.

        Raises:
            AssetError: as :meth:`add_image`, or if the atlas is not valid JSON with a non-empty ``frames``.
        """
        image = self._image_file(name, image_path)
        atlas = Path(atlas_path)
        if not atlas.is_file():
            raise AssetError(f"asset {name!r}: atlas file {str(atlas)!r} does not exist")
        try:
            data = json.loads(atlas.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise AssetError(f"asset {name!r}: atlas {str(atlas)!r} is not valid JSON ({error})") from error
        frames = atlas_frame_names(data)
        if not frames:
            raise AssetError(f"asset {name!r}: atlas {str(atlas)!r} has no frames (expected a 'frames' hash or list)")
        self._add(name, _Asset("atlas", image, atlas=atlas, frames=tuple(frames)))

    def __contains__(self, name: object) -> bool:
        return name in self._assets

    def __len__(self) -> int:
        return len(self._assets)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._assets)

    def catalog(self) -> dict[str, dict[str, Any]]:
        """What a Surface needs to check image references: ``{name: {"kind": ..., "frames": [...]}}``.

        The manifest has the same keys, so a Surface in the browser can be given the manifest instead.
        """
        return {name: _catalog_entry(asset) for name, asset in self._assets.items()}

    def manifest(self, url_prefix: str) -> dict[str, dict[str, Any]]:
        """Returns what the JavaScript renderer loads: ``{name: {"kind", "url", ...}}``.

        Args:
            url_prefix: Where the server serves :meth:`files`, e.g. ``"/assets/my-experiment"``.
        """
        prefix = url_prefix.rstrip("/")
        result: dict[str, dict[str, Any]] = {}
        for name, asset in self._assets.items():
            entry: dict[str, Any] = {"kind": asset.kind, "url": f"{prefix}/{_served_image_name(name, asset)}"}
            if asset.kind == "spritesheet":
                entry["frame_width"] = asset.frame_width
                entry["frame_height"] = asset.frame_height
            if asset.kind == "atlas":
                entry["atlas_url"] = f"{prefix}/{name}.atlas.json"
                entry["frames"] = list(asset.frames)
            result[name] = entry
        return result

    def files(self) -> dict[str, Path]:
        """Served file name -> file on disk, for every registered file."""
        served: dict[str, Path] = {}
        for name, asset in self._assets.items():
            served[_served_image_name(name, asset)] = asset.image
            if asset.atlas is not None:
                served[f"{name}.atlas.json"] = asset.atlas
        return served

    def resolve(self, served_name: str) -> Path | None:
        """Returns the file behind a served name from :meth:`files`, or ``None`` if there is none."""
        return self.files().get(served_name)

    def _add(self, name: str, asset: _Asset) -> None:
        if name in self._assets:
            raise AssetError(f"asset name {name!r} is already registered")
        self._assets[name] = asset

    @staticmethod
    def _image_file(name: str, path: str | Path) -> Path:
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise AssetError(
                f"asset name {name!r} is invalid: start with a letter, then up to 63 letters, digits, '_' or '-'"
            )
        image = Path(path)
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            raise AssetError(f"asset {name!r}: {str(image)!r} must end in one of {', '.join(IMAGE_SUFFIXES)}")
        if not image.is_file():
            raise AssetError(f"asset {name!r}: file {str(image)!r} does not exist")
        return image


def atlas_frame_names(data: object) -> list[str]:
    """Frame names of a Phaser/TexturePacker atlas in JSON hash (``{"frames": {name: ...}}``) or JSON array
    (``{"frames": [{"filename": name, ...}]}``) form; an empty list if the shape is not recognised."""
    if not isinstance(data, dict):
        return []
    frames = data.get("frames")
    if isinstance(frames, dict):
        return [str(key) for key in frames]
    if isinstance(frames, list):
        return [str(item["filename"]) for item in frames if isinstance(item, dict) and "filename" in item]
    return []


def check_image_reference(catalog: Mapping[str, Mapping[str, Any]], name: str, frame: object) -> None:
    """Checks that ``name`` is a known asset and ``frame`` suits its kind.

    Args:
        catalog: :meth:`AssetRegistry.catalog` or :meth:`AssetRegistry.manifest` output.
        name: The asset name given to ``Surface.image``.
        frame: The frame given to ``Surface.image`` (``None``, an index or a frame name).

    Raises:
        AssetError: explaining what is wrong and what would be right.
    """
    entry = catalog.get(name)
    if entry is None:
        known = ", ".join(sorted(catalog)) or "none registered"
        raise AssetError(f"image {name!r} is not a registered asset (known: {known})")
    kind = entry.get("kind")
    if kind == "image" and frame is not None:
        raise AssetError(f"image {name!r} is a single image; do not pass frame (got {frame!r})")
    if kind == "spritesheet" and frame is not None and (
        isinstance(frame, bool) or not isinstance(frame, int) or frame < 0
    ):
        raise AssetError(f"image {name!r} is a sprite sheet: frame must be an index >= 0, got {frame!r}")
    if kind == "atlas" and frame is not None and frame not in entry.get("frames", ()):
        raise AssetError(f"image {name!r} is an atlas with no frame {frame!r}")


def _catalog_entry(asset: _Asset) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": asset.kind}
    if asset.kind == "atlas":
        entry["frames"] = list(asset.frames)
    return entry


def _served_image_name(name: str, asset: _Asset) -> str:
    return f"{name}{asset.image.suffix.lower()}"
