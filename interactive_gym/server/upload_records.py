"""How a validated browser-mode upload is stored: the arguments of ``DataWriter.write_episode``.

:func:`episode_write_kwargs` turns an :class:`~interactive_gym.server.upload_validation.EpisodeUpload` and the
scene config the server sent into the stored episode: its ``game_id`` (one per attempt, :func:`browser_game_id`),
the agents' controllers, the step rows on the server's clock, and the ``meta`` that ``interactive-gym replay``
needs. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from interactive_gym.server.storage_records import StepRecord

if TYPE_CHECKING:
    from interactive_gym.server.upload_validation import EpisodeUpload


def browser_game_id(participant_id: str, scene_index: int, attempt: int) -> str:
    """``game_id`` of a browser-mode attempt: each page load of a visit is its own game."""
    return f"{participant_id}:{scene_index}:{attempt}"


def episode_write_kwargs(
    upload: EpisodeUpload, config: Mapping[str, Any], *, received_at: float
) -> dict[str, Any]:
    """Keyword arguments for ``DataWriter.write_episode`` for a validated upload.

    The episode is stored with ``mode="browser"``, ``source`` = the participant id, ``game_id`` = the attempt
    (:func:`browser_game_id`; the participant id for uploads without a visit), the bundle hash as
    ``env_hash``, and in ``meta`` what ``interactive-gym replay`` needs (the env factory reference and its
    kwargs, taken from the server's own config, not the page) plus the pauses, the end reason, any error
    traceback and the time flags.

    Times: ``started_at``/``ended_at`` and each step's ``server_ts`` are the page's clock plus its offset
    estimate (when it was played, on the server's clock); ``client_*`` keep the page's readings.

    Args:
        upload: The validated upload.
        config: The browser scene config sent to this participant.
        received_at: Server wall clock (unix seconds) when the upload arrived (``received_at``).
    """
    clock = upload.clock
    offset = (clock or {}).get("offset_s") or 0.0
    agents = {
        agent: upload.participant_id if spec["kind"] == "human" else spec.get("ref") or f"onnx:{agent}"
        for agent, spec in config["agents"].items()
    }
    steps = [
        StepRecord(
            t=row["t"],
            observation=row.get("observation"),
            actions=row["actions"],
            rewards=row["rewards"],
            terminated=row["terminated"],
            truncated=row["truncated"],
            info=row.get("info"),
            keys=row["keys"],
            server_ts=None if row.get("client_ts") is None else row["client_ts"] + offset,
            client_ts=row.get("client_ts"),
        )
        for row in upload.steps
    ]
    bundle = config["bundle"]
    visit = upload.scene_index is not None and upload.attempt is not None
    return {
        "scene_id": upload.scene_id,
        "game_id": browser_game_id(upload.participant_id, upload.scene_index, upload.attempt)  # type: ignore[arg-type]
        if visit
        else upload.participant_id,
        "episode": upload.episode,
        "mode": "browser",
        "source": upload.participant_id,
        "seed": upload.seed,
        "agents": agents,
        "steps": steps,
        "status": "partial" if upload.partial else "complete",
        "env_hash": upload.bundle_hash,
        "meta": {
            "factory": bundle["factory"],
            "render": bundle["render"],
            "env_kwargs": bundle["env_kwargs"],
            "fps": config["fps"],
            "max_steps": config["max_steps"],
            "end_reason": upload.end_reason,
            "error": upload.error,
            "pauses": upload.pauses,
            "policies": {a: s for a, s in config["agents"].items() if s["kind"] != "human"},
            "time_flags": list(upload.time_flags),
            "clock_rtt_s": (clock or {}).get("rtt_s"),
        },
        "started_at": received_at if clock is None else clock["started_at"] + offset,
        "ended_at": received_at if clock is None else clock["ended_at"] + offset,
        "scene_index": upload.scene_index,
        "attempt": upload.attempt,
        "received_at": received_at,
        "client_started_at": None if clock is None else clock["started_at"],
        "client_ended_at": None if clock is None else clock["ended_at"],
        "clock_offset": None if clock is None else clock["offset_s"],
    }
