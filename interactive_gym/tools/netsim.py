"""``interactive-gym netsim module:factory``: play an environment between simulated peers over a bad network.

Every simulated peer gets its own environment instance and rollback session; a seeded in-memory network adds
latency, jitter, loss, duplication and reordering. Inputs are random. The summary says how much rolling back and
waiting the players would experience and whether every peer ended with the same inputs and state. Exit code 0 when
they all agree, 1 otherwise, 2 for a usage problem.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from interactive_gym.cli import UserError
from interactive_gym.envs.factory import FactoryError, env_builder
from interactive_gym.envs.state import EnvStateAdapter
from interactive_gym.netcode.netsim import NetworkConditions
from interactive_gym.netcode.settings import SettingsError
from interactive_gym.netcode.simulation import SimulationConfig, SimulationReport, run_simulation


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers ``netsim``."""
    parser = subparsers.add_parser(
        "netsim",
        help="play an environment between simulated peers over a simulated bad network",
        description="Runs a peer-to-peer rollback game between simulated peers with random inputs over a "
        "seeded network with latency, jitter, loss, duplication and reordering, then reports rollbacks, stalls, "
        "desyncs and whether every peer ended with identical inputs and state.",
    )
    parser.add_argument("target", help="module:factory, e.g. examples.demo.gatherers:make_env")
    parser.add_argument("--kwargs", help="JSON object of keyword arguments for the factory")
    parser.add_argument("--players", type=int, help="number of peers (default: the env's number of agents)")
    parser.add_argument("--frames", type=int, default=3000, help="frames to play (default 3000)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="one-way latency in ms (default 50)")
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="latency varies by up to this (default 10)")
    parser.add_argument("--loss", type=float, default=0.0, help="packet loss probability 0..1 (default 0)")
    parser.add_argument("--duplicate", type=float, default=0.0, help="duplication probability (default 0)")
    parser.add_argument("--reorder", type=float, default=0.0, help="extra reordering probability (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of network, inputs, clocks and env (default 0)")
    parser.add_argument("--input-delay", type=int, default=2, help="input delay in frames (default 2)")
    parser.add_argument("--max-prediction", type=int, default=8, help="prediction window in frames (default 8)")
    parser.add_argument("--checksum-interval", type=int, default=60,
                        help="exchange state checksums every this many frames, 0 to disable (default 60)")
    parser.add_argument("--fps", type=float, default=60.0, help="frame rate (default 60)")
    parser.add_argument("--input-change", type=float, default=0.2,
                        help="probability per frame that a random input changes (default 0.2)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the simulation and prints the report; returns the exit code."""
    try:
        build = env_builder(args.target, args.kwargs)
        probe = EnvStateAdapter(build(), seed=args.seed)
    except FactoryError as exc:
        raise UserError(str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise UserError(f"{args.target} cannot be used for rollback: {exc}") from exc
    agents = len(probe.agents)
    players = args.players if args.players is not None else agents
    if players != agents:
        raise UserError(f"the env has {agents} agent(s), so --players must be {agents} (got {players})")
    if players < 2:
        raise UserError("netsim needs a multi-agent env with 2..8 agents (one per simulated peer)")
    try:
        conditions = NetworkConditions(args.latency_ms, args.jitter_ms, args.loss, args.duplicate, args.reorder)
        config = SimulationConfig(
            players=players,
            frames=args.frames,
            conditions=conditions,
            seed=args.seed,
            input_delay=args.input_delay,
            max_prediction=args.max_prediction,
            checksum_interval=args.checksum_interval,
            fps=args.fps,
            input_change=args.input_change,
        )
    except SettingsError as exc:
        raise UserError(str(exc)) from exc

    def make_env(peer: int) -> EnvStateAdapter:
        return EnvStateAdapter(build(), seed=args.seed, isolate_global_random=True)

    started = time.perf_counter()
    try:
        report = run_simulation(make_env, config)
    except SettingsError as exc:
        raise UserError(str(exc)) from exc
    elapsed = time.perf_counter() - started
    if args.json:
        data = report.to_dict()
        data["target"] = args.target
        data["wall_time_s"] = round(elapsed, 3)
        print(json.dumps(data, indent=2))
    else:
        print(summary(args.target, report, elapsed))
    return 0 if report.ok else 1


def _percent(value: float) -> str:
    return f"{value * 100:g}%"


def summary(target: str, report: SimulationReport, elapsed_s: float) -> str:
    """The human-readable report."""
    cfg: dict[str, Any] = report.config
    net = cfg["conditions"]
    lines = [
        f"netsim {target}: {cfg['players']} peers, {cfg['frames']} frames at {cfg['fps']:g} fps, seed {cfg['seed']}",
        f"network: {net['latency_ms']:g} ms one-way (+/- {net['jitter_ms']:g} ms jitter), loss {_percent(net['loss'])}, "
        f"duplicated {_percent(net['duplicate'])}, reordered {_percent(net['reorder'])}",
        f"session: input delay {cfg['input_delay']} frames, prediction window {cfg['max_prediction']} frames",
        f"simulated {report.simulated_ms / 1000:.1f} s of play in {elapsed_s:.1f} s; packets: {report.network.sent} "
        f"sent, {report.network.lost} lost, {report.network.duplicated} duplicated",
        "",
        f"{'peer':>4} {'rollbacks':>9} {'per 100 fr':>10} {'mean depth':>10} {'max depth':>9} {'stalls':>6} "
        f"{'waits':>5} {'rtt ms':>7} {'bad pkts':>8}",
    ]
    for peer in report.peers:
        rtts = [v for v in peer.rtt_ms.values() if v is not None]
        rtt = f"{max(rtts):.0f}" if rtts else "-"
        per100 = 100.0 * peer.rollbacks / max(peer.frames, 1)
        lines.append(
            f"{peer.player:>4} {peer.rollbacks:>9} {per100:>10.1f} {peer.mean_rollback_depth:>10.2f} "
            f"{peer.max_rollback_depth:>9} {peer.stalls:>6} {peer.waited_frames:>5} {rtt:>7} "
            f"{sum(peer.dropped_packets.values()):>8}"
        )
    lines.append("")
    if not report.finished:
        lines.append("verdict: DID NOT FINISH - the peers could not confirm every frame in time (network too bad "
                     "for this prediction window, or a peer was disconnected).")
    elif report.ok:
        lines.append(f"verdict: OK - every peer has the same confirmed inputs for all {cfg['frames']} frames and "
                     f"the same final state (checksum {report.peers[0].final_checksum}); no desync.")
    else:
        problems = []
        if not report.histories_identical:
            problems.append(f"confirmed inputs differ from frame {report.first_history_difference}")
        if not report.checksums_identical:
            problems.append("final state checksums differ")
        if report.desyncs:
            problems.append(f"{report.desyncs} desync report(s) during play")
        lines.append("verdict: DESYNC - " + "; ".join(problems) + ". Run `interactive-gym check-env` on this env.")
    stalls = sum(p.stalls for p in report.peers)
    if stalls > 0.05 * cfg["frames"] * cfg["players"]:
        lines.append("hint: many stalls (frames waiting for remote inputs); a larger --max-prediction or "
                     "--input-delay would trade them for rollbacks or latency.")
    return "\n".join(lines)
