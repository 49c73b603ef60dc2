"""Several workers of one experiment on one real Redis and one database: who serves whom, and games of
participants who arrived at different workers.

Real processes (each worker its own interpreter, as ``interactive-gym run --workers`` starts them), a real
``redis-server``, the shared SQLite file, and python-socketio clients that behave like the page (they keep
the route the server names and follow ``relocate``). The clients connect to a worker directly, as the front
would send them, so each test chooses where every participant arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from worker_cluster import Participant, Worker, running_workers

WAIT_S = 90.0


def run(coro: Any) -> Any:
    """``asyncio.run`` in a worker thread (in a full session Playwright's loop may own this thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=WAIT_S + 60)


async def _play(people: list[Participant]) -> None:
    try:
        await asyncio.gather(*(p.enter() for p in people))
        await asyncio.gather(*(p.join() for p in people))
        await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in people)), timeout=WAIT_S)
    finally:
        await asyncio.gather(*(p.close() for p in people))


def _episodes(db: Path) -> list[tuple[str, dict[str, str], int]]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT status, agents, (SELECT COUNT(*) FROM steps WHERE episode_id = episodes.id)"
                           " FROM episodes ORDER BY id").fetchall()
    return [(status, json.loads(agents), steps) for status, agents, steps in rows]


def test_a_pair_that_arrived_at_two_workers_plays_one_game_on_one_of_them(empty_redis, tmp_path: Path) -> None:
    db = tmp_path / "pairs.sqlite"
    with running_workers(["w0", "w1"], str(db), empty_redis.url, tmp_path) as workers:
        alice, bob = Participant("alice", workers, "w0"), Participant("bob", workers, "w1")
        run(_play([alice, bob]))
    for person in (alice, bob):
        assert person.errors == []
        assert person.game_over is not None and person.game_over.get("reason") == "complete", person.game_over
        assert person.renders >= 25  # the whole game was drawn for both
    # The worker where the group completed hosts the game; the other's page was moved there, once.
    moved, stayed = (alice, bob) if alice.relocations else (bob, alice)
    assert (moved.relocations, stayed.relocations) == (1, 0)
    assert moved.routes_seen == [moved.routes_seen[0], stayed.routes_seen[0]] and len(stayed.routes_seen) == 1
    assert moved.routes_seen[0] != stayed.routes_seen[0]
    [(status, agents, steps)] = _episodes(db)
    assert status == "complete" and steps == 30
    assert sorted(agents.values()) == ["alice", "bob"]


def test_a_page_that_reaches_the_wrong_worker_is_sent_to_the_one_that_serves_it(empty_redis, tmp_path: Path) -> None:
    db = tmp_path / "wrong.sqlite"

    async def scenario(workers: dict[str, Worker]) -> tuple[Participant, Participant]:
        first = Participant("carol", workers, "w0")
        await first.enter()
        await first.close()
        # The same browser (its resume secret) comes back, but its handshake names the other worker.
        again = Participant("carol", workers, "w1", secrets=dict(first.secrets))
        try:
            await again.enter()
        finally:
            await again.close()
        return first, again

    with running_workers(["w0", "w1"], str(db), empty_redis.url, tmp_path) as workers:
        first, again = run(scenario(workers))
    assert first.routes_seen == ["w0"] and first.relocations == 0
    assert again.routes_seen == ["w1", "w0"] and again.relocations == 1  # w1 knew w0 serves carol
    assert again.errors == []  # resumed (the secret matched), not refused


def test_500_simultaneous_joins_across_two_workers_form_disjoint_groups(empty_redis, tmp_path: Path) -> None:
    db = tmp_path / "crowd.sqlite"
    with running_workers(["w0", "w1"], str(db), empty_redis.url, tmp_path, max_steps=5) as workers:
        people = [Participant(f"p{i:03d}", workers, f"w{i % 2}") for i in range(500)]
        run(_play(people))
    assert [p.errors for p in people if p.errors] == []
    assert all(p.game_over is not None and p.game_over.get("reason") == "complete" for p in people)
    episodes = _episodes(db)
    assert len(episodes) == 250 and {status for status, _, _ in episodes} == {"complete"}
    played = Counter(pid for _, agents, _ in episodes for pid in agents.values())
    assert played == Counter({p.subject_id: 1 for p in people})  # everyone in exactly one game
    by_game: dict[str | None, set[str]] = {}
    for person in people:
        by_game.setdefault(person.game_id, set()).add(person.routes_seen[-1])
    assert len(by_game) == 250 and all(len(routes) == 1 for routes in by_game.values())  # each game on one worker
    moved = sum(p.relocations for p in people)
    assert 0 < moved <= 250  # at most one member of each pair was moved


