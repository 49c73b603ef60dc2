"""Server-mode game logic: one environment stepped by the server for its human and AI agents.

:class:`ServerGame` is the decision part (no sockets, no clock): it holds the latest held keys per human,
turns them into actions with the scene's key mapping, queries AI policies, steps the environment, renders a
packet and produces the step record. The async shell in ``game_runner.py`` calls :meth:`ServerGame.tick` at
the scene's fps and moves packets and records out.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from interactive_gym.controls import TickKeys, clean_held_keys
from interactive_gym.envs.multiagent import action_space_of, base_env
from interactive_gym.envs.stepping import step_with_limit
from interactive_gym.rendering import Surface
from interactive_gym.scenes.gym_scene import HUMAN, RANDOM, GymScene


@dataclass
class StepOutcome:
    """What one tick produced."""

    record: dict[str, Any]
    packet: dict[str, Any]
    episode_done: bool
    game_done: bool


@dataclass
class HumanInput:
    """One human's keys under the tick rule every mode shares (controls.TickKeys), the last seq, and presence."""

    keys: TickKeys = field(default_factory=TickKeys)
    seq: int = -1
    connected: bool = True

    @property
    def held(self) -> list[str]:
        """Keys held now, most recently pressed last."""
        return self.keys.held


def random_action(space: Any, rng: random.Random) -> Any:
    """A uniformly random action from a discrete space, drawn from the game's own seeded RNG."""
    n = getattr(space, "n", None)
    if n is None:
        raise TypeError(f"'random' policy needs a discrete action space, got {space!r}")
    return int(getattr(space, "start", 0)) + rng.randrange(int(n))


class ServerGame:
    """One game of a server-mode GymScene.

    Args:
        game_id: Unique id (names the Socket.IO room and the data).
        scene: The scene (already checked at start-up).
        humans: ``{agent_id: participant_id}`` for the human agents.
        game_seed: Seed from which every episode seed and the random policies' RNG derive.
    """

    def __init__(self, game_id: str, scene: GymScene, humans: dict[str, str], game_seed: int) -> None:
        self.game_id = game_id
        self.scene = scene
        self.humans = dict(humans)
        self.game_seed = game_seed
        self.env = scene.make_env()
        self.surface = Surface(scene.width, scene.height, background=scene.background, assets=scene.assets.catalog())
        self.inputs = {agent: HumanInput() for agent in humans}
        self.policy_rng = random.Random(game_seed)
        self.episode = -1
        self.t = 0
        self.seed = 0
        self.observations: dict[str, Any] = {}
        self.episode_rewards: dict[str, float] = {}

    @property
    def agents(self) -> dict[str, str]:
        """Every agent -> participant id (humans) or policy name (AI), for the data."""
        names = {}
        for agent, policy in self.scene.policy_mapping.items():
            if policy == HUMAN:
                names[agent] = self.humans[agent]
            elif policy == RANDOM:
                names[agent] = "random"
            else:
                names[agent] = getattr(policy, "__name__", type(policy).__name__)
        return names

    def start_episode(self) -> dict[str, Any]:
        """Resets the env for the next episode; returns the first (full) render packet."""
        self.episode += 1
        self.t = 0
        self.seed = self.scene.episode_seed(self.game_seed, self.episode)
        self.observations, _ = self.env.reset(seed=self.seed)
        self.episode_rewards = {a: 0.0 for a in self.scene.facts.agents}
        for human in self.inputs.values():
            human.keys.forget_taps()
        self.surface.reset()
        return self._render()

    def set_keys(self, agent: str, held: list[Any], seq: int) -> bool:
        """Updates a human's held keys from their page; stale (reordered) updates are ignored.

        Returns:
            False if the update was older than one already applied.
        """
        human = self.inputs[agent]
        if seq <= human.seq:
            return False
        human.keys.apply_held(clean_held_keys(held, self.scene.key_mapping.keys))
        human.seq = seq
        return True

    def set_connected(self, agent: str, connected: bool) -> None:
        """A disconnected human plays the default action (no keys held)."""
        human = self.inputs[agent]
        human.connected = connected
        if not connected:
            human.keys.clear()

    def _actions(self) -> tuple[dict[str, Any], dict[str, list[str]]]:
        actions: dict[str, Any] = {}
        keys: dict[str, list[str]] = {}
        for agent in self.scene.facts.agents:
            policy = self.scene.policy_mapping[agent]
            if policy == HUMAN:
                held = self.inputs[agent].keys.sample()
                keys[agent] = held
                actions[agent] = self.scene.key_mapping.action_for(held)
            elif policy == RANDOM:
                actions[agent] = random_action(action_space_of(self.env, agent), self.policy_rng)
            else:
                # A PythonPolicy descriptor wraps the function as .fn; a bare function is called directly.
                actions[agent] = getattr(policy, "fn", policy)(self.observations.get(agent), agent)
        return actions, keys

    def tick(self) -> StepOutcome:
        """Steps the environment once with the current inputs."""
        actions, keys = self._actions()
        observed = self.observations
        agents = self.scene.facts.agents
        result = step_with_limit(self.env, actions, agents, self.t + 1, self.scene.max_steps)
        self.t += 1
        self.observations = result.observations
        for agent, reward in result.rewards.items():
            self.episode_rewards[agent] = self.episode_rewards.get(agent, 0.0) + float(reward)
        record = {
            "t": self.t - 1,
            "observation": observed,
            "actions": actions,
            "rewards": {a: float(r) for a, r in result.rewards.items()},
            "terminated": result.terminated,
            "truncated": result.truncated,
            "info": result.infos,
            "keys": keys,
            "server_ts": time.time(),
        }
        game_done = result.episode_done and self.episode + 1 >= self.scene.num_episodes
        return StepOutcome(record, self._render(), result.episode_done, game_done)

    def _render(self) -> dict[str, Any]:
        self.scene.render_fn(base_env(self.env), self.surface)
        return self.surface.commit()
