"""Peer-to-peer games on the server side: matching players, announcing the game, relaying, checking data.

In p2p mode every participant's browser runs the environment and the rollback netcode; the server never
steps the game. The coordinator:

* forms games from the p2p scene's waiting room (presence-aware, FIFO or latency-aware matchmaker);
* creates each game's state (id, shared seed, players, player -> participant map) and sends every player
  ``pyodide_game_ready`` with ``game_id``, ``players`` (indices only: a page never learns another
  participant's id), ``my_player_id``, the seed, the seed's ``turn_config``
  (``{username, credential, force_relay, expires_at}`` or null) and ``rtc_configuration`` (the complete
  ``RTCConfiguration`` the page uses as it is) — per player, because ephemeral TURN credentials are minted per
  participant (``turn_grants.py``); P2PMode adds ``countdown_s``, ``can_rejoin`` (a silent partner may come back:
  wait for the server) and, for a reloaded page given the running game, ``rejoin: true`` with ``sender``;
* lets a new page of a player (a reload or a crash) rejoin a running game while a partner can send it
  (:meth:`PyodideGameCoordinator.rejoin`);
* answers the signaling relay's membership questions, so WebRTC signaling and the Socket.IO input fallback
  only ever flow between members of the same game;
* tells the remaining players when a partner has been gone longer than the grace period (or, with
  ``on_partner_drop="ai"`` and one player left, hands the gone players to that player's AI: the takeover state);
* compares the peers' uploaded trajectories frame by frame (``parity.py``) and records the verdict.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interactive_gym.server.parity import ParityVerdict, compare_trajectories


@dataclass
class PyodideGameState:
    """One p2p game.

    Attributes:
        game_id: Unique id; also the Socket.IO room of the game.
        scene_id: The p2p GymScene.
        seed: Shared seed every peer derives episode seeds from.
        players: ``player_id -> participant_id`` (player ids 0..n-1 in the scene's human-agent order).
        agents: ``player_id -> agent_id``.
        sids: ``player_id -> live socket id`` (None while disconnected).
        gone_since: ``player_id -> time`` the player disconnected (monotonic seconds).
        finished: Players whose game is over (completed, or they left / were told the partner left).
        uploads: ``episode -> {participant_id: steps}`` kept until the parity verdict is made.
        verdicts: ``episode -> verdict``.
        taken_over: Players the server handed to the last player's partner-drop policy (``p2p_takeover``).
        takeovers: ``player -> takeover record`` as the last player's upload reported it (first report wins).
        parity_bounds: ``episode -> first step not compared`` (a partner dropped out there).
        rejoining: Players whose new page (after a reload) was given the game and has not uploaded yet: the
            verdicts wait for its uploads, which add the steps it played to what its old page uploaded.
        rejoined: Players who came back on a new page at least once (their uploads are compared by step).
        rejoins: ``player_id -> how many new pages`` of theirs were given the game (the partners' notices carry
            it, so a repeated notice is told apart from a second reload).
        page_ids: ``player_id -> page id`` of the page playing for that player (``Participant.page_id``: set when
            the game starts and when a new page rejoins): a ``p2p_join`` from that same page is a repeat, not a
            reload.
        server_relay_warned: An upload reported ``server_relay`` (TURN failed) and the server has said so once.
    """

    game_id: str
    scene_id: str
    seed: int
    players: dict[int, str]
    agents: dict[int, str]
    sids: dict[int, str | None]
    created_at: float
    gone_since: dict[int, float] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)
    partner_left_sent: bool = False
    partner_left_notice: dict[str, Any] | None = None
    uploads: dict[int, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    partial: dict[int, set[str]] = field(default_factory=dict)
    verdicts: dict[int, ParityVerdict] = field(default_factory=dict)
    taken_over: set[int] = field(default_factory=set)
    takeovers: dict[int, dict[str, Any]] = field(default_factory=dict)
    parity_bounds: dict[int, int] = field(default_factory=dict)
    rejoining: set[int] = field(default_factory=set)
    rejoined: set[int] = field(default_factory=set)
    rejoins: dict[int, int] = field(default_factory=dict)
    page_ids: dict[int, str] = field(default_factory=dict)
    server_relay_warned: bool = False

    def player_of(self, participant_id: str) -> int | None:
        return next((p for p, pid in self.players.items() if pid == participant_id), None)

    def end_for(self, player: int) -> None:
        """The game is over for ``player``: a new page of theirs that never resumed will upload nothing more,
        so the parity verdicts that waited for it may go."""
        self.finished.add(player)
        self.rejoining.discard(player)

    @property
    def player_subjects(self) -> dict[str, str]:
        """``{player_id (as text, JSON keys): participant_id}`` for the data (never sent to a browser)."""
        return {str(p): pid for p, pid in self.players.items()}


class PyodideGameCoordinator:
    """All p2p games of an experiment (state only; the caller does the emitting).

    Implements the ``GameMembership`` protocol of :mod:`interactive_gym.server.signaling`.
    """

    def __init__(self) -> None:
        self.games: dict[str, PyodideGameState] = {}
        self._by_sid: dict[str, tuple[str, int]] = {}
        self._by_participant: dict[str, str] = {}

    # -- membership (signaling relay) -------------------------------------------------------------------
    def member_of(self, sid: str) -> tuple[str, int] | None:
        return self._by_sid.get(sid)

    def sid_of(self, game_id: str, player_id: int) -> str | None:
        game = self.games.get(game_id)
        return game.sids.get(player_id) if game else None

    def game_of(self, participant_id: str) -> PyodideGameState | None:
        game_id = self._by_participant.get(participant_id)
        return self.games.get(game_id) if game_id else None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def create_game(self, scene_id: str, participants: list[tuple[str, str | None]], agents: list[str],
                    now: float, seed: int | None = None) -> PyodideGameState:
        """Creates a game for ``participants`` (``(participant_id, sid)`` in player order).

        Raises:
            ValueError: if a participant is already in a running game (never put anyone in two games).
        """
        if len(participants) != len(agents):
            raise ValueError("one human agent per player is needed")
        for pid, _ in participants:
            if pid in self._by_participant:
                raise ValueError(f"participant {pid} is already in game {self._by_participant[pid]}")
        game_id = "p2p-" + secrets.token_hex(6)
        game = PyodideGameState(
            game_id=game_id, scene_id=scene_id,
            seed=secrets.randbelow(2**31 - 1) if seed is None else seed,
            players={i: pid for i, (pid, _) in enumerate(participants)},
            agents=dict(enumerate(agents)),
            sids={i: sid for i, (_, sid) in enumerate(participants)},
            created_at=now,
        )
        self.games[game_id] = game
        for player, (pid, sid) in enumerate(participants):
            self._by_participant[pid] = game_id
            if sid:
                self._by_sid[sid] = (game_id, player)
        return game

    def ready_payload(self, game: PyodideGameState, player: int, turn_config: dict[str, Any] | None,
                      rtc_configuration: dict[str, Any], scene_config: dict[str, Any]) -> dict[str, Any]:
        """The ``pyodide_game_ready`` event for one player (``turn_config`` and ``rtc_configuration`` from that
        player's :class:`~interactive_gym.configurations.webrtc.TurnGrant`)."""
        return {
            "game_id": game.game_id,
            "players": sorted(game.players),
            "agents": {str(p): a for p, a in game.agents.items()},
            "my_player_id": player,
            "seed": game.seed,
            "turn_config": turn_config,
            "rtc_configuration": rtc_configuration,
            "config": scene_config,
        }

    def disconnected(self, participant_id: str, now: float) -> PyodideGameState | None:
        """A player's socket closed; returns their game (the grace period starts)."""
        game = self.game_of(participant_id)
        player = game.player_of(participant_id) if game else None
        if game is None or player is None:
            return None
        sid = game.sids.get(player)
        if sid:
            self._by_sid.pop(sid, None)
        game.sids[player] = None
        if player not in game.finished:
            game.gone_since.setdefault(player, now)
        return game

    def reattach(self, participant_id: str, sid: str) -> PyodideGameState | None:
        """A player's new socket (a network blip, not a new page) joins their running game again.

        Returns the game, or None when the participant is in no running game or their game is over for them.
        """
        game = self.game_of(participant_id)
        player = game.player_of(participant_id) if game else None
        if game is None or player is None or player in game.finished:
            return None
        old = game.sids.get(player)
        if old:
            self._by_sid.pop(old, None)
        game.sids[player] = sid
        self._by_sid[sid] = (game.game_id, player)
        game.gone_since.pop(player, None)
        return game

    def rejoin(self, participant_id: str, sid: str) -> tuple[PyodideGameState, int, int] | None:
        """A player's new page (a reload or a crash) comes back to their running game.

        Possible while the game runs for the others, nobody was told the player left, the player was not
        handed to a takeover policy, and another player is connected to send the snapshot.

        Returns:
            ``(game, player, sender)`` with the sender the lowest connected other player, or None (then the
            player has left, as without rejoin).
        """
        game = self.game_of(participant_id)
        player = game.player_of(participant_id) if game else None
        if game is None or player is None or player in game.finished or player in game.taken_over:
            return None
        if game.partner_left_sent:
            return None
        senders = sorted(p for p, s in game.sids.items() if s and p != player and p not in game.finished)
        if not senders:
            return None
        self.reattach(participant_id, sid)
        game.rejoining.add(player)
        game.rejoined.add(player)
        game.rejoins[player] = game.rejoins.get(player, 0) + 1
        return game, player, senders[0]

    def overdue(self, now: float, grace_s: dict[str, float]) -> list[tuple[PyodideGameState, list[int]]]:
        """Games in which a player has been gone past their scene's grace: ``(game, players to tell)``.

        Each game is reported once; the players to tell are those still connected and not finished.
        """
        out = []
        for game in self.games.values():
            if game.partner_left_sent or not game.gone_since:
                continue
            grace = grace_s.get(game.scene_id, 10.0)
            if any(now - since >= grace for since in game.gone_since.values()):
                game.partner_left_sent = True
                stay = [p for p, sid in game.sids.items() if sid and p not in game.finished]
                game.rejoining.intersection_update(stay)  # a page gone past its grace resumes nothing
                out.append((game, stay))
        return out

    def finish_player(self, game: PyodideGameState, participant_id: str) -> bool:
        """Marks a player's game over; removes the game once nobody is playing. True when it was removed."""
        player = game.player_of(participant_id)
        if player is not None:
            game.end_for(player)
            self._by_participant.pop(participant_id, None)
            sid = game.sids.get(player)
            if sid:
                self._by_sid.pop(sid, None)
        if len(game.finished) == len(game.players) or all(
                p in game.finished or game.sids.get(p) is None for p in game.players):
            for pid in game.players.values():
                self._by_participant.pop(pid, None)
            for sid in [s for s in game.sids.values() if s]:
                self._by_sid.pop(sid, None)
            self.games.pop(game.game_id, None)
            return True
        return False

    # -- partner-drop takeover --------------------------------------------------------------------------------
    def note_takeovers(self, game: PyodideGameState, reporter: int | None, reported: Any) -> list[dict[str, Any]]:
        """Takes the takeover records of the last player's upload stats (``P2PGameHost.stats_json``).

        Only records of players the server handed over (``game.taken_over``), reported by a player still in
        the game after them, with whole numbers, are kept; the first report of a player wins (uploads repeat
        it). Returns the records new to this game.
        """
        if reporter is None or reporter in game.taken_over or not isinstance(reported, list):
            return []
        new = []
        for item in reported[:len(game.players)]:
            record = _takeover_record(item)
            if record is None or record["player"] not in game.taken_over or record["player"] in game.takeovers:
                continue
            game.takeovers[record["player"]] = record
            for episode, bound in takeover_bounds([record]).items():
                game.parity_bounds[episode] = min(bound, game.parity_bounds.get(episode, bound))
            new.append(record)
        return new

    # -- data parity -----------------------------------------------------------------------------------------
    def add_upload(self, game: PyodideGameState, episode: int, participant_id: str,
                   steps: list[dict[str, Any]], partial: bool, *, rejoined_page: bool = False) -> ParityVerdict | None:
        """Keeps one peer's trajectory; once every player uploaded the episode, returns the verdict.

        A player who rejoined uploads an episode in pieces (what the old page confirmed, then what the new page
        played from where it resumed): the pieces are merged by step and compared by step (``overlap``).
        ``rejoined_page``: the upload comes from a page that resumed from a snapshot (verdicts may go now; see
        :meth:`pending_verdicts` for the episodes that waited for it).
        """
        per_episode = game.uploads.setdefault(episode, {})
        player = game.player_of(participant_id)
        if player in game.rejoined and participant_id in per_episode:
            merged = {step.get("t"): step for step in per_episode[participant_id]}
            merged.update({step.get("t"): step for step in steps})
            steps = [merged[t] for t in sorted(merged, key=lambda t: (not isinstance(t, int), t))]
        per_episode[participant_id] = steps
        if partial:
            game.partial.setdefault(episode, set()).add(participant_id)
        if rejoined_page and player is not None:
            game.rejoining.discard(player)
        return self._judge(game, episode)

    def pending_verdicts(self, game: PyodideGameState) -> list[tuple[int, ParityVerdict]]:
        """Verdicts of episodes every player uploaded that waited for a rejoining page (judged now, once)."""
        out = []
        for episode in sorted(game.uploads):
            verdict = self._judge(game, episode)
            if verdict is not None:
                out.append((episode, verdict))
        return out

    def _judge(self, game: PyodideGameState, episode: int) -> ParityVerdict | None:
        per_episode = game.uploads.get(episode, {})
        if len(per_episode) < len(game.players) or episode in game.verdicts or game.rejoining:
            return None
        verdict = compare_trajectories(per_episode, allow_prefix=bool(game.partial.get(episode)),
                                       until=game.parity_bounds.get(episode), overlap=bool(game.rejoined))
        game.verdicts[episode] = verdict
        del game.uploads[episode]  # the steps are in the database; keep memory bounded
        return verdict


def _takeover_record(item: Any) -> dict[str, Any] | None:
    """A reported takeover with whole-number positions, or None (a page's report is never trusted blindly)."""
    if not isinstance(item, Mapping):
        return None

    def whole(name: str) -> int | None:
        value = item.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None

    record = {name: whole(name) for name in ("player", "frame", "episode", "t", "drop_episode", "drop_t")}
    if record["player"] is None or record["episode"] is None or record["t"] is None:
        return None  # the takeover's first step was never confirmed: nothing of it was played
    return record


def takeover_bounds(takeovers: list[Mapping[str, Any]]) -> dict[int, int]:
    """``episode -> first step the peers' uploads may differ at`` for reported takeovers.

    The bound is where the dropped partner's own inputs stopped (from there the last peer played them with
    default inputs, then the policy), or the takeover's first step if that is unknown; every later episode up
    to the takeover's has nothing to compare.
    """
    bounds: dict[int, int] = {}
    for record in takeovers:
        episode, t = record.get("episode"), record.get("t")
        if not isinstance(episode, int) or not isinstance(t, int):
            continue
        drop_episode, drop_t = record.get("drop_episode"), record.get("drop_t")
        if isinstance(drop_episode, int) and isinstance(drop_t, int) and (drop_episode, drop_t) <= (episode, t):
            episode_from, t_from = drop_episode, drop_t
        else:
            episode_from, t_from = episode, t
        for e in range(episode_from, episode + 1):
            bound = t_from if e == episode_from else 0
            bounds[e] = min(bound, bounds.get(e, bound))
    return bounds
