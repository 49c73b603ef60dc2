"""Validated settings for rollback sessions.

A session is built from one :class:`SessionSettings`. Every field is checked when the settings are created, so a
configuration mistake fails at start-up with a message that says what to change, never mid-game.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

MAX_PLAYERS = 8
MAX_INPUT_SIZE = 64
MAX_INPUT_DELAY = 30
MAX_PREDICTION = 60
MAX_INPUTS_PER_PACKET = 128


class SettingsError(ValueError):
    """A session setting is invalid; the message says which one and what is allowed."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SettingsError(message)


@dataclass(frozen=True)
class SessionSettings:
    """Everything a peer-to-peer rollback session needs to know before the first frame.

    Attributes:
        num_players: Players in the game, 2..8 (1..8 for a sync-test session). Player indices are 0..n-1 and
            identical on every peer, which makes player order deterministic everywhere.
        local_players: Indices of the players whose inputs this peer supplies.
        remote_peers: For every remote peer, an address chosen by the caller (any hashable, e.g. a player id
            string) mapped to the player indices that peer supplies. Local and remote players together must be
            exactly 0..n-1.
        input_size: Bytes of one player's input for one frame. Fixed for the whole session.
        default_input: Input used before the first frame, for predictions without history, and for disconnected
            players. Defaults to ``input_size`` zero bytes.
        input_delay: Frames between a local input being added and the frame it applies to (at the start; see
            :meth:`P2PSession.set_input_delay`).
        max_input_delay: The largest delay :meth:`P2PSession.set_input_delay` may switch to (adaptive input
            delay); ``None`` means ``input_delay`` (a fixed delay). Packets are sized for it.
        max_prediction: How many frames the session may simulate beyond the last frame with every input
            confirmed. 0 means lockstep (never predict).
        checksum_interval: Confirmed frames whose state checksum is exchanged with peers: every frame that is a
            multiple of this. 0 disables desync detection.
        fps: Nominal frame rate, used to turn round-trip times into frames for time synchronisation.
        disconnect_timeout_ms: A peer silent this long is declared disconnected.
        disconnect_notify_ms: A peer silent this long is reported as interrupted (a warning event).
        ping_interval_ms: How often to measure round-trip time.
        max_inputs_per_packet: Upper bound on the unacknowledged inputs resent in one packet.
    """

    num_players: int
    local_players: tuple[int, ...]
    remote_peers: Mapping[Hashable, tuple[int, ...]] = field(default_factory=dict)
    input_size: int = 1
    default_input: bytes | None = None
    input_delay: int = 2
    max_input_delay: int | None = None
    max_prediction: int = 8
    checksum_interval: int = 60
    fps: float = 60.0
    disconnect_timeout_ms: float = 5000.0
    disconnect_notify_ms: float = 1000.0
    ping_interval_ms: float = 250.0
    max_inputs_per_packet: int = MAX_INPUTS_PER_PACKET

    def __post_init__(self) -> None:
        _require(
            isinstance(self.num_players, int) and 1 <= self.num_players <= MAX_PLAYERS,
            f"num_players must be an integer from 1 to {MAX_PLAYERS}, got {self.num_players!r}",
        )
        object.__setattr__(self, "local_players", tuple(self.local_players))
        object.__setattr__(self, "remote_peers", {k: tuple(v) for k, v in dict(self.remote_peers).items()})
        owners: dict[int, str] = {}
        for player in self.local_players:
            self._claim(owners, player, "local")
        for peer, players in self.remote_peers.items():
            _require(len(players) > 0, f"remote peer {peer!r} must supply at least one player")
            for player in players:
                self._claim(owners, player, f"remote peer {peer!r}")
        missing = sorted(set(range(self.num_players)) - set(owners))
        _require(not missing, f"players {missing} are neither local nor assigned to a remote peer")
        _require(
            isinstance(self.input_size, int) and 1 <= self.input_size <= MAX_INPUT_SIZE,
            f"input_size must be 1..{MAX_INPUT_SIZE} bytes, got {self.input_size!r}",
        )
        default = bytes(self.input_size) if self.default_input is None else bytes(self.default_input)
        _require(
            len(default) == self.input_size,
            f"default_input must be exactly input_size={self.input_size} bytes, got {len(default)}",
        )
        object.__setattr__(self, "default_input", default)
        _require(
            isinstance(self.input_delay, int) and 0 <= self.input_delay <= MAX_INPUT_DELAY,
            f"input_delay must be 0..{MAX_INPUT_DELAY} frames, got {self.input_delay!r}",
        )
        if self.max_input_delay is None:
            object.__setattr__(self, "max_input_delay", self.input_delay)
        _require(
            isinstance(self.max_input_delay, int) and self.input_delay <= self.max_input_delay <= MAX_INPUT_DELAY,
            f"max_input_delay must be input_delay..{MAX_INPUT_DELAY} frames, got {self.max_input_delay!r}",
        )
        _require(
            isinstance(self.max_prediction, int) and 0 <= self.max_prediction <= MAX_PREDICTION,
            f"max_prediction must be 0..{MAX_PREDICTION} frames, got {self.max_prediction!r}",
        )
        _require(
            isinstance(self.checksum_interval, int) and self.checksum_interval >= 0,
            f"checksum_interval must be an integer >= 0 (0 disables it), got {self.checksum_interval!r}",
        )
        _require(self.fps > 0, f"fps must be positive, got {self.fps!r}")
        _require(
            0 < self.disconnect_notify_ms <= self.disconnect_timeout_ms,
            "disconnect_notify_ms must be positive and not larger than disconnect_timeout_ms",
        )
        _require(self.ping_interval_ms > 0, f"ping_interval_ms must be positive, got {self.ping_interval_ms!r}")
        # A packet must always be able to carry every input a peer can be missing; see protocol.py.
        needed = 2 * (self.max_prediction + self.largest_input_delay) + 8
        _require(
            needed <= self.max_inputs_per_packet <= 1024,
            f"max_inputs_per_packet must be {needed}..1024 for this delay and prediction window, "
            f"got {self.max_inputs_per_packet!r}",
        )

    def _claim(self, owners: dict[int, str], player: int, owner: str) -> None:
        _require(
            isinstance(player, int) and 0 <= player < self.num_players,
            f"player index {player!r} ({owner}) must be in 0..{self.num_players - 1}",
        )
        _require(player not in owners, f"player {player} is claimed twice ({owners.get(player)} and {owner})")
        owners[player] = owner

    @property
    def largest_input_delay(self) -> int:
        """The validated ``max_input_delay`` (``input_delay`` when none was given)."""
        return self.input_delay if self.max_input_delay is None else self.max_input_delay

    @property
    def default_bytes(self) -> bytes:
        """The validated default input (``default_input`` after defaulting to zero bytes)."""
        return self.default_input if self.default_input is not None else bytes(self.input_size)

    @property
    def peer_of_player(self) -> dict[int, Hashable | None]:
        """Maps each player index to its remote peer address, or ``None`` for local players."""
        result: dict[int, Hashable | None] = dict.fromkeys(self.local_players)
        for peer, players in self.remote_peers.items():
            for player in players:
                result[player] = peer
        return result


def p2p_settings(num_players: int, local_player: int, peers: Mapping[Hashable, int], **options: object) -> SessionSettings:
    """Shorthand for the common case of one player per peer.

    Args:
        num_players: Players in the game.
        local_player: This peer's player index.
        peers: Remote peer address -> that peer's player index.
        **options: Any other :class:`SessionSettings` field.

    Returns:
        Validated settings.
    """
    _require(num_players >= 2, f"a peer-to-peer session needs 2..{MAX_PLAYERS} players, got {num_players!r}")
    return SessionSettings(
        num_players=num_players,
        local_players=(local_player,),
        remote_peers={peer: (player,) for peer, player in peers.items()},
        **options,  # type: ignore[arg-type]
    )
