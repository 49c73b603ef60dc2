"""The test helper that runs a real redis-server: it starts, answers, keeps nothing on disk and stops."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import redis
from redis_server import RedisServer, RedisUnavailableError, running_redis


def test_a_started_server_answers_at_its_url_and_is_gone_after_stop() -> None:
    with running_redis() as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
        process = server._process
        root = server.root
    assert process is not None and process.poll() is not None
    assert not root.exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=1).ping()


def test_a_server_that_cannot_start_fails_with_its_output(tmp_path: Path) -> None:
    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'no such option' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    server = RedisServer(binary=broken)
    with pytest.raises(RedisUnavailableError, match="exited with 3: no such option"):
        server.start()
    assert not server.root.exists()


def test_stop_twice_is_harmless() -> None:
    server = RedisServer()
    server.start()
    server.stop()
    server.stop()
    assert not os.path.exists(server.root)
