"""What must hold in the database after a chaos run (``chaos_scenario.py``), as a list of problems (empty: all good).

* Every participant's status matches what happened to them: ``completed`` on the end page, ``timed_out`` on the
  end page with the waiting-room notice, ``dropped`` when they closed the tab for good (or ``timed_out`` if
  they closed it while waiting and the wait ran out before the drop delay); nobody stranded.
* Every stored episode is whole: its steps are ``0..n-1`` without gaps; an episode marked complete has
  ``max_steps`` steps or ends on a terminated/truncated step; one that is not whole is marked partial; none is
  left ``in_progress`` once the server has stopped.
* Browser episodes of different attempts never mix: ``(source, scene_index, attempt, episode)`` is unique, at
  most one attempt of an episode is complete without the repeat flag, every flagged repeat (``meta["repeat"]``,
  an episode played again after a reload, ``browser_scenes.py``) is complete and names an attempt holding the
  unflagged complete episode (or none, when a restarted server could not tell), and every attempt played the
  visit's own seed for that episode.
* p2p: every episode both peers uploaded has a parity verdict, and the peers agree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import db_under_test
from chaos_scenario import DROP_AFTER_S, GRACE_S, ChaosRun, scene_max_steps

from interactive_gym.server.storage import Storage


@dataclass(frozen=True)
class Expected:
    """What the driver saw for one participant: the status the database must hold, and whether they were
    stranded (not on a clear page within the bound although they never left)."""

    participant_id: str
    status: str
    stranded: bool
    left_at: float | None = None  # when a leaver closed their tab (time.time())


def _whole(steps: list[Any], max_steps: int, first_t: int = 0) -> bool:
    if len(steps) == max_steps - first_t:
        return True
    last = steps[-1] if steps else None
    return last is not None and any(bool(v) for v in (*dict(last.terminated).values(), *dict(last.truncated).values()))


def check_episodes(storage: Storage, max_steps: dict[str, int]) -> list[str]:
    """Problems with the stored episodes (see the module docstring)."""
    problems: list[str] = []
    episodes = storage.episodes()
    for row in episodes:
        name = f"episode {row.id} ({row.mode} {row.scene_id} #{row.episode} from {row.source}, {row.status})"
        steps = storage.steps(row.id)
        start = int((row.meta or {}).get("first_t", 0))  # a p2p page that rejoined stores from where it resumed
        if [s.t for s in steps] != list(range(start, start + len(steps))):
            problems.append(f"{name}: steps are not {start}..{start + len(steps) - 1}: {[s.t for s in steps][:20]}")
        if row.status == "in_progress":
            problems.append(f"{name}: still in progress after the server stopped")
        elif row.status == "complete" and not _whole(steps, max_steps[row.scene_id], start):
            problems.append(f"{name}: marked complete with {len(steps)} of {max_steps[row.scene_id]} steps")
    browser = [r for r in episodes if r.mode == "browser"]
    keys = Counter((r.source, r.scene_index, r.attempt, r.episode) for r in browser)
    problems += [f"browser episode stored twice for one attempt: {k}" for k, n in keys.items() if n > 1]
    first = [r for r in browser if r.status == "complete" and not (r.meta or {}).get("repeat")]
    complete = Counter((r.source, r.scene_index, r.episode) for r in first)
    problems += [f"browser episode complete in {n} attempts: {k}" for k, n in complete.items() if n > 1]
    holder = {(r.source, r.scene_index, r.episode): r.attempt for r in first}
    for row in browser:
        meta = row.meta or {}
        if not meta.get("repeat"):
            continue
        key = (row.source, row.scene_index, row.episode)
        of = meta.get("repeat_of_attempt")
        if row.status != "complete" or key not in holder or of not in (None, holder[key]) or of == row.attempt:
            problems.append(f"browser episode {row.id} (attempt {row.attempt}, {row.status}) is flagged a repeat "
                            f"of attempt {of}, but the visit's complete episode is in attempt {holder.get(key)}")
    for row in browser:
        visit = storage.browser_visit(row.source, row.scene_index) if row.scene_index is not None else None
        if visit is None or row.attempt is None or not 1 <= row.attempt <= len(visit.attempts):
            problems.append(f"browser episode {row.id} names no attempt the server issued ({row.attempt})")
        elif row.seed != visit.seeds[row.episode]:
            problems.append(f"browser episode {row.id} (attempt {row.attempt}) played seed {row.seed}, "
                            f"not the visit's {visit.seeds[row.episode]}")
    problems += _check_parity(storage, [r for r in episodes if r.mode == "p2p"])
    return problems


def _check_parity(storage: Storage, p2p: list[Any]) -> list[str]:
    sources: dict[tuple[str, int], set[str]] = defaultdict(set)
    for row in p2p:
        sources[(row.game_id, row.episode)].add(row.source)
    verdicts = {(e.game_id, e.data["episode"]): e.data for e in storage.events("p2p_parity")}
    problems = []
    for key, peers in sources.items():
        verdict = verdicts.get(key)
        if len(peers) >= 2 and verdict is None:
            problems.append(f"p2p game {key[0]} episode {key[1]}: both peers uploaded, no parity verdict")
        elif verdict is not None and not verdict["agree"]:
            problems.append(f"p2p game {key[0]} episode {key[1]}: peers disagree: {verdict}")
    return problems


def check_participants(storage: Storage, expected: list[Expected], drop_after_s: float) -> list[str]:
    """Problems with the participants' statuses and the bound (``drop_after_s``: the longest drop delay)."""
    stored = {row.participant_id: row for row in storage.participants()}
    timeouts = {e.participant_id: e.ts for e in storage.events("waiting_room_timeout")}
    problems = []
    for e in expected:
        row = stored.get(e.participant_id)
        timed_out_at = timeouts.get(e.participant_id)
        if e.status == "dropped" and row is not None and row.status == "timed_out" and e.left_at is not None \
                and timed_out_at is not None and timed_out_at < e.left_at + drop_after_s:
            # They closed the tab while waiting and the wait ran out before the drop delay did: the server
            # could not yet tell a closed tab from a blip, and timed out is what it saw.
            continue
        if e.stranded:
            problems.append(f"{e.participant_id} stranded (not on a clear page within the bound)")
        if row is None:
            problems.append(f"{e.participant_id}: not in the database")
        elif row.status != e.status:
            problems.append(f"{e.participant_id}: status {row.status!r} in the database, expected {e.status!r} "
                            f"(at {row.current_scene})")
    return problems


def check_database(db: Path, expected: list[Expected], max_steps: dict[str, int],
                   drop_after_s: float) -> tuple[list[str], Counter[str]]:
    """Every check; returns the problems and the histogram of stored statuses."""
    storage = db_under_test.open_storage(db)
    try:
        statuses = Counter(row.status for row in storage.participants())
        return check_participants(storage, expected, drop_after_s) + check_episodes(storage, max_steps), statuses
    finally:
        storage.close()


def check_run(run: ChaosRun) -> tuple[list[str], Counter[str]]:
    """Every check of one chaos run, from what its participants' pages showed."""
    expected = [Expected(o.plan.subject, o.expected_status, o.stranded, o.left_at) for o in run.outcomes]
    return check_database(run.db, expected, scene_max_steps(), max(GRACE_S, DROP_AFTER_S))
