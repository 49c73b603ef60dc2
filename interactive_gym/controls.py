"""Keyboard controls: which key names a game may use, which keys count on a tick, and which action they mean.

A researcher writes ``{"ArrowLeft": 3, ("ArrowUp", "ArrowLeft"): 5}``: single keys and chords (tuples of
keys pressed together), named as the browser's ``KeyboardEvent.key`` gives them. The same code decides in
server mode (on the server), in browser mode and in peer-to-peer mode (inside Pyodide), so a key means the
same action everywhere. Pure Python, standard library only.

Key names (checked at start-up by :func:`check_key_name`):
    * Character keys: any single printable character except the space bar, e.g. ``"a"``, ``"7"``, ``","``,
      ``"/"``, ``"["``, ``"\\\\"``. Letters are case-insensitive (``"A"`` is ``"a"``), so Shift never changes
      the action; other shifted characters (``"!"``) are keys of their own.
    * Named keys: ``"Space"`` and the names in :data:`NAMED_KEYS` (``"ArrowLeft"``, ``"Enter"``, ``"F1"``...).
    * Old browser names (``" "``, ``"Spacebar"``, ``"Left"``, ``"Esc"``, ``"Del"``) are accepted as aliases.
    * Anything else fails start-up with the nearest real name: ``"space"`` is refused (browsers never send
      it) with "did you mean 'Space'?", so a mapping that can never fire is caught before participants come.

Tick rule (:class:`TickKeys`; the page's ``KeyState`` in input.js follows the same rule, and both are
tested against ``tests/fixtures/input_cases.json``):
    * A key counts on every tick at which it is held.
    * A key pressed and released entirely between two ticks counts on exactly the next tick.
    * A key that was held at a tick and released afterwards counts no more.
    * The keys of a tick are ordered by press time, most recent last.

Action rule (:meth:`KeyMapping.action_for`):
    * A chord whose keys are all held beats single keys; a larger chord beats a smaller one.
    * Otherwise the most recently pressed mapped key wins (pressing Right while holding Left turns right).
    * No mapped key held: the default (no-op) action.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

MAX_KEY_NAME = 32

# Old or alternative KeyboardEvent.key values and their standard names (input.js KEY_ALIASES is the same table).
KEY_ALIASES: Mapping[str, str] = MappingProxyType({
    " ": "Space", "Spacebar": "Space", "Esc": "Escape", "Del": "Delete",
    "Left": "ArrowLeft", "Right": "ArrowRight", "Up": "ArrowUp", "Down": "ArrowDown",
})

# Non-character keys a game may use, named as KeyboardEvent.key gives them ("Space" stands for " ").
NAMED_KEYS: frozenset[str] = frozenset({
    "Space", "Enter", "Escape", "Tab", "Backspace", "Delete", "Insert",
    "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown",
    "Shift", "Control", "Alt", "Meta", *(f"F{n}" for n in range(1, 13)),
})

# Names other toolkits use, for the "did you mean" hint only (never accepted).
_HINTS: Mapping[str, str] = MappingProxyType({
    "ctrl": "Control", "return": "Enter", "cmd": "Meta", "command": "Meta", "win": "Meta", "super": "Meta",
    "option": "Alt", "pgup": "PageUp", "pgdn": "PageDown", "ins": "Insert", "bksp": "Backspace",
    "\t": "Tab", "\n": "Enter", "\r": "Enter",
})


class ControlsError(ValueError):
    """A key mapping the experiment cannot use; the message says what to change."""


def normalise_key(name: str) -> str:
    """Canonical key name: aliases resolved, single letters lower-case (Shift must not change the action).

    Does not check that the name is one browsers send (see :func:`check_key_name`): held-key lists from
    pages pass through here and are then filtered against the game's keys.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_KEY_NAME:
        raise ControlsError(f"key names are non-empty strings of at most {MAX_KEY_NAME} characters, got {name!r}")
    name = KEY_ALIASES.get(name, name)
    return name.lower() if len(name) == 1 else name


def is_key_name(name: str) -> bool:
    """Whether a browser can send ``name`` (after :func:`normalise_key`) as KeyboardEvent.key."""
    if len(name) == 1:
        return name.isprintable() and not name.isspace()
    return name in NAMED_KEYS


