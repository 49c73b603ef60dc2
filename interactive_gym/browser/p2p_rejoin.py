"""Rejoin after a reload or a crash, on the page side: serve a snapshot, resume from one, and mark the gap.

* A connected page answers a returning player's request (:func:`serve_snapshot`): at a tick boundary where every
  input before the current frame is final it captures the simulation (``netcode/rejoin.py``), reconnects the
  player in its session from that frame and hands back the snapshot's chunks for the reliable channel.
* The returning page (:func:`resume_session`) loads the snapshot, checks the state checksum and plays on from
  the snapshot frame; its uploads start there (``first_t``) and report ``stats["rejoined"]``.
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
        input_delay=host.delays.used.get(sim.episode) if host.delays.auto is not None else None,
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
        host.delays.used[sim.episode] = snapshot.input_delay  # already switched: not again mid-episode
    host.runner.confirmed_through = snapshot.frame - 1
    return {"frame": snapshot.frame, "episode": sim.episode, "t": sim.t}