def test_a_worker_killed_mid_game_loses_nothing_committed_and_its_players_resume_on_another(
        empty_redis, tmp_path: Path) -> None:
    db = tmp_path / "killed.sqlite"

    async def scenario(workers: dict[str, Worker]) -> tuple[Participant, Participant, str]:
        alice, bob = Participant("alice", workers, "w0"), Participant("bob", workers, "w1")
        people = [alice, bob]
        try:
            await asyncio.gather(*(p.enter() for p in people))
            await asyncio.gather(*(p.join() for p in people))
            while min(p.renders for p in people) < 60:  # two seconds of the game played
                await asyncio.sleep(0.05)
            host = alice.routes_seen[-1]
            workers[host].process.kill()
            await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in people)), timeout=WAIT_S)
        finally:
            await asyncio.gather(*(p.close() for p in people))
        return alice, bob, host

    with running_workers(["w0", "w1"], str(db), empty_redis.url, tmp_path, max_steps=3000) as workers:
        alice, bob, host = run(scenario(workers))
    survivor = "w1" if host == "w0" else "w0"
    for person in (alice, bob):
        assert person.game_over is not None and person.game_over["reason"] == "server_lost", person.game_over
        assert person.routes_seen[-1] == survivor  # taken over by the worker still running
    [(status, agents, steps)] = _episodes(db)
    assert status == "partial" and sorted(agents.values()) == ["alice", "bob"]
    assert 0 < steps < 3000  # what was committed before the kill is kept
    with sqlite3.connect(db) as con:
        lost = con.execute("SELECT participant_id FROM events WHERE kind = 'game_lost'").fetchall()
        [meta] = con.execute("SELECT meta FROM episodes").fetchone()
    assert [pid for (pid,) in lost] in (["alice"], ["bob"])  # closed once, by whoever was taken over first
    assert json.loads(meta)["ended_by"] == "server_lost"


def test_a_moved_page_that_never_arrives_sends_its_partner_back_to_the_queue(empty_redis, tmp_path: Path) -> None:
    db = tmp_path / "ghost.sqlite"

    async def scenario(workers: dict[str, Worker]) -> tuple[Participant, Participant, Participant]:
        # Whichever of the two is asked to move (the pair forms on either worker) never arrives.
        first = Participant("first", workers, "w0", ignore_relocations=1)
        second = Participant("second", workers, "w1", ignore_relocations=1)
        carol = Participant("carol", workers, "w1")
        try:
            await first.enter()
            await first.join()
            await second.enter()
            await second.join()
            await asyncio.sleep(1.0)
            assert first.game_id is None and second.game_id is None  # gathering: the moved one never comes
            assert first.ignored + second.ignored == 1
            await carol.enter()
            await carol.join()  # queued: the one who stayed is still in the gathered group
            stayed = first if second.ignored else second
            await asyncio.wait_for(asyncio.gather(stayed.done.wait(), carol.done.wait()), timeout=WAIT_S)
        finally:
            await asyncio.gather(*(p.close() for p in (first, second, carol)))
        return stayed, second if stayed is first else first, carol

    with running_workers(["w0", "w1"], str(db), empty_redis.url, tmp_path) as workers:
        stayed, gone, carol = run(scenario(workers))
    for person in (stayed, carol):
        assert person.game_over is not None and person.game_over["reason"] == "complete"
    # After 15 s the one who stayed was queued again and matched with carol; the one who never came plays no game.
    assert gone.game_id is None and stayed.game_id == carol.game_id is not None
    [(status, agents, steps)] = _episodes(db)
    assert status == "complete" and sorted(agents.values()) == sorted([stayed.subject_id, "carol"])


def test_after_a_single_server_is_killed_mid_game_its_players_see_that_game_over(empty_redis, tmp_path: Path) -> None:
    db = tmp_path / "restart.sqlite"

    async def play_until_killed(workers: dict[str, Worker]) -> list[Participant]:
        people = [Participant(name, workers, "w0") for name in ("alice", "bob")]
        try:
            await asyncio.gather(*(p.enter() for p in people))
            await asyncio.gather(*(p.join() for p in people))
            while min(p.renders for p in people) < 60:
                await asyncio.sleep(0.05)
            workers["w0"].process.kill()
        finally:
            await asyncio.gather(*(p.close() for p in people))
        return people

    async def come_back(workers: dict[str, Worker], before: list[Participant]) -> list[Participant]:
        people = [Participant(p.subject_id, workers, "w0", secrets=dict(p.secrets)) for p in before]
        try:
            await asyncio.gather(*(p.connect() for p in people))
            await asyncio.wait_for(asyncio.gather(*(p.done.wait() for p in people)), timeout=WAIT_S)
        finally:
            await asyncio.gather(*(p.close() for p in people))
        return people

    # Plain one-process serving (no Redis): the restart path, not the worker takeover.
    with running_workers(["w0"], str(db), "-", tmp_path, max_steps=3000) as workers:
        before = run(play_until_killed(workers))
    with running_workers(["w0"], str(db), "-", tmp_path, max_steps=3000) as workers:
        after = run(come_back(workers, before))
    for person in after:
        assert person.errors == []
        assert person.game_over is not None and person.game_over["reason"] == "server_lost", person.game_over
    [(status, _, steps)] = _episodes(db)
    assert status == "partial" and 0 < steps < 3000
