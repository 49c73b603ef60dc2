"""``interactive-gym run experiment.py``: serve an experiment."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import socket
from pathlib import Path
from typing import Any

from interactive_gym.cli import UserError
from interactive_gym.configurations.remote_config import ConfigError, RemoteConfig
from interactive_gym.experiment_loader import ExperimentFileError, load_experiment
from interactive_gym.preflight import PreflightError, PreflightReport, run_preflight
from interactive_gym.server.storage_connection import describe
from interactive_gym.server.storage_postgres import is_postgres_url

# Behind a reverse proxy on the same machine the server sees every connection coming from loopback; the
# proxy's X-Forwarded-* headers then say who the participant is and whether they used https/wss. Headers from
# any other sender are ignored, so a participant cannot fake them.
LOOPBACK_PROXIES = "127.0.0.1,::1"
MAX_WORKER_NAME = 999  # cluster/options.py WORKER_NAME: w and up to three digits
MAX_WORKERS = 64


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="serve an experiment to participants",
        description="Serve the experiment defined in EXPERIMENT (a Python file with a module-level `config = "
                    "RemoteConfig()...`). The configuration is checked completely before the server starts.",
    )
    parser.add_argument("experiment", help="path to the experiment's Python file")
    parser.add_argument("--host", help="address to listen on (overrides config.hosting; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (overrides config.hosting; default 8000)")
    parser.add_argument("--db", help="where the data goes: an SQLite file (default data/<experiment_id>.sqlite) or "
                                     "postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="how much the server prints (default info)")
    parser.add_argument("--skip-preflight", action="store_true",
                        help="start without playing each game scene's first frames first (not recommended)")
    parser.add_argument("--forwarded-allow-ips", default=LOOPBACK_PROXIES, metavar="IPS",
                        help="comma-separated addresses or networks of the reverse proxies (nginx) whose "
                             "X-Forwarded-For/-Proto headers name the participant's address and scheme; '*' "
                             "trusts every sender (only if nothing but the proxy can reach the port); default "
                             f"{LOOPBACK_PROXIES}: nginx on this machine")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="server processes behind the one port (default 1); 2 or more need --redis")
    parser.add_argument("--redis", metavar="URL",
                        help="redis://HOST:PORT of the Redis server the workers share (with --workers 2 or more)")
    parser.add_argument("--first-worker", type=int, default=0, metavar="K",
                        help="name the workers wK, wK+1, ... (default 0); on several machines sharing one Redis "
                             "give each machine its own range, e.g. 0 and 8")
    parser.set_defaults(func=run)


def check_workers(count: int, redis_url: str | None) -> None:
    """Fails with what to pass when ``--workers`` and ``--redis`` do not go together."""
    if not 1 <= count <= MAX_WORKERS:
        raise UserError(f"--workers {count}: give a number from 1 to {MAX_WORKERS}")
    if count > 1 and not redis_url:
        raise UserError(f"--workers {count} needs --redis redis://HOST:PORT: the workers share waiting rooms and "
                        "messages through a Redis server (on Debian/Ubuntu: apt-get install redis-server; it "
                        "listens on redis://127.0.0.1:6379)")
    if count == 1 and redis_url:
        raise UserError("--redis is for several workers: pass --workers 2 or more with it, or leave it out")


def trusted_proxies(text: str) -> list[str]:
    """Parses ``--forwarded-allow-ips``: addresses or networks (``10.0.0.0/8``), or ``*`` for every sender.

    Raises:
        UserError: an entry is neither, naming it.
    """
    entries = [item.strip() for item in text.split(",") if item.strip()]
    if not entries:
        raise UserError("--forwarded-allow-ips is empty: give the proxy's address (e.g. 127.0.0.1) or '*'")
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise UserError(f"--forwarded-allow-ips: {entry!r} is not an IP address or network "
                            "(e.g. 127.0.0.1, 10.0.0.0/8, or '*')") from None
    return entries


# The websocket, HTTP and event-loop implementations (dependencies of the package; uvloop where it exists):
# measured in benchmarks/results/server_capacity_demo_{asyncio_wsproto,uvloop_websockets_sansio}.json.
FAST_PATHS: dict[str, str] = {"ws": "websockets-sansio", "http": "httptools", "loop": "auto"}


def uvicorn_options(host: str, port: int, log_level: str, forwarded_allow_ips: str) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``: where to listen and which proxies to believe.

    The fast implementations are named (``FAST_PATHS``), so a missing one fails at start-up instead of quietly
    costing capacity. Proxy headers are always read (``proxy_headers``), but only from ``forwarded_allow_ips``:
    nginx in front sets ``X-Forwarded-For`` and ``X-Forwarded-Proto``, so the app sees the participant's address
    and ``https``/``wss`` instead of nginx's loopback address and plain ``http``/``ws``.
    """
    return {"host": host, "port": port, "log_level": log_level, "access_log": False, "proxy_headers": True,
            "forwarded_allow_ips": trusted_proxies(forwarded_allow_ips), **FAST_PATHS}


