"""Rejoin after a reload or a crash, on the page side: serve a snapshot, resume from one, and mark the gap.

* A connected page answers a returning player's request (:func:`serve_snapshot`): at a tick boundary where every
  input before the current frame is final it captures the simulation (``netcode/rejoin.py``), reconnects the
  player in its session from that frame and hands back the snapshot's chunks for the reliable channel.
* The returning page (:func:`resume_session`) loads the snapshot, checks the state checksum and plays on from
  the snapshot frame; its uploads start there (``first_t``) and report ``stats["rejoined"]``.
* :class:`RejoinState`: a host's side of it: the players asking for a snapshot (served at a tick boundary), the
  snapshots served (resent on a repeated request), the partners who may come back, the chunks of a snapshot
  arriving for this page, and, once this page resumed, where.
* :class:`GapLog`: every confirmed step where a human player's input was the default because that player was
  disconnected (and no takeover policy played them) is a *gap* step; each episode's upload lists them as
  ``gaps: [{"agent", "from_t", "to_t"}]`` (inclusive runs). Those are the frames the others played while the
  player was gone.

Pure Python (runs in Pyodide and in CPython tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interactive_gym.netcode import rejoin
from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.rejoin import ChunkAssembler, SnapshotError, split_chunks
from interactive_gym.netcode.runner import P2PRunner
from interactive_gym.netcode.sync_layer import SessionError

if TYPE_CHECKING:
    from interactive_gym.browser.p2p_host import P2PGameHost

MAX_GAP_RUNS = 64  # per episode; a player who drops in and out more often than this keeps the first runs


class GapLog:
    """Per episode, the runs of steps each agent played with the default input while its player was away."""

    def __init__(self) -> None:
        self._runs: dict[int, list[dict[str, Any]]] = {}

    def note(self, episode: int, t: int, agents: list[str]) -> None:
        """Step ``t`` of ``episode`` used the default input for ``agents``."""
        runs = self._runs.setdefault(episode, [])
        for agent in agents:
            last = next((r for r in reversed(runs) if r["agent"] == agent), None)
            if last is not None and last["to_t"] == t - 1:
                last["to_t"] = t
            elif len(runs) < MAX_GAP_RUNS:
                runs.append({"agent": agent, "from_t": t, "to_t": t})

    def trim(self, episode: int, t: int) -> None:
        """Forgets steps ``t..`` of ``episode`` (rows re-opened by an earlier disconnection cut)."""
        runs = self._runs.get(episode, [])
        for run in runs:
            run["to_t"] = min(run["to_t"], t - 1)
        self._runs[episode] = [r for r in runs if r["to_t"] >= r["from_t"]]

    def of(self, episode: int) -> list[dict[str, Any]]:
        """The runs of ``episode`` (copies)."""
        return [dict(r) for r in self._runs.get(episode, [])]


def snapshot_ready(host: P2PGameHost, player: int) -> bool:
    """Whether ``host`` can capture a snapshot for ``player`` now (disconnected, and every earlier input final)."""
    session = host.session
    return session.player_disconnected(player) and session.confirmed_frame >= session.current_frame - 1


def serve_snapshot(host: P2PGameHost, player: int, now_ms: float) -> str:
    """Captures the snapshot for returning ``player`` and reconnects it in the session.

    Call only when :func:`snapshot_ready`; the caller has collected every confirmed row first.

    Returns:
        The snapshot as JSON text.

    Raises:
        SnapshotError: the state cannot be sent (then nothing changed: the player stays disconnected).
        SessionError: the session refused the reconnection.
    """
    session, sim = host.session, host.sim
    frame = session.current_frame
    state = sim.save_state()
    snapshot = rejoin.RejoinSnapshot(
        player=player, frame=frame, state=state, checksum=sim.snapshot_checksum(state),
        inputs=session.inputs_from(frame),
        disconnected=tuple(p for p in range(len(sim.player_agents))
                           if p not in (player, host.my_player) and session.player_disconnected(p)),
        place={"episode": sim.episode, "t": sim.t, "finished": int(sim.finished)},
        # input_delay="auto": the new page plays the episode with the delay every peer switched to for it, and
        # knows every delay announced so far (the leader does not announce an episode twice).
        input_delay=host.delays.for_snapshot(sim.episode),
        delays=tuple(session.announced_input_delays()),
    )
    text = rejoin.encode_snapshot(snapshot)
    session.reconnect_player(player, now_ms)
    return text


def resume_session(host: P2PGameHost, text: str, now_ms: float) -> dict[str, Any]:
    """Makes ``host`` (freshly built from the game's config) continue from a snapshot sent by a peer.

    Returns:
        ``{"frame", "episode", "t"}`` of the resumed position.

    Raises:
        SnapshotError: malformed snapshot, one for another player, or a state whose checksum does not match.
    """
    settings = host.session.settings
    if host.session.current_frame != 0:
        raise rejoin.SnapshotError("this page has already started playing; it cannot load a snapshot")
    snapshot = rejoin.decode_snapshot(text, settings.num_players, settings.input_size)
    if snapshot.player != host.my_player:
        raise rejoin.SnapshotError(f"the snapshot is for player {snapshot.player}, this page is {host.my_player}")
    sim = host.sim
    try:
        sim.resume_from(snapshot.state)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise rejoin.SnapshotError(f"the snapshot's state does not load: {exc}") from None
    if sim.snapshot_checksum(sim.save_state()) != snapshot.checksum:
        raise rejoin.SnapshotError("the loaded state's checksum differs from the sender's")
    try:
        session = P2PSession.resumed(settings, snapshot.frame, snapshot.inputs, snapshot.disconnected, now_ms,
                                     input_delay=snapshot.input_delay, delays=snapshot.delays)
    except (SessionError, ValueError) as exc:
        raise rejoin.SnapshotError(f"the snapshot's inputs do not fit: {exc}") from None
    host.session = session
    host.runner = P2PRunner(session, sim, record_history=False)
    if snapshot.input_delay is not None:
        host.delays.resumed_in(sim.episode, snapshot.input_delay)
    host.runner.confirmed_through = snapshot.frame - 1
    return {"frame": snapshot.frame, "episode": sim.episode, "t": sim.t}


class RejoinState:
    """One host's rejoin bookkeeping, as a connected page (serving) and as a returning page (resuming).

    Attributes:
        requests: Players whose new page asked for a snapshot not captured yet.
        may_return: Silent partners whose new page may rejoin (their gap rows are kept meanwhile).
        served: Player -> (snapshot id, chunks) of the snapshot served to them, resent on a repeated request.
        rejoined: On a page that resumed from a snapshot, ``{"frame", "episode", "t"}`` of where; else ``None``.
    """

    def __init__(self) -> None:
        self.requests: set[int] = set()
        self.may_return: set[int] = set()
        self.served: dict[int, tuple[int, list[str]]] = {}
        self.rejoined: dict[str, int] | None = None
        self._snapshot_ids = 0
        self._assembler = ChunkAssembler()

    def coming_back(self) -> set[int]:
        """Players whose gap rows are kept because a new page of theirs may resume from a snapshot."""
        return self.requests | self.may_return

    def request(self, host: P2PGameHost, player: int) -> dict[str, Any]:
        """A player's new page asks ``host`` for a snapshot (see :meth:`P2PGameHost.request_rejoin`)."""
        if player == host.my_player or not 0 <= player < len(host.sim.player_agents):
            return {"ok": False, "error": f"player {player} is not a remote player of this game"}
        if player in host.takeovers:
            return {"ok": False, "error": f"player {player} is played by the takeover policy now"}
        if len(host.sim.player_agents) > 2:
            # The other survivors would have to reconnect the player at the same frame; not supported yet.
            return {"ok": False, "error": "rejoin is supported in two-player games only"}
        served = self.served.get(player)
        if served is not None and not host.session.player_disconnected(player):
            return {"ok": True, "id": served[0], "chunks": served[1]}
        self.served.pop(player, None)
        self.requests.add(player)
        return {"ok": True, "pending": True}

    def expect(self, host: P2PGameHost, player: int) -> None:
        """``player``'s old page is gone: forget its stale snapshot and play on with the default input for it."""
        self.served.pop(player, None)
        if player != host.my_player and 0 <= player < len(host.sim.player_agents) \
                and not host.session.player_disconnected(player):
            host.session.disconnect_player(player)

    def cut_requested(self, session: P2PSession) -> None:
        """Disconnects every player asking for a snapshot: its old page is gone, its inputs final from the cut."""
        for player in self.requests:
            if not session.player_disconnected(player):
                session.disconnect_player(player)

    def serve_pending(self, host: P2PGameHost, now_ms: float) -> dict[str, dict[str, Any]]:
        """At the end of a tick: the snapshots that can be captured now, by player (the tick's ``"rejoin"``)."""
        out: dict[str, dict[str, Any]] = {}
        for player in sorted(self.requests):
            if not snapshot_ready(host, player):
                continue  # the cut's rollback or late inputs first; tried again next tick
            self.requests.discard(player)
            try:
                text = serve_snapshot(host, player, now_ms)
            except (SnapshotError, SessionError) as exc:
                out[str(player)] = {"ok": False, "error": str(exc)}
                continue
            self._snapshot_ids += 1
            self.served[player] = (self._snapshot_ids, split_chunks(text))
            host.partner_drops.forget_drop(player)
            out[str(player)] = {"ok": True, "id": self._snapshot_ids, "chunks": self.served[player][1]}
        return out

    def add_chunk(self, host: P2PGameHost, snapshot_id: Any, index: Any, count: Any, text: Any,
                  now_ms: float) -> dict[str, Any] | None:
        """Takes one chunk of a snapshot for returning ``host``; resumes it once the snapshot is complete.

        Returns:
            ``None`` while chunks are missing, else the resumed place (then :attr:`rejoined`).

        Raises:
            SnapshotError: a malformed chunk or snapshot (see :func:`resume_session`).
        """
        whole = self._assembler.add(snapshot_id, index, count, text)
        if whole is None:
            return None
        place = resume_session(host, whole, now_ms)
        self.rejoined = place
        return place

    def upload_fields(self, gaps: GapLog, episode: int) -> dict[str, Any]:
        """The rejoin fields of ``episode``'s upload: its gap runs, and where this page's own steps start."""
        fields: dict[str, Any] = {}
        runs = gaps.of(episode)
        if runs:
            fields["gaps"] = runs
        if self.rejoined is not None and episode == self.rejoined["episode"] and self.rejoined["t"] > 0:
            fields["first_t"] = self.rejoined["t"]  # the old page played the steps before
        return fields
