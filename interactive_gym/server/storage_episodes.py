"""Episode rows: their validated parameters, and the rule for storing an uploaded episode.

What is stored under an episode's key (game, scene, episode, source) only grows
(:func:`~interactive_gym.server.storage_records.upload_decision`): the same data again changes nothing, a complete
or longer upload replaces a partial one, an older shorter partial is ignored, and different data is refused.
The functions take the open connection; :class:`~interactive_gym.server.storage.Storage` calls them inside its
transactions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from interactive_gym.server import value_codec
from interactive_gym.server.storage_connection import Connection
from interactive_gym.server.storage_records import (
    EPISODE_MODES,
    EncodedStep,
    EpisodeConflictError,
    require_choice,
    require_dict,
    require_int,
    require_text,
    upload_decision,
)


def episode_params(experiment_id: str, scene_id: str, game_id: str, episode: int, mode: str, source: str,
                   seed: int | None, agents: dict[str, Any], env_hash: str | None,
                   meta: dict[str, Any] | None) -> dict[str, Any]:
    """The checked SQL parameters shared by every episode row (raises ValueError/TypeError on bad values)."""
    require_text(scene_id, "scene_id")
    require_text(game_id, "game_id")
    episode = require_int(episode, "episode", minimum=0)
    require_choice(mode, "mode", EPISODE_MODES)
    require_text(source, "source")
    if seed is not None:
        seed = require_int(seed, "seed", minimum=-(2**63), maximum=2**63 - 1)
    if env_hash is not None:
        require_text(env_hash, "env_hash")
    return {
        "experiment_id": experiment_id,
        "scene_id": scene_id,
        "game_id": game_id,
        "episode": episode,
        "mode": mode,
        "source": source,
        "seed": seed,
        "agents": value_codec.dumps(require_dict(agents, "agents")),
        "env_hash": env_hash,
        "meta": value_codec.dumps(require_dict({} if meta is None else meta, "meta")),
    }


def episode_id(conn: Connection, row: dict[str, Any]) -> int:
    """The id of the episode row with ``row``'s key."""
    return int(
        conn.execute(
            "SELECT id FROM episodes WHERE game_id = :game_id AND scene_id = :scene_id"
            " AND episode = :episode AND source = :source",
            row,
        ).fetchone()[0]
    )


def store_upload(conn: Connection, row: dict[str, Any], encoded: Sequence[EncodedStep]) -> tuple[int, bool]:
    """Applies the upload rule to ``row`` (its steps ``encoded``) inside the caller's transaction.

    Returns:
        ``(episode id, whether the steps must be inserted)``: False when the stored episode is kept as it is.

    Raises:
        EpisodeConflictError: different data for a key that already holds an upload.
    """
    row["content_hash"] = _content_hash(row, encoded)
    status, episode, source, scene_id, game_id = (row["status"], row["episode"], row["source"], row["scene_id"],
                                                  row["game_id"])
    found = conn.execute(
        "SELECT id, status, (SELECT COUNT(*) FROM steps WHERE episode_id = episodes.id), content_hash"
        " FROM episodes WHERE game_id = :game_id AND scene_id = :scene_id AND episode = :episode"
        " AND source = :source",
        row,
    ).fetchone()
    decision = upload_decision(None if found is None else (found[1], found[2], found[3]), status, len(encoded),
                               row["content_hash"])
    if decision in ("same", "stale"):
        return int(found[0]), False
    if decision == "conflict":
        raise EpisodeConflictError(
            f"episode {episode} of {source!r} in scene {scene_id!r} (game {game_id!r}) already holds "
            f"a {found[1]} upload of {found[2]} steps; an upload of {len(encoded)} steps ({status}) "
            "with other data would replace it"
        )
    if decision == "replace":
        stored = int(found[0])
        conn.execute("DELETE FROM steps WHERE episode_id = ?", (stored,))
        conn.execute(_REPLACE_EPISODE, {**row, "id": stored})
        return stored, True
    conn.execute(_INSERT_UPLOAD, row)
    return episode_id(conn, row), True


def _content_hash(row: dict[str, Any], steps: Sequence[EncodedStep]) -> str:
    """What an upload says (values, the page's clock readings), not when it arrived: a retry hashes the same."""
    digest = hashlib.sha256()
    for name in ("mode", "seed", "agents", "status", "env_hash", "meta", "scene_index", "attempt",
                 "client_started_at", "client_ended_at", "clock_offset"):  # fmt: skip
        digest.update(f"{row[name]!r}\x1f".encode())
    for step in steps:
        # A step's controllers count only when set, so the hash of an upload without a takeover is unchanged.
        extra = () if step.controllers is None else (step.controllers,)
        digest.update("\x1e".join((str(step.t), *step[1:8], repr(step.client_ts), *extra)).encode())
    return digest.hexdigest()


INSERT_EPISODE = (
    "INSERT INTO episodes (experiment_id, scene_id, game_id, episode, mode, source, seed, agents, status,"
    " started_at, ended_at, env_hash, meta) VALUES (:experiment_id, :scene_id, :game_id, :episode, :mode,"
    " :source, :seed, :agents, :status, :started_at, :ended_at, :env_hash, :meta)"
)
_UPLOAD_COLUMNS = (
    "scene_index", "attempt", "received_at", "client_started_at", "client_ended_at", "clock_offset", "content_hash"
)  # fmt: skip
_INSERT_UPLOAD = INSERT_EPISODE.replace(") VALUES", ", " + ", ".join(_UPLOAD_COLUMNS) + ") VALUES").replace(
    ":meta)", ":meta, " + ", ".join(f":{c}" for c in _UPLOAD_COLUMNS) + ")"
)
_REPLACE_EPISODE = "UPDATE episodes SET " + ", ".join(
    f"{c} = :{c}" for c in ("mode", "seed", "agents", "status", "started_at", "ended_at", "env_hash", "meta",
                            *_UPLOAD_COLUMNS)
) + " WHERE id = :id"  # fmt: skip
