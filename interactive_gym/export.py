"""Experiment database -> tidy CSV files that load straight into pandas (``pd.read_csv``).

Files written, one row per record:

- ``participants.csv``: participant columns, then ``url_param.<name>`` per URL parameter.
- ``scenes.csv``: one row per finished scene; ``answer.<field>`` per answer, ``meta.<field>`` per meta entry.
- ``episodes.csv``: one row per episode and writer; ``agent.<agent_id>`` (participant or policy), ``meta.*``.
- ``steps.csv``: one row per step with the episode's identifying columns repeated (so it stands alone), then
  ``observation``, ``action.<agent>``, ``reward.<agent>``, ``terminated.<agent>``, ``truncated.<agent>``,
  ``info.<key>``, ``keys.<agent>``, and ``controller.<agent>`` on steps an AI played in a dropped partner's
  place (``ai-takeover:<policy>``; the columns exist only if some step has one).
- ``agent_steps.csv``: the tidy form for analysis by participant: one row per step *per agent*, with
  ``agent``, ``participant_id`` (the participant who controlled that agent; empty for an AI policy),
  ``controller`` (participant id or policy reference; ``ai-takeover:<policy>`` on the steps an AI played after
  the agent's participant dropped out, whose ``participant_id`` is then empty), the episode's identifying
  columns, and that agent's
  ``action``, ``reward``, ``terminated``, ``truncated``, ``keys``. Join it to ``participants.csv`` on
  ``participant_id`` and to ``steps.csv`` on (``episode_id``, ``t``).

Browser-mode rows carry ``scene_index`` (the visit: place in the participant's scene sequence, so repetitions
of a scene are apart) and ``attempt`` (page load of that visit, 1, 2, ...); they are empty for server-mode and
p2p episodes. Times are unix seconds on the server's clock: ``started_at``/``ended_at`` and ``server_ts`` are
when the episode and step were played (for uploaded episodes, the page's clock corrected by its measured
offset), ``received_at`` when an upload arrived, ``client_*`` the page's own readings.
- ``events.csv``: one row per event; ``data`` is JSON text (event kinds carry different fields).

Cell rules. Nested string-keyed dicts become dotted columns (``info.pos.x``). Scalars are written as
themselves (floats exactly, via ``repr``; NaN and infinities as ``nan``/``inf``, which pandas parses). Lists,
tuples and numpy arrays become JSON text in one cell (``[[0, 1], [2, 3]]``), exact in value; read one back
with ``np.array(json.loads(cell))``; non-finite floats there appear as ``NaN``/``Infinity``, which
``json.loads`` accepts. Bytes become base64 text. ``None`` is an empty cell. Where flattening would give two
values the same column name (keys ``"a.b"`` and ``"a": {"b"}``), that whole field is kept as JSON text instead.
Exact dtypes stay in the database; :class:`~interactive_gym.server.storage.Storage` reads them back.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from interactive_gym.server.storage import Location, Storage, StorageError, location_of
from interactive_gym.server.storage_postgres import is_postgres_url

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy is a server dependency; plain values still export
    np = None  # type: ignore[assignment]

__all__ = [
    "DB_SUFFIXES",
    "ExportError",
    "TABLES",
    "default_out_dir",
    "export_csv",
    "find_database",
    "flatten",
    "to_plain",
]

DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")

_STEP_FIELDS = (
    ("observation", "observation"),
    ("actions", "action"),
    ("rewards", "reward"),
    ("terminated", "terminated"),
    ("truncated", "truncated"),
    ("info", "info"),
    ("keys", "keys"),
)
_PLAIN_SCALARS = frozenset({bool, int, float, str})
_STEP_FIXED = (
    "episode_id",
    "game_id",
    "scene_id",
    "scene_index",
    "attempt",
    "episode",
    "source",
    "mode",
    "t",
    "server_ts",
    "client_ts",
)
_AGENT_STEP_FIXED = ("episode_id", "agent", "participant_id", "controller", *_STEP_FIXED[1:])
_AGENT_FIELDS = (
    ("actions", "action"),
    ("rewards", "reward"),
    ("terminated", "terminated"),
    ("truncated", "truncated"),
    ("keys", "keys"),
)


class ExportError(Exception):
    """The input is missing, ambiguous or not an experiment database; the message says what to do."""


# ------------------------------------------------------------------------------------------- locating


def find_database(path: Path | str) -> Location:
    """Returns the database ``path`` names: a ``postgresql://`` URL as it is, the file itself, or the single
    database in a directory (or its ``data/`` folder)."""
    if is_postgres_url(path):
        return str(path)
    try:
        path = Path(location_of(path))  # a URL of another kind, or one folded into a path, is named as such
    except StorageError as exc:
        raise ExportError(str(exc)) from None
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    if path.is_file():
        return path
    candidates = sorted(
        child
        for folder in (path, path / "data")
        if folder.is_dir()
        for child in folder.iterdir()
        if child.is_file() and child.suffix.lower() in DB_SUFFIXES
    )
    if not candidates:
        suffixes = ", ".join(f"*{suffix}" for suffix in DB_SUFFIXES)
        raise ExportError(
            f"no database ({suffixes}) in {path} or {path / 'data'}; pass the database file itself"
        )
    if len(candidates) > 1:
        listed = ", ".join(str(c) for c in candidates)
        raise ExportError(f"several databases in {path}: {listed}; pass the one to export")
    return candidates[0]


def default_out_dir(db_path: Location) -> Path:
    """``<folder of the db>/<db name>_csv``: next to the data, never overwriting the database.

    For a PostgreSQL URL: ``<database name>_csv`` in the current folder.
    """
    if isinstance(db_path, str):
        name = urlsplit(db_path).path.strip("/") or "postgresql"
        return Path(f"{name}_csv")
    return db_path.with_name(f"{db_path.stem}_csv")


# ---------------------------------------------------------------------------------------------- export


def export_csv(db_path: Location, out_dir: Path) -> list[tuple[Path, int]]:
    """Writes the CSV files of :data:`TABLES` for ``db_path`` into ``out_dir`` (created); returns ``(file, rows)`` pairs.

    ``db_path`` is the SQLite file or the ``postgresql://`` URL of the experiment's database.

    Reads one consistent snapshot, so exporting while the server is still writing is safe. Each file is
    written under a temporary name and renamed, so a failed export never leaves a half-written CSV.
    """
    try:
        storage = Storage(db_path, readonly=True)
    except StorageError as exc:
        raise ExportError(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with storage, storage.snapshot():
        for name, (rows, fixed) in TABLES.items():
            path = out_dir / f"{name}.csv"
            written.append(_write_streamed(path, rows(storage), fixed) if fixed else _write(path, rows(storage)))
    return written


def _participant_rows(storage: Storage) -> Iterator[dict[str, Any]]:
    for p in storage.participants():
        fixed = {
            "participant_id": p.participant_id, "experiment_id": p.experiment_id, "status": p.status,
            "completion_code": p.completion_code, "current_scene": p.current_scene,
            "created_at": p.created_at, "updated_at": p.updated_at,
        }  # fmt: skip
        yield {**fixed, **flatten("url_param", p.url_params)}


def _scene_rows(storage: Storage) -> Iterator[dict[str, Any]]:
    for r in storage.scene_records():
        fixed = {
            "scene_record_id": r.id, "participant_id": r.participant_id, "scene_id": r.scene_id,
            "scene_index": r.scene_index, "started_at": r.started_at, "ended_at": r.ended_at,
        }  # fmt: skip
        yield {**fixed, **flatten("answer", r.answers), **flatten("meta", r.meta)}


def _episode_rows(storage: Storage) -> Iterator[dict[str, Any]]:
    for e in storage.episodes():
        fixed = {
            "episode_id": e.id, "experiment_id": e.experiment_id, "scene_id": e.scene_id, "game_id": e.game_id,
            "scene_index": e.scene_index, "attempt": e.attempt, "episode": e.episode, "mode": e.mode,
            "source": e.source, "seed": e.seed, "status": e.status, "started_at": e.started_at,
            "ended_at": e.ended_at, "received_at": e.received_at, "client_started_at": e.client_started_at,
            "client_ended_at": e.client_ended_at, "clock_offset": e.clock_offset, "env_hash": e.env_hash,
            "step_count": e.step_count,
        }  # fmt: skip
        yield {**fixed, **flatten("agent", e.agents), **flatten("meta", e.meta)}


def _event_rows(storage: Storage) -> Iterator[dict[str, Any]]:
    for e in storage.events():
        yield {
            "event_id": e.id, "ts": e.ts, "participant_id": e.participant_id, "game_id": e.game_id,
            "scene_id": e.scene_id, "kind": e.kind, "data": _json_text(e.data),
        }  # fmt: skip


def _step_rows(storage: Storage) -> Iterator[dict[str, Any]]:
    episodes = {e.id: e for e in storage.episodes()}
    for episode_id, step in storage.iter_steps():
        e = episodes[episode_id]
        row = _step_fixed(episode_id, e, step)
        for attribute, prefix in _STEP_FIELDS:
            row.update(flatten(prefix, getattr(step, attribute)))
        if step.controllers:
            row.update(flatten("controller", step.controllers))
        yield row


def _agent_step_rows(storage: Storage) -> Iterator[dict[str, Any]]:
    episodes = {e.id: e for e in storage.episodes()}
    participants = {p.participant_id for p in storage.participants()}
    for episode_id, step in storage.iter_steps():
        e = episodes[episode_id]
        fixed = _step_fixed(episode_id, e, step)
        takeovers = step.controllers or {}
        for agent in _agents_of(e.agents, step):
            controller = takeovers.get(agent, e.agents.get(agent))
            row: dict[str, Any] = {
                "episode_id": episode_id, "agent": str(agent),
                "participant_id": controller if controller in participants else None,
                "controller": None if controller is None else str(controller), **fixed,
            }  # fmt: skip
            for attribute, prefix in _AGENT_FIELDS:
                values = getattr(step, attribute)
                row.update(flatten(prefix, values.get(agent) if isinstance(values, dict) else None))
            yield row


def _agents_of(agents: dict[str, Any], step: Any) -> list[Any]:
    # The episode's agents, then any a step names that the episode does not (never "__all__").
    names = list(agents)
    for attribute, _ in _AGENT_FIELDS:
        values = getattr(step, attribute)
        if isinstance(values, dict):
            names.extend(k for k in values if k not in names and k != "__all__")
    return names


def _step_fixed(episode_id: int, e: Any, step: Any) -> dict[str, Any]:
    return {
        "episode_id": episode_id, "game_id": e.game_id, "scene_id": e.scene_id, "scene_index": e.scene_index,
        "attempt": e.attempt, "episode": e.episode, "source": e.source, "mode": e.mode, "t": step.t,
        "server_ts": step.server_ts, "client_ts": step.client_ts,
    }  # fmt: skip


TABLES: dict[str, tuple[Callable[[Storage], Iterator[dict[str, Any]]], tuple[str, ...]]] = {
    "participants": (_participant_rows, ()),
    "scenes": (_scene_rows, ()),
    "episodes": (_episode_rows, ()),
    "steps": (_step_rows, _STEP_FIXED),
    "agent_steps": (_agent_step_rows, _AGENT_STEP_FIXED),
    "events": (_event_rows, ()),
}
"""Every exported table: name -> (row generator, leading columns of the streamed big tables, else empty)."""


def _write(path: Path, rows: Iterable[dict[str, Any]]) -> tuple[Path, int]:
    materialized = list(rows)  # small tables: one pass for the header, one for the rows
    return _write_rows(path, _columns(materialized), materialized)


def _write_streamed(path: Path, rows: Iterable[dict[str, Any]], fixed: tuple[str, ...]) -> tuple[Path, int]:
    # Steps can be millions of rows and the header needs every column first. Rather than hold rows in memory
    # or decode twice, flattened rows go to a JSON-lines scratch file while columns are collected.
    scratch = path.with_name(path.name + ".rows.partial")
    columns: dict[str, None] = dict.fromkeys(fixed)
    try:
        with scratch.open("w", encoding="utf-8") as handle:
            for row in rows:
                columns.update(dict.fromkeys(row))
                handle.write(json.dumps(row, ensure_ascii=False, allow_nan=True) + "\n")
        with scratch.open(encoding="utf-8") as handle:
            return _write_rows(path, list(columns), (json.loads(line) for line in handle))
    finally:
        scratch.unlink(missing_ok=True)


def _columns(rows: Iterable[dict[str, Any]], fixed: tuple[str, ...] = ()) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(fixed)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _write_rows(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> tuple[Path, int]:
    partial = path.with_name(path.name + ".partial")
    count = 0
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])
            count += 1
    os.replace(partial, path)
    return path, count


# ------------------------------------------------------------------------------------------ flattening


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Flattens string-keyed dicts into ``prefix.key.subkey`` columns; anything else is one ``prefix`` column.

    Non-string keys (integer agent ids) become their ``str``. If two entries would land in the same column,
    the whole value is returned as one JSON-text column instead, so nothing is silently overwritten.
    """
    if not isinstance(value, dict):
        return {prefix: _leaf(value)}
    columns: dict[str, Any] = {}
    for name, leaf in _walk(prefix, value):
        if name in columns:
            return {prefix: _json_text(value)}
        columns[name] = leaf
    return columns


