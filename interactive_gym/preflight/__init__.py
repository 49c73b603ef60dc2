"""Preflight: every game scene plays its first frames where it will run, before any participant arrives.

``run_preflight(config)`` runs server scenes in CPython and browser/p2p scenes in Pyodide (Node) with their
real bundles; a failure raises :class:`PreflightError` whose message names the scene, the function, the
traceback's last lines and what to change. ``interactive-gym run`` and ``interactive-gym check`` call it.
"""

from interactive_gym.preflight.runner import PreflightError, PreflightReport, SceneResult, run_preflight

__all__ = ["PreflightError", "PreflightReport", "SceneResult", "run_preflight"]
