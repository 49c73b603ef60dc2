"""Frame-advantage time synchronisation (the GGPO/GGRS idea).

Each peer estimates how far ahead of a remote peer it runs: ``local_frame - estimated_remote_frame``, where the
remote frame is the latest one the remote announced plus half a round trip's worth of frames. The remote peer
sends its own estimate. If I am ahead by ``d`` frames, my estimate is about ``+d`` and the remote's about ``-d``;
half the difference of the averages is how many frames I should wait so that neither peer persistently runs ahead
(the one ahead predicts more and rolls back more). Averaging over a window smooths jitter.
"""

from __future__ import annotations

WINDOW = 40
MIN_ADVANTAGE = 1.0
MAX_RECOMMENDATION = 9


class TimeSync:
    """Sliding windows of local and remote frame advantage for one remote peer."""

    __slots__ = ("_local", "_remote", "_index")

    def __init__(self, window: int = WINDOW) -> None:
        self._local = [0.0] * window
        self._remote = [0.0] * window
        self._index = 0

    def record(self, local_advantage: float, remote_advantage: float) -> None:
        """Adds one frame's sample of both advantages (called once per advanced frame)."""
        i = self._index
        self._local[i] = local_advantage
        self._remote[i] = remote_advantage
        self._index = (i + 1) % len(self._local)

    def frames_ahead(self) -> float:
        """Estimated frames this peer runs ahead of the remote one (negative when behind)."""
        return (sum(self._local) - sum(self._remote)) / (2 * len(self._local))

    def recommend_wait(self) -> int:
        """Frames to skip now so the peers converge; 0 unless clearly ahead."""
        ahead = self.frames_ahead()
        if ahead < MIN_ADVANTAGE:
            return 0
        return min(int(ahead), MAX_RECOMMENDATION)


def local_advantage(local_frame: int, remote_frame: int, rtt_ms: float | None, fps: float) -> float:
    """``local_frame`` minus the remote's estimated current frame (latest announced + half a round trip)."""
    if remote_frame < 0:
        return 0.0
    half_trip_frames = (rtt_ms or 0.0) * fps / 2000.0
    return local_frame - (remote_frame + half_trip_frames)
