"""WebRTC signaling relay and Socket.IO input fallback, only ever between members of the same game.

Two Socket.IO events come in from browsers:

* ``webrtc_signal`` ``{game_id, to_player, kind, data, gen?}``: an SDP offer/answer, a trickled ICE candidate or a
  reconnect request, forwarded to the target as ``webrtc_signal`` ``{game_id, from_player, kind, data, gen}``;
* ``p2p_input_relay`` ``{game_id, to_player, data: bytes, channel?}``: a game packet sent through the server while the
  DataChannel is down, forwarded as ``p2p_input_relay`` ``{game_id, from_player, channel, data}``.

The sender's game and player id come from the owner's membership table, never from the payload, so a participant can
only speak as themselves and only inside their own game. Everything invalid is answered with ``error``
``{event, reason, message}`` to the sender only, and counted per reason.

The deciding part (:func:`decide_signal`, :func:`decide_input_relay`) is pure and returns either a :class:`Forward`
or a :class:`Rejection`; :class:`SignalingRelay` is the thin Socket.IO shell around it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn, Protocol

SIGNAL_EVENT = "webrtc_signal"
INPUT_RELAY_EVENT = "p2p_input_relay"
ERROR_EVENT = "error"

SIGNAL_KINDS = frozenset({"offer", "answer", "ice", "restart"})
CHANNELS = frozenset({"inputs", "control"})
MAX_SDP_BYTES = 64 * 1024
MAX_CANDIDATE_BYTES = 2 * 1024
MAX_RELAY_BYTES = 4 * 1024
MAX_PLAYER_ID = 63  # player ids are 0..63: far beyond any real game, small enough to stay a sanity bound
MAX_GAME_ID_LEN = 128
MAX_GENERATION = 2**31 - 1
_MAX_SHORT_FIELD = 256


class GameMembership(Protocol):
    """Who is in which game; owned by the game coordinator."""

    def member_of(self, sid: str) -> tuple[str, int] | None:
        """``(game_id, player_id)`` of the connection ``sid``, or None when it is in no game."""

    def sid_of(self, game_id: str, player_id: int) -> str | None:
        """The connection of ``player_id`` in ``game_id``, or None when no such (connected) player exists."""


class Reason(StrEnum):
    """Why a message was refused (the keys of :attr:`SignalingStats.rejections`)."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    NOT_IN_GAME = "not_in_game"
    WRONG_GAME = "wrong_game"
    SELF_TARGET = "self_target"
    UNKNOWN_PLAYER = "unknown_player"


@dataclass(frozen=True)
class Forward:
    """Send ``payload`` as ``event`` to the connection ``to_sid``."""

    to_sid: str
    event: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    """Refuse the message; tell the sender ``message``."""

    reason: Reason
    message: str


