"""Who is taking part: identity from the URL, one live tab per participant, position in the scene sequence.

Pure bookkeeping (no sockets): the Socket.IO shell asks :class:`ParticipantRegistry` what a connection means
(new participant, resume after reload, second tab to refuse, already finished) and acts on the answer.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from interactive_gym.scenes.scene import Scene
from interactive_gym.server.flow.sessions import issue_secret, secret_matches

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# URL parameters that carry the participant's id, in order of preference.
ID_PARAMS = ("PROLIFIC_PID", "subject_id", "participant_id", "workerId")
MAX_PARAMS = 32
MAX_PARAM_KEY = 64
MAX_PARAM_VALUE = 256


class IdentityError(ValueError):
    """URL parameters that cannot identify a participant; ``reason`` names the refusal the page is sent."""

    reason = "bad_identity"


class MissingRecruitmentIdError(IdentityError):
    """The experiment requires a recruitment platform's id parameter and the link has none."""

    reason = "missing_recruitment_id"


# What a visitor reads when the experiment requires this parameter and their link lacks it.
REQUIRED_ID_MESSAGES = {
    "PROLIFIC_PID": ("Please open this study from Prolific: this link only works when Prolific opens it for you "
                     "(it carries your Prolific ID). Go back to Prolific and start the study from there."),
}


class Status(enum.StrEnum):
    """Where a participant is in the experiment."""

    ACTIVE = "active"          # taking part (a dropped participant who returns is active again)
    COMPLETED = "completed"    # reached the end page
    TIMED_OUT = "timed_out"    # waited for partners in vain and was sent to the end
    ERRORED = "errored"        # a game failed and the scene's on_error policy ended the study for them
    DROPPED = "dropped"        # left (socket gone past the scene's drop delay) without finishing
    EXCLUDED = "excluded"      # a screening rule ended the study for them (interactive_gym/screening)

    @property
    def finished(self) -> bool:
        """Whether the participant's path is over (they see their end page again, never start over)."""
        return self in (Status.COMPLETED, Status.TIMED_OUT, Status.ERRORED, Status.EXCLUDED)


class ConnectKind(enum.StrEnum):
    """What a new connection means."""

    NEW = "new"                      # first time this participant is seen
    RESUMED = "resumed"              # came back (reload, network blip); no other tab is open
    TAKEOVER = "takeover"            # the same tab reloaded before its old socket closed: old socket is dropped
    REFUSED_OTHER_TAB = "refused_other_tab"
    REFUSED_FINISHED = "refused_finished"
    REFUSED_NOT_YOURS = "refused_not_yours"  # the id is known but this browser lacks its resume secret
    REFUSED_PAUSED = "refused_paused"  # a new participant while the researcher has paused enrolment


def clean_url_params(raw: Mapping[str, Any]) -> dict[str, str]:
    """Keeps string URL parameters within size limits (all of them are stored with the participant)."""
    if not isinstance(raw, Mapping):
        raise IdentityError("url_params must be an object")
    if len(raw) > MAX_PARAMS:
        raise IdentityError(f"too many URL parameters (at most {MAX_PARAMS})")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_PARAM_KEY:
            raise IdentityError("URL parameter names must be 1-64 characters")
        if not isinstance(value, str) or len(value) > MAX_PARAM_VALUE:
            raise IdentityError(f"URL parameter {key[:64]!r} must be text of at most {MAX_PARAM_VALUE} characters")
        out[key] = value
    return out


def participant_id_from(params: Mapping[str, str], generated: str | None,
                        required: str | None = None) -> tuple[str, str]:
    """Chooses the participant id: the first id parameter present, else the id the page generated.

    Args:
        params: The page's URL parameters.
        generated: The id the page made up for itself (used only without an id parameter).
        required: An id parameter the experiment requires (``"PROLIFIC_PID"``): without it there is no id.

    Returns:
        ``(participant_id, source)`` where source names the parameter or ``"generated"``.

    Raises:
        MissingRecruitmentIdError: if ``required`` is set and the parameter is missing or empty.
        IdentityError: if the chosen id has characters other than letters, digits, ``_`` and ``-`` or is
            longer than 64, or if there is no id at all.
    """
    if required is not None and not params.get(required):
        raise MissingRecruitmentIdError(REQUIRED_ID_MESSAGES.get(
            required, f"Please open this study from the link you were given (it must carry {required})."))
    for name in ID_PARAMS:
        value = params.get(name)
        if value:
            if not ID_PATTERN.fullmatch(value):
                raise IdentityError(f"{name} must be 1-64 letters, digits, '_' or '-'")
            return value, name
    if generated and ID_PATTERN.fullmatch(generated):
        return generated, "generated"
    raise IdentityError("no participant id: open the link with ?subject_id=... (or PROLIFIC_PID=...)")


def new_participant_id() -> str:
    """A random id for pages opened without one."""
    return "anon-" + secrets.token_hex(8)


