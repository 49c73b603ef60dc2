"""A model-based test of the participant flow (hypothesis stateful) on the real Experiment and EventRouter.

Random interleavings of connect, disconnect, advance (current, duplicated, stale, ahead), reload (the new
socket racing the old one's disconnect), a second tab, a stranger's browser, hide/show, join, keys, browser
uploads (retried, partial, failing), housekeeping with a moving clock, and server restarts, for three
participants. Several rules fire two or three events at once (``asyncio.gather``), as python-socketio does
when a page double-clicks or reloads. Checked after every step:

- the scene index is never negative, never past the end, and moves by exactly one per accepted advance (a
  jump only to the end page of a participant who timed out or whose game failed); one scene is left once;
- a finished participant stays finished, and every participant's status and scene in the database match;
- every emit had a target, and every personal event went to the live socket of the participant it was for;
- after housekeeping, nobody has waited past the room's timeout (they were matched or moved on), and
  nobody gone past their scene's drop delay is still counted active; joins may race the expiry;
- every player of a running server-mode game is still on its scene and in it (nobody timed out or moved on
  while their partners play);
- no two stored browser episodes share (source, scene_index, attempt, episode), and no stored episode holds
  steps of two uploads or of another attempt.

The two plain tests at the end replay races the model found (each failed before its fix).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from flow_model_support import (
    BROWSER_MAX_STEPS,
    Clock,
    Loop,
    Page,
    RecordingSio,
    build_config,
    start_server,
    stored_episode_problems,
    stored_statuses,
    upload_payload,
)
from hypothesis import HealthCheck, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from interactive_gym.server.flow.participants import Status

PIDS = ("p0", "p1", "p2")
WHO = st.sampled_from(PIDS)
TAB = st.sampled_from(("A", "B"))
COPIES = st.integers(min_value=1, max_value=3)


def event(text: str) -> None:
    """Counts ``text`` in the statistics (``--hypothesis-show-statistics``); nothing outside a Hypothesis run."""
    if currently_in_test_context():
        hypothesis_event(text)


class FlowModel(RuleBasedStateMachine):
    """Three participants, two tabs each (one browser: the tabs share the stored resume secret)."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="flow-model-"))
        self.db = self.tmp / "flow.sqlite"
        self.config = build_config(self.db)
        self.clock = Clock(1_000_000.0)
        self.monotonic = Clock(50_000.0)
        self.owner_of: dict[str, str] = {}
        self.sio = RecordingSio(self.owner_of)
        self.loop = Loop()
        self.writer, self.experiment, self.router, self.dispatch = self.loop.run(
            start_server(self.config, self.sio, self.clock, self.monotonic, restore=False))
        self.storage: dict[str, dict[str, str]] = {pid: {} for pid in PIDS}
        self.page_ids = itertools.count()
        self.sids = itertools.count()
        self.pages = {(pid, tab): Page(pid, f"{pid}-{tab}", self._page_id()) for pid in PIDS for tab in "AB"}
        self.scene_ids = {pid: [s.scene_id for s in self.config.stager.sequence_for(pid)] for pid in PIDS}
        self.last: dict[str, tuple[int, Status]] = {}
        self.accepted: Counter[str] = Counter()
        self.left: set[tuple[str, int]] = set()  # (participant, index) of every accepted advance
        self.seq = itertools.count()
        self.uploaded = False

    def teardown(self) -> None:
        async def stop() -> None:
            await self.experiment.shutdown()
            await self.writer.close()

        event(f"games started: {self.experiment.server_mode.games_started}")
        try:
            self.loop.run(stop())
            assert not stored_episode_problems(self.db)
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- plumbing -------------------------------------------------------------------------------------------
    def _page_id(self) -> str:
        return f"page-{next(self.page_ids)}"

    def _run(self, *coroutines: Any) -> list[Any]:
        """Runs the coroutines concurrently, then every piece of work they posted; pages read their inbox."""

        async def body() -> list[Any]:
            results = await asyncio.gather(*coroutines)
            await self.experiment.serial.drain()
            return list(results)

        results = self.loop.run(body())
        for page in self.pages.values():
            if page.sid is not None:
                page.take(self.sio.inbox.pop(page.sid, []), self.storage[page.pid])
        return results

    async def _open(self, page: Page, sid: str, storage: dict[str, str]) -> None:
        auth = {"url_params": {"subject_id": page.pid}, "tab_id": page.tab_id, "page_id": page.page_id,
                "resume": dict(storage)}
        await self.router._connect(sid, {}, auth)

    def _new_socket(self, page: Page) -> str:
        sid = f"sid-{next(self.sids)}"
        self.owner_of[sid] = page.pid
        self.sio.open.add(sid)
        page.sid, page.refused = sid, None
        return sid

    async def _close(self, sid: str) -> None:
        """The page's socket closed (client side): python-socketio runs the disconnect handler once."""
        if sid in self.sio.open:
            self.sio.open.discard(sid)
            for members in self.sio.rooms.values():
                members.discard(sid)
            await self.router._disconnect(sid, "client disconnect")

    def _claim(self, page: Page, kind: str) -> dict[str, Any] | None:
        """The scene an event of this page names: its current one, or a stale, wrong or skipped-ahead one."""
        if page.sid is None or page.scene is None:
            return None
        ids = self.scene_ids[page.pid]
        index = page.scene["index"]
        scene_id = page.scene["scene"]["scene_id"]
        if kind == "previous" and index > 0:
            index, scene_id = index - 1, ids[index - 1]
        elif kind == "ahead" and index + 1 < len(ids):
            index, scene_id = index + 1, ids[index + 1]
        elif kind == "wrong_id":
            scene_id = ids[(index + 1) % len(ids)]
        return {"scene_index": index, "scene_id": scene_id}

    def _advance(self, page: Page, claim: dict[str, Any]) -> Any:
        answers = {"consent": True} if claim["scene_id"] == "consent" else {}
        return self.dispatch["advance"](page.sid, {**claim, "answers": answers})

    def _count(self, pid: str, claim: dict[str, Any], acks: list[Any]) -> None:
        for ack in acks:
            event(f"advance: {'duplicate' if isinstance(ack, dict) and ack.get('duplicate') else ack.get('ok')}")
            if isinstance(ack, dict) and ack.get("ok") and not ack.get("duplicate"):
                key = (pid, claim["scene_index"])
                assert key not in self.left, f"{pid} left scene {key[1]} twice"
                self.left.add(key)
                self.accepted[pid] += 1

    def _next_step(self, who: str) -> None:
        """What the participant's page does next when nothing goes wrong (the rest of the rules disturb it)."""
        tabs = [self.pages[who, tab] for tab in "AB"]
        page = next((p for p in tabs if p.sid is not None and p.refused is None), tabs[0])
        if page.sid is None:
            self.connect(who, page.tab_id[-1])
            return
        if page.scene is None or page.refused is not None:
            return
        scene_id = page.scene["scene"]["scene_id"]
        config = page.scene["scene"].get("browser")
        if scene_id == "end":
            return
        if config is not None and not page.over:
            left = [e for e in config["episodes"] if e not in page.played]
            if left:
                acks = self._run(self.dispatch["browser_episode"](page.sid, upload_payload(
                    page, left[0], BROWSER_MAX_STEPS, "done")))
                self.uploaded = True
                if acks[0]["ok"]:
                    page.played.add(left[0])
                return
        if scene_id == "duel" and not page.over:
            if page.game_id is None:
                self.join(who, page.tab_id[-1], 1)
            else:
                self._run(asyncio.sleep(0.02))
            return
        self.advance(who, page.tab_id[-1], "current", 1)

    # -- rules ----------------------------------------------------------------------------------------------
    @initialize()
    def open_pages(self) -> None:
        for pid in PIDS[:2]:
            self.connect(pid, "A")

    @rule(who=WHO)
    def next_step(self, who: str) -> None:
        self._next_step(who)

    @rule(who=WHO, times=st.integers(1, 4))
    def next_steps(self, who: str, times: int) -> None:
        for _ in range(times):
            self._next_step(who)

    @rule(who=WHO, tab=TAB)
    def connect(self, who: str, tab: str) -> None:
        page = self.pages[who, tab]
        if page.sid is None:
            self._run(self._open(page, self._new_socket(page), self.storage[who]))

    @rule(who=WHO, tab=TAB)
    def disconnect(self, who: str, tab: str) -> None:
        page = self.pages[who, tab]
        if page.sid is not None:
            sid, page.sid = page.sid, None
            self._run(self._close(sid))

    @rule(who=WHO, tab=TAB, old_first=st.booleans())
    def reload(self, who: str, tab: str, old_first: bool) -> None:
        """A new page load in the tab: its socket connects while the old page's socket is closing."""
        page = self.pages[who, tab]
        old = page.sid
        page.page_id, page.scene, page.game_id, page.payloads = self._page_id(), None, None, {}
        opening = self._open(page, self._new_socket(page), self.storage[who])
        if old is None:
            self._run(opening)
        else:
            self._run(*((self._close(old), opening) if old_first else (opening, self._close(old))))

    @rule(who=WHO)
    def stranger(self, who: str) -> None:
        """Someone opens the participant's link in another browser (no resume secret): refused, no effect."""
        participant = self.experiment.registry.get(who)
        if participant is None:
            return
        live = participant.sid
        page = Page(who, f"{who}-elsewhere", self._page_id())
        sid = self._new_socket(page)
        self._run(self._open(page, sid, {}))
        page.take(self.sio.inbox.pop(sid, []), {})
        assert page.refused == "refused_not_yours" and participant.sid == live
        self._run(self._close(sid))

    @rule(who=WHO, tab=TAB, kind=st.sampled_from(["current", "current", "previous", "wrong_id", "ahead"]),
          copies=COPIES)
    def advance(self, who: str, tab: str, kind: str, copies: int) -> None:
        page = self.pages[who, tab]
        claim = self._claim(page, kind)
        if claim is not None:
            self._count(who, claim, self._run(*(self._advance(page, claim) for _ in range(copies))))

    @rule(who=WHO, tab=TAB, advance_first=st.booleans())
    def advance_and_disconnect(self, who: str, tab: str, advance_first: bool) -> None:
        page = self.pages[who, tab]
        claim = self._claim(page, "current")
        if claim is None:
            return
        sid, moving = page.sid, self._advance(page, claim)
        page.sid = None
        assert sid is not None
        closing = self._close(sid)
        results = self._run(*((moving, closing) if advance_first else (closing, moving)))
        self._count(who, claim, [results[0] if advance_first else results[1]])

    @rule(who=WHO, tab=TAB, visible=st.booleans())
    def visibility(self, who: str, tab: str, visible: bool) -> None:
        page = self.pages[who, tab]
        if page.sid is not None:
            self._run(self.dispatch["visibility"](page.sid, {"visible": visible}))

    @rule(who=WHO, tab=TAB, copies=COPIES)
    def join(self, who: str, tab: str, copies: int) -> None:
        page = self.pages[who, tab]
        claim = self._claim(page, "current")
        if claim is not None:
            self._run(*(self.dispatch["join_game"](page.sid, claim) for _ in range(copies)))

    @rule(who=WHO, tab=TAB)
    def keys(self, who: str, tab: str) -> None:
        page = self.pages[who, tab]
        if page.sid is not None and page.game_id is not None:
            self._run(self.dispatch["keys"](page.sid, {"game_id": page.game_id, "held": ["ArrowUp"],
                                                       "seq": next(self.seq)}))

    @rule(who=WHO, tab=TAB, pick=st.integers(0, 3), steps=st.integers(1, BROWSER_MAX_STEPS),
          end=st.sampled_from(["done", "done", "page_closed", "error"]), copies=st.integers(1, 2))
    def upload(self, who: str, tab: str, pick: int, steps: int, end: str, copies: int) -> None:
        """A browser-mode episode as the page uploads it (a retry is the same payload again)."""
        page = self.pages[who, tab]
        config = (page.scene or {}).get("scene", {}).get("browser")
        if page.sid is None or config is None or not config["episodes"]:
            return
        episode = config["episodes"][pick % len(config["episodes"])]
        payload = upload_payload(page, episode, BROWSER_MAX_STEPS if end == "done" else steps, end)
        acks = self._run(*(self.dispatch["browser_episode"](page.sid, payload) for _ in range(copies)))
        assert all(ack["ok"] or ack.get("code") == "conflict" for ack in acks), acks
        for ack in acks:
            event(f"upload {end}: {ack.get('code') or 'ok'}")
        self.uploaded = True

    @rule()
    def let_games_run(self) -> None:
        """Real time passes until every server-mode game has ended (3 steps at 60 fps)."""

        async def wait() -> None:
            for _ in range(1000):  # a generous bound for a loaded machine; it returns as soon as they end
                if not self.experiment.server_mode.runners:
                    break
                await asyncio.sleep(0.01)
            assert not self.experiment.server_mode.runners, "a 3-step game did not end"

        self._run(wait())

    @rule(seconds=st.sampled_from([0.5, 2.5, 6.0, 400.0]), racing=st.booleans())
    def housekeeping(self, seconds: float, racing: bool) -> None:
        """The clock moves on and housekeeping runs: waiters past the timeout move on, the long gone drop.

        ``racing``: every page on the game scene sends ``join_game`` at the same moment (a page re-sends it on
        every reconnect), so a join can land between the expiry and its effect.
        """
        self.clock.now += seconds
        self.monotonic.now += seconds
        experiment = self.experiment
        rooms = experiment.server_mode.rooms.rooms
        due = [pid for room in rooms.values() for pid in room.waiting()
               if self.monotonic.now - room.waiter(pid).joined_at >= room.timeout_s]  # type: ignore[union-attr]
        gone = [p.participant_id for p in experiment.registry.all() if not p.finished and p.gone_since is not None
                and self.clock.now - p.gone_since >= experiment.flow.drop_after(p.scene)]
        joins = []
        if racing:
            for page in self.pages.values():
                claim = self._claim(page, "current")
                if claim is not None and claim["scene_id"] == "duel":
                    joins.append(self.dispatch["join_game"](page.sid, claim))
        self._run(experiment.housekeeping(), *joins)
        for room in rooms.values():
            for pid in room.waiting():
                waiter = room.waiter(pid)
                assert waiter is not None and self.monotonic.now - waiter.joined_at < room.timeout_s, pid
        for pid in due:
            participant = experiment.registry.get(pid)
            assert participant is not None
            matched = participant.game_id is not None or participant.game_over is not None
            timed_out = participant.status is Status.TIMED_OUT and participant.index == len(participant.sequence) - 1
            assert matched or timed_out, f"{pid} waited past the timeout and is neither matched nor moved on"
        for pid in gone:
            participant = experiment.registry.get(pid)
            assert participant is not None and (participant.status is Status.DROPPED or participant.finished), pid

    @rule(who=WHO, tab=TAB)
    def events_while_games_run(self, who: str, tab: str) -> None:
        """A page's next step and a reconnect of its partner while games tick and end in the background."""
        page = self.pages[who, tab]
        claim = self._claim(page, "current")
        if claim is None:
            return
        others = [p for p in self.pages.values() if p.pid != who and p.sid is None]
        extra = [self._open(others[0], self._new_socket(others[0]), self.storage[others[0].pid])] if others else []
        acks = self._run(asyncio.sleep(0.03), self._advance(page, claim), *extra)
        self._count(who, claim, [acks[1]])

    @rule()
    def restart(self) -> None:
        """The server stops and starts again on the same database; pages keep their state and reconnect."""

        async def stop() -> None:
            await self.experiment.shutdown()
            await self.writer.close()

        self.loop.run(stop())
        self.sio.drop_all()
        for page in self.pages.values():
            page.sid = None
        self.writer, self.experiment, self.router, self.dispatch = self.loop.run(
            start_server(self.config, self.sio, self.clock, self.monotonic, restore=True))

    # -- invariants -----------------------------------------------------------------------------------------
    @invariant()
    def emits_were_targeted_and_personal(self) -> None:
        assert not self.sio.problems, self.sio.problems

    @invariant()
    def scenes_move_one_at_a_time_and_the_finished_stay_finished(self) -> None:
        stored = stored_statuses(self.db)
        participants = {p.participant_id: p for p in self.experiment.registry.all()}
        assert set(self.last) <= set(participants), "a participant was forgotten"
        for pid, participant in participants.items():
            end = len(participant.sequence) - 1
            index, status = participant.index, participant.status
            assert 0 <= index <= end
            before, was = self.last.get(pid, (0, Status.ACTIVE))
            accepted = self.accepted.pop(pid, 0)
            if was.finished:
                assert (index, status) == (before, was), f"{pid} finished as {was} and is now {status} at {index}"
            elif status in (Status.TIMED_OUT, Status.ERRORED):
                assert index == end and index >= before
            else:
                assert index - before == accepted, f"{pid} moved {before} -> {index} with {accepted} advances"
            assert stored.get(pid) == (status.value, participant.scene.scene_id), (pid, stored.get(pid), status)
            self.last[pid] = (index, status)
            event(f"{pid} at {participant.scene.scene_id} ({status.value})")

    @invariant()
    def players_of_a_running_game_are_in_it(self) -> None:
        """Nobody leaves a game scene (timed out, moved on) while their game still runs."""
        for game_id, runner in self.experiment.server_mode.runners.items():
            for pid in runner.game.humans.values():
                participant = self.experiment.registry.get(pid)
                assert participant is not None
                assert participant.game_id == game_id and participant.scene.scene_id == runner.game.scene.scene_id, \
                    f"{pid} is at {participant.scene.scene_id} ({participant.status}) while game {game_id} runs"

    @invariant()
    def stored_episodes_never_mix_attempts(self) -> None:
        if self.uploaded:
            self.uploaded = False
            assert not stored_episode_problems(self.db)


