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

The columns and the end-of-episode rule (all agents terminated or truncated, or ``max_steps`` reached,
which truncates every agent still running) are the same as server mode's (``remote_game.py``).
"""

from __future__ import annotations

import inspect
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from interactive_gym.browser.refs import resolve_ref
from interactive_gym.envs.stepping import step_with_limit

MAX_INFO_CHARS = 4096  # a step's info larger than this is cut to its repr prefix, so uploads stay bounded
AGENT_KINDS = ("human", "python", "onnx")


class HostConfigError(ValueError):
    """The scene configuration given to the host cannot be used."""


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-native copy of ``value``; anything exotic becomes its ``repr`` (never fails)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 8:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    item = getattr(value, "item", None)  # numpy scalars, when the deployment loads numpy
    if callable(item):
        try:
            return _jsonable(item(), depth + 1)
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _jsonable(tolist(), depth + 1)
    return repr(value)


def _bounded_info(info: Any) -> Any:
    clean = _jsonable(info)
    text = json.dumps(clean, separators=(",", ":"))
    return clean if len(text) <= MAX_INFO_CHARS else {"_truncated": text[:MAX_INFO_CHARS]}


def _call_with_optional_agent(fn: Callable[..., Any]) -> Callable[[Any, str], Any]:
    """Adapts ``fn(obs)`` or ``fn(obs, agent_id)`` to a two-argument call (decided once, not per frame)."""
    try:
        params = [
            p for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return lambda obs, agent: fn(obs, agent)
    if len(params) >= 2:
        return lambda obs, agent: fn(obs, agent)
    return lambda obs, agent: fn(obs)


def _wants_rng(fn: Callable[..., Any]) -> bool:
    try:
        return "rng" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


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
        self._python: dict[str, tuple[Callable[[Any, str], Any], bool, Callable[..., Any], int]] = {}
        self._encoders: dict[str, Callable[[Any, str], Any]] = {}
        self.frame_skip: dict[str, int] = {}
        for agent, spec in agents.items():
            kind = spec.get("kind")
            if kind not in AGENT_KINDS:
                raise HostConfigError(f"agent {agent!r} has kind {kind!r}; expected one of {AGENT_KINDS}")
            self.frame_skip[agent] = int(spec.get("frame_skip", 1))
            if kind == "python":
                fn = spec["fn"]
                self._python[agent] = (_call_with_optional_agent(fn), _wants_rng(fn), fn, self.frame_skip[agent])
            elif kind == "onnx":
                self._encoders[agent] = _call_with_optional_agent(spec["obs_to_input"])
        self.onnx_agents: list[str] = [a for a in self.agent_ids if a in self._encoders]
        self.t = 0
        self.episode_over = True
        self._obs: dict[str, Any] = {}
        self._held_actions: dict[str, Any] = {}
        self._rngs: dict[str, random.Random] = {}
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
        self._held_actions = {}
        # One generator per Python policy, derived from the episode seed (str seeds hash the same everywhere).
        self._rngs = {agent: random.Random(f"{seed}:{agent}") for agent in self._python}
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
        return self.t % self.frame_skip[agent] == 0 or agent not in self._held_actions

    def observation_input(self, agent: str) -> list[float]:
        """The ONNX network's input for ``agent``: ``obs_to_input`` applied to its current observation."""
        values = self._encoders[agent](self._obs[agent], agent)
        return [float(v) for v in values]

    def set_external_action(self, agent: str, action: int) -> None:
        """Sets the action an ONNX agent plays from this frame until its next decision."""
        if agent not in self._encoders:
            raise KeyError(f"{agent!r} is not an ONNX agent")
        self._held_actions[agent] = int(action)

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
        self._rows.append({
            "t": self.t - 1,
            "observation": _jsonable(observed),
            "actions": _jsonable(actions),
            "rewards": {a: _jsonable(float(r)) for a, r in result.rewards.items()},
            "terminated": result.terminated,
            "truncated": result.truncated,
            "info": _bounded_info(result.infos),
            "keys": {self.human: keys} if self.human is not None else {},
            "client_ts": time.time(),
        })
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
        actions: dict[str, Any] = {}
        for agent in live:
            if agent == self.human:
                actions[agent] = self.human_action(keys)
            elif agent in self._python:
                call, wants_rng, fn, skip = self._python[agent]
                if self.t % skip == 0 or agent not in self._held_actions:
                    if wants_rng:
                        self._held_actions[agent] = fn(self._obs[agent], agent, rng=self._rngs[agent])
                    else:
                        self._held_actions[agent] = call(self._obs[agent], agent)
                actions[agent] = self._held_actions[agent]
            else:
                if agent not in self._held_actions:
                    raise RuntimeError(f"no action for ONNX agent {agent!r}: call set_external_action first")
                actions[agent] = self._held_actions[agent]
        return actions
