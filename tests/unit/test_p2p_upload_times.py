"""p2p uploads are stored on the server's clock: page time + the page's offset estimate, the page's readings
kept, the arrival apart; the times are checked against the arrival, and an upload without clock is refused.
Real DataWriter and SQLite; the game is started through P2PMode as two real joins."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.p2p_mode import P2PMode
from interactive_gym.server.storage import Storage
from interactive_gym.server.upload_validation import CLOCK_SLACK_S

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402
from mode_fakes import FakeHooks, FakeSio, FakeWebrtc, run  # noqa: E402

AGENTS = ("agent_0", "agent_1")
LEAD_S = 30.0  # the server's clock is 30 s ahead of the page's


def step(t: int, ts: float, last: bool) -> dict[str, Any]:
    return {"t": t, "keys": {"agent_0": [], "agent_1": []}, "actions": dict.fromkeys(AGENTS, 0),
            "rewards": dict.fromkeys(AGENTS, 0.0), "terminated": dict.fromkeys(AGENTS, False),
            "truncated": dict.fromkeys(AGENTS, last), "client_ts": ts}


def upload(config: dict[str, Any], game_id: str, page_start: float, offset_s: float | None) -> dict[str, Any]:
    """What p2p_game.js sends: the host's rows (page clock) and clockFromSteps' clock with the estimate."""
    steps = [step(t, page_start + 0.1 * t, t == 2) for t in range(3)]
    return {"scene_id": config["scene_id"], "episode": 0, "seed": config["seeds"][0],
            "bundle_hash": config["bundle"]["hash"], "partial": False, "end_reason": "done", "steps": steps,
            "game_id": game_id, "stats": {},
            "clock": {"started_at": steps[0]["client_ts"], "ended_at": steps[-1]["client_ts"],
                      "offset_s": offset_s, "rtt_s": None if offset_s is None else 0.04}}


async def played(db: Path, make_payload: Any) -> tuple[dict[str, Any], float, float]:
    """Starts a game of two, uploads ann's payload; returns the ack and the server time around the upload."""
    width, height = gatherers.canvas_size()
    scene = GymScene("duo", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width, height=height,
                     controls={"ArrowUp": gatherers.UP}, default_action=gatherers.STAY,
                     policy_mapping=dict.fromkeys(AGENTS, "human"), mode="p2p", max_steps=3, num_episodes=1)
    config = RemoteConfig().experiment("p2p_times", stager=Stager([scene, EndScene("end")]), db=db)
    config.validate()
    writer = DataWriter(db, experiment_id="p2p_times")
    await writer.start()
    sio = FakeSio()
    people = [Participant(pid, {}, [scene], tab_id=pid, sid=f"sid-{pid}") for pid in ("ann", "bob")]
    hooks = FakeHooks({p.participant_id: p for p in people}, sio)
    mode = P2PMode(sio, writer, BrowserScenes(config), FakeWebrtc(), hooks)
    for person in people:
        await mode.join(person, scene, None)
    ready = next(data for event, data, to in sio.emits if event == "pyodide_game_ready" and to == "sid-ann")
    before = time.time()
    ack = await mode.upload(people[0], make_payload(ready["config"], ready["game_id"]))
    after = time.time()
    await writer.close()
    return ack, before, after


def stored(db: Path) -> tuple[Any, list[Any]]:
    with Storage(db, readonly=True) as storage:
        (episode,) = storage.episodes()
        return episode, storage.steps(episode.id)


def test_stored_times_are_the_page_times_corrected_by_the_offset(tmp_path: Path) -> None:
    db = tmp_path / "p2p.sqlite"
    page_start = time.time() - LEAD_S - 5.0  # played 5 s ago on the server's clock, by a page 30 s behind
    ack, before, after = run(played(db, lambda c, g: upload(c, g, page_start, LEAD_S)))
    assert ack == {"ok": True}
    episode, steps = stored(db)
    assert episode.mode == "p2p" and episode.source == "ann"
    assert episode.started_at == pytest.approx(page_start + LEAD_S)
    assert episode.ended_at == pytest.approx(page_start + 0.2 + LEAD_S)
    assert [s.server_ts for s in steps] == pytest.approx([page_start + LEAD_S + 0.1 * t for t in range(3)])
    assert [s.client_ts for s in steps] == pytest.approx([page_start + 0.1 * t for t in range(3)])
    assert (episode.client_started_at, episode.clock_offset) == (pytest.approx(page_start), LEAD_S)
    assert before <= episode.received_at <= after  # type: ignore[operator]
    assert episode.meta["time_flags"] == [] and episode.meta["clock_rtt_s"] == 0.04


def test_times_after_the_arrival_are_flagged_not_lost(tmp_path: Path) -> None:
    """The arrival time reaches the check: an episode that claims to have ended in the future is flagged."""
    db = tmp_path / "p2p.sqlite"
    page_start = time.time() + CLOCK_SLACK_S + 60.0  # the corrected end lies far after the arrival
    ack, _, _ = run(played(db, lambda c, g: upload(c, g, page_start, 0.0)))
    assert ack == {"ok": True}
    episode, steps = stored(db)
    assert episode.meta["time_flags"] == ["implausible_time"] and len(steps) == 3


def test_an_upload_without_clock_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "p2p.sqlite"

    def no_clock(config: dict[str, Any], game_id: str) -> dict[str, Any]:
        payload = upload(config, game_id, time.time() - 5.0, None)
        del payload["clock"]
        return payload

    ack, _, _ = run(played(db, no_clock))
    assert (ack["ok"], ack["code"]) == (False, "bad_clock")
    with Storage(db, readonly=True) as storage:
        assert storage.episodes() == []
