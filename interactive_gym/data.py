"""Load an experiment database straight into pandas: ``tables = interactive_gym.data.load("data/study.sqlite")``.

Returns one ``DataFrame`` per table with exactly the columns of the CSV export (:mod:`interactive_gym.export`):
``participants``, ``scenes``, ``episodes``, ``steps``, ``agent_steps`` (one row per step per agent, with
``participant_id``) and ``events``. Join on ``participant_id``, ``episode_id`` and ``t``. Needs the ``data``
extra (``pip install 'interactive-gym[data]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from interactive_gym.export import TABLES, ExportError, find_database
from interactive_gym.server.storage import Storage, StorageError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["load"]


def load(db: Path | str) -> dict[str, pandas.DataFrame]:
    """Reads every table of the database (or the one database in a folder) into DataFrames, from one snapshot.

    Raises:
        ImportError: pandas is not installed (install the ``data`` extra).
        ExportError: the path holds no experiment database, or several.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("interactive_gym.data needs pandas: pip install 'interactive-gym[data]'") from exc
    path = find_database(Path(db))
    try:
        storage = Storage(path, readonly=True)
    except StorageError as exc:
        raise ExportError(str(exc)) from None
    frames: dict[str, pandas.DataFrame] = {}
    with storage, storage.snapshot():
        for name, (rows, fixed) in TABLES.items():
            frame = pd.DataFrame(list(rows(storage)))
            for column in fixed:  # an empty table still has its leading columns, as in the CSV
                if column not in frame.columns:
                    frame[column] = pd.Series(dtype=object)
            frames[name] = frame
    return frames
