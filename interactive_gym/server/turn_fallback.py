"""The server's reading of a p2p upload whose game ran over the Socket.IO relay because TURN failed.

A page reports connection type ``server_relay`` (``p2p_stats.js``) when no DataChannel ever carried a link and the
game's packets went through the server's ``p2p_input_relay`` instead: typically a TURN allocation that failed (401
for wrong or expired credentials, 701 for an unreachable server) with ``force_relay``, or a network that lets
nothing through. The game still works, but every input takes the longer way through the server, so the
researcher must hear of it: :func:`server_relay_report` turns the upload's stats into one log line and one event
per game, with the TURN errors the page saw (its ``icecandidateerror`` events).

Pure: the stats come from a page, so nothing in them is trusted (types checked, text shortened, lists bounded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SERVER_RELAY = "server_relay"
MAX_REPORTED_ERRORS = 8
MAX_TEXT = 200


@dataclass(frozen=True)
class TurnError:
    """One kind of ICE server error as a page saw it (``RTCPeerConnectionIceErrorEvent``), with how often."""

    error_code: int | None
    url: str | None
    error_text: str | None
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "url": self.url, "error_text": self.error_text, "count": self.count}

    def describe(self) -> str:
        text = f" {self.error_text!r}" if self.error_text else ""
        return f"{self.error_code}{text} from {self.url!r} x{self.count}"


@dataclass(frozen=True)
class ServerRelayReport:
    """An upload that says its game ran over the Socket.IO relay."""

    peers: tuple[str, ...]
    errors: tuple[TurnError, ...]

    def message(self, game_id: str, player_id: int | None) -> str:
        """The server's warning line (one per game)."""
        cause = "; ".join(e.describe() for e in self.errors) or "no ICE server error reported"
        return (f"p2p game {game_id}: player {player_id}'s inputs to peer(s) {', '.join(self.peers)} went through the "
                f"server (Socket.IO relay), no DataChannel connected; TURN errors: {cause}")

    def to_dict(self) -> dict[str, Any]:
        return {"peers": list(self.peers), "turn_errors": [e.to_dict() for e in self.errors]}


def server_relay_report(stats: Mapping[str, Any]) -> ServerRelayReport | None:
    """The report of an upload's ``stats`` when its connection type is ``server_relay``, else None."""
    connection = stats.get("connection")
    if not isinstance(connection, Mapping) or connection.get("type") != SERVER_RELAY:
        return None
    peers = stats.get("peers")
    peers = peers if isinstance(peers, Mapping) else {}
    relayed = tuple(_text(str(p)) or "?" for p, info in list(peers.items())[:64]
                    if isinstance(info, Mapping) and info.get("type") == SERVER_RELAY)
    merged: dict[tuple[int | None, str | None, str | None], int] = {}
    for info in list(peers.values())[:64]:
        errors = info.get("ice_errors") if isinstance(info, Mapping) else None
        for item in errors[:MAX_REPORTED_ERRORS * 4] if isinstance(errors, list) else []:
            if not isinstance(item, Mapping):
                continue
            key = (_int(item.get("error_code")), _text(item.get("url")), _text(item.get("error_text")))
            merged[key] = merged.get(key, 0) + max(1, _int(item.get("count")) or 1)
    ranked = sorted(merged.items(), key=lambda kv: -kv[1])[:MAX_REPORTED_ERRORS]
    return ServerRelayReport(relayed, tuple(TurnError(code, url, text, n) for (code, url, text), n in ranked))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    # Printable only: a page's text ends up in the server log.
    cleaned = "".join(c if c.isprintable() else "?" for c in value[:MAX_TEXT])
    return cleaned