def _suggestion(name: str) -> str | None:
    """The real key name ``name`` most likely meant, or None."""
    lowered = name.lower()
    if lowered in _HINTS:
        return _HINTS[lowered]
    if len(name) == 4 and lowered.startswith("key") and name[3].isalpha():
        return name[3].lower()  # a KeyboardEvent.code ("KeyA") instead of the key
    if len(name) == 6 and lowered.startswith("digit") and name[5].isdigit():
        return name[5]
    candidates = {n.lower(): n for n in NAMED_KEYS}
    candidates.update({a.lower(): real for a, real in KEY_ALIASES.items() if len(a) > 1})
    if lowered in candidates:
        return candidates[lowered]
    close = difflib.get_close_matches(lowered, list(candidates), n=1, cutoff=0.6)
    return candidates[close[0]] if close else None


def check_key_name(name: str) -> str:
    """The canonical form of a key name from an experiment's mapping.

    Raises:
        ControlsError: if browsers never send that name, with the nearest real name when there is one.
    """
    key = normalise_key(name)
    if is_key_name(key):
        return key
    message = f"key {name!r} is not a key name browsers send"
    hint = _suggestion(name)
    if hint is not None:
        raise ControlsError(f"{message}; did you mean {hint!r}?")
    raise ControlsError(f"{message}; use KeyboardEvent.key names such as 'ArrowLeft', 'Space', 'Enter', 'a' or '1'")


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
            key_set = frozenset(check_key_name(k) for k in key_tuple)
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


class TickKeys:
    """The keys that count on each tick, from presses and releases (the tick rule in the module docstring).

    Callers pass canonical names of game keys only (see :func:`clean_held_keys`); the number of distinct
    keys, and so the size of this object, is bounded by the game's key mapping.
    """

    def __init__(self) -> None:
        self._presses = 0
        self._held: dict[str, int] = {}  # key -> press number; insertion order is press order
        self._unseen: set[str] = set()  # held keys pressed since the last tick
        self._taps: dict[str, int] = {}  # pressed and released since the last tick, key -> press number

    @property
    def held(self) -> list[str]:
        """Keys held now, most recently pressed last."""
        return list(self._held)

    def press(self, key: str) -> bool:
        """Records a press; returns False for a key already held (auto-repeat changes nothing)."""
        if key in self._held:
            return False
        self._presses += 1
        self._held[key] = self._presses
        self._unseen.add(key)
        return True

    def release(self, key: str) -> bool:
        """Records a release; returns False for a key that was not held."""
        pressed = self._held.pop(key, None)
        if pressed is None:
            return False
        if key in self._unseen:  # never counted yet: it counts on the next tick
            self._unseen.discard(key)
            self._taps[key] = pressed
        return True

    def release_all(self) -> bool:
        """Releases every held key (the page lost focus); returns True if any was held."""
        held = list(self._held)
        for key in held:
            self.release(key)
        return bool(held)

    def apply_held(self, keys: Sequence[str]) -> None:
        """Moves to the held list a page reported (press order), as the releases and presses that lead there.

        Keys no longer listed are released; listed keys not held are pressed in list order. A held key that
        the list puts out of its press order was released and pressed again in updates that never arrived.
        """
        listed = dict.fromkeys(keys)
        for key in [k for k in self._held if k not in listed]:
            self.release(key)
        kept = [k for k in listed if k in self._held]
        held = list(self._held)
        same = 0
        while same < len(held) and held[same] == kept[same]:
            same += 1
        for key in held[same:]:
            self.release(key)
        for key in listed:
            self.press(key)

    def sample(self) -> list[str]:
        """The keys for this tick: held now plus taps since the last tick, by press time; call once per tick."""
        counted = {**self._taps, **self._held}
        self._taps.clear()
        self._unseen.clear()
        return sorted(counted, key=counted.__getitem__)

    def forget_taps(self) -> None:
        """Drops taps not yet counted (a new episode starts: a tap from before it must not act in it)."""
        self._taps.clear()

    def clear(self) -> None:
        """Forgets everything (the player is gone)."""
        self._held.clear()
        self._unseen.clear()
        self._taps.clear()
