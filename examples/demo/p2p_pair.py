"""Two humans gather fruit peer to peer: each browser runs the game with rollback netcode (p2p mode).

``interactive-gym run examples/demo/p2p_pair.py`` then open two browser windows at
http://127.0.0.1:8000/?subject_id=alice and http://127.0.0.1:8000/?subject_id=bob . Set TURN_USERNAME /
TURN_CREDENTIAL (or TURN_SECRET and TURN_URLS) for participants who cannot connect directly.
"""

from __future__ import annotations

from typing import Any

import gatherers

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}
WIDTH, HEIGHT = gatherers.canvas_size()


def build_config(max_steps: int = 900, fps: int = 15, num_episodes: int = 1, input_delay: int = 2,
                 waiting_room_timeout_s: float = 180.0, disconnect_grace_s: float = 5.0, db: str | None = None,
                 consent: bool = True, webrtc: dict[str, Any] | None = None) -> RemoteConfig:
    """The experiment; tests call it with shorter games, their own database and TURN settings."""
    game = GymScene(
        "orchard_p2p",
        title="Fruit Gatherers, peer to peer",
        body_html="<p>Blue is agent_0, pink is agent_1. Arrow keys move. The game runs in both browsers.</p>",
        env_creator=gatherers.make_env,
        render_fn=gatherers.render,
        width=WIDTH,
        height=HEIGHT,
        background="#0d1b0d",
        controls=CONTROLS,
        default_action=gatherers.STAY,
        policy_mapping={"agent_0": "human", "agent_1": "human"},
        mode="p2p",
        fps=fps,
        max_steps=max_steps,
        num_episodes=num_episodes,
        input_delay=input_delay,
        waiting_room_timeout_s=waiting_room_timeout_s,
        disconnect_grace_s=disconnect_grace_s,
    )
    scenes: list[Any] = [StartScene("consent", title="Welcome", body_html="<p>You will play with another "
                                    "participant.</p>")] if consent else []
    stager = Stager([*scenes, game, EndScene("end", completion_code="P2P2026")])
    config = RemoteConfig().hosting("127.0.0.1", 8000).experiment("fruit_gatherers_p2p", stager=stager, db=db)
    return config.webrtc(**webrtc) if webrtc else config


config = build_config()
