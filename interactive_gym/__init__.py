"""Interactive Gym: Gymnasium environments as browser experiments with human participants.

The public API a researcher's experiment file uses. See the README for a quick start.
"""

from interactive_gym.configurations.remote_config import ConfigError, RemoteConfig
from interactive_gym.controls import KeyMapping
from interactive_gym.scenes.form_inputs import Likert, MultipleChoice, TextInput
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.scene import EndScene, Scene, StartScene, StaticScene
from interactive_gym.scenes.stager import RandomizeOrder, Repeat, Stager

__all__ = [
    "ConfigError",
    "EndScene",
    "GymScene",
    "KeyMapping",
    "Likert",
    "MultipleChoice",
    "RandomizeOrder",
    "RemoteConfig",
    "Repeat",
    "Scene",
    "Stager",
    "StartScene",
    "StaticScene",
    "TextInput",
]
