"""``interactive-gym replay`` with one stored row per browser attempt: by default the latest visit's complete row
of its latest attempt (else its latest partial row); ``--scene-index`` and ``--attempt`` choose another."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from interactive_gym.browser.host import BrowserGameHost
from interactive_gym.cli import main
from interactive_gym.controls import KeyMapping
from interactive_gym.rendering import Surface
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.upload_validation import (
    UploadRules,
    browser_game_id,
    episode_write_kwargs,
    validate_episode_upload,
)
from interactive_gym.tools.replay import choose_rows

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
MAPPING = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)
SEED = 21
MAX_STEPS = 25


def row(id_: int, scene_index: int | None, attempt: int | None, status: str = "complete",
        game_id: str = "g") -> SimpleNamespace:
    return SimpleNamespace(id=id_, scene_index=scene_index, attempt=attempt, status=status, game_id=game_id)


@pytest.mark.parametrize(("rows", "expected"), [
    # a reload during the episode: attempt 1 partial, attempt 2 complete -> the complete one
    ([row(1, 0, 1, "partial"), row(2, 0, 2)], [2]),
    # the complete row is in an earlier attempt than a later partial one -> still the complete one
    ([row(1, 0, 1), row(2, 0, 2, "partial")], [1]),
    # two complete attempts (a retried upload) -> the latest
    ([row(1, 0, 1), row(2, 0, 3), row(3, 0, 2)], [2]),
    # no complete row -> the latest attempt's partial row
    ([row(1, 0, 1, "partial"), row(2, 0, 2, "partial")], [2]),
    # a later visit of the scene (a Repeat) wins over an earlier complete one, even if it is partial
    ([row(1, 0, 1), row(2, 4, 1, "partial")], [2]),
    ([row(1, 4, 1, "partial"), row(2, 0, 1)], [1]),
    # rows without visits (server mode, p2p peers): every row of the latest game
    ([row(1, None, None, game_id="a"), row(2, None, None, game_id="b"), row(3, None, None, game_id="b")], [2, 3]),
])
def test_choose_rows(rows: list[SimpleNamespace], expected: list[int]) -> None:
    assert [r.id for r in choose_rows(rows)] == expected


def record(gatherers: Any) -> list[dict[str, Any]]:
    width, height = gatherers.canvas_size()
    host = BrowserGameHost(
        env_factory=gatherers.make_env, render_fn=gatherers.render, env_kwargs={},
        agents={"agent_0": {"kind": "human"}, "agent_1": {"kind": "python", "fn": gatherers.greedy_policy}},
        key_mapping=MAPPING, surface=Surface(width, height), max_steps=MAX_STEPS,
    )
    host.reset(SEED)
    rng = random.Random(SEED)
    while not host.episode_over:
        host.frame(rng.choice(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", ""]))
    return host.steps


def store(db: Path, steps: list[dict[str, Any]], rows: list[tuple[int, int, bool]]) -> None:
    """Stores episode 0 of participant P7 once per (scene_index, attempt, partial); partial rows keep 10 steps."""
    config = {"scene_id": "solo", "fps": 30, "max_steps": MAX_STEPS, "num_episodes": 1, "seeds": [SEED],
              "bundle": {"hash": "h" * 64, "factory": "gatherers:make_env", "render": "gatherers:render",
                         "env_kwargs": {}},
              "agents": {"agent_0": {"kind": "human"}, "agent_1": {"kind": "python", "ref": "gatherers:greedy_policy"}}}
    rules = UploadRules("solo", 1, MAX_STEPS, ("agent_0", "agent_1"), (SEED,), "h" * 64)

    async def write() -> None:
        writer = DataWriter(db, experiment_id="exp")
        await writer.start()
        for scene_index, attempt, partial in rows:
            upload = validate_episode_upload(
                {"scene_id": "solo", "episode": 0, "seed": SEED, "bundle_hash": "h" * 64, "partial": partial,
                 "end_reason": "page_closed" if partial else "done", "steps": steps[:10] if partial else steps},
                participant_id="P7", participant_scene_id="solo", rules=rules)
            kwargs = episode_write_kwargs(upload, config, received_at=1.0)  # type: ignore[arg-type]
            kwargs.update(scene_index=scene_index, attempt=attempt,
                          game_id=browser_game_id("P7", scene_index, attempt))
            await writer.write_episode(**kwargs)
        await writer.close()

    asyncio.run(write())


def replay(capsys: pytest.CaptureFixture[str], db: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["replay", str(db), "--participant", "P7", "--episode", "0", "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def test_the_cli_replays_the_chosen_visit_and_attempt(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(DEMO))
    import gatherers

    db = tmp_path / "data.sqlite"
    # Visit 0: attempt 1 closed after 10 steps, attempt 2 complete, attempt 3 (a later reload) partial again.
    # Visit 3 (the scene repeated): only a partial attempt 1.
    store(db, record(gatherers), [(0, 1, True), (0, 2, False), (0, 3, True), (3, 1, True)])
    monkeypatch.chdir(DEMO)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(DEMO)])

    def chosen(*extra: str) -> tuple[int, int | None, int | None, str, int]:
        code, report = replay(capsys, db, *extra)
        (only,) = report["replays"]
        return code, report["scene_index"], report["attempt"], only["status"], only["steps"]

    assert chosen() == (0, 3, 1, "partial", 10)
    assert chosen("--scene-index", "0") == (0, 0, 2, "complete", MAX_STEPS)
    assert chosen("--scene-index", "0", "--attempt", "3") == (0, 0, 3, "partial", 10)
    assert chosen("--attempt", "1") == (0, 3, 1, "partial", 10)  # the latest visit that has an attempt 1
    assert main(["replay", str(db), "--participant", "P7", "--episode", "0", "--attempt", "7"]) == 2
    assert "no episode 0 of participant 'P7' in attempt 7" in capsys.readouterr().err
    assert main(["replay", str(db), "--participant", "P7", "--episode", "0", "--scene-index", "0"]) == 0
    assert "visit 0 attempt 2" in capsys.readouterr().out
