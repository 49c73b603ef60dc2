"""The pure rules of browser-mode visits: reproducible seeds from GymScene(seed=...), which episodes a new
attempt plays, and when a visit's game is over (decided by the server from validated uploads)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from interactive_gym.browser.scene_config import MAX_SEED, choose_seeds
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.browser_scenes import remaining_episodes, visit_outcome, visit_seeds


def _scene(scene_id: str, seed: int | None, episodes: int = 3) -> Any:
    # visit_seeds reads these four attributes and the scene's own episode_seed rule.
    return SimpleNamespace(scene_id=scene_id, seed=seed, num_episodes=episodes,
                           episode_seed=lambda game, e: GymScene.episode_seed(None, game, e))  # type: ignore[arg-type]


def test_a_seeded_scene_gives_every_participant_the_same_seeds_per_repetition() -> None:
    solo, other = _scene("solo", 41), _scene("other", None)
    sequence = [other, solo, other, solo]
    first, second = visit_seeds(solo, sequence, 1), visit_seeds(solo, sequence, 3)
    assert first == [GymScene.episode_seed(None, 41, e) for e in range(3)]  # type: ignore[arg-type]
    assert second == [GymScene.episode_seed(None, 42, e) for e in range(3)]  # type: ignore[arg-type]
    assert first != second
    assert visit_seeds(solo, [solo, solo], 0) == first  # another participant's first visit
    assert all(0 <= s < MAX_SEED for s in first + second)


def test_an_unseeded_scene_draws_fresh_seeds() -> None:
    draws = iter(range(100, 200))
    assert choose_seeds(3, lambda n: next(draws)) == [100, 101, 102]
    assert len(set(visit_seeds(_scene("solo", None, 5), [], 0))) > 1


def test_choose_seeds_with_a_game_seed_needs_the_rule() -> None:
    with pytest.raises(ValueError, match="episode_seed"):
        choose_seeds(2, game_seed=5)


@pytest.mark.parametrize(("complete", "expected"), [
    ((), [0, 1, 2]), ((0,), [1, 2]), ((0, 1), [2]), ((1,), [0, 2]), ((0, 1, 2), []), ((2, 0, 1, 2), []),
])
def test_a_new_attempt_plays_the_episodes_without_a_complete_upload(complete: tuple, expected: list) -> None:
    assert remaining_episodes(3, complete) == expected


def _upload(end_reason: str = "done") -> Any:
    return SimpleNamespace(end_reason=end_reason)


@pytest.mark.parametrize(("complete", "end_reason", "expected"), [
    ((0, 1), "done", "complete"),
    ((0,), "done", None),
    ((), "page_closed", None),
    ((0,), "error", "error"),
    ((0, 1), "error", "error"),
])
def test_the_visit_is_over_once_every_episode_is_complete_or_on_an_error(complete: tuple, end_reason: str,
                                                                          expected: str | None) -> None:
    assert visit_outcome(2, complete, _upload(end_reason)) == expected
