"""Fixtures shared by the unit tests: a real PostgreSQL server, and the storage engines to run tests on.

``new_db`` is parametrized over both engines, so a test that takes it runs once on SQLite (a file in the
test's temporary folder) and once on PostgreSQL (a fresh schema on one server started for the session by
``tests/postgres_server.py``). Missing PostgreSQL binaries fail those tests with the command that installs
them; nothing is skipped.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the PostgreSQL and Redis server helpers

from postgres_server import PostgresServer, running_server  # noqa: E402
from redis_server import RedisServer, running_redis  # noqa: E402

from interactive_gym.server.storage import Location  # noqa: E402

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session (stopped and deleted at the end)."""
    with running_server() as server:
        yield server


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The storage engine this run of the test uses."""
    return str(request.param)


@pytest.fixture
def new_db(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., Location]:
    """Makes fresh, empty database locations: ``new_db()`` or ``new_db("name")``; each call a new database."""
    if engine == "sqlite":
        numbers = itertools.count()
        return lambda name="exp": tmp_path / f"{name}{next(numbers) or ''}.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return lambda name="exp": server.new_schema(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real ``redis-server`` for the whole session (tests/redis_server.py; fails, never skips, without it)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def empty_redis(redis_server: RedisServer) -> RedisServer:
    """The session's Redis, emptied first: for tests whose experiments (hence keys) repeat from test to test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    return redis_server
