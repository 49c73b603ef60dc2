"""The order of scenes for each participant: fixed, randomised per participant, repeated, or by condition.

``RandomizeOrder`` and ``Repeat`` depend on the participant id alone (a seeded shuffle), so the same id always
gets the same order. ``AssignCondition`` blocks depend on who arrived before (an arm is chosen to fill the arms
evenly, see ``server/flow/conditions.py``): the chosen arm is passed in, recorded, and passed in again after a
restart, so a participant's order never changes.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Union

from interactive_gym.scenes.scene import EndScene, Scene, SceneConfigError, StartScene

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# What a stager item may be: a scene or a block of them.
Item = Union[Scene, "RandomizeOrder", "Repeat", "AssignCondition"]
# The arm a participant plays of an AssignCondition block (chosen by the server's ConditionAssigner).
ArmChooser = Callable[["AssignCondition"], str]


class RandomizeOrder:
    """A block of scenes each participant sees in their own random order (seeded by participant id).

    Args:
        scenes: The scenes (or nested blocks) to shuffle.
        keep: How many of them each participant gets (default: all), e.g. 2 of 3 conditions.
    """

    def __init__(self, scenes: Sequence[Item], keep: int | None = None) -> None:
        if not scenes:
            raise SceneConfigError("RandomizeOrder needs at least one scene")
        if keep is not None and not 1 <= keep <= len(scenes):
            raise SceneConfigError(f"RandomizeOrder(keep={keep}) must be between 1 and {len(scenes)}")
        self.scenes = tuple(scenes)
        self.keep = keep

    def expand(self, rng: random.Random, choose: ArmChooser | None = None) -> list[Scene]:
        order = list(self.scenes)
        rng.shuffle(order)
        return [scene for item in order[: self.keep or len(order)] for scene in _expand(item, rng, choose)]


class Repeat:
    """A scene (or block) played ``times`` times in a row."""

    def __init__(self, item: Item, times: int) -> None:
        if times < 1:
            raise SceneConfigError("Repeat(times) must be at least 1")
        self.item = item
        self.times = times

    def expand(self, rng: random.Random, choose: ArmChooser | None = None) -> list[Scene]:
        return [scene for _ in range(self.times) for scene in _expand(self.item, rng, choose)]


class AssignCondition:
    """Between-participants conditions: each participant plays one arm, arms filled evenly.

    A new participant gets the arm with the fewest participants so far, counting those who completed the study
    and those still taking part (not the dropped, timed out or errored); equal counts go to the arm with fewer
    completed, then to a draw seeded by the participant id. The arm is recorded (an events row
    ``condition_assigned``) and kept after a server restart.

    Args:
        arms: ``{arm name: scenes}``; an arm is a scene, a block, or a list of scenes and blocks.
        name: Names this assignment in the data (``conditions`` of the ``condition_assigned`` event); give each
            AssignCondition of one experiment its own name.
        seed: Seed of the tie-breaking draw (the same seed and id always draw the same arm).
    """

    def __init__(self, arms: Mapping[str, Item | Sequence[Item]], name: str = "condition", seed: int = 0) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SceneConfigError(f"AssignCondition(name={name!r}): use 1-64 letters, digits, '_' or '-'")
        if not isinstance(arms, Mapping) or len(arms) < 2:
            raise SceneConfigError(f"AssignCondition {name!r} needs at least two arms, as {{arm name: scenes}}")
        self.name = name
        self.seed = seed
        self.arms: dict[str, tuple[Item, ...]] = {}
        for arm, items in arms.items():
            if not isinstance(arm, str) or not _NAME.fullmatch(arm):
                raise SceneConfigError(f"AssignCondition {name!r}: arm name {arm!r}: use 1-64 letters, digits, "
                                       "'_' or '-'")
            listed = tuple(items) if isinstance(items, list | tuple) else (items,)
            if not listed:
                raise SceneConfigError(f"AssignCondition {name!r}: arm {arm!r} has no scenes")
            self.arms[arm] = listed

    def expand(self, rng: random.Random, choose: ArmChooser | None = None) -> list[Scene]:
        if choose is None:
            raise SceneConfigError(f"AssignCondition {self.name!r}: the participant's arm must be given "
                                   "(Stager.sequence_for(participant_id, choose))")
        arm = choose(self)
        if arm not in self.arms:
            raise SceneConfigError(f"AssignCondition {self.name!r} has no arm {arm!r} (arms: {list(self.arms)})")
        return [scene for item in self.arms[arm] for scene in _expand(item, rng, choose)]


def _expand(item: Item, rng: random.Random, choose: ArmChooser | None) -> list[Scene]:
    if isinstance(item, Scene):
        return [item]
    if isinstance(item, RandomizeOrder | Repeat | AssignCondition):
        return item.expand(rng, choose)
    raise SceneConfigError(f"the stager holds {item!r}, which is neither a scene nor "
                           "RandomizeOrder/Repeat/AssignCondition")


def _walk(item: Item) -> list[Scene]:
    if isinstance(item, Scene):
        return [item]
    if isinstance(item, RandomizeOrder):
        return [s for sub in item.scenes for s in _walk(sub)]
    if isinstance(item, Repeat):
        return _walk(item.item)
    if isinstance(item, AssignCondition):
        return [s for arm in item.arms.values() for sub in arm for s in _walk(sub)]
    raise SceneConfigError(f"the stager holds {item!r}, which is neither a scene nor "
                           "RandomizeOrder/Repeat/AssignCondition")


def _blocks(item: Item) -> list[AssignCondition]:
    """Every AssignCondition inside ``item`` (itself included), outer ones first."""
    if isinstance(item, RandomizeOrder):
        return [b for sub in item.scenes for b in _blocks(sub)]
    if isinstance(item, Repeat):
        return _blocks(item.item)
    if isinstance(item, AssignCondition):
        return [item, *(b for arm in item.arms.values() for sub in arm for b in _blocks(sub))]
    return []


class Stager:
    """Sequences the experiment's scenes.

    Args:
        items: Scenes and blocks (``RandomizeOrder``, ``Repeat``, ``AssignCondition``), in order. The last item
            must be an ``EndScene``; a ``StartScene`` may only come first.
    """

    def __init__(self, items: Sequence[Item]) -> None:
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

    def conditions(self) -> list[AssignCondition]:
        """The experiment's AssignCondition blocks, in declaration order (each once)."""
        seen: dict[int, AssignCondition] = {}
        for item in self.items:
            for block in _blocks(item):
                seen.setdefault(id(block), block)
        return list(seen.values())

    def position(self, scene_id: str) -> int | None:
        """Index of the top-level item holding ``scene_id`` (None if no item does)."""
        return next((i for i, item in enumerate(self.items) if any(s.scene_id == scene_id for s in _walk(item))),
                    None)

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
        names = [b.name for b in self.conditions()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SceneConfigError(f"two AssignCondition blocks share the name(s) {twice}: give each its own name")
        for position, item in enumerate(self.items):
            inner = _walk(item)
            if any(isinstance(s, StartScene) for s in inner) and (position != 0 or not isinstance(item, Scene)):
                raise SceneConfigError("a StartScene (consent) can only be the first scene")
            if any(isinstance(s, EndScene) for s in inner) and position != len(self.items) - 1:
                raise SceneConfigError(f"an EndScene can only be the last scene ({item!r} is at {position})")

    def sequence_for(self, participant_id: str, choose: ArmChooser | None = None) -> list[Scene]:
        """The participant's own scene order; the same id (and the same arms) always gets the same order.

        Args:
            participant_id: Seeds the shuffles of ``RandomizeOrder`` blocks.
            choose: Gives the participant's arm of each ``AssignCondition`` block met (required if the
                stager has any).
        """
        seed = int.from_bytes(hashlib.sha256(participant_id.encode()).digest()[:8], "big")
        rng = random.Random(seed)
        return [scene for item in self.items for scene in _expand(item, rng, choose)]