def _walk(prefix: str, value: dict[Any, Any]) -> Iterator[tuple[str, Any]]:
    for key, item in value.items():
        name = f"{prefix}.{key}"
        if isinstance(item, dict) and item:
            yield from _walk(name, item)
        else:
            yield name, _leaf(item)


def _leaf(value: Any) -> Any:
    """A scalar stays itself (numpy scalars become Python ones); containers become JSON text."""
    if value is None or type(value) in _PLAIN_SCALARS:
        return value
    plain = to_plain(value)
    if isinstance(plain, list | dict):
        return _json_text(plain)
    return plain


def to_plain(value: Any) -> Any:
    """Converts a decoded value to plain JSON types: arrays and tuples to lists, numpy scalars to numbers,
    bytes to base64 text, non-string dict keys to strings. Values are unchanged (floats stay exact)."""
    if np is not None:
        if isinstance(value, np.ndarray):
            # tolist() already yields plain Python numbers and strings for these kinds; others need a walk.
            return value.tolist() if value.dtype.kind in "biufU" else to_plain(value.tolist())
        if isinstance(value, np.generic):
            return to_plain(value.item())
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)  # complex numbers, datetimes: readable text rather than a failed export


def _json_text(value: Any) -> str:
    return json.dumps(to_plain(value), separators=(", ", ": "), ensure_ascii=False, allow_nan=True)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
