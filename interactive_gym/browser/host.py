"""The Python half of a browser-mode game: environment, controls, Python policies and rendering in Pyodide.

The page's JavaScript (``pyodide_env_host.js`` / ``browser_game.js``) owns the clock, the keyboard, the
ONNX runtime and the canvas; this class owns everything that is Python. The JS side calls, per frame:

1. for each ONNX agent whose turn it is (``t % frame_skip == 0``): :meth:`observation_input` (floats for
   the network) and, after inference, :meth:`set_external_action`;
2. :meth:`frame` with the held keys as one ``"\\n"``-joined string (plain strings cross the JS/Python
   boundary far cheaper than JSON or proxies), which steps the env, records the step and returns the
   render packet as JSON text;
3. :attr:`episode_over` to learn whether the episode ended.

Steps are recorded here (not in JS) so that each frame crosses the boundary with small values only;
:meth:`steps_json` hands the episode's rows to the page for upload, including mid-episode when the page
is closing. Pure Python (standard library plus interactive_gym's pure parts); also runs in CPython.

Per-step row (also the upload format; see ``upload_validation.py``)::

    {"t": 0, "observation": {agent: obs before the step}, "actions": {"agent_0": 1, ...},
     "rewards": {...}, "terminated": {...}, "truncated": {...}, "info": {...},
     "keys": {human_agent: ["arrowup"]}, "client_ts": unix seconds}

The row (``envs/stepping.step_row``), the end-of-episode rule (``envs/stepping.step_with_limit``) and the
way Python and ONNX policies choose (``envs/agent_runtime.AgentRuntime``: frame skip, seeded generators,
one- or two-argument functions) are the same code as in server and p2p mode.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from interactive_gym.browser.refs import resolve_ref
from interactive_gym.envs.agent_runtime import AgentPolicy, AgentPolicyError, AgentRuntime, call_style
from interactive_gym.envs.stepping import jsonable, step_row, step_with_limit

AGENT_KINDS = ("human", "python", "onnx")
# Older names, still imported by the replay tool.
_jsonable = jsonable


class HostConfigError(ValueError):
    """The scene configuration given to the host cannot be used."""


def ai_policy(agent: str, spec: Mapping[str, Any]) -> AgentPolicy:
    """The runtime policy of a ``"python"`` (``spec["fn"]`` resolved) or ``"onnx"`` agent entry.

    Raises:
        HostConfigError: if the function cannot be called as a policy or ``frame_skip`` is bad.
    """
    try:
        if spec.get("kind") == "onnx":
            return AgentPolicy.external(spec.get("frame_skip", 1))
        return AgentPolicy.function(spec["fn"], spec.get("frame_skip", 1))
    except AgentPolicyError as exc:
        raise HostConfigError(f"agent {agent!r}: {exc}") from exc


def _encoder(agent: str, fn: Callable[..., Any]) -> Callable[[Any, str], Any]:
    """Adapts ``obs_to_input(obs)`` or ``obs_to_input(obs, agent_id)`` to one call (decided once)."""
    try:
        style = call_style(fn)
    except AgentPolicyError as exc:
        raise HostConfigError(f"agent {agent!r} obs_to_input: {exc}") from exc
    if style.with_agent:
        return lambda obs, agent_id: fn(obs, agent_id)
    return lambda obs, agent_id: fn(obs)


def _default_surface(width: int, height: int, background: str) -> Any:
    from interactive_gym.rendering.surface import Surface  # imported late: the page may not render at all

    return Surface(width, height, background)


def _default_key_mapping(controls: Mapping[str, Any]) -> Any:
    from interactive_gym.controls import KeyMapping

    return KeyMapping.from_config(controls)


class BrowserGameHost:
    """Runs one browser-mode scene's episodes, one frame per call.

    Args:
        env_factory: Builds the environment from ``env_kwargs``.
        render_fn: ``render(env, surface)`` draws the environment (receives the researcher's own env object).
        env_kwargs: Keyword arguments for ``env_factory``.
        agents: ``{agent_id: {"kind": "human"} | {"kind": "python", "fn": callable, "frame_skip": n} |
            {"kind": "onnx", "obs_to_input": callable, "frame_skip": n}}``.
        key_mapping: Object with ``action_for(held_keys)`` and ``keys`` (required if an agent is human).
        surface: Object with the Surface drawing API and ``commit() -> dict``.
        max_steps: Steps after which an episode ends (truncated).

    Raises:
        HostConfigError: for an agent of unknown kind, more than one human, or a human without controls.
    """

    def __init__(
        self,
        *,
        env_factory: Callable[..., Any],
        render_fn: Callable[[Any, Any], Any],
        env_kwargs: Mapping[str, Any],
        agents: Mapping[str, Mapping[str, Any]],
        key_mapping: Any,
        surface: Any,
        max_steps: int,
    ) -> None:
        from interactive_gym.envs.multiagent import as_multiagent, base_env

        if not isinstance(max_steps, int) or max_steps < 1:
            raise HostConfigError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.env = as_multiagent(env_factory(**dict(env_kwargs)))
        self._base_env = base_env(self.env)
        self._render_fn = render_fn
        self._surface = surface
        self.max_steps = max_steps
        self.agent_ids: list[str] = list(self.env.possible_agents)
        unknown = set(agents) - set(self.agent_ids)
        missing = set(self.agent_ids) - set(agents)
        if unknown or missing:
            raise HostConfigError(
                f"policy agents {sorted(agents)} do not match the environment's agents {self.agent_ids}"
            )
        humans = [a for a, spec in agents.items() if spec.get("kind") == "human"]
        if len(humans) > 1:
            raise HostConfigError(f"browser mode has one human per page; {humans} are all 'human'")
        if humans and key_mapping is None:
            raise HostConfigError("a human agent needs controls (a key mapping)")
        self.human: str | None = humans[0] if humans else None
        self._mapping = key_mapping
        self._allowed_keys = list(key_mapping.keys) if key_mapping is not None else []
        self._encoders: dict[str, Callable[[Any, str], Any]] = {}
        policies: dict[str, AgentPolicy] = {}
        for agent in self.agent_ids:  # the env's agent order, whatever order the config lists them in
            spec = agents[agent]
            kind = spec.get("kind")
            if kind not in AGENT_KINDS:
                raise HostConfigError(f"agent {agent!r} has kind {kind!r}; expected one of {AGENT_KINDS}")
            if kind == "human":
                continue
            policies[agent] = ai_policy(agent, spec)
            if kind == "onnx":
                self._encoders[agent] = _encoder(agent, spec["obs_to_input"])
        self.runtime = AgentRuntime(policies)
        self.frame_skip: dict[str, int] = {agent: policy.frame_skip for agent, policy in policies.items()}
        self.onnx_agents: list[str] = [a for a in self.agent_ids if a in self._encoders]
        self.t = 0
        self.episode_over = True
        self._obs: dict[str, Any] = {}
        self._rows: list[dict[str, Any]] = []

    # -- construction from the scene config the server sends ----------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any], surface: Any = None, key_mapping: Any = None) -> BrowserGameHost:
        """Builds a host from the browser scene config (see ``scene_config.py``), importing the shipped files."""
        bundle = config["bundle"]
        agents: dict[str, dict[str, Any]] = {}
        for agent, spec in config["agents"].items():
            entry = dict(spec)
            if spec.get("kind") == "python":
                entry["fn"] = resolve_ref(spec["ref"])
            elif spec.get("kind") == "onnx":
                entry["obs_to_input"] = resolve_ref(spec["obs_to_input"])
            agents[agent] = entry
        controls = config.get("controls")
        if key_mapping is None and controls:
            key_mapping = _default_key_mapping(controls)
        canvas = config["canvas"]
        if surface is None:
            surface = _default_surface(int(canvas["width"]), int(canvas["height"]), canvas.get("background", "#000000"))
        return cls(
            env_factory=resolve_ref(bundle["factory"]),
            render_fn=resolve_ref(bundle["render"]),
            env_kwargs=bundle.get("env_kwargs") or {},
            agents=agents,
            key_mapping=key_mapping,
            surface=surface,
            max_steps=int(config["max_steps"]),
        )

    @classmethod
    def from_config_json(cls, text: str) -> BrowserGameHost:
        """:meth:`from_config` for JSON text (what the page passes: one string, once)."""
        return cls.from_config(json.loads(text))

    # -- per episode -----------------------------------------------------------------------------------------
    def reset(self, seed: int) -> str:
        """Starts an episode with the server-chosen ``seed``; returns the first render packet as JSON."""
        self._obs, _ = self.env.reset(seed=seed)
        self.t = 0
        self.episode_over = False
        self._rows = []
        self.runtime.start_episode(seed)
        reset_surface = getattr(self._surface, "reset", None)
        if callable(reset_surface):
            reset_surface()  # a new episode starts from a full packet, not a diff
        return self.render_json()

    def render_json(self) -> str:
        """Draws the current state and returns the committed render packet as JSON text."""
        self._render_fn(self._base_env, self._surface)
        return json.dumps(self._surface.commit(), separators=(",", ":"))

    def onnx_due(self, agent: str) -> bool:
        """True if ONNX ``agent`` chooses a new action this frame (otherwise it repeats its last one)."""
        return self.runtime.due(agent, self.t)

    def observation_input(self, agent: str) -> list[float]:
        """The ONNX network's input for ``agent``: ``obs_to_input`` applied to its current observation."""
        values = self._encoders[agent](self._obs[agent], agent)
        return [float(v) for v in values]

    def set_external_action(self, agent: str, action: int) -> None:
        """Sets the action an ONNX agent plays from this frame until its next decision."""
        if agent not in self._encoders:
            raise KeyError(f"{agent!r} is not an ONNX agent")
        self.runtime.set_external(agent, int(action))

    def human_action(self, held_keys: list[str]) -> Any:
        """The human agent's action for ``held_keys`` (ordered by press time)."""
        return self._mapping.action_for(held_keys)

    def frame(self, held_keys: str = "") -> str:
        """Plays one frame: actions for every agent, ``env.step``, record, render.

        Args:
            held_keys: Held game keys, oldest press first, joined with ``"\\n"``.

        Returns:
            The render packet after the step, as JSON text.

        Raises:
            RuntimeError: if the episode is over (call :meth:`reset`).
        """
        if self.episode_over:
            raise RuntimeError("the episode is over; call reset(seed) before frame()")
        keys = self._clean_keys(held_keys)
        actions = self._choose_actions(keys)
        observed = self._obs
        result = step_with_limit(self.env, actions, self.agent_ids, self.t + 1, self.max_steps)
        self._obs = result.observations
        self.t += 1
        human_keys = {self.human: keys} if self.human is not None else {}
        self._rows.append(step_row(self.t - 1, observed, actions, result, human_keys, timestamp=time.time(),
                                   portable=True))
        self.episode_over = result.episode_done
        return self.render_json()

    def steps_json(self) -> str:
        """Every recorded row of the current episode as a JSON array (for upload)."""
        return json.dumps(self._rows, separators=(",", ":"))

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The recorded rows of the current episode (read-only use)."""
        return self._rows

    # -- internals ---------------------------------------------------------------------------------------------
    def _clean_keys(self, held_keys: str) -> list[str]:
        if not held_keys or self.human is None:
            return []
        from interactive_gym.controls import clean_held_keys

        return clean_held_keys(held_keys.split("\n"), self._allowed_keys)

    def _choose_actions(self, keys: list[str]) -> dict[str, Any]:
        live = getattr(self.env, "agents", self.agent_ids)
        chosen = self.runtime.actions(self.t, self._obs, live)
        if self.human is not None and self.human in live:
            chosen[self.human] = self.human_action(keys)
        return {agent: chosen[agent] for agent in self.agent_ids if agent in chosen}
