"""Start-up checks of ``GymScene(keep_group_from=...)``: the same partners for a later game scene.

A scene may keep the groups of another game scene only if every participant is sure to have played that scene
first, in a group of the same size: it must be a multi-human game scene (server or p2p mode: the two modes share
the memory of who played with whom, so a server-mode game may be followed by a p2p one with the same partners)
in an earlier top-level item of the Stager (two scenes of one ``RandomizeOrder`` or ``AssignCondition`` block
have no fixed order).
"""

from __future__ import annotations

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.stager import Stager

GROUP_MODES = ("server", "p2p")


def kept_scene_ids(stager: Stager) -> set[str]:
    """The scenes whose groups some later scene re-forms (only their groups need remembering)."""
    return {s.keep_group_from for s in stager.all_scenes()
            if isinstance(s, GymScene) and s.keep_group_from is not None}


def check_keep_groups(stager: Stager) -> list[str]:
    """Every problem with the experiment's ``keep_group_from`` settings, each saying what to change.

    Call after each scene's own ``check()`` (the number of humans comes from building the env).
    """
    problems: list[str] = []
    for scene in stager.all_scenes():
        if not isinstance(scene, GymScene) or scene.keep_group_from is None:
            continue
        where = f"GymScene {scene.scene_id!r}: keep_group_from={scene.keep_group_from!r}"
        source = stager.scene(scene.keep_group_from)
        if not isinstance(source, GymScene):
            problems.append(f"{where} is not a game scene of this experiment; name an earlier GymScene")
            continue
        if scene.mode not in GROUP_MODES or source.mode not in GROUP_MODES:
            problems.append(f"{where}: both scenes must be multi-human games in mode 'server' or 'p2p' "
                            f"(they are {scene.mode!r} and {source.mode!r})")
            continue
        humans, kept = len(scene.facts.humans), len(source.facts.humans)
        if kept < 2 or humans != kept:
            problems.append(f"{where}: the groups there have {kept} human(s) and this scene needs {humans}; "
                            "keep groups only between scenes with the same number of humans (two or more)")
            continue
        here, there = stager.position(scene.scene_id), stager.position(source.scene_id)
        if here is None or there is None or there >= here:
            problems.append(f"{where} must come before this scene for every participant: put it in an earlier "
                            "item of the Stager (not in the same block)")
    return problems
