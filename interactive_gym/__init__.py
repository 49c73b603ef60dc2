"""Interactive Gym: Gymnasium environments as browser experiments with human participants.

The public API a researcher's experiment file uses (see the README for a quick start). Names are imported
lazily on first use, so ``import interactive_gym.rendering`` (also inside Pyodide) loads nothing else.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "interactive_gym.configurations.remote_config",
    "RemoteConfig": "interactive_gym.configurations.remote_config",
    "KeyMapping": "interactive_gym.controls",
    "Likert": "interactive_gym.scenes.form_inputs",
    "MultipleChoice": "interactive_gym.scenes.form_inputs",
    "TextInput": "interactive_gym.scenes.form_inputs",
    "GymScene": "interactive_gym.scenes.gym_scene",
    "EndScene": "interactive_gym.scenes.scene",
    "Scene": "interactive_gym.scenes.scene",
    "StartScene": "interactive_gym.scenes.scene",
    "StaticScene": "interactive_gym.scenes.scene",
    "AssignCondition": "interactive_gym.scenes.stager",
    "RandomizeOrder": "interactive_gym.scenes.stager",
    "Repeat": "interactive_gym.scenes.stager",
    "Stager": "interactive_gym.scenes.stager",
    "OnnxPolicy": "interactive_gym.policies",
    "PythonPolicy": "interactive_gym.policies",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interactive_gym' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
