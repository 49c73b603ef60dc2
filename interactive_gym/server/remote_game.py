"""Server-mode game logic: one environment stepped by the server for its human and AI agents.

:class:`ServerGame` is the decision part (no sockets, no clock): it holds the latest held keys per human,
turns them into actions with the scene's key mapping, asks the shared :class:`AgentRuntime` for the AI agents'
actions (the same frame skip, seeded generators and call rules as browser and p2p mode), steps the environment,
produces the step record and renders a packet. With ``GymScene(on_partner_drop="ai")`` a dropped human's agent is
handed to the takeover policy (:meth:`ServerGame.take_over`) and its steps from then on name that controller. The async shell in ``game_runner.py`` calls
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
from interactive_gym.scenes.partner_drop import GAP_CONTROLLER, TakeoverPolicy


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


@dataclass(frozen=True)
class Takeover:
    """An AI policy playing a dropped human's agent from ``(episode, t)`` on.

    Attributes:
        agent: The agent taken over.
        participant: The participant who played it before.
        controller: What the data names as its controller (``"ai-takeover:<policy>"``).
        episode: The episode of the first step the policy played.
        t: The step (of that episode) the policy played first.
    """

    agent: str
    participant: str
    controller: str
    episode: int
    t: int

    def in_episode(self, episode: int) -> dict[str, Any]:
        """The episode meta's entry: from which step of ``episode`` the policy played the agent."""
        return {"agent": self.agent, "participant": self.participant, "controller": self.controller,
                "from_t": self.t if episode == self.episode else 0, "since_episode": self.episode}


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
        # The keys the scene listens to, once: KeyMapping.keys builds a sorted list on every read, and every key
        # event of every player reads it (the scene's mapping is fixed once the scene is checked).
        self._game_keys = frozenset(scene.key_mapping.keys)
        self.runtime = AgentRuntime({agent: self._ai_policy(agent, policy)
                                     for agent in scene.facts.agents
                                     if (policy := scene.policy_mapping[agent]) != HUMAN})
        self.episode = -1
        self.t = 0
        self.seed = 0
        self.observations: dict[str, Any] = {}
        self.episode_rewards: dict[str, float] = {}
        # Dropped humans' agents played by the scene's partner_drop_policy: their own runtime, seeded per
        # episode like every AI agent, so a takeover's actions are reproducible from the seed and its step.
        self.takeovers: dict[str, Takeover] = {}
        self._takeover_runtime = AgentRuntime({})

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

    @property
    def humans_in_control(self) -> list[str]:
        """Human agents still played by their participant (not taken over)."""
        return [agent for agent in self.humans if agent not in self.takeovers]

    def take_over(self, agent: str, takeover: TakeoverPolicy) -> Takeover:
        """From the next step on, ``takeover`` plays ``agent`` instead of its (dropped) participant.

        Its generator is the one any AI agent of ``agent`` would have this episode (seeded from the episode seed
        and the agent id); agents taken over earlier keep their held actions and generator states.

        Raises:
            KeyError: if ``agent`` is not a human agent or was already taken over.
        """
        if agent not in self.humans or agent in self.takeovers:
            raise KeyError(f"{agent!r} is not a human agent still played by its participant")
        policies = {**self._takeover_runtime.policies, agent: takeover.runtime_policy(self.env, agent)}
        runtime = AgentRuntime(policies)
        if self.episode >= 0:
            before = self._takeover_runtime.snapshot()
            runtime.start_episode(self.seed)
            runtime.restore(before)
        self._takeover_runtime = runtime
        self.inputs.pop(agent, None)
        record = Takeover(agent, self.humans[agent], takeover.controller, max(self.episode, 0), self.t)
        self.takeovers[agent] = record
        return record

    def takeover_meta(self) -> list[dict[str, Any]]:
        """The current episode's takeovers for its meta (empty if none)."""
        return [record.in_episode(self.episode) for record in self.takeovers.values()]

    def start_episode(self) -> dict[str, Any]:
        """Resets the env for the next episode; returns the first (full) render packet."""
        self.episode += 1
        self.t = 0
        self.seed = self.scene.episode_seed(self.game_seed, self.episode)
        self.observations, _ = self.env.reset(seed=self.seed)
        self.runtime.start_episode(self.seed)
        self._takeover_runtime.start_episode(self.seed)
        self.episode_rewards = {a: 0.0 for a in self.scene.facts.agents}
        for human in self.inputs.values():
            human.keys.forget_taps()
        self.surface.reset()
        return self.render()

    def set_keys(self, agent: str, held: list[Any], seq: int) -> bool:
        """Updates a human's held keys from their page; stale (reordered) updates are ignored.

        Returns:
            False if the update was older than one already applied, or the agent was taken over by an AI.
        """
        human = self.inputs.get(agent)
        if human is None:
            return False  # a page of a participant whose agent an AI plays now: their keys no longer count
        if seq <= human.seq:
            return False
        human.keys.apply_held(clean_held_keys(held, self._game_keys))
        human.seq = seq
        return True

    def set_connected(self, agent: str, connected: bool) -> None:
        """A disconnected human plays the default action (no keys held); a taken-over agent stays the AI's."""
        human = self.inputs.get(agent)
        if human is None:
            return
        human.connected = connected
        if not connected:
            human.keys.clear()

    def _actions(self) -> tuple[dict[str, Any], dict[str, list[str]]]:
        live = getattr(self.env, "agents", None)  # agents still in the episode get actions, as in every mode
        chosen = self.runtime.actions(self.t, self.observations, live)
        if self.takeovers:
            chosen.update(self._takeover_runtime.actions(self.t, self.observations, live))
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
        controllers = {agent: t.controller for agent, t in self.takeovers.items()}
        for agent, human in self.inputs.items():
            if not human.connected and agent not in controllers:
                controllers[agent] = GAP_CONTROLLER  # the default input: nobody played this agent
        if controllers:
            record["controllers"] = controllers
        game_done = result.episode_done and self.episode + 1 >= self.scene.num_episodes
        return StepOutcome(record, None, result.episode_done, game_done)

    def render(self) -> dict[str, Any]:
        """Draws the current state with the scene's ``render_fn``; returns the committed render packet."""
        self.scene.render_fn(base_env(self.env), self.surface)
        return self.surface.commit()
