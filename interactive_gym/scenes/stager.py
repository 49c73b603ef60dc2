"""The order of scenes for each participant: fixed, randomised per participant, or repeated."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from interactive_gym.scenes.scene import EndScene, Scene, SceneConfigError, StartScene


class RandomizeOrder:
    """A block of scenes each participant sees in their own random order (seeded by participant id).

    Args:
        scenes: The scenes (or nested blocks) to shuffle.
        keep: How many of them each participant gets (default: all), e.g. 2 of 3 conditions.
    """

    def __init__(self, scenes: Sequence[Scene | RandomizeOrder | Repeat], keep: int | None = None) -> None:
        if not scenes:
            raise SceneConfigError("RandomizeOrder needs at least one scene")
        if keep is not None and not 1 <= keep <= len(scenes):
            raise SceneConfigError(f"RandomizeOrder(keep={keep}) must be between 1 and {len(scenes)}")
        self.scenes = tuple(scenes)
        self.keep = keep

    def expand(self, rng: random.Random) -> list[Scene]:
        order = list(self.scenes)
        rng.shuffle(order)
        return [scene for item in order[: self.keep or len(order)] for scene in _expand(item, rng)]


class Repeat:
    """A scene (or block) played ``times`` times in a row."""

    def __init__(self, item: Scene | RandomizeOrder | Repeat, times: int) -> None:
        if times < 1:
            raise SceneConfigError("Repeat(times) must be at least 1")
        self.item = item
        self.times = times

    def expand(self, rng: random.Random) -> list[Scene]:
        return [scene for _ in range(self.times) for scene in _expand(self.item, rng)]


def _expand(item: Scene | RandomizeOrder | Repeat, rng: random.Random) -> list[Scene]:
    if isinstance(item, Scene):
        return [item]
    if isinstance(item, RandomizeOrder | Repeat):
        return item.expand(rng)
    raise SceneConfigError(f"the stager holds {item!r}, which is neither a scene nor RandomizeOrder/Repeat")


def _walk(item: Scene | RandomizeOrder | Repeat) -> list[Scene]:
    if isinstance(item, Scene):
        return [item]
    if isinstance(item, RandomizeOrder):
        return [s for sub in item.scenes for s in _walk(sub)]
    if isinstance(item, Repeat):
        return _walk(item.item)
    raise SceneConfigError(f"the stager holds {item!r}, which is neither a scene nor RandomizeOrder/Repeat")


class Stager:
    """Sequences the experiment's scenes.

    Args:
        items: Scenes, ``RandomizeOrder`` blocks and ``Repeat`` blocks, in order. The last item must be an
            ``EndScene``; a ``StartScene`` may only come first.
    """

    def __init__(self, items: Sequence[Scene | RandomizeOrder | Repeat]) -> None:
        self.items = tuple(items)
        self.validate()

    def all_scenes(self) -> list[Scene]:
        """Every distinct scene the experiment can show, in declaration order."""
        seen: dict[int, Scene] = {}
        for item in self.items:
            for scene in _walk(item):
                seen.setdefault(id(scene), scene)
        return list(seen.values())

    def scene(self, scene_id: str) -> Scene | None:
        """The scene with ``scene_id``, if the experiment has one."""
        return next((s for s in self.all_scenes() if s.scene_id == scene_id), None)

    def validate(self) -> None:
        """Raises :class:`SceneConfigError` naming what to change if the order cannot work."""
        if not self.items:
            raise SceneConfigError("the Stager is empty: give it at least an EndScene")
        if not isinstance(self.items[-1], EndScene):
            raise SceneConfigError(f"the last scene must be an EndScene (it is {self.items[-1]!r})")
        scenes = self.all_scenes()
        ids = [s.scene_id for s in scenes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise SceneConfigError(f"two different scenes share the id(s) {duplicates}: give each a unique scene_id")
        for position, item in enumerate(self.items):
            inner = _walk(item)
            if any(isinstance(s, StartScene) for s in inner) and (position != 0 or not isinstance(item, Scene)):
                raise SceneConfigError("a StartScene (consent) can only be the first scene")
            if any(isinstance(s, EndScene) for s in inner) and position != len(self.items) - 1:
                raise SceneConfigError(f"an EndScene can only be the last scene ({item!r} is at {position})")

    def sequence_for(self, participant_id: str) -> list[Scene]:
        """The participant's own scene order; the same id always gets the same order (resume after reload)."""
        seed = int.from_bytes(hashlib.sha256(participant_id.encode()).digest()[:8], "big")
        rng = random.Random(seed)
        return [scene for item in self.items for scene in _expand(item, rng)]
