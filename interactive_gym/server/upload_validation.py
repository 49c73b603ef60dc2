"""Validation of an episode uploaded by a browser-mode page. Pure: no I/O, no sockets, no storage.

How a validated upload is stored (``DataWriter.write_episode`` arguments) is ``upload_records.py``; its names
are re-exported here, where the callers import the upload API from.

The page is not trusted: a participant can edit it. Who uploads and which scene they are in come from the
server's own session (arguments here), never from the payload; the payload only claims a scene, which
must be the participant's current one. Anything malformed, oversized or inconsistent with the scene is
rejected with a code (for counting) and a message (for the client and the log).

Upload payload (``browser_game.js`` builds it; Socket.IO event chosen by the lead)::

    {
      "scene_id": "solo",            # must equal the participant's current scene
      "episode": 0,                  # 0 .. num_episodes - 1
      "seed": 123,                   # must equal the seed the server chose for that episode
      "bundle_hash": "<sha256>",     # the code the page ran; must equal the scene's bundle hash
      "partial": false,              # true: page closed, scene ended or env error mid-episode
      "end_reason": "done",          # "done" | "page_closed" | "scene_end" | "error"
      "error": null,                 # traceback text when end_reason == "error" (cut to 8 kB)
      "steps": [ {"t": 0, "observation": {...}, "actions": {...}, "rewards": {...},
                  "terminated": {...}, "truncated": {...}, "info": {...},
                  "keys": {"agent_0": ["arrowup"]}, "client_ts": 1764121212.5}, ... ],
      "pauses": [ {"t": 40, "ms": 2300.0} ],  # tab hidden before step t, for ms milliseconds
      "scene_index": 3,              # browser mode: the visit (place in the participant's sequence) ...
      "attempt": 2,                  # ... and the attempt (page load) the server numbered in the config
      "clock": {"started_at": 1764121200.1, "ended_at": 1764121212.6,   # page clock (unix s) at reset / end
                "offset_s": -0.42, "rtt_s": 0.031}   # server minus page clock, and the ping it came from
    }

Times: the page stamps steps (``client_ts``) and the episode's start and end with its own clock and sends its
estimate of how far the server's clock is ahead (``offset_s``, from the ``ping`` event). The server stores
page time + offset as the time the episode and each step were played, keeps the page's readings, and stores
the arrival time separately. Malformed times (not finite numbers, an end before the start, an offset beyond a
day) are rejected as ``bad_clock``; plausible-looking but suspect ones are stored and flagged in
``meta.time_flags``: ``implausible_time`` (played before the attempt was issued or after the upload arrived,
beyond :data:`CLOCK_SLACK_S`), ``unordered_steps`` (step times going backwards or outside the episode),
``no_clock`` (an upload without ``clock``: times are the arrival time).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interactive_gym.server.upload_clock import CLOCK_SLACK_S, time_flags
from interactive_gym.server.upload_parts import (
    STEP_FIELDS,
    STEP_OPTIONAL,
    UploadPartError,
    check_fields,
    check_gaps,
    check_pauses,
    check_step,
    checked_clock,
    episode_finished,
    is_int,
)
from interactive_gym.server.upload_records import browser_game_id, episode_write_kwargs

__all__ = [
    "CLOCK_SLACK_S",
    "STEP_FIELDS",
    "STEP_OPTIONAL",
    "EpisodeUpload",
    "SizedPayload",
    "UploadRejected",
    "UploadRules",
    "browser_game_id",
    "episode_write_kwargs",
    "payload_bytes_of",
    "rules_from_config",
    "validate_episode_upload",
]

# The one upload cap (Engine.IO's message limit and the page's pre-send check derive from it). A 450-step
# demo episode is ~175 kB (~390 B a step), so 4 MiB holds ~10,000 such steps; it decodes to ~26 MB of
# Python objects, which bounds what one upload in flight can cost.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
MAX_ERROR_CHARS = 8192
END_REASONS = ("done", "page_closed", "scene_end", "error", "partner_left", "desync")  # the last two: p2p
REQUIRED_FIELDS = ("scene_id", "episode", "seed", "bundle_hash", "partial", "steps")
OPTIONAL_FIELDS = ("end_reason", "error", "pauses", "game_id", "stats", "scene_index", "attempt", "clock",
                   "first_t", "gaps")  # the last two: p2p (a page that rejoined mid-episode; steps without input)


class SizedPayload(dict[str, Any]):
    """A decoded payload that knows its size as it arrived: the UTF-8 bytes of its JSON text.

    The transport knows the size before decoding (``fast_socketio.decode_message`` for Socket.IO events);
    it is the page's own measure (``utf8Length(JSON.stringify(payload))`` in ``episode_uploader.js``), so
    the page and the server agree on what fits under the cap, and nothing re-encodes a large payload.
    """

    def __init__(self, payload: dict[str, Any], *, wire_bytes: int) -> None:
        super().__init__(payload)
        self.wire_bytes = wire_bytes


def payload_bytes_of(payload: Any) -> int:
    """Bytes of ``payload`` as the page measures them (UTF-8 of its compact JSON).

    A :class:`SizedPayload` says it; anything else is encoded once (``ensure_ascii=False``, so non-ASCII
    text counts its UTF-8 bytes, as on the page; a number may print differently from JavaScript, e.g.
    ``1.0`` vs ``1``, so this fallback can differ by a few bytes from the page's figure).

    Raises:
        ValueError: Not plain JSON (a non-finite number or a value JSON cannot hold).
        RecursionError: Nested too deeply.
    """
    if isinstance(payload, SizedPayload):
        return payload.wire_bytes
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class UploadRules:
    """What the server knows about the scene an upload claims to belong to.

    Attributes:
        scene_id: The browser-mode scene.
        num_episodes: Episodes per participant (valid numbers are ``0 .. num_episodes - 1``).
        max_steps: Most steps an episode can have.
        agent_ids: The environment's agents.
        seeds: The server-chosen seed of each episode (for this participant).
        bundle_hash: Hash of the files the scene ships to the browser.
        max_bytes: Largest accepted payload (JSON text length).
        scene_index: Browser mode: the visit the upload must name (``None``: uploads carry no visit, p2p).
        attempts_issued_at: Browser mode: server time each attempt of the visit was issued (attempt ``n`` at
            index ``n - 1``); the upload's ``attempt`` must be one of them.
        require_clock: Refuse uploads without ``clock`` (pages that predate it send none).
    """

    scene_id: str
    num_episodes: int
    max_steps: int
    agent_ids: tuple[str, ...]
    seeds: tuple[int, ...]
    bundle_hash: str
    max_bytes: int = MAX_UPLOAD_BYTES
    scene_index: int | None = None
    attempts_issued_at: tuple[float, ...] = ()
    require_clock: bool = False


@dataclass(frozen=True)
class EpisodeUpload:
    """An upload that passed validation; ``participant_id`` comes from the server's session."""

    participant_id: str
    scene_id: str
    episode: int
    seed: int
    bundle_hash: str
    partial: bool
    end_reason: str
    error: str | None
    steps: list[dict[str, Any]]
    pauses: list[dict[str, Any]]
    scene_index: int | None = None
    attempt: int | None = None
    clock: dict[str, Any] | None = None
    time_flags: tuple[str, ...] = ()
    first_t: int = 0
    gaps: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class UploadRejected:
    """Why an upload was refused. ``code`` is stable (for counters); ``message`` says what was wrong."""

    code: str
    message: str


def _validate(
    payload: Any, participant_scene_id: str | None, visited_scene_ids: Collection[str], rules: UploadRules, size: int
) -> dict[str, Any]:
    if size > rules.max_bytes:
        raise UploadPartError("too_large", f"upload is {size} bytes; the limit is {rules.max_bytes}")
    check_fields(payload, REQUIRED_FIELDS, OPTIONAL_FIELDS, "upload")
    if payload["scene_id"] != rules.scene_id:
        raise UploadPartError("wrong_scene", "upload is for a scene the participant is not in")
    if rules.scene_index is not None:
        _check_visit(payload, rules)
    # A partial episode stashed when a page closed arrives on the next page load, possibly after the
    # participant moved on; it is still theirs if the server had them in that scene.
    late_partial = payload.get("partial") is True and rules.scene_id in visited_scene_ids
    # A visit-keyed (browser) upload was matched to a visit the server issued: the caller checked it is theirs.
    if participant_scene_id != rules.scene_id and not late_partial and rules.scene_index is None:
        raise UploadPartError("wrong_scene", "upload is for a scene the participant is not in")
    episode = payload["episode"]
    if not is_int(episode) or not 0 <= episode < rules.num_episodes:
        raise UploadPartError("bad_episode", f"episode must be an integer from 0 to {rules.num_episodes - 1}")
    if not is_int(payload["seed"]) or payload["seed"] != rules.seeds[episode]:
        raise UploadPartError("bad_seed", f"seed does not match the seed the server chose for episode {episode}")
    if payload["bundle_hash"] != rules.bundle_hash:
        raise UploadPartError("bad_bundle", "bundle_hash does not match the scene's code (reload the page)")
    if not isinstance(payload["partial"], bool):
        raise UploadPartError("malformed", "partial must be true or false")
    end_reason = payload.get("end_reason", "done")
    if end_reason not in END_REASONS:
        raise UploadPartError("malformed", f"end_reason must be one of {', '.join(END_REASONS)}")
    if payload["partial"] is False and end_reason != "done":
        raise UploadPartError("malformed", f"a complete (partial=false) upload must have end_reason 'done', not {end_reason!r}")
    error = payload.get("error")
    if error is not None and not isinstance(error, str):
        raise UploadPartError("malformed", "error must be text or null")
    steps = payload["steps"]
    if not isinstance(steps, list):
        raise UploadPartError("malformed", "steps must be a list")
    if len(steps) > rules.max_steps:
        raise UploadPartError("too_many_steps", f"{len(steps)} steps; the scene allows at most {rules.max_steps}")
    agents = frozenset(rules.agent_ids)
    first_t = _check_first_t(payload.get("first_t", 0), rules)
    if first_t + len(steps) > rules.max_steps:
        raise UploadPartError("too_many_steps", f"steps {first_t}..{first_t + len(steps) - 1} go past the scene's "
                                             f"{rules.max_steps} steps")
    for index, step in enumerate(steps):
        check_step(step, index, agents, first_t)
    if not payload["partial"] and (not steps or not episode_finished(steps[-1], rules.agent_ids, rules.max_steps)):
        raise UploadPartError("not_finished", "a complete (partial=false) upload must end with the episode's last step")
    clock = payload.get("clock")
    if clock is None and rules.require_clock:
        raise UploadPartError("bad_clock", "upload has no clock (the page's times and its offset to the server)")
    return {
        "episode": episode,
        "end_reason": end_reason,
        "error": error[:MAX_ERROR_CHARS] if error else None,
        "pauses": check_pauses(payload.get("pauses", []), len(steps)),
        "clock": None if clock is None else checked_clock(clock),
        "first_t": first_t,
        "gaps": check_gaps(payload.get("gaps", []), agents, rules.max_steps),
    }


def _check_first_t(value: Any, rules: UploadRules) -> int:
    """A p2p page that rejoined mid-episode uploads the steps from the one it resumed at (browser mode: 0)."""
    if not is_int(value) or not 0 <= value < rules.max_steps:
        raise UploadPartError("malformed", f"first_t must be a step index from 0 to {rules.max_steps - 1}")
    if value and rules.scene_index is not None:
        raise UploadPartError("malformed", "first_t is for p2p uploads only")
    return int(value)


def _check_visit(payload: dict[str, Any], rules: UploadRules) -> None:
    if payload.get("scene_index") != rules.scene_index or not is_int(payload.get("scene_index")):
        raise UploadPartError("wrong_visit", f"scene_index must be {rules.scene_index}, the visit of this upload")
    attempt = payload.get("attempt")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= len(rules.attempts_issued_at):
        raise UploadPartError("bad_attempt", "attempt is not one the server issued for this visit (reload the page)")


def validate_episode_upload(
    payload: Any,
    *,
    participant_id: str,
    participant_scene_id: str | None,
    rules: UploadRules,
    payload_bytes: int | None = None,
    visited_scene_ids: Collection[str] = (),
    received_at: float | None = None,
) -> EpisodeUpload | UploadRejected:
    """Checks one uploaded episode against the scene's rules.

    Args:
        payload: The decoded upload, as received (any type).
        participant_id: Who sent it, from the server's session (never from the payload).
        participant_scene_id: The scene the server has that participant in now (``None`` if none).
        rules: The scene's limits, seeds and bundle hash.
        payload_bytes: Size of the payload as sent, if known; else :func:`payload_bytes_of` (which takes a
            :class:`SizedPayload`'s own figure and encodes anything else once).
        visited_scene_ids: Scenes the server had this participant in before the current one; a *partial*
            upload for one of them is accepted (a page closed mid-episode resends it on the next load).
        received_at: Server wall clock when the upload arrived; the played times are checked against it.

    Returns:
        :class:`EpisodeUpload` to store, or :class:`UploadRejected` to answer with (and count).
    """
    if payload_bytes is None:
        try:
            payload_bytes = payload_bytes_of(payload)
        except (ValueError, RecursionError):
            return UploadRejected("malformed", "upload is not plain JSON (non-finite number or unknown type)")
    try:
        checked = _validate(payload, participant_scene_id, visited_scene_ids, rules, payload_bytes)
    except UploadPartError as exc:
        return UploadRejected(exc.code, exc.message)
    except RecursionError:
        return UploadRejected("malformed", "upload is nested too deeply")
    return EpisodeUpload(
        participant_id=participant_id,
        scene_id=rules.scene_id,
        episode=checked["episode"],
        seed=payload["seed"],
        bundle_hash=payload["bundle_hash"],
        partial=payload["partial"],
        end_reason=checked["end_reason"],
        error=checked["error"],
        steps=payload["steps"],
        pauses=checked["pauses"],
        scene_index=payload.get("scene_index") if rules.scene_index is not None else None,
        attempt=payload.get("attempt") if rules.scene_index is not None else None,
        clock=checked["clock"],
        time_flags=time_flags(checked["clock"], payload["steps"], _issued_at(payload, rules), received_at),
        first_t=checked["first_t"],
        gaps=checked["gaps"],
    )


def _issued_at(payload: dict[str, Any], rules: UploadRules) -> float | None:
    if rules.scene_index is None:
        return None
    return rules.attempts_issued_at[payload["attempt"] - 1]


def rules_from_config(config: Mapping[str, Any], agent_ids: Sequence[str], max_bytes: int = MAX_UPLOAD_BYTES) -> UploadRules:
    """The :class:`UploadRules` of a browser scene config (``browser_scene_config`` output) as sent to one
    participant (its ``seeds`` are that participant's)."""
    return UploadRules(
        scene_id=config["scene_id"],
        num_episodes=config["num_episodes"],
        max_steps=config["max_steps"],
        agent_ids=tuple(agent_ids),
        seeds=tuple(config["seeds"]),
        bundle_hash=config["bundle"]["hash"],
        max_bytes=max_bytes,
    )
