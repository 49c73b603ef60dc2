"""The interface every game mode implements, and what a mode may ask of the participant flow.

The participant flow (``flow/participant_flow.py``) owns a participant's path through the scenes; a game
mode owns what happens while a participant is on one of its game scenes: joining (waiting rooms, groups),
presence (hidden tabs), a socket that drops and returns, uploads, and expiry. The flow calls a mode only
from inside the participant's serialized event handling, so a mode never sees two events of one participant
at once. Modes reach other participants only through :class:`FlowHooks`, which queue work on those
participants' own event queues.
"""

from __future__ import annotations

from typing import Any, Protocol

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.flow.participants import Participant

Ack = dict[str, Any]
# What a waiting group is told when its game failed to start (an error on our side): it waits for a new start.
START_FAILED_NOTICE = "The game could not start because of an error on our side; still waiting for a new start."


class FlowHooks(Protocol):
    """What a game mode may ask of the participant flow."""

    def lookup(self, participant_id: str) -> Participant | None:
        """The participant with this id, if known."""

    def game_over(self, participant_id: str, scene_id: str, record: dict[str, str], show: bool) -> None:
        """Queues: the participant's game in ``scene_id`` is over (``record``: reason, message[, error]).

        Ignored when the participant has already left that scene. ``show`` sends the scene again (modes whose
        page learns the end another way pass False).
        """

    def wait_timeout(self, participant_id: str, scene_id: str) -> None:
        """Queues: the participant waited too long for partners in ``scene_id``."""

    async def notify(self, participant: Participant, event: str, data: dict[str, Any]) -> None:
        """Sends one event to the participant's live socket (nothing when they are disconnected)."""

    async def record_event(self, kind: str, data: dict[str, Any], participant: Participant | None = None,
                           scene_id: str | None = None, game_id: str | None = None) -> None:
        """Stores an ``events`` row (committed)."""


class GameMode(Protocol):
    """One way a game scene runs (``server``, ``browser`` or ``p2p``)."""

    name: str

    async def scene_view(self, participant: Participant, scene: GymScene) -> dict[str, Any]:
        """Fields added to the view of a live game scene of this mode (e.g. the browser's config)."""

    async def presence_changed(self, participant: Participant) -> None:
        """The participant's tab was hidden or shown (``participant.visible``)."""

    async def disconnected(self, participant: Participant) -> None:
        """The participant's live socket closed (``participant.sid`` is None now)."""

    async def reconnected(self, participant: Participant) -> None:
        """The participant is back on a new socket while on one of this mode's scenes."""

    async def left_scene(self, participant: Participant, scene: GymScene) -> None:
        """The participant moved on from ``scene`` (or was moved): leave queues, forget per-visit state."""

    async def dropped(self, participant: Participant) -> None:
        """The participant has been gone past the scene's drop delay: stop holding a place for them (a page
        that comes back later joins again like a new arrival)."""

    async def excluded(self, participant: Participant) -> None:
        """A screening rule excluded the participant mid-scene (``left_scene`` follows): let their game go as
        if they were gone, so the scene's partner-drop policy (end, or an AI plays on) applies to the partners."""

    async def expire(self, now: float) -> None:
        """Housekeeping (monotonic ``now``): waiting-room timeouts, partners gone past their grace period."""

    async def shutdown(self) -> None:
        """The server stops."""
