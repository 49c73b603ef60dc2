"""Two humans gather fruit together on the server (server mode, two-human waiting room).

``interactive-gym run examples/demo/two_humans.py`` then open two browser windows at
http://127.0.0.1:8000/?subject_id=alice and http://127.0.0.1:8000/?subject_id=bob .
"""

from __future__ import annotations

import gatherers

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}
WIDTH, HEIGHT = gatherers.canvas_size()


def build_config(max_steps: int = 450, fps: int = 8, waiting_room_timeout_s: float = 120.0,
                 disconnect_grace_s: float = 10.0, db: str | None = None) -> RemoteConfig:
    """The experiment; tests call it with shorter games and their own database."""
    game = GymScene(
        "orchard_pair",
        title="Fruit Gatherers for two",
        body_html="<p>Blue is agent_0, pink is agent_1. Arrow keys move.</p>",
        env_creator=gatherers.make_env,
        render_fn=gatherers.render,
        width=WIDTH,
        height=HEIGHT,
        controls=CONTROLS,
        default_action=gatherers.STAY,
        policy_mapping={"agent_0": "human", "agent_1": "human"},
        fps=fps,
        max_steps=max_steps,
        waiting_room_timeout_s=waiting_room_timeout_s,
        disconnect_grace_s=disconnect_grace_s,
    )
    stager = Stager([
        StartScene("consent", title="Welcome", body_html="<p>You will play with another participant.</p>"),
        game,
        EndScene("end", completion_code="PAIR2026"),
    ])
    return RemoteConfig().hosting("127.0.0.1", 8000).experiment("fruit_gatherers_pairs", stager=stager, db=db)


config = build_config()
