"""Rollback netcode in pure Python (standard library only): the same files run in CPython and in Pyodide.

Main entry points:

* :class:`SessionSettings` / :func:`p2p_settings`: validated settings;
* :class:`P2PSession`: the sans-I/O peer-to-peer rollback session (requests, packets, events);
* :class:`P2PRunner`: drives a session and an env adapter once per frame (what the browser calls);
* :class:`SyncTestSession`: the determinism check (roll back and re-simulate every frame);
* :class:`SimulatedNetwork` / :func:`run_simulation`: a seeded bad network and a frame-stepping driver;
* :func:`stable_checksum`: canonical 64-bit checksums of simulation state.
"""

from __future__ import annotations

from .checksum import describe_difference, stable_checksum
from .netsim import NetworkConditions, SimulatedNetwork
from .p2p_session import P2PSession
from .requests import (
    AdvanceFrame,
    AdvanceResult,
    AdvanceStatus,
    DesyncDetected,
    Disconnected,
    EpisodeAgreed,
    EpisodeMismatch,
    InputStatus,
    LoadState,
    NetworkInterrupted,
    NetworkResumed,
    SaveState,
    StateCell,
    Synchronized,
)
from .runner import P2PRunner, RollbackEnv, TickResult
from .settings import SessionSettings, SettingsError, p2p_settings
from .simulation import SimulationConfig, SimulationReport, run_simulation
from .sync_layer import SessionError
from .sync_test import SyncTestMismatchError, SyncTestSession

__all__ = [
    "AdvanceFrame",
    "AdvanceResult",
    "AdvanceStatus",
    "DesyncDetected",
    "Disconnected",
    "EpisodeAgreed",
    "EpisodeMismatch",
    "InputStatus",
    "LoadState",
    "NetworkConditions",
    "NetworkInterrupted",
    "NetworkResumed",
    "P2PRunner",
    "P2PSession",
    "RollbackEnv",
    "SaveState",
    "SessionError",
    "SessionSettings",
    "SettingsError",
    "SimulatedNetwork",
    "SimulationConfig",
    "SimulationReport",
    "StateCell",
    "Synchronized",
    "SyncTestMismatchError",
    "SyncTestSession",
    "TickResult",
    "describe_difference",
    "p2p_settings",
    "run_simulation",
    "stable_checksum",
]
