"""Rows of the experiment database as typed records, step encoding, and argument validation.

:class:`StepRecord` is what game loops and upload handlers hand to storage; :func:`encode_step` snapshots it
into JSON text (:class:`EncodedStep`) at once, so later mutation of an observation array cannot change what is
stored. The ``*Row`` classes are what :class:`~interactive_gym.server.storage.Storage` read methods return,
with JSON columns already decoded.
"""

from __future__ import annotations

import dataclasses
import numbers
import operator
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from interactive_gym.server import value_codec
from interactive_gym.server.storage_errors import StorageError

__all__ = [
    "EPISODE_MODES",
    "EPISODE_STATUSES",
    "AttemptRow",
    "BrowserVisitRow",
    "EncodedStep",
    "EpisodeConflictError",
    "EpisodeRow",
    "EventRow",
    "ParticipantRow",
    "SceneRecordRow",
    "StepRecord",
    "UploadDecision",
    "encode_step",
    "upload_decision",
]

EPISODE_MODES = ("server", "browser", "p2p")
EPISODE_STATUSES = ("in_progress", "complete", "partial")


@dataclasses.dataclass(frozen=True, slots=True)
class StepRecord:
    """One environment step. Dict-valued fields are keyed by agent id (``{agent_id: value}``).

    ``keys`` holds, per human agent, the keys held down when the action was chosen. ``server_ts`` is the
    server's wall clock (unix seconds) when it stepped or received the step; ``client_ts`` the browser's.
    ``controllers`` names, per agent, who played it when that was not the episode's own controller (an AI
    that took over from a dropped partner: ``{"agent_1": "ai-takeover:greedy"}``; the default input while a
    player was gone and nobody played for them: ``"gap:default-input"``); ``None`` for every other step.
    """

    t: int
    observation: Any
    actions: Any
    rewards: Any
    terminated: Any
    truncated: Any
    info: Any
    keys: Any
    server_ts: float | None
    client_ts: float | None = None
    controllers: dict[str, str] | None = None


class EncodedStep(NamedTuple):
    """A :class:`StepRecord` already turned into JSON text, ready for ``INSERT`` (a snapshot of its values)."""

    t: int
    observation: str
    actions: str
    rewards: str
    terminated: str
    truncated: str
    info: str
    keys: str
    server_ts: float | None
    client_ts: float | None
    controllers: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ParticipantRow:
    participant_id: str
    experiment_id: str
    url_params: dict[str, Any]
    status: str
    completion_code: str | None
    current_scene: str | None
    created_at: float
    updated_at: float
    resume_secret_hash: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SceneRecordRow:
    id: int
    participant_id: str
    scene_id: str
    scene_index: int
    started_at: float | None
    ended_at: float | None
    answers: dict[str, Any]
    meta: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class EpisodeRow:
    id: int
    experiment_id: str
    scene_id: str
    game_id: str
    episode: int
    mode: str
    source: str
    seed: int | None
    agents: dict[str, Any]
    status: str
    started_at: float
    ended_at: float | None
    env_hash: str | None
    meta: dict[str, Any]
    step_count: int
    scene_index: int | None = None
    attempt: int | None = None
    received_at: float | None = None
    client_started_at: float | None = None
    client_ended_at: float | None = None
    clock_offset: float | None = None
    content_hash: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptRow:
    """One page load of a browser-mode scene visit: numbered by the server when it sent the config."""

    attempt: int
    issued_at: float
    first_episode: int


@dataclasses.dataclass(frozen=True, slots=True)
class BrowserVisitRow:
    """A participant's visit of a browser-mode scene (``scene_index`` = its place in their sequence).

    ``complete_episodes`` are the episode numbers with a complete upload in any attempt of this visit.
    """

    participant_id: str
    scene_index: int
    scene_id: str
    seeds: tuple[int, ...]
    attempts: tuple[AttemptRow, ...]
    complete_episodes: frozenset[int]

    def attempt(self, number: int) -> AttemptRow | None:
        """The attempt numbered ``number``, or ``None`` if the server never issued it."""
        return self.attempts[number - 1] if 1 <= number <= len(self.attempts) else None


class EpisodeConflictError(StorageError):
    """An upload under an episode key already holding different data that it neither extends nor repeats."""


UploadDecision = Literal["same", "replace", "stale", "conflict", "insert"]


def upload_decision(
    stored: tuple[str, int, str | None] | None, new_status: str, new_steps: int, new_hash: str
) -> UploadDecision:
    """What storing an upload under a key does, given what the key holds (``(status, steps, hash)`` or None).

    The stored episode only ever grows: an identical re-upload changes nothing (``same``); a partial episode
    is replaced by a complete one or a longer one of at least as many steps (``replace``); a partial no longer
    than what is stored is an old copy of it (``stale``: acknowledged, nothing changes); anything else would
    replace data with other data (``conflict``: refused).
    """
    if stored is None:
        return "insert"
    status, steps, content_hash = stored
    if content_hash is not None and content_hash == new_hash:
        return "same"
    if status != "complete" and new_steps >= steps and (new_status == "complete" or new_steps > steps):
        return "replace"
    if new_status != "complete" and new_steps <= steps:
        return "stale"
    return "conflict"


@dataclasses.dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    ts: float
    participant_id: str | None
    game_id: str | None
    scene_id: str | None
    kind: str
    data: Any


def encode_step(step: StepRecord) -> EncodedStep:
    """Validates ``step`` and encodes its values; raises ``ValueError``/``CodecError`` naming the bad field."""
    if not isinstance(step, StepRecord):
        raise TypeError(f"expected a StepRecord, got {type(step).__name__}")
    t = require_int(step.t, "step.t", minimum=0)
    texts: dict[str, str] = {}
    for name in ("observation", "actions", "rewards", "terminated", "truncated", "info", "keys"):
        try:
            texts[name] = value_codec.dumps(getattr(step, name))
        except value_codec.CodecError as exc:
            raise value_codec.CodecError(f"step {t} {name}: {exc}") from None
    return EncodedStep(
        t=t,
        **texts,
        server_ts=optional_float(step.server_ts, "step.server_ts"),
        client_ts=optional_float(step.client_ts, "step.client_ts"),
        controllers=_controllers_text(step.controllers, t),
    )


def _controllers_text(controllers: Any, t: int) -> str | None:
    if controllers is None:
        return None
    if not isinstance(controllers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in controllers.items()):
        raise ValueError(f"step {t} controllers must be a dict of agent id -> controller text, got {controllers!r}")
    return value_codec.dumps(controllers) if controllers else None


# ------------------------------------------------------------------------------------------- validation


def require_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL; refused on SQLite too, so both engines agree
        raise ValueError(f"{name} must not contain NUL characters, got {value!r}")
    return value


def require_int(value: Any, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """Accepts ``int`` and integer-like values (numpy integers), never ``bool``; returns a Python ``int``."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return number


def require_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def require_dict(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    return value


def require_status_word(value: Any) -> None:
    # Participant statuses are open-ended (active, completed, timed_out, dropped, ...): lower-case words only.
    if not isinstance(value, str) or not value or not value.replace("_", "").isalpha() or not value.islower():
        raise ValueError(f"participant status must be a lower_case word like 'completed', got {value!r}")


def optional_float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number of seconds or None, got {value!r}")
    return float(value)
