"""The demo experiment: consent, instructions, Fruit Gatherers with a scripted partner (server mode), then with
a neural-network partner running in the participant's browser (browser mode), a survey, the end.

Run it with ``scripts/demo.sh`` (or ``interactive-gym run examples/demo/experiment.py``) and open
http://127.0.0.1:8000/?subject_id=demo1 . Data lands in ``data/fruit_gatherers_demo.sqlite``; export it with
``interactive-gym export data/fruit_gatherers_demo.sqlite --format csv``.
"""

from __future__ import annotations

from pathlib import Path

import gatherers

from interactive_gym import (
    EndScene,
    GymScene,
    Likert,
    MultipleChoice,
    OnnxPolicy,
    RemoteConfig,
    Stager,
    StartScene,
    StaticScene,
    TextInput,
)

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT, "w": gatherers.UP, "s": gatherers.DOWN, "a": gatherers.LEFT,
            "d": gatherers.RIGHT}
WIDTH, HEIGHT = gatherers.canvas_size()


def orchard_scene(scene_id: str, mode: str, partner: object, title: str, body_html: str, *, fps: int,
                  max_steps: int, num_episodes: int) -> GymScene:
    """One Fruit Gatherers game scene: the human is blue (agent_0), ``partner`` plays pink (agent_1)."""
    return GymScene(
        scene_id,
        title=title,
        body_html=body_html,
        env_creator=gatherers.make_env,
        render_fn=gatherers.render,
        width=WIDTH,
        height=HEIGHT,
        background="#0d1b0d",
        controls=CONTROLS,
        default_action=gatherers.STAY,
        policy_mapping={"agent_0": "human", "agent_1": partner},
        mode=mode,
        fps=fps,
        max_steps=max_steps,
        num_episodes=num_episodes,
    )


def browser_game(fps: int = 8, max_steps: int = 450, num_episodes: int = 2) -> GymScene:
    """The browser-mode round: the env runs in Pyodide, the partner is an ONNX network in the page."""
    partner = OnnxPolicy(Path(__file__).with_name("partner.onnx"), obs_to_input=gatherers.obs_vector, sample=True)
    return orchard_scene("orchard_in_browser", "browser", partner, "Fruit Gatherers, round two",
                         "<p>Now the game runs in your browser, and your pink partner is a small neural network.</p>",
                         fps=fps, max_steps=max_steps, num_episodes=num_episodes)


def build_config(max_steps: int = 450, num_episodes: int = 1, fps: int = 8, db: str | None = None,
                 browser_episodes: int = 2) -> RemoteConfig:
    """The experiment; tests call it with fewer steps and their own database."""
    game = orchard_scene("orchard_with_ai", "server", gatherers.greedy_policy, "Fruit Gatherers",
                         "<p>You are the <b style='color:#4cc9f0'>blue</b> gatherer. Arrow keys (or WASD) move.</p>",
                         fps=fps, max_steps=max_steps, num_episodes=num_episodes)
    stager = Stager([
        StartScene(
            "consent",
            title="Welcome",
            body_html="<p>This is a short demo study: you will play a small game with a computer partner and "
                      "answer two questions. It takes about two minutes. You may stop at any time.</p>",
        ),
        StaticScene(
            "instructions",
            title="How to play",
            body_html="<p>Move with the arrow keys. Red fruit is worth 1 point to whoever picks it. "
                      "Golden fruit is worth 3 points to <em>both</em> of you, but only if your partner stands "
                      "right next to it when you step on it.</p>",
        ),
        game,
        browser_game(fps, max_steps, browser_episodes),
        StaticScene(
            "survey",
            title="A few questions",
            inputs=[
                Likert("partner_helpful", "My partner was helpful.", points=7),
                MultipleChoice("played_before", "Have you played grid games before?", options=["yes", "no"]),
                TextInput("comments", "Anything else you'd like to tell us?", required=False, multiline=True),
            ],
        ),
        EndScene("end", title="Thank you!", body_html="<p>Your answers have been saved.</p>",
                 completion_code="DEMO2026"),
    ])
    return RemoteConfig().hosting("127.0.0.1", 8000).experiment("fruit_gatherers_demo", stager=stager, db=db)


config = build_config()
