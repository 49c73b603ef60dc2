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
from interactive_gym.configurations.remote_config import ConfigError
from interactive_gym.experiment_loader import ExperimentFileError, load_experiment
from interactive_gym.preflight import PreflightError, PreflightReport, run_preflight
from interactive_gym.server.storage_connection import describe
from interactive_gym.server.storage_postgres import is_postgres_url

# Behind a reverse proxy on the same machine the server sees every connection coming from loopback; the
# proxy's X-Forwarded-* headers then say who the participant is and whether they used https/wss. Headers from
# any other sender are ignored, so a participant cannot fake them.
LOOPBACK_PROXIES = "127.0.0.1,::1"


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
    parser.set_defaults(func=run)



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


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from interactive_gym.server.app import create_app

    proxies = ",".join(trusted_proxies(args.forwarded_allow_ips))  # a typo fails before any other work
    try:
        config = load_experiment(args.experiment)
    except ExperimentFileError as exc:
        raise UserError(str(exc)) from None
    config.hosting(host=args.host, port=args.port)
    if args.db:
        config.experiment(db=args.db if is_postgres_url(args.db) else Path(args.db).resolve())
    report = None if args.skip_preflight else preflight(config)  # preflight validates first
    try:
        if report is None:
            config.validate()
        check_port_free(config.host, config.port)
        check_database(config.database_path(), config.experiment_id)
        app = create_app(config)
    except ConfigError as exc:
        raise config_problems(exc) from None
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if report is not None:
        print(report.summary(), flush=True)
    print(f"Serving experiment '{config.experiment_id}' at http://{config.host}:{config.port}/  "
          f"(data: {describe(config.database_path())})", flush=True)
    print(f"WebRTC/TURN: {config.webrtc_settings.describe()}", flush=True)
    uvicorn.run(app.asgi, **uvicorn_options(config.host, config.port, args.log_level, proxies))
    return 0
