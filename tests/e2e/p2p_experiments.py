"""Experiments and page drivers for the p2p game tests and the p2p latency benchmark.

The experiment is the demo's p2p pair (``examples/demo/p2p_pair.py``: consent-free, two humans, Fruit Gatherers)
with test settings: a short game, its own database, loopback-only ICE servers (never Open Relay from a test) and,
when asked, a transport fault profile.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import db_under_test
from experiment_harness import build_app, load_example
from playwright.sync_api import Page

SCENE = "orchard_p2p"
GAME_KEYS = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]


def p2p_app(db: Path, *, max_steps: int = 150, fps: int = 30, num_episodes: int = 1, input_delay: int | str = 2,
            disconnect_grace_s: float = 5.0, webrtc: dict[str, Any] | None = None,
            faults: dict[str, Any] | None = None) -> Any:
    """Builds the app of a p2p experiment; ``webrtc`` defaults to no STUN/TURN at all (loopback only)."""
    example = load_example("examples/demo/p2p_pair.py")
    settings = {"stun_urls": [], **(webrtc or {})}
    config = example.build_config(max_steps=max_steps, fps=fps, num_episodes=num_episodes, input_delay=input_delay,
                                  disconnect_grace_s=disconnect_grace_s, db=str(db), consent=False, webrtc=settings)
    config.test_faults = faults
    return build_app(config)


def open_player(page: Page, url: str, subject: str) -> Page:
    """Opens the experiment as ``subject``; the page's console is kept in ``page.console_lines`` for failures."""
    lines: list[str] = []
    page.on("console", lambda m: lines.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: lines.append(f"pageerror: {e}"))
    page.console_lines = lines  # type: ignore[attr-defined]
    page.goto(f"{url}/?subject_id={subject}")
    return page


def wait_playing(pages: list[Page], timeout_ms: float = 60_000) -> None:
    for page in pages:
        page.wait_for_selector("#game-status[data-state=playing]", timeout=timeout_ms)


def play_randomly(pages: list[Page], seed: int, gap_ms: float = 120, timeout_s: float = 120.0) -> int:
    """Taps random arrow keys on every page in turn until every game is over; returns the number of presses."""
    rng = random.Random(seed)
    presses = 0
    deadline = time.monotonic() + timeout_s
    while True:
        states = [p.get_attribute("#game-status", "data-state") for p in pages]
        if all(s == "over" for s in states):
            return presses
        assert time.monotonic() < deadline, f"games did not end in {timeout_s} s: {states}"
        for page, state in zip(pages, states, strict=True):
            if state == "playing":
                page.keyboard.press(rng.choice(GAME_KEYS))
                presses += 1
        pages[0].wait_for_timeout(gap_ms)


def wait_over(page: Page, timeout_ms: float = 60_000) -> str:
    """Waits for the game-over state; returns the reason (with the page's result and console if not complete)."""
    page.wait_for_selector("#game-status[data-state=over]", timeout=timeout_ms)
    reason = page.get_attribute("#game-status", "data-reason") or ""
    if reason != "complete":
        result = page.evaluate("JSON.stringify(window.interactiveGym.p2p.result)")
        print(f"game over: {reason}; result {result}; console:", *page.console_lines[-30:], sep="\n")  # type: ignore[attr-defined]
    return reason


def read_db(db: Path) -> dict[str, Any]:
    """Episodes (with their network meta and steps) and parity verdicts of the experiment's database."""
    with db_under_test.connect(db) as con:
        episodes = []
        for row in con.execute("SELECT id, game_id, episode, source, status, meta, agents FROM episodes "
                               "WHERE mode='p2p' ORDER BY episode, source"):
            episode_id, game_id, episode, source, status, meta, agents = row
            steps = con.execute("SELECT t, actions, rewards, terminated, truncated, keys FROM steps "
                                "WHERE episode_id=? ORDER BY t", (episode_id,)).fetchall()
            episodes.append({"game_id": game_id, "episode": episode, "source": source, "status": status,
                             "meta": json.loads(meta), "agents": json.loads(agents),
                             "steps": [{"t": s[0], "actions": json.loads(s[1]), "rewards": json.loads(s[2]),
                                        "terminated": json.loads(s[3]), "truncated": json.loads(s[4]),
                                        "keys": json.loads(s[5])} for s in steps]})
        verdicts = [json.loads(d) for (d,) in con.execute("SELECT data FROM events WHERE kind='p2p_parity'")]
    return {"episodes": episodes, "verdicts": verdicts}