@dataclass
class Participant:
    """One participant's live state."""

    participant_id: str
    url_params: dict[str, str]
    sequence: list[Scene]
    tab_id: str
    sid: str | None = None
    index: int = 0
    status: Status = Status.ACTIVE
    scene_started_at: float = 0.0
    game_id: str | None = None
    visible: bool = True
    resume_secret_hash: str | None = None
    # The game-over record of the current game scene (reason, message[, error]); None while it runs.
    game_over: dict[str, str] | None = None
    # The game this participant last played to its end: their page may still send it input until it hears of
    # the end (a slow link can hold the game-over for seconds); that input is ignored, never answered as an error.
    last_game_id: str | None = None
    # When the live socket went away (time.time()); None while connected.
    gone_since: float | None = None
    # A random id per page load, from the page: a new socket of the same page is a network blip, not a reload.
    page_id: str = ""

    @property
    def scene(self) -> Scene:
        return self.sequence[self.index]

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def connected(self) -> bool:
        return self.sid is not None


@dataclass(frozen=True)
class ConnectOutcome:
    """What a connection means; ``new_secret`` is set when the page must be given a (new) resume secret."""

    kind: ConnectKind
    participant: Participant | None
    old_sid: str | None = None
    new_secret: str | None = None


class ParticipantRegistry:
    """All participants of one experiment, by id and by live socket id.

    Args:
        sequence_for: Gives a new participant's scene order (the Stager's, seeded by id).
    """

    def __init__(self, sequence_for: Callable[[str], list[Scene]]) -> None:
        self._sequence_for = sequence_for
        self._by_id: dict[str, Participant] = {}
        self._by_sid: dict[str, str] = {}

    def connect(self, participant_id: str, tab_id: str, sid: str, url_params: dict[str, str],
                now: float, secret: str | None = None) -> ConnectOutcome:
        """Decides what a connection means and records the new socket where it is accepted.

        Args:
            participant_id: Who the page says it is (from the URL).
            tab_id: The page's per-tab id (tells a reload from a second tab).
            sid: The new socket.
            url_params: The page's URL parameters (stored for a new participant).
            now: ``time.time()``.
            secret: The resume secret the page holds for this participant, if any.
        """
        existing = self._by_id.get(participant_id)
        if existing is None:
            secret_value, secret_hash = issue_secret()
            participant = Participant(participant_id, url_params, self._sequence_for(participant_id), tab_id,
                                      sid=sid, scene_started_at=now, resume_secret_hash=secret_hash)
            self._by_id[participant_id] = participant
            self._by_sid[sid] = participant_id
            return ConnectOutcome(ConnectKind.NEW, participant, new_secret=secret_value)
        new_secret = None
        if existing.resume_secret_hash is None:
            # Known from before resume secrets existed: the first page to return is given one.
            new_secret, existing.resume_secret_hash = issue_secret()
        elif not secret_matches(secret, existing.resume_secret_hash):
            return ConnectOutcome(ConnectKind.REFUSED_NOT_YOURS, existing)
        if existing.finished:
            return ConnectOutcome(ConnectKind.REFUSED_FINISHED, existing)
        if existing.sid is not None and existing.sid != sid:
            if existing.tab_id != tab_id:
                return ConnectOutcome(ConnectKind.REFUSED_OTHER_TAB, existing)
            old = existing.sid
            self._by_sid.pop(old, None)
            existing.sid = sid
            self._by_sid[sid] = participant_id
            return ConnectOutcome(ConnectKind.TAKEOVER, existing, old_sid=old, new_secret=new_secret)
        existing.sid = sid
        existing.tab_id = tab_id
        existing.gone_since = None
        self._by_sid[sid] = participant_id
        return ConnectOutcome(ConnectKind.RESUMED, existing, new_secret=new_secret)

    def disconnect(self, sid: str, now: float) -> Participant | None:
        """Forgets a socket; returns its participant if that socket was their live one."""
        participant_id = self._by_sid.pop(sid, None)
        if participant_id is None:
            return None
        participant = self._by_id[participant_id]
        if participant.sid == sid:
            participant.sid = None
            participant.gone_since = now
            return participant
        return None

    def forget(self, participant_id: str) -> str | None:
        """Drops a participant another worker now serves; returns their live socket, if any (to close)."""
        participant = self._by_id.pop(participant_id, None)
        if participant is None:
            return None
        for sid in [s for s, pid in self._by_sid.items() if pid == participant_id]:
            del self._by_sid[sid]
        return participant.sid

    def participant_id_of(self, sid: str) -> str | None:
        """The participant a socket belongs to (live or not yet forgotten)."""
        return self._by_sid.get(sid)

    def all(self) -> list[Participant]:
        """Every participant (housekeeping)."""
        return list(self._by_id.values())

    def by_sid(self, sid: str) -> Participant | None:
        participant_id = self._by_sid.get(sid)
        return self._by_id.get(participant_id) if participant_id else None

    def get(self, participant_id: str) -> Participant | None:
        return self._by_id.get(participant_id)

    def restore(self, participant_id: str, url_params: dict[str, str], current_scene: str | None,
                status: Status, resume_secret_hash: str | None, now: float) -> Participant:
        """Re-creates a participant known from the database after a server restart.

        They resume at the first occurrence of their recorded scene in their (deterministic) sequence, or at
        the start if that scene no longer exists; a finished participant stays finished.
        """
        sequence = self._sequence_for(participant_id)
        index = next((i for i, scene in enumerate(sequence) if scene.scene_id == current_scene), 0)
        participant = Participant(participant_id, url_params, sequence, tab_id="", index=index, status=status,
                                  resume_secret_hash=resume_secret_hash, gone_since=now, scene_started_at=now)
        self._by_id[participant_id] = participant
        return participant

    def __len__(self) -> int:
        return len(self._by_id)
