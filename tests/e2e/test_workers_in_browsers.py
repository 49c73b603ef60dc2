"""``interactive-gym run --workers 2`` in real browsers: two pages whose sockets reach different workers end
up in one game on one worker, in server mode and peer to peer.

The whole command runs (front, two worker processes, a real ``redis-server``, the database under test). Each
page is pinned to a worker before it loads (its stored route, as a page that visited before has), so the
split is certain; the worker where the pair formed hosts the game and the other page is moved there by
``relocate`` (the real page code: its route in the handshake query, then a reconnect through the front).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import db_under_test
import pytest
from conftest import free_port
from p2p_experiments import play_randomly, read_db, wait_over, wait_playing
from playwright.sync_api import Page
from redis_server import RedisServer, running_redis
from worker_cluster import answers_healthz

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "fixtures" / "cluster_pairs.py"
START_TIMEOUT_S = 90.0


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@contextlib.contextmanager
def workers_cli(db: Path, redis_url: str, log: Path, **env: str) -> Iterator[str]:
    """``interactive-gym run --workers 2`` on a free port until the block ends; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "interactive_gym.cli", "run", str(EXPERIMENT), "--port", str(port),
               "--db", str(db_under_test.location_for(db)), "--workers", "2", "--redis", redis_url,
               "--skip-preflight", "--log-level", "warning"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**os.environ, **env})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (answers_healthz(port) and "Workers: w0, w1" in log.read_text(errors="replace")):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pinned_page(new_context, url: str, subject: str, experiment_id: str, route: str) -> Page:
    context = new_context()
    # As if this browser had been served by `route` before: the page's handshake names it.
    context.add_init_script(f"localStorage.setItem('ig-route:{experiment_id}', '{route}')")
    page = context.new_page()
    lines: list[str] = []
    page.on("console", lambda m: lines.append(f"{m.type}: {m.text}"))
    page.console_lines = lines  # type: ignore[attr-defined]
    page.goto(f"{url}/?subject_id={subject}")
    return page


def _route(page: Page) -> str:
    return str(page.evaluate("window.interactiveGym.socket.io.opts.query.ig_route"))


def test_a_server_game_pair_split_across_two_workers_plays_on_one(redis, new_context, tmp_path: Path) -> None:
    db = tmp_path / "workers.sqlite"
    with workers_cli(db, redis.url, tmp_path / "run.log", IG_TEST_MAX_STEPS="60") as url:
        alice = _pinned_page(new_context, url, "alice", "cluster_pairs", "w0")
        alice.wait_for_selector("#game-status[data-state=waiting]")
        bob = _pinned_page(new_context, url, "bob", "cluster_pairs", "w1")
        for page in (alice, bob):
            page.wait_for_selector("#game-status[data-state=playing]", timeout=30_000)
        # Bob completed the pair at w1: the game is hosted there and alice's page moved.
        assert (_route(alice), _route(bob)) == ("w1", "w1")
        alice.keyboard.down("ArrowUp")
        bob.keyboard.down("ArrowDown")
        for page in (alice, bob):
            page.wait_for_selector("#game-status[data-state=over]", timeout=30_000)
            assert page.get_attribute("#game-status", "data-reason") == "complete"
            page.click("#continue")
            page.wait_for_selector(".scene-end")
    with db_under_test.connect(db) as con:
        [(status, agents_json, steps)] = con.execute(
            "SELECT status, agents, (SELECT COUNT(*) FROM steps WHERE episode_id = episodes.id) FROM episodes"
        ).fetchall()
        keys = [json.loads(k) for (k,) in con.execute("SELECT keys FROM steps ORDER BY t").fetchall()]
    agents = json.loads(agents_json)
    assert status == "complete" and steps == 60 and sorted(agents.values()) == ["alice", "bob"]
    by_person = {pid: agent for agent, pid in agents.items()}
    # Each page's own key reached the hosting worker and drove its own agent (alice's through her move).
    assert any(k[by_person["alice"]] == ["ArrowUp"] for k in keys)
    assert any(k[by_person["bob"]] == ["ArrowDown"] for k in keys)


def test_a_p2p_pair_split_across_two_workers_signals_and_plays(redis, new_context, tmp_path: Path) -> None:
    db = tmp_path / "workers_p2p.sqlite"
    with workers_cli(db, redis.url, tmp_path / "run.log", IG_TEST_MODE="p2p", IG_TEST_MAX_STEPS="150") as url:
        alice = _pinned_page(new_context, url, "alice", "fruit_gatherers_p2p", "w0")
        alice.wait_for_selector("#game-status[data-state=waiting]", timeout=60_000)
        bob = _pinned_page(new_context, url, "bob", "fruit_gatherers_p2p", "w1")
        pages = [alice, bob]
        wait_playing(pages)
        assert (_route(alice), _route(bob)) == ("w1", "w1")  # signaling and the game's room on one worker
        assert play_randomly(pages, seed=3) > 5
        for page in pages:
            assert wait_over(page) == "complete"
    data = read_db(db)
    assert [e["status"] for e in data["episodes"]] == ["complete", "complete"]
    assert data["verdicts"] and all(v["agree"] for v in data["verdicts"])
    assert {e["meta"]["network"]["connection"]["type"] for e in data["episodes"]} == {"direct"}
