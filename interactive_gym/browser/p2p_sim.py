"""The simulation a p2p game rolls back: environment, AI agents, episodes and per-frame rows, as one RollbackEnv.

Every peer of a p2p game runs one :class:`P2PSimulation` inside Pyodide. The rollback session decides which frames
to save, load and (re-)simulate; this class executes those requests. Everything that evolves with the game is in
the snapshot, so a re-simulation reproduces it exactly on every peer:

* the environment's own state and its RNGs (through :class:`~interactive_gym.envs.state.EnvStateAdapter`),
* the step counter of the episode, the episode number and whether the game is finished,
* the current observations (AI policies read them),
* the AI agents' held actions (``frame_skip``) and random generators (the shared
  :class:`~interactive_gym.envs.agent_runtime.AgentRuntime`, the same code as server and browser mode),
* the runtimes of players taken over by the partner-drop policy (:meth:`P2PSimulation.take_over`).

A takeover is by frame: from ``from_frame`` on, the policy chooses the dropped player's action and its input is
ignored; a re-simulation of earlier frames still uses the inputs. The policy's generator is started fresh (seeded
from the episode seed and the agent, like any AI agent) when ``from_frame`` is first simulated, and at each later
episode, so the takeover's actions depend only on the seed and ``from_frame``.

Episodes follow the same rule as browser mode (``host.py``): an episode ends when every agent terminated or
truncated, or at ``max_steps`` (which truncates every agent still running); the next episode resets with the next
server-chosen seed. After the last episode the simulation is *finished*: further frames change nothing, so peers
can keep advancing (and exchanging inputs) until every peer has confirmed the last frame.

Between episodes the simulation may hold for ``pause_frames`` frames (``GymScene(episode_pause_s=...)``): the next
episode is reset when the previous one ends, then those frames pass without a step (no row, inputs unused), so
the pause is part of the stream every peer simulates (``p2p_agents.py``). AI agents choose inside the step of each
frame (the AI-seat rule of ``p2p_agents.py``).

Each simulated frame leaves a row (the upload format of ``upload_validation.py`` plus ``checksum``); a rollback
re-simulates and overwrites the rows of the frames it replays. Whether a row is final is decided by the caller
(:class:`~interactive_gym.browser.p2p_host.P2PGameHost`), which knows the confirmed frame. Pure Python.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from interactive_gym.envs.agent_runtime import AgentPolicy, AgentRuntime
from interactive_gym.envs.input_codecs import DiscreteCodec, InputCodec
from interactive_gym.envs.multiagent import base_env
from interactive_gym.envs.state import EnvStateAdapter
from interactive_gym.envs.stepping import step_row, step_with_limit
from interactive_gym.netcode.requests import InputStatus


class P2PSimulationError(ValueError):
    """The p2p game cannot be simulated as configured; the message says what to change."""


class P2PSimulation:
    """The :class:`~interactive_gym.netcode.runner.RollbackEnv` of a p2p game.

    Args:
        env: The environment in the parallel multi-agent form (``as_multiagent``).
        player_agents: Agent id of each player, in player order (player ``i`` supplies input ``i``).
        codecs: Input codec of each player (same order).
        input_size: Bytes of one input in the session (codecs' bytes are zero-padded to it).
        policies: The AI agents' policies, by agent id.
        seeds: One reset seed per episode (identical on every peer).
        max_steps: Steps after which an episode is truncated.
        isolate_global_random: Keep a private copy of Python's global ``random`` for this simulation (several
            simulated peers in one CPython process; a browser has one interpreter per peer).
        clock: Wall clock for the rows' ``client_ts`` (not part of the simulation).
        pause_frames: Frames held (not stepped) before each episode after the first.
    """

    def __init__(
        self,
        env: Any,
        *,
        player_agents: Sequence[str],
        codecs: Sequence[InputCodec],
        input_size: int,
        policies: Mapping[str, AgentPolicy],
        seeds: Sequence[int],
        max_steps: int,
        isolate_global_random: bool = False,
        clock: Callable[[], float] = time.time,
        pause_frames: int = 0,
    ) -> None:
        if not seeds:
            raise P2PSimulationError("a p2p game needs at least one episode seed")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise P2PSimulationError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.env = env
        self.agent_ids: list[str] = list(env.possible_agents)
        controlled = set(player_agents) | set(policies)
        if controlled != set(self.agent_ids) or len(set(player_agents)) != len(player_agents):
            raise P2PSimulationError(
                f"players {list(player_agents)} and AI agents {sorted(policies)} must together be exactly the "
                f"environment's agents {self.agent_ids}, each once"
            )
        self.player_agents = list(player_agents)
        self.codecs = list(codecs)
        self.input_size = input_size
        self.runtime = AgentRuntime({agent: policies[agent] for agent in self.agent_ids if agent in policies})
        self.seeds = [int(s) for s in seeds]
        self.max_steps = max_steps
        if not isinstance(pause_frames, int) or pause_frames < 0:
            raise P2PSimulationError(f"pause_frames must be an integer >= 0, got {pause_frames!r}")
        self.pause_frames = pause_frames
        self.pause_left = 0  # frames still held before the current episode's first step
        self._clock = clock
        base = base_env(env)
        # The adapter only saves/loads/checksums here (this class steps and resets), so its codecs are unused.
        placeholders = [DiscreteCodec(1)] * (len(base.possible_agents) if hasattr(base, "possible_agents") else 1)
        self._state = EnvStateAdapter(base, seed=0, input_codecs=placeholders, reset=False)
        self._isolate = isolate_global_random
        self._private_random = random.Random(0).getstate()
        self.t = 0
        self.episode = 0
        self.finished = False
        self._obs: dict[str, Any] = {}
        self.rows: dict[int, tuple[int, dict[str, Any]]] = {}
        self.checksums: dict[int, int] = {}
        self._pending_checksum: int | None = None
        # Partner-drop takeovers: agent -> (first frame the policy plays, its runtime, controller text); which
        # of those runtimes have started (part of the state: a rollback before from_frame un-starts one).
        self.takeovers: dict[str, tuple[int, AgentRuntime, str]] = {}
        self._takeover_started: set[str] = set()
        self._isolated(self._reset_episode)

    # --- RollbackEnv -------------------------------------------------------------------------------------------

    def save_state(self) -> tuple:
        """Snapshot of everything that evolves (see the module docstring)."""
        env_state = self._isolated(self._state.save_state)
        held, rngs = self.runtime.snapshot()
        taken = {agent: self.takeovers[agent][1].snapshot() for agent in sorted(self._takeover_started)}
        return (env_state, self.t, self.episode, self.finished, copy.deepcopy(self._obs), held, rngs, taken,
                self.pause_left)

    def load_state(self, state: tuple) -> None:
        """Restores a snapshot from :meth:`save_state` (the snapshot is not modified)."""
        env_state, self.t, self.episode, self.finished, obs, held, rngs, taken, self.pause_left = state
        self._isolated(self._state.load_state, env_state)
        self._obs = copy.deepcopy(obs)
        self.runtime.restore((held, rngs))
        self._takeover_started = set(taken)
        for agent, snapshot in taken.items():
            self.takeovers[agent][1].restore(snapshot)

    def checksum(self, state: tuple) -> int:
        """64-bit checksum of a snapshot; also remembered for the row of the frame about to be simulated."""
        env_state, t, episode, finished, obs, held, rngs, taken, pause_left = state
        parts: tuple = (env_state, t, episode, finished, obs, held, sorted(rngs.items()))
        if pause_left:
            parts += (("pause", pause_left),)
        if taken:  # only a peer playing on alone has any; the checksums of every other game are unchanged
            parts += (sorted((a, h, sorted(r.items())) for a, (h, r) in taken.items()),)
        value = self._state.checksum(parts)
        self._pending_checksum = value
        return value

    def snapshot_checksum(self, state: tuple) -> int:
        """:meth:`checksum` of ``state`` without remembering it for a row (a rejoin snapshot's checksum)."""
        pending = self._pending_checksum
        try:
            return self.checksum(state)
        finally:
            self._pending_checksum = pending

    def resume_from(self, state: tuple) -> None:
        """Loads a rejoin snapshot's state: this simulation continues from it (no rows of earlier frames)."""
        self.load_state(state)
        self.rows.clear()
        self.checksums.clear()
        self._pending_checksum = None

    def advance(self, frame: int, inputs: Sequence[tuple[bytes, InputStatus]]) -> int | None:
        """Simulates ``frame``; returns the number of the episode that ended on it, else ``None``."""
        if self._pending_checksum is not None:
            self.checksums[frame] = self._pending_checksum
            self._pending_checksum = None
        if self.finished:
            self.rows.pop(frame, None)  # a rollback may have turned a predicted frame into a post-game one
            return None
        if self.pause_left:
            self.pause_left -= 1  # between episodes: this frame is held, nothing steps
            self.rows.pop(frame, None)
            return None
        return self._isolated(self._step, frame, inputs)

    def take_over(self, agent: str, policy: AgentPolicy, from_frame: int, controller: str) -> None:
        """From ``from_frame`` on, ``policy`` plays the player ``agent`` (its inputs are ignored from then).

        Raises:
            P2PSimulationError: if ``agent`` is no player, or is already taken over.
        """
        if agent not in self.player_agents:
            raise P2PSimulationError(f"{agent!r} is not a player of this game ({self.player_agents})")
        if agent in self.takeovers:
            raise P2PSimulationError(f"{agent!r} was already taken over from frame {self.takeovers[agent][0]}")
        self.takeovers[agent] = (int(from_frame), AgentRuntime({agent: policy}), controller)

    # --- internals ---------------------------------------------------------------------------------------------

    def _isolated(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self._isolate:
            return fn(*args)
        outside = random.getstate()
        random.setstate(self._private_random)
        try:
            return fn(*args)
        finally:
            self._private_random = random.getstate()
            random.setstate(outside)

    def _reset_episode(self) -> None:
        seed = self.seeds[self.episode]
        random.seed(seed)  # an env drawing from the global generator is deterministic too (and it is in the state)
        self._obs, _ = self.env.reset(seed=seed)
        self.t = 0
        self.runtime.start_episode(seed)
        for agent in self._takeover_started:
            self.takeovers[agent][1].start_episode(seed)

    def _active_takeovers(self, frame: int) -> list[str]:
        """The players the takeover policy plays on ``frame`` (starting a runtime on its first frame)."""
        active = []
        for agent, (from_frame, runtime, _controller) in self.takeovers.items():
            if frame < from_frame:
                continue
            if agent not in self._takeover_started:
                runtime.start_episode(self.seeds[self.episode])
                self._takeover_started.add(agent)
            active.append(agent)
        return active

    def _actions(self, inputs: Sequence[tuple[bytes, InputStatus]], taken: Sequence[str] = ()) -> dict[str, Any]:
        live = set(getattr(self.env, "agents", self.agent_ids))
        actions: dict[str, Any] = {}
        for agent, codec, (data, _status) in zip(self.player_agents, self.codecs, inputs, strict=True):
            if agent in live and agent not in taken:
                actions[agent] = codec.decode(data)
        actions.update(self.runtime.actions(self.t, self._obs, live))
        for agent in taken:
            actions.update(self.takeovers[agent][1].actions(self.t, self._obs, live))
        return {agent: actions[agent] for agent in self.agent_ids if agent in actions}  # env order, as every mode

    def _step(self, frame: int, inputs: Sequence[tuple[bytes, InputStatus]]) -> int | None:
        taken = self._active_takeovers(frame) if self.takeovers else []
        actions = self._actions(inputs, taken)
        observed = self._obs
        result = step_with_limit(self.env, actions, self.agent_ids, self.t + 1, self.max_steps)
        self._obs = result.observations
        self.t += 1
        # The host fills in "keys" (this peer's own) once the frame is confirmed, and checks "inputs" then.
        row = step_row(self.t - 1, observed, actions, result, {}, timestamp=self._clock(), portable=True)
        row["inputs"] = [bytes(data) for data, _ in inputs]
        if taken:
            row["controllers"] = {agent: self.takeovers[agent][2] for agent in taken}
        self.rows[frame] = (self.episode, row)
        if not result.episode_done:
            return None
        ended = self.episode
        self.episode += 1
        if self.episode < len(self.seeds):
            self._reset_episode()
            self.pause_left = self.pause_frames
        else:
            self.finished = True
        return ended
