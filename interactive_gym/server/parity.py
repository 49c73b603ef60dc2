"""Do two peers agree on what was played? Frame-by-frame comparison of p2p trajectories. Pure.

In a p2p game every peer simulates the whole game and uploads its own confirmed (rollback-corrected)
trajectory. If the netcode and the environment are deterministic the uploads are identical in every field
that the simulation decides; the verdict stored with the data says whether they were, and where they
first differed if not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Fields every peer computes itself; client timestamps and held keys are each peer's own and are not compared.
COMPARED_FIELDS = ("actions", "rewards", "terminated", "truncated", "checksum")


@dataclass(frozen=True)
class ParityVerdict:
    """The outcome of comparing the uploads of one episode.

    Attributes:
        agree: True if every compared frame matched in every field and the lengths match (or one peer's
            upload is a partial prefix of the other's, when ``allow_prefix``).
        frames_compared: Frames present in both uploads.
        lengths: Steps uploaded by each peer, by source.
        first_mismatch: ``{"t", "field", "values": {source: value}}`` of the first difference, or None.
    """

    agree: bool
    frames_compared: int
    lengths: dict[str, int]
    first_mismatch: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_trajectories(uploads: Mapping[str, Sequence[Mapping[str, Any]]], *,
                         allow_prefix: bool = False, until: int | None = None,
                         overlap: bool = False) -> ParityVerdict:
    """Compares the step lists uploaded by each source (participant) for one episode.

    Args:
        uploads: ``{source: [step, ...]}`` with steps ordered by ``t``; at least two sources.
        allow_prefix: Accept different lengths when the shorter is a prefix of the longer (a peer that left
            mid-episode uploads only what it had confirmed).
        until: Compare only steps ``t < until`` (a partner dropped out there: from that step the peers played
            with different inputs for it by design, and the last peer's AI played it on); lengths past it are
            not compared.
        overlap: Compare the steps every source has, by ``t`` (a peer that rejoined after a reload uploads
            the steps it played, which need not start at 0; the steps between are the gap, played by the others
            with the default input for it). Lengths are not compared then; ``frames_compared`` counts the
            steps compared.
    """
    if len(uploads) < 2:
        raise ValueError("parity needs the uploads of at least two peers")
    if until is not None:
        uploads = {s: [step for step in steps if step.get("t", 0) < until] for s, steps in uploads.items()}
        allow_prefix = True
    if overlap:
        return _compare_overlap(uploads)
    sources = sorted(uploads)
    lengths = {s: len(uploads[s]) for s in sources}
    common = min(lengths.values())
    reference = uploads[sources[0]]
    for t in range(common):
        for field in COMPARED_FIELDS:
            values = {s: uploads[s][t].get(field) for s in sources}
            if len({_canonical(v) for v in values.values()}) > 1:
                return ParityVerdict(False, t, lengths, {"t": reference[t].get("t", t), "field": field,
                                                        "values": values})
        ts = {uploads[s][t].get("t") for s in sources}
        if len(ts) > 1:
            return ParityVerdict(False, t, lengths, {"t": t, "field": "t", "values": {s: uploads[s][t].get("t")
                                                                                    for s in sources}})
    same_length = len(set(lengths.values())) == 1
    if not same_length and not allow_prefix:
        return ParityVerdict(False, common, lengths, {"t": common, "field": "length", "values": lengths})
    return ParityVerdict(True, common, lengths, None)


def _compare_overlap(uploads: Mapping[str, Sequence[Mapping[str, Any]]]) -> ParityVerdict:
    sources = sorted(uploads)
    by_t = {s: {step.get("t"): step for step in uploads[s]} for s in sources}
    lengths = {s: len(uploads[s]) for s in sources}
    common = sorted(set.intersection(*(set(steps) for steps in by_t.values())), key=lambda t: (t is None, t))
    for done, t in enumerate(common):
        for field in COMPARED_FIELDS:
            values = {s: by_t[s][t].get(field) for s in sources}
            if len({_canonical(v) for v in values.values()}) > 1:
                return ParityVerdict(False, done, lengths, {"t": t, "field": field, "values": values})
    return ParityVerdict(True, len(common), lengths, None)


def _canonical(value: Any) -> str:
    """A hashable, order-independent text form (dict key order must not create false mismatches)."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k!r}:{_canonical(value[k])}" for k in sorted(value, key=str)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return repr(int(value))  # 1.0 from one JSON encoder and 1 from another are the same number
    return repr(value)
