"""p2p mode: every player's browser runs the env and the rollback netcode; the server matches, announces,
relays signaling, re-attaches returning sockets, stores uploads and judges the peers' agreement.

A ``p2p_join`` for a running game is one of three things: the same page again (same ``page_id``: a repeat or a
late event; it gets its game again), a new page of the player (a reload or a crash: it rejoins, a partner's page
sending it the game), or, when no partner can send it, a player who left.

The decisions live in :class:`~interactive_gym.server.pyodide_game_coordinator.PyodideGameCoordinator`
(state), :mod:`~interactive_gym.server.modes.waiting` (queues) and :mod:`~interactive_gym.server.parity`
(agreement); this class moves events in and out and stores data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from interactive_gym.browser.p2p_config import p2p_block
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.game_over import game_over_record
from interactive_gym.server.modes.base import START_FAILED_NOTICE, Ack, FlowHooks
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.modes.p2p_uploads import P2PUploads
from interactive_gym.server.modes.waiting import RoomSet
from interactive_gym.server.pyodide_game_coordinator import PyodideGameCoordinator, PyodideGameState
from interactive_gym.server.signaling import SignalingRelay
from interactive_gym.server.turn_grants import REFRESH_EVENT, TurnGrants, refresh_payload

log = logging.getLogger("interactive_gym.p2p")
MAX_PARTNER_ERROR_CHARS = 4000  # schemas.py p2p_game_end.error


class P2PMode:
    """Peer-to-peer scenes of one experiment.

    Args:
        sio: The Socket.IO server.
        writer: The experiment's DataWriter.
        browser: Bundles and configs of in-browser scenes (p2p games ship the same code).
        webrtc: Resolved ``WebRTCSettings`` (TURN/STUN for ``pyodide_game_ready``).
        hooks: The participant flow.
        test_faults: Fault profile for the transport (tests only; None in real experiments).
        verifier: Optional replay verifier: every stored peer trajectory is replayed off the event loop.
        clock: Monotonic clock.
        groups: Who played with whom (shared with server mode), for ``keep_group_from`` scenes.
        rooms: Its waiting rooms (default: in this process; several workers share them through Redis).
    """

    name = "p2p"

    def __init__(self, sio: Any, writer: Any, browser: BrowserScenes, webrtc: Any, hooks: FlowHooks,
                 test_faults: Mapping[str, float] | None = None, verifier: Any = None,
                 clock: Callable[[], float] = time.monotonic, groups: GroupMemory | None = None,
                 rooms: RoomSet | None = None) -> None:
        self.sio = sio
        self.writer = writer
        self.browser = browser
        self.webrtc = webrtc
        self.hooks = hooks
        self.test_faults = test_faults
        self.verifier = verifier
        self.clock = clock
        self.coordinator = PyodideGameCoordinator()
        self.turn_grants = TurnGrants(webrtc)  # each player's TURN credentials, minted once per game
        self.uploads = P2PUploads(writer, self.coordinator, verifier, webrtc)
        self.relay = SignalingRelay(self.coordinator)
        self.relay.bind(sio)  # its events are registered with every other event, in events.py
        self.rooms = rooms or RoomSet(sio, hooks, groups)
        self.scenes: dict[str, GymScene] = {}
        self.configs: dict[str, dict[str, Any]] = {}  # game_id -> scene config shared by its players
        # Games the coordinator let go (every player finished or disconnected) while a player was only away: a
        # socket blip, the page still playing. Kept until that player's page ends its game (or the player is
        # dropped), so that it can still upload its episodes and get its game-over record.
        self.awaiting_return: dict[str, PyodideGameState] = {}
        self.games_started = 0
        self.ended_by_researcher: set[str] = set()  # games the dashboard ended (their pages report partner_left)
        # participant -> the last game whose end they reported: the same end again is acknowledged, not refused.
        self.ended: dict[str, str] = {}
        # Rejoin after a reload (_rejoin): a new page of a player of a running two-player game with a fixed input
        # delay gets it back from a partner's page (p2p_game.js). Off: a reload leaves the game.
        self.rejoin_enabled = True

    # -- GameMode ---------------------------------------------------------------------------------------------
    async def scene_view(self, participant: Participant, scene: GymScene) -> dict[str, Any]:
        return {}

    async def presence_changed(self, participant: Participant) -> None:
        await self._presence(participant)

    async def disconnected(self, participant: Participant) -> None:
        self.coordinator.disconnected(participant.participant_id, self.clock())
        await self._presence(participant)

    async def reconnected(self, participant: Participant) -> None:
        """A socket blip: the page (still running its game) is re-attached to the game's room and signaling."""
        assert participant.sid is not None
        game = self.coordinator.reattach(participant.participant_id, participant.sid)
        if game is not None:
            await self.sio.enter_room(participant.sid, game.game_id)
            me = game.player_of(participant.participant_id)
            await self.hooks.record_event("p2p_reconnected", {"player_id": me},
                                          participant, scene_id=game.scene_id, game_id=game.game_id)
            for player in sorted(game.rejoining - {me} if me is not None else ()):
                # A partner's new page was announced while this socket was away: this page may be its sender.
                notice = self._rejoin_notice(game, player, self._sender(game, player))
                await self.sio.emit("p2p_peer_rejoining", notice, to=participant.sid)
            if me in game.rejoining:
                await self._tell_finished(game, me)  # a partner ended while this page was getting the game
        else:
            game = self._game_of(participant.participant_id)  # over for the others, kept for this player
        if game is not None:
            await self._send_turn(game, participant)  # credentials renewed while this socket was away
            me = game.player_of(participant.participant_id)
            if game.partner_left_sent and not game.taken_over:
                # The partners were told while this socket was away (or the news was about this player): the
                # page still waits for a partner who is gone; it must end its game too.
                left = game.partner_left_notice
                if left is None:  # only between the grace check and its notice (expire)
                    gone = next((p for p in game.players
                                 if p != me and (p in game.finished or not game.sids.get(p))), None)
                    left = {"game_id": game.game_id, "player_id": gone, "reason": "left"}
                await self.sio.emit("p2p_partner_left", left, to=participant.sid)
        await self._presence(participant)

    async def left_scene(self, participant: Participant, scene: GymScene) -> None:
        await self.rooms.leave(scene, participant.participant_id)
        game = self._game_of(participant.participant_id)
        if game is not None:
            await self._player_left(game, participant)

    async def dropped(self, participant: Participant) -> None:
        # A running game has already dealt with the absence (partners told after the grace period).
        scene = participant.scene
        if isinstance(scene, GymScene):
            await self.rooms.leave(scene, participant.participant_id)
        game = self._game_of(participant.participant_id)
        if game is not None and game.game_id in self.awaiting_return:
            await self._finish(game, participant.participant_id)

    async def excluded(self, participant: Participant) -> None:
        """The partners are told at once: with ``on_partner_drop="ai"`` and one player left, that page plays the
        excluded player on (``p2p_takeover``); otherwise they get ``p2p_partner_left`` (their clear end page)."""
        game = self._game_of(participant.participant_id)
        player = game.player_of(participant.participant_id) if game is not None else None
        if game is None or player is None:
            return
        scene = self.scenes.get(game.scene_id)
        left = [p for p in game.players if p != player and p not in game.finished and p not in game.taken_over]
        if scene is not None and scene.takeover is not None and len(left) == 1 and game.sids.get(left[0]):
            await self._finish(game, participant.participant_id)
            await self._hand_over(game, left[0], [player])
        else:
            await self._player_left(game, participant)

    async def expire(self, now: float) -> None:
        """Waiting-room timeouts, partners gone past their grace period, TURN credentials about to expire."""
        for regrouped_scene, group in await self.rooms.expire(now):  # regrouped after a gathering gave up
            await self._start(regrouped_scene, group)
        grace = {sid: s.disconnect_grace_s for sid, s in self.scenes.items()}
        for game, stay in self.coordinator.overdue(now, grace):
            gone = [p for p in game.players if p not in stay]
            scene = self.scenes.get(game.scene_id)
            leaving = [p for p in gone if p not in game.finished]
            if scene is not None and scene.takeover is not None and len(stay) == 1 and leaving:
                # on_partner_drop="ai": the one player left plays on, their page running the policy for the gone.
                await self._hand_over(game, stay[0], leaving)
                continue
            notice = game.partner_left_notice = {"game_id": game.game_id, "player_id": gone[0] if gone else None,
                                                 "reason": "left"}
            for player in stay:
                sid = game.sids.get(player)
                if sid:
                    await self.sio.emit("p2p_partner_left", notice, to=sid)
            await self.writer.record_event("p2p_partner_left", {"gone": gone}, game_id=game.game_id,
                                           scene_id=game.scene_id)
            await self.uploads.record_verdicts(game)
        await self._renew_turn(time.time())

    async def shutdown(self) -> None:
        return None

    async def _hand_over(self, game: PyodideGameState, player: int, gone: list[int]) -> None:
        """Tells the last player's page to play the gone players with the scene's partner-drop policy."""
        game.taken_over.update(gone)
        sid = game.sids.get(player)
        if sid:
            await self.sio.emit("p2p_takeover", {"game_id": game.game_id, "player_ids": gone}, to=sid)
        await self.writer.record_event("p2p_takeover_sent", {"gone": gone, "to": player}, game_id=game.game_id,
                                       scene_id=game.scene_id)

    # -- events -----------------------------------------------------------------------------------------------
    async def join(self, participant: Participant, scene: GymScene, rtt_ms: float | None) -> None:
        """The participant's page is ready for a p2p scene: queue them or start a game."""
        self.scenes[scene.scene_id] = scene
        running = self._game_of(participant.participant_id)
        if running is not None:
            if await self._same_page(running, participant) or await self._rejoin(participant):
                return
            # A new page (reload) that no partner can send the running game to: the player has left that game.
            await self._player_left(running, participant)
            participant.game_over = game_over_record("left")
            participant.game_id = None
            return
        group = await self.rooms.join(scene, participant, self.clock(), rtt_ms)
        if group is not None:
            await self._start(scene, group)

    async def upload(self, participant: Participant, payload: Any) -> Ack:
        """A peer's confirmed trajectory of one episode: validate, store, and judge parity once all are in."""
        game_id = payload.get("game_id") if isinstance(payload, dict) else None
        game = self._game(game_id) if isinstance(game_id, str) else None
        if game is None or game.player_of(participant.participant_id) is None:
            return {"ok": False, "code": "not_in_game", "error": "upload for a game you are not in",
                    "retryable": False}
        return await self.uploads.store(game, participant, payload, self.configs[game.game_id],
                                        self.scenes[game.scene_id])

    async def _same_page(self, game: PyodideGameState, participant: Participant) -> bool:
        """A repeated or late ``p2p_join`` of the page already playing ``game`` (same ``page_id``: not a reload).

        The page may have missed its ``pyodide_game_ready`` (its socket dropped before it arrived), so it is
        re-attached and gets the game again; a page that has it already ignores the repeat (p2p_game.js).
        """
        player = game.player_of(participant.participant_id)
        if player is None or not participant.page_id or game.page_ids.get(player) != participant.page_id:
            return False
        if participant.sid and game.game_id in self.coordinator.games:
            self.coordinator.reattach(participant.participant_id, participant.sid)
        scene = self.scenes.get(game.scene_id)
        left_s = (scene.countdown_s if scene is not None else 0) - (time.time() - game.created_at)
        sender = self._sender(game, player) if player in game.rejoining else None
        await self._send_ready(game, player, participant, countdown_s=max(0.0, left_s), sender=sender)
        await self.hooks.record_event("p2p_join_repeated", {"player_id": player}, participant,
                                      scene_id=game.scene_id, game_id=game.game_id)
        return True

    def _rejoinable(self, game: PyodideGameState) -> bool:
        """Whether a new page of a player of ``game`` may get it back (two players: what
        ``P2PGameHost.request_rejoin`` can serve)."""
        return self.rejoin_enabled and len(game.players) == 2

    def _sender(self, game: PyodideGameState, player: int) -> int:
        """The partner whose page sends ``player``'s new page the game: the lowest connected one."""
        others = [p for p in sorted(game.players) if p != player and p not in game.finished]
        connected = [p for p in others if game.sids.get(p)]
        return (connected or others or [player])[0]

    async def _rejoin(self, participant: Participant) -> bool:
        """A new page of a player in a running game (a reload or a crash) gets the game again (``rejoin``).

        The connected partners are told (``p2p_peer_rejoining``): the lowest of them sends the new page a
        snapshot peer to peer. False when nobody can (no partner connected, the game over for them, the player
        taken over or announced gone, a game rejoin does not support): then the player has left, as without
        rejoin.
        """
        running = self.coordinator.game_of(participant.participant_id)
        if running is None or not participant.sid or not self._rejoinable(running):
            return False
        found = self.coordinator.rejoin(participant.participant_id, participant.sid)
        if found is None:
            return False
        game, player, sender = found
        game.page_ids[player] = participant.page_id
        await self.sio.enter_room(participant.sid, game.game_id)
        for other, sid in game.sids.items():
            if other != player and sid and other not in game.finished:
                await self.sio.emit("p2p_peer_rejoining", self._rejoin_notice(game, player, sender), to=sid)
        await self._send_ready(game, player, participant, countdown_s=0, sender=sender)
        await self.hooks.record_event("p2p_rejoin", {"player_id": player, "sender": sender}, participant,
                                      scene_id=game.scene_id, game_id=game.game_id)
        return True

    @staticmethod
    def _rejoin_notice(game: PyodideGameState, player: int, sender: int) -> dict[str, Any]:
        """``p2p_peer_rejoining`` for the partners: ``attempt`` numbers the player's new pages (a repeat of the
        same notice changes nothing on a page)."""
        return {"game_id": game.game_id, "player_id": player, "sender": sender,
                "attempt": game.rejoins.get(player, 1)}

    async def _send_ready(self, game: PyodideGameState, player: int, participant: Participant, *,
                          countdown_s: float, sender: int | None = None) -> None:
        """Sends ``pyodide_game_ready`` to ``participant``'s page (the start, a repeated join, a rejoin).

        Args:
            countdown_s: The start countdown the page shows ("Partner found, starting in 3…").
            sender: For a rejoining page: the partner that sends it the game (``rejoin: true``).
        """
        if not participant.sid:
            return
        grant = self.turn_grants.for_player(game.game_id, participant.participant_id, time.time())
        payload = self.coordinator.ready_payload(game, player, grant.turn_config, grant.rtc_configuration,
                                                 self.configs[game.game_id])
        payload["countdown_s"] = countdown_s
        payload["can_rejoin"] = self._rejoinable(game)  # a silent partner may come back: wait for the server
        if sender is not None:
            payload.update(rejoin=True, sender=sender)
        await self.sio.emit("pyodide_game_ready", payload, to=participant.sid)

    async def end_game(self, game_id: str) -> bool:
        """The researcher ends a running game: every page ends it as if the partner left (uploading what was
        played, marked partial) and shows the researcher's message; False if no such game is running."""
        game = self.coordinator.games.get(game_id)
        if game is None:
            return False
        self.ended_by_researcher.add(game_id)
        message = game_over_record("ended_by_researcher")["message"]
        for sid in game.sids.values():
            if sid:
                await self.sio.emit("p2p_game_ended", {"game_id": game_id, "message": message}, to=sid)
        return True

    async def game_end(self, participant: Participant, game_id: str, reason: str, error: str = "") -> bool:
        """A player's game is over (after their uploads); False if they are not in that game."""
        if self.ended.get(participant.participant_id) == game_id:
            return True  # the same end again (a repeated or late event): done the first time
        if game_id in self.ended_by_researcher:
            reason = "ended_by_researcher"
        game = self._game(game_id)
        if game is not None and game.player_of(participant.participant_id) is not None:
            await self._finish(game, participant.participant_id)
            if reason != "complete":
                # The partners' pages may not hear it peer to peer (still connecting, or the channel is down).
                await self._tell_partners(game, participant, reason, error)
            for player in sorted(game.rejoining - game.finished):
                await self._tell_finished(game, player)
        elif participant.game_id != game_id:
            return False
        # else: the game was let go while this player was away past the drop delay; the page's end of the game
        # they were given still ends it for them (else they could never continue).
        if participant.sid:
            await self.sio.leave_room(participant.sid, game_id)
        record = game_over_record(reason)
        if error:
            record["error"] = error
            log.warning("p2p game %s: participant %s's page reported an error:\n%s", game_id,
                        participant.participant_id, error)
        if reason == "error":
            await self.hooks.record_event("game_error", {"error": error, "reason": reason}, participant,
                                          scene_id=participant.scene.scene_id, game_id=game_id)
        participant.game_over = record
        participant.game_id = None
        self.ended[participant.participant_id] = game_id
        await self.hooks.record_event("p2p_game_end", {"reason": reason}, participant,
                                      scene_id=participant.scene.scene_id, game_id=game_id)
        return True

    # -- internals --------------------------------------------------------------------------------------------
    async def _presence(self, participant: Participant) -> None:
        scene = participant.scene
        if isinstance(scene, GymScene) and scene.mode == self.name:
            group = await self.rooms.set_presence(scene, participant)
            if group is not None:
                await self._start(scene, group)

    def scene_config(self, scene: GymScene, game: PyodideGameState) -> dict[str, Any]:
        """The config every player of ``game`` runs (identical for all: seeds come from the game's seed)."""
        seeds = [scene.episode_seed(game.seed, e) for e in range(scene.num_episodes)]
        config = self.browser.scene_config(scene, seeds, mode="p2p")
        config["p2p"] = p2p_block(scene, len(game.players), self.test_faults)
        return config

    async def _start(self, scene: GymScene, players: list[Participant]) -> None:
        """Starts a game, or, if that fails, puts every member back in the queue with a notice."""
        now = time.time()
        try:
            seed = None if scene.seed is None else scene.seed + self.games_started
            game = self.coordinator.create_game(scene.scene_id, [(p.participant_id, p.sid) for p in players],
                                                list(scene.facts.humans), now, seed=seed)
        except Exception:  # noqa: BLE001 - never leave a group stuck on "waiting"
            log.exception("p2p game for scene %s could not start", scene.scene_id)
            await self.rooms.requeue(scene, players, notice=START_FAILED_NOTICE)
            return
        self.games_started += 1
        try:
            config = self.scene_config(scene, game)
        except Exception:  # noqa: BLE001 - as above; the half-made game is forgotten
            log.exception("p2p game for scene %s: config failed", scene.scene_id)
            for participant in players:
                self.coordinator.finish_player(game, participant.participant_id)
            await self.rooms.requeue(scene, players, notice=START_FAILED_NOTICE)
            return
        self.configs[game.game_id] = config
        game.page_ids = {player: p.page_id for player, p in zip(sorted(game.players), players, strict=True)}
        for player, participant in zip(sorted(game.players), players, strict=True):
            participant.game_id = game.game_id
            participant.game_over = None
            if not participant.sid:
                continue
            await self.sio.enter_room(participant.sid, game.game_id)
            # "Partner found, starting in 3…", then the session starts
            await self._send_ready(game, player, participant, countdown_s=scene.countdown_s)
        await self.rooms.started(scene, players, game.game_id)
        await self.writer.record_event("p2p_game_created", {"players": game.player_subjects, "seed": game.seed,
                                                            "turn_mode": self.webrtc.mode}, game_id=game.game_id,
                                       scene_id=scene.scene_id)
        log.info("p2p game %s started: %s", game.game_id, game.player_subjects)

    async def _renew_turn(self, now: float) -> None:
        """Re-mints the ephemeral TURN credentials that expire soon and sends them to each connected page."""
        for game_id, participant_id, grant in self.turn_grants.renew_due(now):
            game = self._game(game_id)
            if game is None:
                self.turn_grants.forget_game(game_id)  # over without passing through _finish (all dropped)
                continue
            player = game.player_of(participant_id)
            sid = game.sids.get(player) if player is not None else None
            if sid:
                await self.sio.emit(REFRESH_EVENT, refresh_payload(game_id, grant), to=sid)

    async def _send_turn(self, game: PyodideGameState, participant: Participant) -> None:
        """Sends this player's current TURN grant (a page given the same one again keeps what it has)."""
        grant = self.turn_grants.for_player(game.game_id, participant.participant_id, time.time())
        if participant.sid and grant.turn_config is not None:
            await self.sio.emit(REFRESH_EVENT, refresh_payload(game.game_id, grant), to=participant.sid)

    async def _player_left(self, game: PyodideGameState, participant: Participant) -> None:
        await self._finish(game, participant.participant_id)
        await self._tell_partners(game, participant)

    async def _tell_partners(self, game: PyodideGameState, participant: Participant, reason: str = "left",
                             error: str = "") -> None:
        """The game is over for ``participant``: the other players' connected pages are told their partner left
        (one away now is told when their socket is back: ``partner_left_sent``).

        ``reason`` is how it ended for them; with ``"error"`` the partners get the page's error text too: a game
        already running on their page ends with that error as well (the simulation every peer runs failed, and
        which peer reached the failing step first is a matter of timing), one not yet started ends as if the
        partner left.
        """
        player = game.player_of(participant.participant_id)
        game.partner_left_sent = True
        notice: dict[str, Any] = {"game_id": game.game_id, "player_id": player, "reason": reason}
        if reason == "error":
            notice["error"] = error[-MAX_PARTNER_ERROR_CHARS:]
        game.partner_left_notice = notice  # for a partner away now: sent when their socket is back
        for other, sid in game.sids.items():
            if other != player and sid and other not in game.finished:
                await self.sio.emit("p2p_partner_left", notice, to=sid)

    async def _tell_finished(self, game: PyodideGameState, player: int) -> None:
        """``player``'s new page is still getting the game (``rejoining``): it is told which partners' games are
        over (``p2p_peer_finished``). A page that has not got the game yet can no longer get it from them and
        ends (``ended_while_away``); one already playing ignores it (its own game ends at the same frame)."""
        sid = game.sids.get(player)
        if not sid:
            return  # told when its socket is back (reconnected)
        for other in sorted(game.finished - {player}):
            await self.sio.emit("p2p_peer_finished", {"game_id": game.game_id, "player_id": other}, to=sid)

    def _game(self, game_id: str) -> PyodideGameState | None:
        """A running game, or one whose away player has not ended it yet."""
        return self.coordinator.games.get(game_id) or self.awaiting_return.get(game_id)

    def _game_of(self, participant_id: str) -> PyodideGameState | None:
        """The game this participant is still playing (running, or awaiting their return)."""
        game = self.coordinator.game_of(participant_id)
        if game is not None:
            return game
        return next((g for g in self.awaiting_return.values()
                     if (p := g.player_of(participant_id)) is not None and p not in g.finished), None)

    async def _finish(self, game: PyodideGameState, participant_id: str) -> None:
        """The game is over for this player; its config is forgotten once it is over for every player."""
        if game.game_id in self.awaiting_return:
            player = game.player_of(participant_id)
            if player is not None:
                game.end_for(player)
        else:
            self.coordinator.finish_player(game, participant_id)
        await self.uploads.record_verdicts(game)
        if game.game_id in self.coordinator.games:
            return
        if len(game.finished) < len(game.players):
            # The coordinator forgets a game once nobody is connected to it; a player who is only away
            # (their page still plays) must still be able to upload and end it when their socket is back.
            self.awaiting_return[game.game_id] = game
        else:
            self.awaiting_return.pop(game.game_id, None)
            self.configs.pop(game.game_id, None)
            self.turn_grants.forget_game(game.game_id)
            self.ended_by_researcher.discard(game.game_id)
