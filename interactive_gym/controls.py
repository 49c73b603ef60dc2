"""Keyboard controls: which held keys mean which action.

A researcher writes ``{"ArrowLeft": 3, ("ArrowUp", "ArrowLeft"): 5}``: single keys and chords (tuples of
keys pressed together). The browser only reports which game keys are held, ordered by press time; this
module turns that list into one action. The same code decides in server mode (on the server), in browser
mode and in peer-to-peer mode (inside Pyodide), so a key means the same action everywhere. Pure Python.

Rules (what a participant expects from a game):
    * A chord whose keys are all held beats single keys; a larger chord beats a smaller one.
    * Otherwise the most recently pressed mapped key wins (pressing Right while holding Left turns right).
    * No mapped key held: the default (no-op) action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Names as the browser's KeyboardEvent.key gives them, after input.js normalises them.
_ALIASES = {" ": "Space", "Spacebar": "Space", "Esc": "Escape", "Left": "ArrowLeft", "Right": "ArrowRight",
            "Up": "ArrowUp", "Down": "ArrowDown"}
MAX_KEY_NAME = 32


class ControlsError(ValueError):
    """A key mapping the experiment cannot use; the message says what to change."""


def normalise_key(name: str) -> str:
    """Canonical key name: aliases resolved, single letters lower-case (Shift must not change the action)."""
    if not isinstance(name, str) or not name or len(name) > MAX_KEY_NAME:
        raise ControlsError(f"key names are non-empty strings of at most {MAX_KEY_NAME} characters, got {name!r}")
    name = _ALIASES.get(name, name)
    return name.lower() if len(name) == 1 else name


@dataclass(frozen=True)
class Binding:
    """Keys that together select ``action``."""

    keys: frozenset[str]
    action: Any


class KeyMapping:
    """Maps the set of held keys to an action.

    Args:
        bindings: The researcher's mapping, ``{key or (key, ...): action}``.
        default_action: The action when no mapped key is held (usually the no-op).
    """

    def __init__(self, bindings: Mapping[str | tuple[str, ...], Any], default_action: Any) -> None:
        if not bindings:
            raise ControlsError("the key mapping is empty: map at least one key to an action")
        parsed: list[Binding] = []
        seen: set[frozenset[str]] = set()
        for keys, action in bindings.items():
            key_tuple = (keys,) if isinstance(keys, str) else tuple(keys)
            if not key_tuple:
                raise ControlsError("an empty tuple of keys cannot be bound to an action")
            key_set = frozenset(normalise_key(k) for k in key_tuple)
            if key_set in seen:
                raise ControlsError(f"keys {sorted(key_set)} are bound twice")
            seen.add(key_set)
            parsed.append(Binding(key_set, action))
        # Larger chords first: they must win over their own sub-keys.
        self._chords = sorted((b for b in parsed if len(b.keys) > 1), key=lambda b: -len(b.keys))
        self._singles = {next(iter(b.keys)): b.action for b in parsed if len(b.keys) == 1}
        self.bindings = tuple(parsed)
        self.default_action = default_action

    @property
    def keys(self) -> list[str]:
        """Every key the game listens to, sorted (the browser captures only these)."""
        return sorted({k for b in self.bindings for k in b.keys})

    def actions(self) -> list[Any]:
        """Every action the mapping can produce, the default included."""
        return [b.action for b in self.bindings] + [self.default_action]

    def action_for(self, held_keys: Sequence[str]) -> Any:
        """The action for keys held now, ordered by press time (most recent last).

        Unknown keys are ignored; a key listed twice counts once at its latest position.
        """
        order = {k: i for i, k in enumerate(held_keys)}
        if not order:
            return self.default_action
        best: Binding | None = None
        best_rank = (-1, -1)
        for chord in self._chords:
            if chord.keys <= order.keys():
                rank = (len(chord.keys), max(order[k] for k in chord.keys))
                if rank > best_rank:
                    best, best_rank = chord, rank
        if best is not None:
            return best.action
        for key in reversed(held_keys):
            if key in self._singles:
                return self._singles[key]
        return self.default_action

    def validate_actions(self, contains: Any, where: str) -> None:
        """Checks every bound action (and the default) with ``contains(action) -> bool``.

        Raises:
            ControlsError: naming the first action outside the action space of ``where``.
        """
        for binding in self.bindings:
            if not contains(binding.action):
                raise ControlsError(
                    f"{where}: keys {sorted(binding.keys)} map to action {binding.action!r}, "
                    "which is outside the environment's action space"
                )
        if not contains(self.default_action):
            raise ControlsError(f"{where}: default_action {self.default_action!r} is outside the action space")

    def to_config(self) -> dict[str, Any]:
        """JSON-ready form for the browser runtimes (``from_config`` reverses it)."""
        return {
            "bindings": [[sorted(b.keys), b.action] for b in self.bindings],
            "default_action": self.default_action,
            "keys": self.keys,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KeyMapping:
        """Rebuilds a mapping from :meth:`to_config` output."""
        bindings: dict[str | tuple[str, ...], Any] = {}
        for keys, action in config["bindings"]:
            bindings[tuple(keys) if len(keys) > 1 else keys[0]] = action
        return cls(bindings, config["default_action"])


def clean_held_keys(raw: Iterable[Any], allowed: Iterable[str], limit: int = 16) -> list[str]:
    """Filters a client's held-key list to known game keys, preserving order; drops anything else."""
    allowed_set = set(allowed)
    out: list[str] = []
    for item in raw:
        if len(out) >= limit:
            break
        if isinstance(item, str) and len(item) <= MAX_KEY_NAME:
            try:
                key = normalise_key(item)
            except ControlsError:
                continue
            if key in allowed_set:
                if key in out:
                    out.remove(key)
                out.append(key)
    return out
