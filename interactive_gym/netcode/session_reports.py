"""Checksum and episode-end reports of a P2P session: produce, repeat, compare, and turn into events.

Desync detection: once a checksum frame is confirmed (every input before it final and, with three or more
players, held by every connected peer), this peer records the checksum saved for it and keeps repeating its
latest reports; peers compare and a mismatch becomes :class:`DesyncDetected`. Episode ends work the same way
(:class:`EpisodeAgreed` / :class:`EpisodeMismatch`). Reports from a peer that was cut off are not compared: it
may have simulated frames with inputs the survivors agreed to drop.
"""

from __future__ import annotations

from collections.abc import Hashable

from . import codec
from .protocol import PeerEndpoint
from .reports import Comparison, ReportLedger
from .requests import DesyncDetected, EpisodeAgreed, EpisodeMismatch, Event
from .sync_layer import SyncLayer

REPORT_LIFETIME = 600  # frames during which a report keeps being repeated


class PeerReports:
    """The reporting side of one session (it shares the session's endpoints, sync layer and event list)."""

    def __init__(
        self,
        checksum_interval: int,
        sender: int,
        local_players: tuple[int, ...],
        endpoints: dict[Hashable, PeerEndpoint],
        sync: SyncLayer,
        events: list[Event],
    ) -> None:
        self._interval = checksum_interval
        self._sender = sender
        self._local = local_players
        self._endpoints = endpoints
        self._sync = sync
        self._events = events
        peers = list(endpoints)
        self.checksums = ReportLedger(peers)
        self.episodes = ReportLedger(peers)
        self._episode_agreed: dict[int, set[Hashable]] = {}
        self._next_checksum_frame = 0
        self.every = max(1, min(4, checksum_interval or 4))
        self.desyncs = 0
        self.missing_checksums = 0

    def start_at(self, frame: int) -> None:
        """A session resumed at ``frame`` reports checksums from the first checksum frame at or after it."""
        interval = self._interval
        if interval:
            self._next_checksum_frame = -(-frame // interval) * interval

    def report_checksums(self) -> None:
        """Records the checksums of checksum frames that became final since the last call."""
        interval = self._interval
        if not interval:
            return
        sync = self._sync
        if self._next_checksum_frame >= sync.current_frame:
            return  # the next checksum frame has not even been simulated (the common case: return fast)
        limit = min(sync.confirmed_frame() + 1, sync.current_frame - 1, self._agreed_frame() + 1)
        if sync.first_incorrect is not None:
            limit = min(limit, sync.first_incorrect)
        frame = self._next_checksum_frame
        while frame <= limit:
            checksum = sync.checksum_of(frame)
            if checksum is None:
                self.missing_checksums += 1
            else:
                for comparison in self.checksums.record_local(frame, checksum):
                    self._on_checksum(comparison)
            frame += interval
        if frame != self._next_checksum_frame:
            self._next_checksum_frame = frame
            sync.release_checksums_before(frame)

    def report_episode_end(self, episode: int, frame: int) -> None:
        """Records that ``episode`` ended on confirmed ``frame``."""
        for comparison in self.episodes.record_local(episode, frame):
            self._on_episode(comparison)

    def packets(self, frame: int) -> list[bytes]:
        """The report packets to send to every peer now (the latest reports, repeated for a while)."""
        recent = frame - REPORT_LIFETIME
        out = []
        checksums = [r for r in self.checksums.latest_local(3) if r[0] >= recent]
        if checksums:
            out.append(codec.encode_checksums(self._sender, frame, checksums))
        episodes = [r for r in self.episodes.latest_local(2) if r[1] >= recent]
        if episodes:
            out.append(codec.encode_episodes(self._sender, frame, episodes))
        return out

    def on_checksums(self, peer: Hashable, reports: list[tuple[int, int]]) -> None:
        """Takes a peer's checksum reports."""
        for frame, checksum in reports:
            comparison = self.checksums.record_remote(peer, frame, checksum)
            if comparison is not None:
                self._on_checksum(comparison)

    def on_episodes(self, peer: Hashable, reports: list[tuple[int, int]]) -> None:
        """Takes a peer's episode-end reports."""
        for episode, frame in reports:
            comparison = self.episodes.record_remote(peer, episode, frame)
            if comparison is not None:
                self._on_episode(comparison)

    def _agreed_frame(self) -> int:
        """Highest frame whose inputs every connected third party also reports holding.

        With three or more players a disconnection may cut a player's inputs back to the earliest frame any
        survivor holds; checksums are reported only up to here so such a cut rarely touches a reported frame.
        """
        agreed = 2**31 - 1
        if len(self._endpoints) < 2:
            return agreed  # no third party: nobody else can cut a remote player's inputs
        n = len(self._sync.queues)
        for player, queue in enumerate(self._sync.queues):
            if queue.disconnected_after is not None or player in self._local:
                continue
            for ep in self._endpoints.values():
                if ep.disconnected or player in ep.players or len(ep.last_frames) != n:
                    continue
                if ep.last_frames[player] < agreed:
                    agreed = ep.last_frames[player]
        return agreed

    def _cut_off(self, peer: Hashable) -> bool:
        ep = self._endpoints[peer]
        return ep.disconnected or any(self._sync.queues[p].disconnected_after is not None for p in ep.players)

    def _on_checksum(self, comparison: Comparison) -> None:
        if self._cut_off(comparison.peer) or comparison.matches:
            return
        self.desyncs += 1
        self._events.append(DesyncDetected(comparison.key, comparison.local, comparison.remote, comparison.peer))

    def _on_episode(self, comparison: Comparison) -> None:
        if self._cut_off(comparison.peer):
            return
        episode = comparison.key
        if not comparison.matches:
            self._events.append(EpisodeMismatch(episode, comparison.local, comparison.remote, comparison.peer))
            return
        agreed = self._episode_agreed.setdefault(episode, set())
        agreed.add(comparison.peer)
        connected = {ep.peer for ep in self._endpoints.values() if not ep.disconnected}
        if connected <= agreed:
            self._events.append(EpisodeAgreed(episode, comparison.local))
            del self._episode_agreed[episode]
