"""The experiment database schema and its migrations (DDL only; :mod:`storage` runs them).

Each migration is ``(version, statements)``; :class:`~interactive_gym.server.storage.Storage` applies every
migration newer than the ``schema_version`` table's highest row, inside one transaction, and records it.
A database newer than :data:`SCHEMA_VERSION` is refused rather than misread. To change the schema, append a
migration (never edit a released one) and bump :data:`SCHEMA_VERSION`.

All value columns (``url_params``, ``answers``, ``meta``, ``agents``, the step columns, ``data``) hold JSON
text written by :mod:`~interactive_gym.server.value_codec`. Timestamps are unix seconds (REAL).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_SCHEMA_V1: tuple[str, ...] = (
    # One row per participant; status is open-ended (active, completed, timed_out, dropped, ...).
    """CREATE TABLE participants (
        participant_id  TEXT PRIMARY KEY,
        experiment_id   TEXT NOT NULL,
        url_params      TEXT NOT NULL DEFAULT '{}',
        status          TEXT NOT NULL DEFAULT 'active',
        completion_code TEXT,
        current_scene   TEXT,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    )""",
    # One row per finished scene per participant; the unique key makes client retries idempotent.
    """CREATE TABLE scene_records (
        id             INTEGER PRIMARY KEY,
        participant_id TEXT NOT NULL REFERENCES participants (participant_id),
        scene_id       TEXT NOT NULL,
        scene_index    INTEGER NOT NULL,
        started_at     REAL,
        ended_at       REAL,
        answers        TEXT NOT NULL DEFAULT '{}',
        meta           TEXT NOT NULL DEFAULT '{}',
        UNIQUE (participant_id, scene_id, scene_index)
    )""",
    # One row per episode per writer: "server", or each uploading participant (both peers of a p2p game).
    """CREATE TABLE episodes (
        id            INTEGER PRIMARY KEY,
        experiment_id TEXT NOT NULL,
        scene_id      TEXT NOT NULL,
        game_id       TEXT NOT NULL,
        episode       INTEGER NOT NULL,
        mode          TEXT NOT NULL CHECK (mode IN ('server', 'browser', 'p2p')),
        source        TEXT NOT NULL,
        seed          INTEGER,
        agents        TEXT NOT NULL DEFAULT '{}',
        status        TEXT NOT NULL CHECK (status IN ('in_progress', 'complete', 'partial')),
        started_at    REAL NOT NULL,
        ended_at      REAL,
        env_hash      TEXT,
        meta          TEXT NOT NULL DEFAULT '{}',
        UNIQUE (game_id, scene_id, episode, source)
    )""",
    # The primary key makes re-sent steps replace, never duplicate.
    """CREATE TABLE steps (
        episode_id  INTEGER NOT NULL REFERENCES episodes (id),
        t           INTEGER NOT NULL,
        observation TEXT NOT NULL,
        actions     TEXT NOT NULL,
        rewards     TEXT NOT NULL,
        terminated  TEXT NOT NULL,
        truncated   TEXT NOT NULL,
        info        TEXT NOT NULL,
        keys        TEXT NOT NULL,
        server_ts   REAL,
        client_ts   REAL,
        PRIMARY KEY (episode_id, t)
    )""",
    # Everything else: disconnects, pauses, validation errors, parity verdicts, connection types.
    """CREATE TABLE events (
        id             INTEGER PRIMARY KEY,
        ts             REAL NOT NULL,
        participant_id TEXT,
        game_id        TEXT,
        scene_id       TEXT,
        kind           TEXT NOT NULL,
        data           TEXT NOT NULL DEFAULT 'null'
    )""",
    "CREATE INDEX events_by_kind ON events (kind, ts)",
    "CREATE INDEX events_by_participant ON events (participant_id, ts)",
    "CREATE INDEX events_by_game ON events (game_id, ts)",
)

# Version 2: browser-mode attempts (every page load of a scene visit is an attempt numbered by the server, with
# the visit's seeds stored before the page gets them), the times an uploaded episode was played (corrected to
# the server's clock) next to the time it arrived, and the participant's resume-secret hash.
_SCHEMA_V2: tuple[str, ...] = (
    "ALTER TABLE participants ADD COLUMN resume_secret_hash TEXT",
    # Which visit (position in the participant's scene sequence) and which attempt (page load) an uploaded
    # browser episode belongs to; NULL for server-mode episodes and p2p games (keyed by game_id).
    "ALTER TABLE episodes ADD COLUMN scene_index INTEGER",
    "ALTER TABLE episodes ADD COLUMN attempt INTEGER",
    # Uploaded episodes: started_at/ended_at are the page's clock corrected by its offset estimate; the page's
    # own readings and the offset are kept, and received_at is when the server got the upload.
    "ALTER TABLE episodes ADD COLUMN received_at REAL",
    "ALTER TABLE episodes ADD COLUMN client_started_at REAL",
    "ALTER TABLE episodes ADD COLUMN client_ended_at REAL",
    "ALTER TABLE episodes ADD COLUMN clock_offset REAL",
    # Hash of what was stored (values, not arrival times): a re-upload of the same data is recognised.
    "ALTER TABLE episodes ADD COLUMN content_hash TEXT",
    "CREATE UNIQUE INDEX episodes_by_attempt ON episodes (source, scene_index, attempt, episode)"
    " WHERE attempt IS NOT NULL",
    # One row per visit of a browser-mode scene: its seeds (chosen once) and how many attempts were issued.
    """CREATE TABLE browser_visits (
        participant_id TEXT NOT NULL REFERENCES participants (participant_id),
        scene_index    INTEGER NOT NULL,
        scene_id       TEXT NOT NULL,
        seeds          TEXT NOT NULL,
        attempts       INTEGER NOT NULL DEFAULT 0,
        created_at     REAL NOT NULL,
        PRIMARY KEY (participant_id, scene_index)
    )""",
    # One row per attempt: when the server sent the config, and the first episode it was told to play.
    """CREATE TABLE browser_attempts (
        participant_id TEXT NOT NULL,
        scene_index    INTEGER NOT NULL,
        attempt        INTEGER NOT NULL,
        issued_at      REAL NOT NULL,
        first_episode  INTEGER NOT NULL,
        PRIMARY KEY (participant_id, scene_index, attempt),
        FOREIGN KEY (participant_id, scene_index) REFERENCES browser_visits (participant_id, scene_index)
    )""",
)

# Version 3: who played an agent when it was not the episode's own controller: after a partner dropped out and
# an AI policy took over (GymScene(on_partner_drop="ai")), ``{agent_id: "ai-takeover:<policy>"}``; NULL otherwise.
_SCHEMA_V3: tuple[str, ...] = ("ALTER TABLE steps ADD COLUMN controllers TEXT",)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _SCHEMA_V1), (2, _SCHEMA_V2), (3, _SCHEMA_V3))

SCHEMA_VERSION: int = MIGRATIONS[-1][0]
