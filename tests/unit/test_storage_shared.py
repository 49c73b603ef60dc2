"""Several writers on one database at once (server workers): on SQLite one file in WAL mode, on PostgreSQL one
database reached from any machine. Each writer has its own connection, as separate processes would; the rules
that read before they write (attempt numbering, the upload rule, one row per episode key) must hold anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from interactive_gym.server.storage import Location, StepRecord, Storage

WRITERS = 4
ROUNDS = 10
T = TypeVar("T")


def together(location: Location, work: Callable[[Storage, int], T]) -> list[T]:
    """Runs ``work(storage, writer_index)`` in WRITERS threads, each on its own connection, released at once."""
    Storage(location, experiment_id="shared").close()  # the schema exists before the race starts
    barrier = threading.Barrier(WRITERS)

    def one(index: int) -> T:
        with Storage(location, experiment_id="shared") as storage:
            barrier.wait(timeout=30)
            return work(storage, index)

    with ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(one, range(WRITERS)))


def step(t: int) -> StepRecord:
    return StepRecord(t, np.arange(3) + t, {"a": t % 3}, {"a": 1.0}, False, t == 4, {}, {"a": []}, 10.0 + t)


def test_page_loads_on_different_writers_get_distinct_attempts_and_one_set_of_seeds(
    new_db: Callable[..., Location],
) -> None:
    def load_pages(storage: Storage, index: int) -> list[Any]:
        return [storage.issue_browser_attempt("p1", 0, "solo", [index, index, index]) for _ in range(ROUNDS)]

    location = new_db()
    visits = [visit for per_writer in together(location, load_pages) for visit in per_writer]
    numbers = sorted(visit.attempts[-1].attempt for visit in visits)
    assert numbers == list(range(1, WRITERS * ROUNDS + 1))  # no number given twice, none skipped
    assert len({visit.seeds for visit in visits}) == 1  # the first writer's seeds, kept by every later load
    with Storage(location, readonly=True) as reader:
        stored = reader.browser_visit("p1", 0)
    assert stored is not None and len(stored.attempts) == WRITERS * ROUNDS


def test_the_same_upload_from_every_writer_is_stored_once(new_db: Callable[..., Location]) -> None:
    upload = {
        "scene_id": "solo", "game_id": "g1", "episode": 0, "mode": "browser", "source": "p1", "seed": 5,
        "agents": {"a": "p1"}, "status": "complete", "scene_index": 0, "attempt": 1, "client_started_at": 1.0,
        "client_ended_at": 2.0,
    }  # fmt: skip

    def send(storage: Storage, index: int) -> list[int]:
        return [storage.write_episode(**upload, steps=[step(t) for t in range(5)], received_at=float(index))
                for _ in range(ROUNDS)]

    location = new_db()
    ids = {episode_id for per_writer in together(location, send) for episode_id in per_writer}
    with Storage(location, readonly=True) as reader:
        episodes = reader.episodes()
        assert [e.id for e in episodes] == sorted(ids) and len(ids) == 1
        assert episodes[0].step_count == 5 and [s.t for s in reader.steps(episodes[0].id)] == [0, 1, 2, 3, 4]


def test_beginning_one_episode_on_every_writer_gives_one_row(new_db: Callable[..., Location]) -> None:
    def begin(storage: Storage, index: int) -> int:
        return storage.begin_episode(scene_id="game", game_id="g1", episode=0, mode="server", source="server",
                                     seed=1, agents={"a": "p1"})

    location = new_db()
    ids = together(location, begin)
    assert len(set(ids)) == 1
    with Storage(location, readonly=True) as reader:
        assert len(reader.episodes()) == 1


def test_participants_written_by_every_writer_are_all_kept(new_db: Callable[..., Location]) -> None:
    def arrive(storage: Storage, index: int) -> None:
        for n in range(ROUNDS):
            storage.upsert_participant(f"w{index}-p{n}", url_params={"n": n})
            storage.upsert_participant("everyone", status="active", current_scene=f"w{index}")

    location = new_db()
    together(location, arrive)
    with Storage(location, readonly=True) as reader:
        ids = sorted(p.participant_id for p in reader.participants())
    assert ids == sorted(["everyone", *(f"w{i}-p{n}" for i in range(WRITERS) for n in range(ROUNDS))])
