"""Server-mode game logic: one environment stepped by the server for its human and AI agents.

:class:`ServerGame` is the decision part (no sockets, no clock): it holds the latest held keys per human,
turns them into actions with the scene's key mapping, asks the shared :class:`AgentRuntime` for the AI agents'
actions (the same frame skip, seeded generators and call rules as browser and p2p mode), steps the environment,
produces the step record and renders a packet. The async shell in ``game_runner.py`` calls
:meth:`ServerGame.step` and :meth:`ServerGame.render` at the scene's fps (storing the record before it renders,
so a failing ``render_fn`` never loses the step it was drawing) and moves packets and records out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from interactive_gym.controls import TickKeys, clean_held_keys
from interactive_gym.envs.agent_runtime import AgentPolicy, AgentRuntime
from interactive_gym.envs.multiagent import action_space_of, base_env
from interactive_gym.envs.stepping import step_row, step_with_limit
from interactive_gym.rendering import Surface
from interactive_gym.scenes.gym_scene import HUMAN, RANDOM, GymScene


@dataclass
class StepOutcome:
    """What one tick produced.

    Attributes:
        record: The step's data row.
        packet: The render packet after the step (``None`` from :meth:`ServerGame.step`, before rendering).
        episode_done: The step ended the episode.
        game_done: The step ended the game's last episode.
    """

    record: dict[str, Any]
    packet: dict[str, Any] | None
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


class ServerGame:
    """One game of a server-mode GymScene.

    Args:
        game_id: Unique id (names the Socket.IO room and the data).
        scene: The scene (already checked at start-up).
        humans: ``{agent_id: participant_id}`` for the human agents.
        game_seed: Seed from which every episode seed (and so every AI agent's generator) derives.

    Raises:
        AgentPolicyError: if an AI policy cannot be called (signature, frame skip, 'random' on a non-discrete
            action space).
    """

    def __init__(self, game_id: str, scene: GymScene, humans: dict[str, str], game_seed: int) -> None:
        self.game_id = game_id
        self.scene = scene
        self.humans = dict(humans)
        self.game_seed = game_seed
        self.env = scene.make_env()
        self.surface = Surface(scene.width, scene.height, background=scene.background, assets=scene.assets.catalog())
        self.inputs = {agent: HumanInput() for agent in humans}
        self.runtime = AgentRuntime({agent: self._ai_policy(agent, policy)
                                     for agent in scene.facts.agents
                                     if (policy := scene.policy_mapping[agent]) != HUMAN})
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
                fn = getattr(policy, "fn", policy)  # a PythonPolicy descriptor or a bare function
                names[agent] = getattr(fn, "__name__", type(fn).__name__)
        return names

    def _ai_policy(self, agent: str, policy: Any) -> AgentPolicy:
        if policy == RANDOM:
            return AgentPolicy.random(action_space_of(self.env, agent))
        # A PythonPolicy descriptor carries the function and its frame skip; a bare function acts every frame.
        return AgentPolicy.function(getattr(policy, "fn", policy), getattr(policy, "frame_skip", 1))

    def start_episode(self) -> dict[str, Any]:
        """Resets the env for the next episode; returns the first (full) render packet."""
        self.episode += 1
        self.t = 0
        self.seed = self.scene.episode_seed(self.game_seed, self.episode)
        self.observations, _ = self.env.reset(seed=self.seed)
        self.runtime.start_episode(self.seed)
        self.episode_rewards = {a: 0.0 for a in self.scene.facts.agents}
        for human in self.inputs.values():
            human.keys.forget_taps()
        self.surface.reset()
        return self.render()

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
        live = getattr(self.env, "agents", None)  # agents still in the episode get actions, as in every mode
        chosen = self.runtime.actions(self.t, self.observations, live)
        keys: dict[str, list[str]] = {}
        for agent, human in self.inputs.items():
            if live is not None and agent not in live:
                continue
            held = human.keys.sample()
            keys[agent] = held
            chosen[agent] = self.scene.key_mapping.action_for(held)
        return {agent: chosen[agent] for agent in self.scene.facts.agents if agent in chosen}, keys

    def tick(self) -> StepOutcome:
        """:meth:`step` then :meth:`render`: one whole tick (exceptions of ``render_fn`` propagate)."""
        outcome = self.step()
        outcome.packet = self.render()
        return outcome

    def step(self) -> StepOutcome:
        """Steps the environment once with the current inputs; the outcome has the record and no packet yet."""
        actions, keys = self._actions()
        observed = self.observations
        result = step_with_limit(self.env, actions, self.scene.facts.agents, self.t + 1, self.scene.max_steps)
        self.t += 1
        self.observations = result.observations
        for agent, reward in result.rewards.items():
            self.episode_rewards[agent] = self.episode_rewards.get(agent, 0.0) + float(reward)
        record = step_row(self.t - 1, observed, actions, result, keys, timestamp=time.time(), portable=False)
        game_done = result.episode_done and self.episode + 1 >= self.scene.num_episodes
        return StepOutcome(record, None, result.episode_done, game_done)

    def render(self) -> dict[str, Any]:
        """Draws the current state with the scene's ``render_fn``; returns the committed render packet."""
        self.scene.render_fn(base_env(self.env), self.surface)
        return self.surface.commit()
