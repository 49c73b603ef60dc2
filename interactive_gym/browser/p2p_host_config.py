"""Reading a p2p scene config into the parts of a :class:`~interactive_gym.browser.p2p_host.P2PGameHost`.

The config is what the server sent the page (``browser_scene_config`` output plus ``config["p2p"]``, the block of
``p2p_config.p2p_block``): the env and its agents, the action space descriptions, the netcode settings, the input
delay (fixed or ``"auto"``) and the partner-drop takeover policy. Everything a config can get wrong is refused
here with :class:`~interactive_gym.browser.host.HostConfigError`, before any session exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from interactive_gym.browser.host import HostConfigError, _default_key_mapping, _default_surface, ai_policy
from interactive_gym.browser.p2p_agents import onnx_seat_policy, pause_frames
from interactive_gym.browser.p2p_sim import P2PSimulation
from interactive_gym.browser.refs import resolve_ref
from interactive_gym.envs.agent_runtime import AgentPolicy
from interactive_gym.envs.input_codecs import codec_for_description, codec_for_space
from interactive_gym.envs.multiagent import action_space_of, as_multiagent
from interactive_gym.netcode.input_delay import AUTO, AutoInputDelay
from interactive_gym.netcode.settings import SessionSettings, p2p_settings


@dataclass(frozen=True)
class HostParts:
    """What a host is built from.

    Attributes:
        sim: The simulation (env, AI agents, episodes).
        settings: The rollback session's settings for this player.
        key_mapping: ``action_for(held_keys)`` and ``keys``.
        surface: The drawing surface.
        render_fn: ``render(env, surface)``.
        takeover: The partner-drop policy and its controller text, or None.
        auto_delay: The ``"auto"`` input delay settings, or None for a fixed delay.
    """

    sim: P2PSimulation
    settings: SessionSettings
    key_mapping: Any
    surface: Any
    render_fn: Callable[[Any, Any], Any]
    takeover: tuple[AgentPolicy, str] | None
    auto_delay: AutoInputDelay | None


def host_parts(config: Mapping[str, Any], my_player: int, *, surface: Any = None, key_mapping: Any = None,
               isolate_global_random: bool = False, clock: Callable[[], float] = time.time) -> HostParts:
    """Reads ``config`` for player ``my_player``.

    Raises:
        HostConfigError: for a config this host cannot play (no p2p block, a missing model, bad players).
    """
    p2p = config.get("p2p")
    if not isinstance(p2p, Mapping):
        raise HostConfigError("the scene config has no 'p2p' settings; is the scene's mode 'p2p'?")
    bundle = config["bundle"]
    env = as_multiagent(resolve_ref(bundle["factory"])(**dict(bundle.get("env_kwargs") or {})))
    humans: dict[int, str] = {}
    policies: dict[str, AgentPolicy] = {}
    for agent, spec in config["agents"].items():
        kind = spec.get("kind")
        if kind == "human":
            humans[int(spec["player"])] = agent
        elif kind == "python":
            policies[agent] = ai_policy(agent, {**spec, "fn": resolve_ref(spec["ref"])})
        elif kind == "onnx":  # evaluated in the simulation step, like a Python policy (p2p_agents.py)
            policies[agent] = onnx_seat_policy(agent, spec, p2p.get("ai"))
        else:
            raise HostConfigError(f"agent {agent!r} is of kind {kind!r}; p2p agents are human, python or onnx")
    num_players = int(p2p.get("num_players", len(humans)))
    if sorted(humans) != list(range(num_players)):
        raise HostConfigError(f"human agents must be players 0..{num_players - 1}, got players {sorted(humans)}")
    if my_player not in humans:
        raise HostConfigError(f"player {my_player} is not one of the game's players {sorted(humans)}")
    player_agents = [humans[p] for p in range(num_players)]
    # The server sends the players' action spaces (it has Gymnasium); asking the env is the fallback for
    # configs built without them.
    described = config.get("action_spaces") or {}
    codecs = [codec_for_description(described[agent]) if agent in described
              else codec_for_space(action_space_of(env, agent)) for agent in player_agents]
    input_size = max(c.size for c in codecs)
    fps = float(config.get("fps", 30))
    timeout_ms = float(p2p.get("disconnect_timeout_ms", 5000))
    auto_delay = None
    if p2p.get("input_delay", 2) == AUTO:
        auto_delay = AutoInputDelay.from_config(p2p.get("auto_input_delay") or AutoInputDelay().to_config())
        first_delay, largest_delay = auto_delay.min_delay, auto_delay.max_delay
    else:
        first_delay = largest_delay = int(p2p.get("input_delay", 2))
    settings = p2p_settings(
        num_players, my_player, {p: p for p in range(num_players) if p != my_player},
        input_size=input_size,
        input_delay=first_delay,
        max_input_delay=largest_delay,
        max_prediction=int(p2p.get("prediction_window", 8)),
        checksum_interval=int(p2p.get("checksum_interval", 60)),
        fps=fps,
        disconnect_timeout_ms=timeout_ms,
        disconnect_notify_ms=min(1000.0, timeout_ms),
    )
    takeover = None
    spec = p2p.get("takeover")
    if isinstance(spec, Mapping):
        takeover = (ai_policy("takeover", {"fn": resolve_ref(str(spec["ref"])),
                                           "frame_skip": spec.get("frame_skip", 1)}), str(spec["controller"]))
    sim = P2PSimulation(env, player_agents=player_agents, codecs=codecs, input_size=input_size,
                        policies=policies, seeds=list(config["seeds"]), max_steps=int(config["max_steps"]),
                        isolate_global_random=isolate_global_random, clock=clock,
                        pause_frames=pause_frames(float(p2p.get("episode_pause_s", 0)), fps))
    if key_mapping is None:
        key_mapping = _default_key_mapping(config["controls"])
    if surface is None:
        canvas = config["canvas"]
        surface = _default_surface(int(canvas["width"]), int(canvas["height"]),
                                   canvas.get("background", "#000000"))
    return HostParts(sim=sim, settings=settings, key_mapping=key_mapping, surface=surface,
                     render_fn=resolve_ref(bundle["render"]), takeover=takeover, auto_delay=auto_delay)
