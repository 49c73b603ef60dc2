"""Comparing reports that every peer makes about the same thing (checksums of frames, terminal frames of episodes).

Reports travel unreliably and are simply repeated: the latest few local reports go out again and again, so loss
and delay only postpone a comparison. Each (peer, key) pair is compared at most once; repeats and stale reports
are ignored. Keys grow over time (frames, episode numbers).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

KEEP = 64


@dataclass(frozen=True, slots=True)
class Comparison:
    """One comparison between this peer's value for ``key`` and ``peer``'s."""

    peer: Hashable
    key: int
    local: int
    remote: int

    @property
    def matches(self) -> bool:
        """Whether both peers reported the same value."""
        return self.local == self.remote


class ReportLedger:
    """This peer's reports and the pending reports of each remote peer."""

    def __init__(self, peers: list[Hashable]) -> None:
        self._local: dict[int, int] = {}
        self._pending: dict[Hashable, dict[int, int]] = {peer: {} for peer in peers}
        self._verified: dict[Hashable, int] = dict.fromkeys(peers, -1)

    def record_local(self, key: int, value: int) -> list[Comparison]:
        """Adds this peer's report and returns comparisons it completes."""
        self._local[key] = value
        if len(self._local) > KEEP:
            del self._local[min(self._local)]
        done = []
        for peer, pending in self._pending.items():
            remote = pending.pop(key, None)
            if remote is not None and key > self._verified[peer]:
                self._verified[peer] = key
                done.append(Comparison(peer, key, value, remote))
        return done

    def record_remote(self, peer: Hashable, key: int, value: int) -> Comparison | None:
        """Adds ``peer``'s report; returns the comparison if this peer already reported ``key``."""
        if key <= self._verified[peer]:
            return None
        local = self._local.get(key)
        if local is None:
            pending = self._pending[peer]
            pending[key] = value
            if len(pending) > KEEP:
                del pending[min(pending)]
            return None
        self._verified[peer] = key
        return Comparison(peer, key, local, value)

    def latest_local(self, count: int) -> list[tuple[int, int]]:
        """The ``count`` most recent local reports as ``(key, value)``, oldest first."""
        keys = sorted(self._local)[-count:]
        return [(k, self._local[k]) for k in keys]

    def local_value(self, key: int) -> int | None:
        """This peer's report for ``key``, if still kept."""
        return self._local.get(key)
