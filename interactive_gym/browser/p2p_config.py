"""The ``"p2p"`` block of a p2p scene config: the netcode settings every player's page runs with.

Pure and import-free (nothing server-side), so the server (``P2PMode.scene_config``) and the preflight
(``preflight/runner.py``) build the block with this one function and a page can never be checked with
settings other than those it plays with. ``P2PGameHost.from_config`` (``p2p_host.py``) reads it.

Shape::

    {"input_delay": 2 | "auto", "prediction_window": 8, "num_players": 2, "disconnect_timeout_ms": 5000,
     "checksum_interval": 30, "faults": None | {"loss": 0.1, ...},
     "takeover": None | {"ref": "my_env:policy", "frame_skip": 1, "name": ..., "controller": ...},
     "auto_input_delay": {"min": 0, "max": 6, "rollback_budget": 2},   # only with "auto"
     "episode_pause_s": 2.0,                                          # "next round" pause between episodes
     "rollback_smoothing_frames": 3,                                  # only when > 0 (display only; absent: off)
     "ai": {"agent_1": {"model": "<base64 of the .onnx file>"}}}     # ONNX agents (p2p_agents.py)

AI agents are no players: ``num_players`` counts the humans, and every peer computes the AI agents' actions in
its simulation (the AI-seat rule of ``p2p_agents.py``); ``"ai"`` carries the ONNX models they need for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from interactive_gym.netcode.input_delay import AUTO, AutoInputDelay

# Frames between the checksums peers exchange to detect a desync (GGRS's desync detection interval).
CHECKSUM_INTERVAL = 30


class P2PSceneSettings(Protocol):
    """The settings of a p2p scene the block is made of (``GymScene`` has them)."""

    @property
    def input_delay(self) -> int | str: ...

    @property
    def auto_input_delay(self) -> AutoInputDelay | None: ...

    @property
    def prediction_window(self) -> int: ...

    @property
    def disconnect_grace_s(self) -> float: ...

    @property
    def episode_pause_s(self) -> float: ...

    @property
    def rollback_smoothing_frames(self) -> int:
        """Frames a rollback-corrected object glides on screen (0: off; rollback_smoothing.js)."""

    @property
    def p2p_ai_models(self) -> Mapping[str, Mapping[str, str]]:
        """Each ONNX agent's model for the pages (``p2p_agents.model_block``)."""

    @property
    def takeover(self) -> Any:
        """The partner-drop takeover policy (``to_client()`` gives what the page needs), or None."""


def p2p_block(scene: P2PSceneSettings, num_players: int,
              faults: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The ``config["p2p"]`` of a game of ``num_players`` players of ``scene``.

    Args:
        scene: The scene's netcode settings (a ``GymScene``).
        num_players: Players of the game (the scene's humans).
        faults: Transport fault profile (tests only); ``None`` in real experiments.

    Raises:
        ValueError: for fewer than two players.
    """
    if not isinstance(num_players, int) or isinstance(num_players, bool) or num_players < 2:
        raise ValueError(f"a p2p game needs at least two players, got {num_players!r}")
    block: dict[str, Any] = {
        "input_delay": scene.input_delay,
        "prediction_window": scene.prediction_window,
        "num_players": num_players,
        "disconnect_timeout_ms": int(scene.disconnect_grace_s * 1000),
        "checksum_interval": CHECKSUM_INTERVAL,
        "faults": dict(faults) if faults is not None else None,
        "takeover": scene.takeover.to_client() if scene.takeover is not None else None,
        "episode_pause_s": scene.episode_pause_s,
        "ai": {agent: dict(entry) for agent, entry in scene.p2p_ai_models.items()},
    }
    if scene.rollback_smoothing_frames > 0:
        block["rollback_smoothing_frames"] = scene.rollback_smoothing_frames
    if scene.input_delay == AUTO:
        block["auto_input_delay"] = (scene.auto_input_delay or AutoInputDelay()).to_config()
    return block
