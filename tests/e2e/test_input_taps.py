"""A tap counts once in a real browser-mode game: key events at exact points between the page's ticks.

Real-time typing cannot hit a chosen tick, so an init script wraps the page's own
``KeyboardInput.prototype.sample`` (the call the game loop makes once per frame) and dispatches real DOM
``KeyboardEvent``s on ``window`` just before or just after chosen calls. The events go through the page's
real listeners; the stored steps (SQLite) must show each key on exactly the frames the tick rule gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import db_under_test
from experiment_harness import build_app, load_example

from interactive_gym import EndScene, RemoteConfig, Stager

# sample number (1-based, = step t + 1) -> key events dispatched (before that sample, after it returns).
PLAN = {
    5: {"before": [("keydown", "ArrowRight")], "after": [("keyup", "ArrowRight")]},  # held at a tick, released
    10: {"after": [("keydown", "ArrowLeft"), ("keyup", "ArrowLeft")]},  # tapped between two ticks
    15: {"before": [("keydown", "ArrowDown")]},  # held over three ticks
    17: {"after": [("keyup", "ArrowDown")]},
    20: {"before": [("keydown", "ArrowUp")], "after": [("keydown", "ArrowUp"), ("keyup", "ArrowUp")]},  # repeat
}
EXPECTED_STEPS = {"ArrowRight": [4], "ArrowLeft": [10], "ArrowDown": [14, 15, 16], "ArrowUp": [19]}
MOVES = {"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}

HOOK = """
(() => {
  if (!location.protocol.startsWith("http")) return;
  const plan = %s;
  window.__taps = { samples: 0, ready: false };
  const fire = (events) => {
    for (const [type, key] of events ?? []) {
      window.dispatchEvent(new KeyboardEvent(type, { key, code: key, bubbles: true, cancelable: true,
        repeat: type === "keydown" && window.__taps.down?.has(key) }));
      window.__taps.down ??= new Set();
      if (type === "keydown") window.__taps.down.add(key); else window.__taps.down.delete(key);
    }
  };
  import("/static/js/input.js").then(({ KeyboardInput }) => {
    const sample = KeyboardInput.prototype.sample;
    KeyboardInput.prototype.sample = function () {
      const n = ++window.__taps.samples;
      fire(plan[n]?.before);
      const keys = sample.call(this);
      fire(plan[n]?.after);
      return keys;
    };
    window.__taps.ready = true;
  });
})();
"""


def test_each_key_counts_on_exactly_the_frames_of_the_tick_rule(live_server, new_context, tmp_path: Path) -> None:
    example = load_example("examples/demo/experiment.py")
    scene = example.browser_game(fps=10, max_steps=30, num_episodes=1)
    db = tmp_path / "taps.sqlite"
    stager = Stager([scene, EndScene("end", completion_code="TAPS1")])
    server = live_server(build_app(RemoteConfig().experiment("taps_e2e", stager=stager, db=db)).asgi)
    context = new_context()
    context.add_init_script(HOOK % json.dumps({str(n): p for n, p in PLAN.items()}))
    page = context.new_page()
    page.goto(f"{server.url}/?subject_id=tapper")
    page.wait_for_function("window.__taps && window.__taps.ready", timeout=30_000)
    page.wait_for_selector("#game-status[data-state=over]", timeout=90_000)
    assert page.get_attribute("#game-status", "data-reason") == "complete"
    assert page.evaluate("window.__taps.samples") == 30  # one sample per frame, the hook saw them all

    with db_under_test.connect(db) as con:
        rows = con.execute("SELECT s.t, s.keys, s.actions FROM steps s JOIN episodes e ON e.id = s.episode_id "
                           "WHERE e.mode = 'browser' ORDER BY s.t").fetchall()
    assert [t for t, _, _ in rows] == list(range(30))
    keys = {t: json.loads(k)["agent_0"] for t, k, _ in rows}
    for key, steps in EXPECTED_STEPS.items():
        assert [t for t, held in keys.items() if key in held] == steps, (key, keys)
    counted = {t for steps in EXPECTED_STEPS.values() for t in steps}
    assert all(keys[t] == [] for t in keys if t not in counted), keys
    for t, _, actions in rows:
        held = keys[t]
        assert json.loads(actions)["agent_0"] == (MOVES[held[-1]] if held else 0), (t, held)
