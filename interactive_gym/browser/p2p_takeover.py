"""Partner drop on the page side: where each partner's own inputs stopped, and the takeover policy playing them.

``GymScene(on_partner_drop="ai")``: when the server says a partner is gone for good and this is the last peer,
:meth:`PartnerTakeovers.take_over` disconnects them in the session (their inputs are final from then on) and has
the simulation's takeover policy play their agent from the next frame to simulate. The uploads of this peer then
carry ``stats["takeovers"]`` (:meth:`PartnerTakeovers.reports`: the agent, the frame and its episode/step, and
where the partner's own inputs stopped), from which the server flags the steps and bounds the parity check.

Pure Python (runs in Pyodide and in CPython tests); :class:`~interactive_gym.browser.p2p_host.P2PGameHost`
owns one.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from interactive_gym.browser.p2p_sim import P2PSimulation
from interactive_gym.envs.agent_runtime import AgentPolicy
from interactive_gym.netcode import requests as rq
from interactive_gym.netcode.p2p_session import P2PSession


class PartnerTakeovers:
    """The drop frames of this game's partners and the takeovers of their agents.

    Args:
        policy: The partner-drop policy and its controller text (``config["p2p"]["takeover"]``), if the scene
            has one.
    """

    def __init__(self, policy: tuple[AgentPolicy, str] | None) -> None:
        self._policy = policy
        self.records: dict[int, dict[str, Any]] = {}  # player -> what the uploads report about its takeover
        self._drop_frames: dict[int, int] = {}  # player -> first frame played without their own input
        self._drop_points: dict[int, tuple[int, int, int]] = {}  # player -> (that frame, its episode, its t)

    @property
    def placing(self) -> bool:
        """Whether a drop or a takeover still needs its (episode, t) from the rows collected."""
        return bool(self._drop_frames or self.records)

    def take_over(self, player: int, session: P2PSession, sim: P2PSimulation, my_player: int) -> dict[str, Any]:
        """Has the takeover policy play ``player``'s agent from :attr:`P2PSession.current_frame` on.

        The player is disconnected in the session (every input of theirs is final from then: the default input
        up to the takeover, then ignored), and the policy plays from the first frame this peer has not simulated
        yet, so no frame it already showed changes. Repeating the call for the same player changes nothing.

        Returns:
            ``{"ok": True, "frame": n}`` or ``{"ok": False, "error": ...}`` (no takeover policy, not a remote
            player, or another peer is still connected: then every remaining peer would compute the policy).
        """
        if player in self.records:
            return {"ok": True, "frame": self.records[player]["frame"], "duplicate": True}
        if self._policy is None:
            return {"ok": False, "error": "this scene has no partner_drop_policy"}
        if player == my_player or not 0 <= player < len(sim.player_agents):
            return {"ok": False, "error": f"player {player} is not a remote player of this game"}
        others = [p for p in range(len(sim.player_agents)) if p not in (player, my_player)]
        if any(not session.player_disconnected(p) for p in others):
            return {"ok": False, "error": "another peer is still connected; the takeover runs only on the last peer"}
        session.disconnect_player(player)
        frame = session.current_frame
        policy, controller = self._policy
        agent = sim.player_agents[player]
        sim.take_over(agent, policy, frame, controller)
        self.records[player] = {"player": player, "agent": agent, "controller": controller, "frame": frame,
                                "episode": None, "t": None, "drop_frame": None, "drop_episode": None,
                                "drop_t": None}
        return {"ok": True, "frame": frame}

    def note_disconnected(self, event: rq.Disconnected) -> None:
        """The session cut ``event.player`` at ``event.frame`` (the survivors may agree on an earlier cut later)."""
        self._drop_frames[event.player] = event.frame
        if self._drop_points.get(event.player, (event.frame,))[0] > event.frame:
            del self._drop_points[event.player]  # survivors agreed on an earlier cut: place it again

    def forget_drop(self, player: int) -> None:
        """``player`` rejoined: a later drop of theirs is a new one."""
        self._drop_frames.pop(player, None)
        self._drop_points.pop(player, None)

    def note_row(self, frame: int, episode: int, t: int, controllers: Mapping[str, str]) -> None:
        """Places each takeover's first frame, and the frame the partner's own inputs stopped, in (episode, t)."""
        for player, drop in self._drop_frames.items():
            if player not in self._drop_points and frame >= drop:
                self._drop_points[player] = (drop, episode, t)
        for record in self.records.values():
            if record["t"] is None and record["agent"] in controllers:
                record.update(episode=episode, t=t)

    def last_kept_frame(self, confirmed_frame: int, coming_back: Container[int]) -> int:
        """The last frame whose row may be kept: the one before the earliest drop of a partner not taken over.

        From a drop frame on the session plays the silent partner with the default input, while the partner's
        own page may have confirmed those frames with its real inputs; rows kept there would disagree with its
        upload (the page ends the game as ``partner_left`` on the drop, ``p2p_game.js``). A takeover keeps them
        (its uploads report the drop point and the server's parity check stops there), and so do the players in
        ``coming_back`` (a rejoin request, or a partner who may come back): the gap rows are collected before the
        snapshot is served (``p2p_rejoin.py``) and marked as gaps in the uploads.

        Args:
            confirmed_frame: The session's confirmed frame (the bound when no partner dropped).
            coming_back: Players whose new page may resume from a snapshot.
        """
        cuts = [frame - 1 for player, frame in self._drop_frames.items()
                if player not in self.records and player not in coming_back]
        return min(cuts, default=confirmed_frame)

    def reports(self) -> list[dict[str, Any]]:
        """What the uploads' ``stats["takeovers"]`` say, one record per player taken over."""
        out = []
        for player in self.records:
            report = dict(self.records[player])
            if player in self._drop_points:
                report.update(zip(("drop_frame", "drop_episode", "drop_t"), self._drop_points[player], strict=True))
            out.append(report)
        return out
