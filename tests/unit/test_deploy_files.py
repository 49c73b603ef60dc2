"""The files in deploy/ agree with the code and with each other: nginx's body limit is the server's own, its
websocket timeout outlasts Engine.IO's pings, the systemd unit's command parses and listens where nginx
sends, the env file sets only variables the server reads and gives a valid ephemeral TURN setup on the ports
coturn listens on, and the firewall list names those ports. (tests/e2e/test_deployment.py runs the nginx and
coturn files for real.)"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import engineio

from interactive_gym.cli import build_parser
from interactive_gym.configurations.webrtc import (
    ENV_STUN_URLS,
    ENV_TURN_SECRET,
    ENV_TURN_URLS,
    WebRTCSettings,
)
from interactive_gym.server.admin.auth import PASSWORD_ENV
from interactive_gym.server.message_limits import MAX_BEACON_BYTES, MAX_ENGINEIO_BYTES
from interactive_gym.tools.run import trusted_proxies

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX = (DEPLOY / "nginx" / "interactive-gym.conf").read_text()
UNIT = (DEPLOY / "systemd" / "interactive-gym.service").read_text()
ENV_FILE = (DEPLOY / "systemd" / "interactive-gym.env").read_text()
TURN_CONF = (DEPLOY / "coturn" / "turnserver.conf").read_text()
PORTS = (DEPLOY / "PORTS.md").read_text()


def directive(name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", NGINX, flags=re.MULTILINE)


def turn_option(name: str) -> str:
    values = re.findall(rf"^{name}=(.*)$", TURN_CONF, flags=re.MULTILINE)
    assert len(values) == 1, (name, values)
    return values[0]


def env_values() -> dict[str, str]:
    lines = [line for line in ENV_FILE.splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def exec_start() -> list[str]:
    (line,) = re.findall(r"^ExecStart=(.*)$", UNIT, flags=re.MULTILINE)
    return shlex.split(line)


def test_nginx_accepts_exactly_the_largest_body_the_server_answers() -> None:
    (size,) = directive("client_max_body_size")
    assert size.endswith("m")
    assert int(size[:-1]) * 1024 * 1024 == max(MAX_ENGINEIO_BYTES, MAX_BEACON_BYTES)


def test_websocket_timeouts_outlast_the_servers_pings() -> None:
    server = engineio.AsyncServer()  # the app keeps Engine.IO's ping defaults
    silence_s = server.ping_interval + server.ping_timeout  # the longest a live socket may be quiet
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = directive(name)
        assert int(value.removesuffix("s")) > silence_s, name


def test_nginx_passes_the_upgrade_and_the_proxy_headers() -> None:
    headers = dict(h.split(None, 1) for h in directive("proxy_set_header"))
    assert headers == {"Host": "$host", "X-Forwarded-For": "$proxy_add_x_forwarded_for",
                       "X-Forwarded-Proto": "$scheme", "X-Forwarded-Host": "$host",
                       "Upgrade": "$http_upgrade", "Connection": "$connection_upgrade"}
    assert directive("proxy_http_version") == ["1.1"]


def test_the_unit_runs_interactive_gym_where_nginx_sends() -> None:
    command = exec_start()
    assert command[0].endswith("/.venv/bin/interactive-gym")
    args = build_parser().parse_args(command[1:])
    assert args.command == "run" and args.experiment == "experiment.py"
    (upstream,) = re.findall(r"^\s*server (\S+);", NGINX, flags=re.MULTILINE)
    assert upstream == f"{args.host}:{args.port}" == "127.0.0.1:8000"
    assert trusted_proxies(args.forwarded_allow_ips) == ["127.0.0.1"]
    assert re.search(r"^EnvironmentFile=/etc/interactive-gym/interactive-gym.env$", UNIT, flags=re.MULTILINE)


def test_the_env_file_sets_only_what_the_server_reads_and_a_valid_ephemeral_turn() -> None:
    env = env_values()
    assert set(env) == {PASSWORD_ENV, ENV_TURN_SECRET, ENV_TURN_URLS, ENV_STUN_URLS}
    settings = WebRTCSettings.from_config(environ=env)
    assert settings.mode == "ephemeral"
    tls_port, port = turn_option("tls-listening-port"), turn_option("listening-port")
    assert settings.turn_urls[0] == f"turns:turn.example.org:{tls_port}?transport=tcp"  # tried first
    assert f"turn:turn.example.org:{port}?transport=udp" in settings.turn_urls
    assert settings.stun_urls == (f"stun:turn.example.org:{port}",)
    assert "use-auth-secret" in TURN_CONF.splitlines() and turn_option("static-auth-secret").startswith("CHANGE-ME")


def test_the_firewall_list_opens_what_coturn_and_nginx_listen_on() -> None:
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2])
            for line in PORTS.splitlines() if line.startswith("| ")}
    assert {("80", "TCP"), ("443", "TCP")} <= rows
    assert (turn_option("listening-port"), "UDP and TCP") in rows
    assert (turn_option("tls-listening-port"), "TCP") in rows
    assert (f"{turn_option('min-port')}-{turn_option('max-port')}", "UDP") in rows


def test_the_certbot_hook_is_valid_shell() -> None:
    subprocess.run(["sh", "-n", str(DEPLOY / "coturn" / "certbot-deploy-hook.sh")], check=True)