FlowModel.TestCase.settings = settings(max_examples=60, stateful_step_count=80, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
test_participant_flow_model = FlowModel.TestCase


def test_a_join_racing_the_wait_timeout_keeps_the_match() -> None:
    """Found by the model: p0 waits alone past the timeout; housekeeping decides they time out while p0's page
    (reconnecting) and p1's page send join_game. The joins are handled first and match p0 with p1; the timeout
    must then not send p0 to the end page, leaving p1 in a game with nobody."""
    model = FlowModel()
    try:
        model.open_pages()
        for who in ("p0", "p1"):
            model.advance(who, "A", "current", 1)  # consent
            model.advance(who, "A", "current", 1)  # instructions
        model.join("p0", "A", 1)
        model.housekeeping(6.0, racing=True)
        p0 = model.experiment.registry.get("p0")
        assert p0 is not None and p0.status is Status.ACTIVE and p0.scene.scene_id == "duel"
        assert p0.game_id is not None and p0.game_id in model.experiment.server_mode.runners
        model.players_of_a_running_game_are_in_it()
        model.let_games_run()
        model.scenes_move_one_at_a_time_and_the_finished_stay_finished()
    finally:
        model.teardown()


def test_a_join_queued_at_the_end_of_a_game_shows_the_game_over_and_never_starts_a_second_game() -> None:
    """Found by the model: p0's page re-sends join_game (it reconnected) while an earlier event of p0 is still
    handled; meanwhile p0's game ends and its game-over is queued behind the join. The join must not queue p0
    for a new game with the waiting p2 (the old game-over would then land on the new game); the page, which
    missed the room's game_over, is shown the game-over scene instead."""
    model = FlowModel()
    try:
        model.open_pages()
        model.connect("p2", "A")
        for who in ("p0", "p1", "p2"):
            model.advance(who, "A", "current", 1)
            model.advance(who, "A", "current", 1)
        model.join("p0", "A", 1)
        model.join("p1", "A", 1)
        model.join("p2", "A", 1)
        experiment = model.experiment
        p0 = experiment.registry.get("p0")
        assert p0 is not None and p0.game_id in experiment.server_mode.runners
        game_id, page = p0.game_id, model.pages["p0", "A"]
        claim = model._claim(page, "current")
        assert page.sid is not None and claim is not None

        async def join_while_the_game_ends() -> None:
            async with experiment.serial.hold("p0"):  # p0's previous event is still being handled
                join = asyncio.ensure_future(model.dispatch["join_game"](page.sid, claim))
                while game_id in experiment.server_mode.runners:
                    await asyncio.sleep(0.005)
            await join

        model._run(join_while_the_game_ends())
        assert p0.game_over is not None and p0.game_over["reason"] == "complete" and p0.game_id is None
        assert not experiment.server_mode.runners, "p0 was matched into a second game of the scene"
        assert experiment.server_mode.rooms.rooms["duel"].waiting() == ["p2"]
        assert page.over, "the page was not shown that its game is over"
        model.players_of_a_running_game_are_in_it()
        model.scenes_move_one_at_a_time_and_the_finished_stay_finished()
    finally:
        model.teardown()