def checked_config(path: str) -> tuple[object, PreflightReport]:
    """Loads and validates the experiment, then runs the preflight; every failure becomes a :class:`UserError`."""
    try:
        config = load_experiment(path)
    except ExperimentFileError as exc:
        raise UserError(str(exc)) from None
    return config, preflight(config)


def config_problems(exc: ConfigError) -> UserError:
    lines = "\n".join(f"  - {p}" for p in exc.problems)
    return UserError(f"the experiment's configuration needs changes before it can run:\n{lines}")


def preflight(config: object) -> PreflightReport:
    """Validates ``config`` and plays every game scene's first frames where it runs.

    Raises:
        UserError: naming the scene, the function, the traceback's last lines and what to change.
    """
    try:
        config.validate()  # type: ignore[attr-defined]
        return run_preflight(config)
    except ConfigError as exc:
        raise config_problems(exc) from None
    except PreflightError as exc:
        raise UserError(f"a game scene failed its first frames, so no participant could play it:\n{exc}") from None
    except RuntimeError as exc:
        raise UserError(str(exc)) from None


def check_port_free(host: str, port: int) -> None:
    """Fails with a clear message if ``host:port`` cannot be bound (in use or not allowed)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is already in use: stop the other server or pass "
                                "--port with a free port") from None
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def check_database(location: Path | str, experiment_id: str) -> None:
    """Opens the experiment database once (creating or upgrading it), so a wrong ``--db`` fails before serving.

    An unreachable PostgreSQL server, a wrong URL or password, a missing database, or a file that is not an
    experiment database becomes a one-line error that says what to change.
    """
    from interactive_gym.server.storage import Storage, StorageError

    try:
        Storage(location, experiment_id=experiment_id).close()
    except StorageError as exc:
        raise UserError(f"--db / config.experiment(db=...): {exc}") from None


def db_location(db: str) -> Path | str:
    """``--db`` as the experiment takes it: a PostgreSQL URL as given, a file path made absolute."""
    return db if is_postgres_url(db) else Path(db).resolve()


def loaded_config(path: str, host: str | None, port: int | None, db: str | None) -> RemoteConfig:
    """The experiment's configuration with the command line's ``--host``, ``--port`` and ``--db`` applied."""
    try:
        config = load_experiment(path)
    except ExperimentFileError as exc:
        raise UserError(str(exc)) from None
    config.hosting(host=host, port=port)
    if db:
        config.experiment(db=db_location(db))
    return config


def announce(config: RemoteConfig, report: PreflightReport | None, log_level: str) -> None:
    """Sets up logging and prints the start-up lines (the preflight's summary, where, the TURN settings)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if report is not None:
        print(report.summary(), flush=True)
    print(f"Serving experiment '{config.experiment_id}' at http://{config.host}:{config.port}/  "
          f"(data: {describe(config.database_path())})", flush=True)
    print(f"WebRTC/TURN: {config.webrtc_settings.describe()}", flush=True)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from interactive_gym.server.app import create_app

    proxies = ",".join(trusted_proxies(args.forwarded_allow_ips))  # a typo fails before any other work
    check_workers(args.workers, args.redis)
    if not 0 <= args.first_worker <= MAX_WORKER_NAME - args.workers + 1:
        raise UserError(f"--first-worker {args.first_worker}: give a number from 0 to "
                        f"{MAX_WORKER_NAME - args.workers + 1} (worker names go up to w{MAX_WORKER_NAME})")
    config = loaded_config(args.experiment, args.host, args.port, args.db)
    report = None if args.skip_preflight else preflight(config)  # preflight validates first
    try:
        if report is None:
            config.validate()
        check_port_free(config.host, config.port)
        check_database(config.database_path(), config.experiment_id)
        if args.workers > 1:
            from interactive_gym.server.cluster.worker_links import worker_problems  # the redis extra

            if problems := worker_problems(config):
                raise ConfigError(problems)
        app = None if args.workers > 1 else create_app(config)
    except ConfigError as exc:
        raise config_problems(exc) from None
    announce(config, report, args.log_level)
    if app is None:
        from interactive_gym.tools.workers import serve_workers

        return serve_workers(args, config, proxies)
    uvicorn.run(app.asgi, **uvicorn_options(config.host, config.port, args.log_level, proxies))
    return 0
