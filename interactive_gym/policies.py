"""AI policies that run in the participant's browser, configured in Python.

In browser mode every agent that is not the human is played by a policy that runs in the page:

* :class:`OnnxPolicy` - a neural network exported to ONNX, run by ``onnxruntime-web``. Its observation is
  turned into a flat list of floats by a module-level Python function (``obs_to_input``) that runs in
  Pyodide next to the environment; the network outputs one logit per discrete action, and the page takes
  the argmax or samples with a seeded generator (so an episode is reproducible from its seed).
* :class:`PythonPolicy` (or a bare module-level function) - ``fn(observation, agent_id) -> action`` or
  ``fn(observation) -> action``, shipped with the environment's files and called inside Pyodide.

Frame skip, the seeded generator and the call rules are those of ``envs/agent_runtime.py``, the code every
mode runs; these descriptors check against the same rules at load time.

Both are descriptors: they check their settings when the experiment is loaded (fail fast, before any
participant arrives) and hold nothing that runs on the server.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interactive_gym.browser.refs import RefError, function_ref
from interactive_gym.envs.agent_runtime import AgentPolicy, AgentPolicyError

MAX_MODEL_BYTES = 64 * 1024 * 1024


class PolicyConfigError(ValueError):
    """A policy setting the experiment cannot use; the message says what to change."""


def _runtime_policy(build: Callable[..., AgentPolicy], *args: Any) -> AgentPolicy:
    """Checks settings with the runtime's own rules (one rule, one place), as a :class:`PolicyConfigError`."""
    try:
        return build(*args)
    except AgentPolicyError as exc:
        raise PolicyConfigError(str(exc)) from exc


def _ref(fn: Any, what: str) -> str:
    try:
        return function_ref(fn, what)
    except RefError as exc:
        raise PolicyConfigError(str(exc)) from exc


@dataclass(frozen=True)
class OnnxPolicy:
    """An ONNX model that picks a discrete action from one observation.

    Args:
        model_path: The ``.onnx`` file. Its first input takes ``float32[1, n]``; its first output gives
            ``[1, num_actions]`` logits.
        obs_to_input: Module-level function ``obs_to_input(observation)`` or
            ``obs_to_input(observation, agent_id)`` returning a list of ``n`` floats. Runs in Pyodide.
        sample: Sample from ``softmax(logits / temperature)`` with a generator seeded from the episode
            seed (True), or take the argmax (False).
        frame_skip: The policy chooses a new action every ``frame_skip`` frames and repeats it between.
        temperature: Softmax temperature for sampling (> 0).

    Raises:
        PolicyConfigError: if the file is missing, too big, not ``.onnx``, or a setting is out of range.
    """

    model_path: Path
    obs_to_input: Callable[..., Any]
    sample: bool = False
    frame_skip: int = 1
    temperature: float = 1.0
    obs_to_input_ref: str = field(init=False)

    def __init__(
        self,
        model_path: str | Path,
        obs_to_input: Callable[..., Any],
        sample: bool = False,
        frame_skip: int = 1,
        temperature: float = 1.0,
    ) -> None:
        path = Path(model_path).expanduser().resolve()
        if path.suffix.lower() != ".onnx":
            raise PolicyConfigError(f"OnnxPolicy model_path must be an .onnx file, got {str(model_path)!r}")
        if not path.is_file():
            raise PolicyConfigError(f"OnnxPolicy model file not found: {path}")
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise PolicyConfigError(
                f"OnnxPolicy model {path} is {path.stat().st_size} bytes; the limit is {MAX_MODEL_BYTES} "
                "(every participant downloads it)"
            )
        if not isinstance(sample, bool):
            raise PolicyConfigError(f"OnnxPolicy sample must be True or False, got {sample!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not (
            math.isfinite(temperature) and temperature > 0
        ):
            raise PolicyConfigError(f"OnnxPolicy temperature must be a finite number > 0, got {temperature!r}")
        object.__setattr__(self, "model_path", path)
        object.__setattr__(self, "obs_to_input", obs_to_input)
        object.__setattr__(self, "sample", sample)
        object.__setattr__(self, "frame_skip", _runtime_policy(AgentPolicy.external, frame_skip).frame_skip)
        object.__setattr__(self, "temperature", float(temperature))
        object.__setattr__(self, "obs_to_input_ref", _ref(obs_to_input, "OnnxPolicy obs_to_input"))


@dataclass(frozen=True)
class PythonPolicy:
    """A module-level Python function ``fn(observation, agent_id) -> action`` (or ``fn(observation)``).

    If the function has a parameter named ``rng``, it receives (as ``rng=...``) a ``random.Random`` seeded
    from the episode seed and the agent, so stochastic scripted policies stay reproducible. The same rules
    hold in every mode (``envs/agent_runtime.py``).

    Args:
        fn: The policy function.
        frame_skip: The policy acts every ``frame_skip`` frames and repeats its action between.

    Raises:
        PolicyConfigError: if ``fn`` is not a module-level function with a signature the runtime can call,
            or ``frame_skip`` is not an integer >= 1.
    """

    fn: Callable[..., Any]
    frame_skip: int = 1
    ref: str = field(init=False)

    def __init__(self, fn: Callable[..., Any], frame_skip: int = 1) -> None:
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "ref", _ref(fn, "policy function"))  # first: "not module-level" is the fix to name
        object.__setattr__(self, "frame_skip", _runtime_policy(AgentPolicy.function, fn, frame_skip).frame_skip)


HUMAN = "human"
PolicySpec = str | OnnxPolicy | PythonPolicy | Callable[..., Any]


def normalise_policy(agent_id: str, spec: Any) -> str | OnnxPolicy | PythonPolicy:
    """Turns one ``policy_mapping`` value into ``"human"``, an :class:`OnnxPolicy` or a :class:`PythonPolicy`.

    Raises:
        PolicyConfigError: for anything else, naming the agent.
    """
    if spec == HUMAN:
        return HUMAN
    if isinstance(spec, OnnxPolicy | PythonPolicy):
        return spec
    if callable(spec):
        try:
            return PythonPolicy(spec)
        except PolicyConfigError as exc:
            raise PolicyConfigError(f"policy for agent {agent_id!r}: {exc}") from exc
    raise PolicyConfigError(
        f"policy for agent {agent_id!r} must be 'human', OnnxPolicy(...), PythonPolicy(...) or a "
        f"module-level function; got {spec!r}"
    )
