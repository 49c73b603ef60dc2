"""Browser mode against the real server: a participant plays two episodes with real key presses against the
ONNX partner in the page; the export matches the keys; ``interactive-gym replay`` reproduces each episode.
And a tab closed mid-episode still leaves its partial episode in the database."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import db_under_test
from experiment_harness import ROOT, build_app, load_example

from interactive_gym import EndScene, RemoteConfig, Stager
from interactive_gym.cli import main as cli_main

MOVES = {"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}


def _config(tmp_path: Path, max_steps: int, episodes: int) -> RemoteConfig:
    example = load_example("examples/demo/experiment.py")
    scene = example.browser_game(fps=10, max_steps=max_steps, num_episodes=episodes)
    stager = Stager([scene, EndScene("end", completion_code="BROWSER1")])
    return RemoteConfig().experiment("browser_e2e", stager=stager, db=tmp_path / "b.sqlite")


def test_two_browser_episodes_against_onnx_partner_export_and_replay(live_server, new_context, tmp_path) -> None:
    server = live_server(build_app(_config(tmp_path, max_steps=30, episodes=2)).asgi)
    page = new_context().new_page()
    page.goto(f"{server.url}/?subject_id=solo_b")
    for episode, key in ((0, "ArrowRight"), (1, "ArrowDown")):
        page.wait_for_function(f"window.interactiveGym.game && window.interactiveGym.game.phase === 'playing' "
                               f"&& window.interactiveGym.game.episode === {episode}", timeout=60_000)
        page.keyboard.down(key)
        page.wait_for_timeout(500)
        page.keyboard.up(key)
        if episode == 0:
            page.wait_for_function("window.interactiveGym.game.phase !== 'playing'", timeout=20_000)
    page.wait_for_selector("#game-status[data-state=over]", timeout=30_000)
    assert page.get_attribute("#game-status", "data-reason") == "complete"
    page.click("#continue")
    page.wait_for_selector(".scene-end")

    db = tmp_path / "b.sqlite"
    out = tmp_path / "csv"
    assert cli_main(["export", str(db_under_test.location_for(db)), "--out", str(out)]) == 0
    with (out / "steps.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["episode"] for r in rows] == ["0"] * 30 + ["1"] * 30
    assert {r["mode"] for r in rows} == {"browser"}
    for episode, key in (("0", "ArrowRight"), ("1", "ArrowDown")):
        keys = [json.loads(r["keys.agent_0"]) for r in rows if r["episode"] == episode]
        assert 3 <= keys.count([key]) <= 8, keys  # ~500 ms at 10 fps
        assert all(k in ([], [key]) for k in keys)
    for row in rows:
        held = json.loads(row["keys.agent_0"])
        assert int(row["action.agent_0"]) == (MOVES[held[-1]] if held else 0)
    with db_under_test.connect(db) as con:
        episodes = con.execute("SELECT episode, status, seed, env_hash FROM episodes ORDER BY episode").fetchall()
    assert [(e, s) for e, s, _, _ in episodes] == [(0, "complete"), (1, "complete")]
    assert episodes[0][2] != episodes[1][2] and episodes[0][3]  # server-chosen seeds; the code's hash recorded

    for episode in ("0", "1"):
        code = cli_main(["replay", str(db_under_test.location_for(db)), "--participant", "solo_b", "--episode", episode,
                         "--experiment", str(ROOT / "examples" / "demo" / "experiment.py")])
        assert code == 0


def test_tab_closed_mid_episode_leaves_a_partial_episode(live_server, new_context, tmp_path) -> None:
    server = live_server(build_app(_config(tmp_path, max_steps=10_000, episodes=1)).asgi)
    page = new_context().new_page()
    page.goto(f"{server.url}/?subject_id=closer")
    page.wait_for_function("window.interactiveGym.game && window.interactiveGym.game.phase === 'playing'",
                           timeout=60_000)
    page.keyboard.down("ArrowLeft")
    page.wait_for_timeout(1200)
    page.close(run_before_unload=True)  # the participant closes the tab mid-episode

    db = tmp_path / "b.sqlite"
    deadline = time.monotonic() + 10
    rows: list = []
    while time.monotonic() < deadline and not rows:
        with db_under_test.connect(db) as con:
            rows = con.execute("SELECT id, status, meta FROM episodes").fetchall()
        time.sleep(0.1)
    assert rows, "the partial episode never reached the server"
    episode_id, status, meta = rows[0]
    assert status == "partial"
    assert json.loads(meta)["end_reason"] == "page_closed"
    with db_under_test.connect(db) as con:
        steps = con.execute("SELECT COUNT(*) FROM steps WHERE episode_id=?", (episode_id,)).fetchone()[0]
    assert steps >= 5  # what was played before the tab closed is kept
