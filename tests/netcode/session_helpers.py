"""Helpers for driving P2P sessions by hand in tests: wiring two sessions and summarising requests."""

from __future__ import annotations

from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.requests import AdvanceFrame, InputStatus, LoadState, Request, SaveState
from interactive_gym.netcode.settings import p2p_settings

STATUS = {InputStatus.CONFIRMED: "C", InputStatus.PREDICTED: "P", InputStatus.DISCONNECTED: "D"}


def pair(**options: object) -> tuple[P2PSession, P2PSession]:
    """Two sessions: A is player 0 at peer "b"'s other end, B is player 1."""
    a = P2PSession(p2p_settings(2, 0, {"b": 1}, **options), now_ms=0.0)
    b = P2PSession(p2p_settings(2, 1, {"a": 0}, **options), now_ms=0.0)
    return a, b


def deliver(source: P2PSession, target: P2PSession, source_name: str, now_ms: float = 0.0) -> int:
    """Moves every pending packet of ``source`` into ``target``; returns how many."""
    packets = source.drain_outgoing()
    for _peer, data in packets:
        target.handle_packet(source_name, data, now_ms)
    return len(packets)


def summarise(requests: list[Request]) -> list[tuple]:
    """Compact form: ("save", f) / ("load", f) / ("advance", f, "1C 0P") with input byte values and status."""
    out: list[tuple] = []
    for r in requests:
        if isinstance(r, SaveState):
            out.append(("save", r.frame))
        elif isinstance(r, LoadState):
            out.append(("load", r.frame))
        elif isinstance(r, AdvanceFrame):
            out.append(("advance", r.frame, " ".join(f"{d[0]}{STATUS[s]}" for d, s in r.inputs)))
    return out


def execute(requests: list[Request], state: list[int]) -> None:
    """Runs requests against a trivial "env": the state is the list of frames advanced with their inputs."""
    for r in requests:
        if isinstance(r, SaveState):
            r.cell.save(r.frame, list(state), sum(state) % 2**64)
        elif isinstance(r, LoadState):
            state[:] = list(r.cell.state)
        elif isinstance(r, AdvanceFrame):
            state.append(r.frame * 1000 + sum(d[0] for d, _ in r.inputs))
