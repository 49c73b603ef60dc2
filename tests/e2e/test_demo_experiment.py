"""A participant completes the demo experiment in real Chromium: consent, instructions, the game with real key
presses, the survey, the end page. The data is then exported to CSV and checked against what was pressed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import db_under_test
from experiment_harness import build_app, load_example

from interactive_gym.cli import main as cli_main


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_participant_completes_demo_and_export_matches_keys(live_server, new_context, tmp_path: Path) -> None:
    example = load_example("examples/demo/experiment.py")
    db = tmp_path / "demo.sqlite"
    app = build_app(example.build_config(max_steps=40, fps=10, db=str(db), browser_episodes=1))
    server = live_server(app.asgi)
    page = new_context().new_page()
    page.goto(f"{server.url}/?PROLIFIC_PID=e2e_solo_1&STUDY_ID=study9&SESSION_ID=sess3")

    # Consent: continuing is impossible until the box is ticked.
    page.wait_for_selector(".scene-start")
    assert page.is_disabled("#continue")
    page.check("#consent")
    page.click("#continue")
    page.wait_for_selector(".scene-static[data-scene-id=instructions]")
    page.click("#continue")

    # The game: hold Right, pause, hold Down, with real key events.
    page.wait_for_selector("#game-status[data-state=playing]", timeout=15_000)
    page.wait_for_function("window.interactiveGym.game.frames > 3")
    page.keyboard.down("ArrowRight")
    page.wait_for_timeout(700)
    page.keyboard.up("ArrowRight")
    page.wait_for_timeout(400)
    page.keyboard.down("ArrowDown")
    page.wait_for_timeout(500)
    page.keyboard.up("ArrowDown")
    page.wait_for_selector("#game-status[data-state=over]", timeout=15_000)
    assert page.get_attribute("#game-status", "data-reason") == "complete"
    page.click("#continue")

    # The browser-mode round (Pyodide was preloaded during the earlier scenes): play it through.
    page.wait_for_selector("[data-scene-id=orchard_in_browser]")
    page.wait_for_selector("#game-status[data-state=playing]", timeout=60_000)
    page.keyboard.down("ArrowUp")
    page.wait_for_timeout(500)
    page.keyboard.up("ArrowUp")
    page.wait_for_selector("#game-status[data-state=over]", timeout=30_000)
    assert page.get_attribute("#game-status", "data-reason") == "complete"
    page.click("#continue")

    # The survey.
    page.wait_for_selector(".scene-static[data-scene-id=survey]")
    page.click("#continue")  # nothing answered: the server refuses with a clear message
    page.wait_for_selector("#error:not([hidden])")
    assert "required" in page.text_content("#error")
    page.check("[name=partner_helpful][value='6']")
    page.check("[name=played_before][value=yes]")
    page.fill("[name=comments]", "fun, thanks")
    page.click("#continue")
    page.wait_for_selector(".scene-end")
    assert page.text_content("#completion-code") == "DEMO2026"

    # Export and check: one row per step; the actions recorded are those of the keys pressed.
    out = tmp_path / "csv"
    assert cli_main(["export", str(db_under_test.location_for(db)), "--format", "csv", "--out", str(out)]) == 0
    steps = [row for row in _rows(out / "steps.csv") if row["mode"] == "server"]
    assert len(steps) == 40
    keys = [json.loads(row["keys.agent_0"]) for row in steps]
    actions = [int(row["action.agent_0"]) for row in steps]
    runs = [k for i, k in enumerate(keys) if k and (i == 0 or keys[i - 1] != k)]
    assert runs == [["ArrowRight"], ["ArrowDown"]], runs
    mapping = {"ArrowRight": 4, "ArrowDown": 2}
    for held, action in zip(keys, actions, strict=True):
        assert action == (mapping[held[-1]] if held else 0)
    right_ticks = sum(1 for k in keys if k == ["ArrowRight"])
    assert 4 <= right_ticks <= 10  # 700 ms at 10 fps, with generous slack for scheduling

    participants = _rows(out / "participants.csv")
    assert len(participants) == 1
    assert participants[0]["participant_id"] == "e2e_solo_1"
    assert participants[0]["status"] == "completed"
    assert participants[0]["completion_code"] == "DEMO2026"
    assert participants[0]["url_param.STUDY_ID"] == "study9"

    scenes = {row["scene_id"]: row for row in _rows(out / "scenes.csv")}
    assert scenes["survey"]["answer.partner_helpful"] == "6"
    assert scenes["survey"]["answer.played_before"] == "yes"
    assert scenes["survey"]["answer.comments"] == "fun, thanks"
    assert scenes["consent"]["answer.consent"] in ("True", "true", "1")

    browser_steps = [row for row in _rows(out / "steps.csv") if row["mode"] == "browser"]
    assert len(browser_steps) == 40
    assert any(json.loads(row["keys.agent_0"]) == ["ArrowUp"] for row in browser_steps)
    with db_under_test.connect(db) as con:
        statuses = con.execute("SELECT mode, status FROM episodes ORDER BY id").fetchall()
    assert statuses == [("server", "complete"), ("browser", "complete")]


def test_reload_resumes_and_second_tab_is_refused(live_server, new_context, tmp_path: Path) -> None:
    example = load_example("examples/demo/experiment.py")
    app = build_app(example.build_config(max_steps=20, fps=10, db=str(tmp_path / "d.sqlite")))
    server = live_server(app.asgi)
    context = new_context()
    page = context.new_page()
    url = f"{server.url}/?subject_id=reloader"
    page.goto(url)
    page.check("#consent")
    page.click("#continue")
    page.wait_for_selector("[data-scene-id=instructions]")
    page.reload()
    page.wait_for_selector("[data-scene-id=instructions]")  # resumed where they were

    other = context.new_page()  # same browser, another tab: refused clearly
    other.goto(url)
    other.wait_for_selector("[data-refused=refused_other_tab]")
    assert "another tab" in other.text_content("[data-refused]")
    page.click("#continue")
    page.wait_for_selector("#game-status[data-state=playing]")