class _InvalidError(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _fail(message: str, reason: Reason = Reason.MALFORMED) -> NoReturn:
    raise _InvalidError(reason, message)


def _short_str_or_none(value: object, name: str) -> str | None:
    if value is None or (isinstance(value, str) and len(value) <= _MAX_SHORT_FIELD):
        return value
    _fail(f"{name} must be a string of at most {_MAX_SHORT_FIELD} characters or null")


def _route(sid: str, data: object, membership: GameMembership) -> tuple[dict[str, Any], str, int, str]:
    """Authorises the sender and resolves the target: returns ``(payload, game_id, from_player, target_sid)``."""
    if not isinstance(data, dict):
        _fail("payload must be an object")
    game_id = data.get("game_id")
    if not (isinstance(game_id, str) and 0 < len(game_id) <= MAX_GAME_ID_LEN):
        _fail(f"game_id must be a non-empty string of at most {MAX_GAME_ID_LEN} characters")
    member = membership.member_of(sid)
    if member is None:
        _fail("you are not in a game", Reason.NOT_IN_GAME)
    my_game, my_player = member
    if my_game != game_id:
        _fail("you are not a member of that game", Reason.WRONG_GAME)
    to_player = data.get("to_player")
    if not (isinstance(to_player, int) and not isinstance(to_player, bool) and 0 <= to_player <= MAX_PLAYER_ID):
        _fail(f"to_player must be an integer player id between 0 and {MAX_PLAYER_ID}")
    if to_player == my_player:
        _fail("to_player is your own player id", Reason.SELF_TARGET)
    target = membership.sid_of(game_id, to_player)
    if target is None:
        _fail(f"player {to_player} is not connected in this game", Reason.UNKNOWN_PLAYER)
    return data, game_id, my_player, target


def _clean_description(kind: str, data: object) -> dict[str, str]:
    if not isinstance(data, dict):
        _fail(f"{kind} data must be an object {{type, sdp}}")
    sdp = data.get("sdp")
    if data.get("type") != kind:
        _fail(f"{kind} data.type must be {kind!r}")
    if not isinstance(sdp, str) or sdp == "":
        _fail(f"{kind} data.sdp must be a non-empty string")
    if len(sdp.encode("utf-8")) > MAX_SDP_BYTES:
        _fail(f"SDP larger than {MAX_SDP_BYTES} bytes", Reason.TOO_LARGE)
    return {"type": kind, "sdp": sdp}


def _clean_candidate(data: object) -> dict[str, Any] | None:
    if data is None:  # end-of-candidates
        return None
    if not isinstance(data, dict):
        _fail("ice data must be an RTCIceCandidateInit object or null")
    candidate = data.get("candidate")
    if not isinstance(candidate, str):
        _fail("ice data.candidate must be a string")
    if len(candidate.encode("utf-8")) > MAX_CANDIDATE_BYTES:
        _fail(f"ICE candidate larger than {MAX_CANDIDATE_BYTES} bytes", Reason.TOO_LARGE)
    index = data.get("sdpMLineIndex")
    if not (index is None or (isinstance(index, int) and not isinstance(index, bool) and 0 <= index <= 65535)):
        _fail("ice data.sdpMLineIndex must be 0..65535")
    # Rebuilt from known fields only: nothing else a sender adds is ever forwarded.
    return {
        "candidate": candidate,
        "sdpMid": _short_str_or_none(data.get("sdpMid"), "ice data.sdpMid"),
        "sdpMLineIndex": index,
        "usernameFragment": _short_str_or_none(data.get("usernameFragment"), "ice data.usernameFragment"),
    }


def decide_signal(sid: str, data: object, membership: GameMembership) -> Forward | Rejection:
    """Decides what to do with a ``webrtc_signal`` event from ``sid`` (pure apart from membership look-ups)."""
    try:
        payload, game_id, from_player, target = _route(sid, data, membership)
        kind = payload.get("kind")
        if kind not in SIGNAL_KINDS:
            _fail(f"kind must be one of {sorted(SIGNAL_KINDS)}")
        gen = payload.get("gen", 0)
        if not (isinstance(gen, int) and not isinstance(gen, bool) and 0 <= gen <= MAX_GENERATION):
            _fail("gen must be a non-negative integer")
        body = payload.get("data")
        cleaned: Any
        if kind in ("offer", "answer"):
            cleaned = _clean_description(kind, body)
        elif kind == "ice":
            cleaned = _clean_candidate(body)
        elif body is not None:  # restart: a request to the offerer to reconnect; carries nothing
            _fail("restart data must be null")
        else:
            cleaned = None
    except _InvalidError as err:
        return Rejection(err.reason, err.message)
    out = {"game_id": game_id, "from_player": from_player, "kind": kind, "data": cleaned, "gen": gen}
    return Forward(target, SIGNAL_EVENT, out)


def decide_input_relay(sid: str, data: object, membership: GameMembership) -> Forward | Rejection:
    """Decides what to do with a ``p2p_input_relay`` event (the fallback path for game packets)."""
    try:
        payload, game_id, from_player, target = _route(sid, data, membership)
        body = payload.get("data")
        if not isinstance(body, bytes | bytearray):
            _fail("data must be binary (Uint8Array / ArrayBuffer)")
        if len(body) == 0:
            _fail("data is empty")
        if len(body) > MAX_RELAY_BYTES:
            _fail(f"relay packet larger than {MAX_RELAY_BYTES} bytes", Reason.TOO_LARGE)
        channel = payload.get("channel", "inputs")
        if channel not in CHANNELS:
            _fail(f"channel must be one of {sorted(CHANNELS)}")
    except _InvalidError as err:
        return Rejection(err.reason, err.message)
    out = {"game_id": game_id, "from_player": from_player, "channel": channel, "data": bytes(body)}
    return Forward(target, INPUT_RELAY_EVENT, out)


class SignalingStats:
    """Counters the owner reads: rejections per reason (and per event), forwarded messages per event/kind."""

    def __init__(self) -> None:
        self.rejections: Counter[str] = Counter()
        self.rejections_by_event: Counter[tuple[str, str]] = Counter()
        self.forwarded: Counter[str] = Counter()

    @property
    def total_rejected(self) -> int:
        """All refused messages since start."""
        return sum(self.rejections.values())

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy for admin pages and exports."""
        return {"rejections": dict(self.rejections), "forwarded": dict(self.forwarded),
                "total_rejected": self.total_rejected}


class SignalingRelay:
    """Registers the ``webrtc_signal`` and ``p2p_input_relay`` handlers on a python-socketio ``AsyncServer``.

    Args:
        membership: the owner's game membership table.
        stats: where to count; a fresh :class:`SignalingStats` when None (read it back as ``relay.stats``).
    """

    def __init__(self, membership: GameMembership, stats: SignalingStats | None = None) -> None:
        self.membership = membership
        self.stats = stats if stats is not None else SignalingStats()
        self._sio: Any = None
        self._namespace: str | None = None

    def bind(self, sio: Any, namespace: str | None = None) -> None:
        """Gives the relay the server to forward through; the caller registers the two handlers itself."""
        self._sio = sio
        self._namespace = namespace

    def register(self, sio: Any, namespace: str | None = None) -> None:
        """Binds to ``sio`` (a ``socketio.AsyncServer``) and registers the handlers on it."""
        self.bind(sio, namespace)
        sio.on(SIGNAL_EVENT, self.on_webrtc_signal, namespace=namespace)
        sio.on(INPUT_RELAY_EVENT, self.on_input_relay, namespace=namespace)

    async def on_webrtc_signal(self, sid: str, data: Any = None) -> None:
        """Handler for ``webrtc_signal``."""
        decision = decide_signal(sid, data, self.membership)
        key = f"{SIGNAL_EVENT}:{data.get('kind')}" if isinstance(decision, Forward) else SIGNAL_EVENT
        await self._apply(sid, SIGNAL_EVENT, decision, key)

    async def on_input_relay(self, sid: str, data: Any = None) -> None:
        """Handler for ``p2p_input_relay``."""
        await self._apply(sid, INPUT_RELAY_EVENT, decide_input_relay(sid, data, self.membership), INPUT_RELAY_EVENT)

    async def _apply(self, sid: str, event: str, decision: Forward | Rejection, key: str) -> None:
        if isinstance(decision, Rejection):
            self.stats.rejections[decision.reason.value] += 1
            self.stats.rejections_by_event[(event, decision.reason.value)] += 1
            await self._sio.emit(ERROR_EVENT, {"event": event, "reason": decision.reason.value,
                                               "message": decision.message}, to=sid, namespace=self._namespace)
            return
        self.stats.forwarded[key] += 1
        await self._sio.emit(decision.event, decision.payload, to=decision.to_sid, namespace=self._namespace)
