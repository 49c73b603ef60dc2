"""Loads a researcher's experiment file and finds its :class:`RemoteConfig`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from interactive_gym.configurations.remote_config import RemoteConfig


class ExperimentFileError(Exception):
    """The experiment file cannot be used; the message says why."""


def import_experiment_module(path: str | Path) -> ModuleType:
    """Imports an experiment file as a module, its folder first on ``sys.path``.

    The folder goes first so the experiment can import its own environment modules next to it (and browser
    mode can find their source files).

    Raises:
        ExperimentFileError: if the file is missing, not Python, or raises while imported.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise ExperimentFileError(f"experiment file not found: {path}")
    if file.suffix != ".py":
        raise ExperimentFileError(f"{path} is not a Python file")
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"experiment_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ExperimentFileError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ExperimentFileError(f"{path} raised {type(exc).__name__}: {exc}") from exc
    return module


def load_experiment(path: str | Path) -> RemoteConfig:
    """Imports ``path`` and returns its module-level ``config`` (a RemoteConfig)."""
    config = getattr(import_experiment_module(path), "config", None)
    if not isinstance(config, RemoteConfig):
        raise ExperimentFileError(f"{path} must define a module-level `config = RemoteConfig()...`")
    return config
