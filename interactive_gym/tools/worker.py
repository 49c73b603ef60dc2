"""One worker of ``interactive-gym run --workers N``: the experiment's app, served through a handoff socket.

``python -m interactive_gym.tools.worker EXPERIMENT --worker w0 --handoff PATH --redis URL [...]``. The
supervisor (workers.py) starts one per worker after it checked the experiment once (preflight, port,
database); this process loads and validates the experiment again (its own copy), builds the app as one
member of the cluster and serves the connections the front hands it (handoff.py). With ``--listen-port`` it
listens itself instead, for a proxy in front that sends each page to its worker by the ``ig_route`` key.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from interactive_gym.cli import UserError
from interactive_gym.configurations.remote_config import ConfigError
from interactive_gym.server.cluster.options import ClusterOptions
from interactive_gym.tools.run import (
    LOOPBACK_PROXIES,
    config_problems,
    loaded_config,
    trusted_proxies,
    uvicorn_options,
)

if TYPE_CHECKING:
    import uvicorn

PARENT_CHECK_S = 1.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m interactive_gym.tools.worker",
                                     description="one worker process of `interactive-gym run --workers N`")
    parser.add_argument("experiment", help="path to the experiment's Python file")
    parser.add_argument("--worker", required=True, help="this worker's name (w0, w1, ...)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--handoff", metavar="PATH", help="the Unix socket the front hands connections to")
    where.add_argument("--listen-port", type=int, metavar="P",
                       help="listen on --host:P itself instead (a proxy that routes by ig_route in front)")
    parser.add_argument("--redis", required=True, metavar="URL", help="the Redis server the workers share")
    parser.add_argument("--db", help="as `interactive-gym run --db`")
    parser.add_argument("--host", help="as `interactive-gym run --host` (not listened on: the front does)")
    parser.add_argument("--port", type=int, help="as `interactive-gym run --port` (not listened on)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--forwarded-allow-ips", default=LOOPBACK_PROXIES, metavar="IPS")
    return parser


def serve(args: argparse.Namespace) -> None:
    """Builds this worker's app and serves it until a signal (or the supervisor's death) stops it."""
    import uvicorn

    from interactive_gym.server.app import create_app
    from interactive_gym.server.cluster.handoff import HandoffServer

    proxies = ",".join(trusted_proxies(args.forwarded_allow_ips))
    try:
        cluster = ClusterOptions(redis_url=args.redis, worker=args.worker)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    config = loaded_config(args.experiment, args.host, args.port, args.db)
    try:
        config.validate()
        app = create_app(config, cluster=cluster)
    except ConfigError as exc:
        raise config_problems(exc) from None
    port = config.port if args.listen_port is None else args.listen_port
    options = uvicorn.Config(app.asgi, **uvicorn_options(config.host, port, args.log_level, proxies))
    server = uvicorn.Server(options) if args.handoff is None else HandoffServer(options, args.handoff)
    watch_parent(server)
    server.run()


def watch_parent(server: uvicorn.Server) -> None:
    """Stops ``server`` when the supervisor is gone (killed outright), so no worker outlives its front."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        server.should_exit = True

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        serve(args)
    except UserError as exc:
        print(f"interactive-gym worker {args.worker}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
