"""TURN credentials of the running p2p games: minted once per participant per game, re-minted before they expire.

A participant's page gets its :class:`~interactive_gym.configurations.webrtc.TurnGrant` in ``pyodide_game_ready``.
The same grant is kept for the whole game, so a game never mints twice for the same player (an announcement sent
again, a second look-up) and every player keeps a credential that stays valid however long the game runs:
:meth:`TurnGrants.renew_due` re-mints the grants that expire within the settings' refresh margin, and the p2p mode
sends each new one to its page as ``turn_refresh`` (the page gives new connections the new RTCConfiguration).

Pure state: the caller passes unix times (ephemeral expiry is wall-clock time, as the TURN server reads it).
"""

from __future__ import annotations

from typing import Any, Protocol

from interactive_gym.configurations.webrtc import TurnGrant

REFRESH_EVENT = "turn_refresh"


class GrantSource(Protocol):
    """What the cache needs of ``WebRTCSettings``."""

    @property
    def refresh_margin_s(self) -> float:
        """How long before expiry a grant is renewed."""

    def grant_for(self, participant_id: str, now: float) -> TurnGrant:
        """A fresh grant for one participant."""


class TurnGrants:
    """``(game_id, participant_id) -> TurnGrant`` for the running games.

    Args:
        settings: where grants come from (the server's ``WebRTCSettings``).
    """

    def __init__(self, settings: GrantSource) -> None:
        self.settings = settings
        self._grants: dict[tuple[str, str], TurnGrant] = {}
        self.minted = 0

    def for_player(self, game_id: str, participant_id: str, now: float) -> TurnGrant:
        """The participant's grant in this game: the kept one while it is not due for renewal, else a new one."""
        key = (game_id, participant_id)
        grant = self._grants.get(key)
        if grant is None or grant.due(now, self.settings.refresh_margin_s):
            grant = self.settings.grant_for(participant_id, now)
            self._grants[key] = grant
            self.minted += 1
        return grant

    def renew_due(self, now: float) -> list[tuple[str, str, TurnGrant]]:
        """Re-mints every grant that expires within the refresh margin; returns ``(game_id, participant_id,
        new grant)`` for each, for the caller to send. Static credentials never expire, so never come back."""
        margin = self.settings.refresh_margin_s
        due = [key for key, grant in self._grants.items() if grant.due(now, margin)]
        renewed = []
        for game_id, participant_id in due:
            grant = self.settings.grant_for(participant_id, now)
            self._grants[(game_id, participant_id)] = grant
            self.minted += 1
            renewed.append((game_id, participant_id, grant))
        return renewed

    def forget_game(self, game_id: str) -> None:
        """The game is over for every player: its grants are dropped (memory stays bounded by running games)."""
        for key in [k for k in self._grants if k[0] == game_id]:
            del self._grants[key]

    def __len__(self) -> int:
        return len(self._grants)


def refresh_payload(game_id: str, grant: TurnGrant) -> dict[str, Any]:
    """The ``turn_refresh`` event: the same two shapes as in ``pyodide_game_ready``."""
    return {"game_id": game_id, "turn_config": grant.turn_config, "rtc_configuration": grant.rtc_configuration}
