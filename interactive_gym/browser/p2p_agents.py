"""AI agents in p2p games: where their actions are computed, and the pause between p2p episodes.

The AI-seat rule
----------------
An AI agent of a p2p game (an ``OnnxPolicy`` or a Python policy in ``policy_mapping``) is not a player of the
rollback session: it has no input, nothing about it crosses the network. Every peer computes its action itself,
**inside the simulation step** of each frame (:class:`~interactive_gym.browser.p2p_sim.P2PSimulation`, through
the shared :class:`~interactive_gym.envs.agent_runtime.AgentRuntime`), from

* the observation the simulation holds before that step (the simulated state, never a prediction made elsewhere),
* the agent's generator, seeded from the episode's seed and the agent id when the episode starts
  (``agent_rng(seed, agent)``), saved and restored with every rollback snapshot,
* the step ``t`` of the episode (frame skip: a new decision when ``t % frame_skip == 0``, held in between).

So the action of step ``t`` is a pure function of (simulated state, episode seed, ``t``): a re-simulation after a
rollback, another peer, or a rejoining page loading a snapshot computes the same action, and no wall clock,
``Math.random`` or network timing can enter. An ONNX seat draws exactly one uniform number per sampled decision
(none with argmax), so its ``u`` at step ``t`` depends only on the seed, the agent and ``t``
(:func:`decision_uniform`). The ONNX network is evaluated in Python (:mod:`~interactive_gym.browser.onnx_mlp`,
double precision, one fixed order of operations) because onnxruntime-web answers asynchronously, outside the
synchronous re-simulation; its draw follows ``sampleCategorical`` of ``seeded_rng.js`` (one rule, one table of
cases both are tested against: ``tests/fixtures/sample_categorical_cases.json``). Its uniform numbers come from
Python's generator, not ``seeded_rng.js``'s, so a sampled browser-mode episode and a p2p one with the same seed
draw differently; each is reproducible from its seed.

The pause between episodes
--------------------------
After a p2p episode ends the next one is reset at once, and then *held* for :func:`pause_frames` frames: the
simulation plays those frames without stepping (no rows, no inputs used), so the pause is part of the
deterministic stream every peer simulates, with no announcement to lose. Pages show a "next round" notice while
the host reports frames of pause left.

Pure standard library (plus our browser modules); runs in Pyodide and CPython.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from interactive_gym.browser.host import HostConfigError, _encoder
from interactive_gym.browser.onnx_mlp import MlpModel, OnnxModelError, read_model
from interactive_gym.browser.refs import resolve_ref
from interactive_gym.envs.agent_runtime import AgentPolicy, AgentPolicyError, agent_rng

# Multiply-adds per decision an ONNX seat may cost: every peer evaluates it in Python on each (re-)simulated
# frame, and a rollback replays up to the prediction window at once. Measured in Pyodide (Node, 2 cores at load
# average 10, so a pessimistic figure): 0.15 ms per decision for 144 multiply-adds, 3.5 ms for a 30-64-64-5
# perceptron (6,336), 8.3 ms for 15,750. frame_skip divides the cost.
MAX_SEAT_MACS = 20_000
# The model travels in the p2p config to every page of every game.
MAX_SEAT_MODEL_BYTES = 512 * 1024
DEFAULT_EPISODE_PAUSE_S = 2.0
MAX_EPISODE_PAUSE_S = 30.0


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value, the first on ties (``argmax`` of ``seeded_rng.js``; NaN never wins)."""
    if not values:
        raise ValueError("argmax of an empty list")
    best = 0
    for i in range(1, len(values)):
        if values[i] > values[best]:
            best = i
    return best


def sample_categorical(logits: Sequence[float], temperature: float, u: float) -> int:
    """The index drawn from ``softmax(logits / temperature)`` by the uniform number ``u`` in [0, 1).

    The first index whose cumulative probability exceeds ``u``; the last one if rounding left ``u`` above the
    sum (``sampleCategorical`` of ``seeded_rng.js``).
    """
    from interactive_gym.browser.onnx_mlp import softmax

    probs = softmax(logits, temperature)
    acc = 0.0
    for i, p in enumerate(probs):
        acc += p
        if u < acc:
            return i
    return len(probs) - 1


def seat_choice(logits: Sequence[float], *, sample: bool, temperature: float, rng: random.Random) -> int:
    """An ONNX seat's action from its logits: argmax, or one draw from ``rng`` when sampling."""
    return sample_categorical(logits, temperature, rng.random()) if sample else argmax(logits)


def decision_uniform(seed: int, agent: str, t: int, frame_skip: int) -> float:
    """The uniform number a sampling ONNX seat uses at step ``t`` of the episode with reset seed ``seed``.

    The seat's generator (``agent_rng``) gives one draw per decision, and decisions fall on the steps
    ``t % frame_skip == 0``; this computes the draw of the decision in force at ``t`` from scratch (the rule's
    statement; tests check the simulation against it).
    """
    rng = agent_rng(seed, agent)
    u = 0.0
    for _ in range(t // frame_skip + 1):
        u = rng.random()
    return u


def seat_function(model: MlpModel, encode: Callable[[Any, str], Any], *, sample: bool,
                  temperature: float) -> Callable[..., int]:
    """The policy function of an ONNX seat: ``fn(observation, agent_id, rng) -> action``.

    Raises (when called):
        AgentPolicyError: if ``obs_to_input`` gives the wrong number of values or non-numbers.
    """
    def onnx_seat(observation: Any, agent_id: str, rng: random.Random) -> int:
        try:
            values = [float(v) for v in encode(observation, agent_id)]
        except (TypeError, ValueError) as exc:
            raise AgentPolicyError(f"obs_to_input for {agent_id!r} must return a list of numbers: {exc}") from exc
        if len(values) != model.input_size:
            raise AgentPolicyError(f"obs_to_input for {agent_id!r} returned {len(values)} values; the ONNX model "
                                   f"takes {model.input_size}")
        return seat_choice(model.forward(values), sample=sample, temperature=temperature, rng=rng)

    return onnx_seat


def decode_model(agent: str, entry: Any) -> MlpModel:
    """The model of ``config["p2p"]["ai"][agent]`` (``{"model": base64 of the .onnx bytes}``).

    Raises:
        HostConfigError: if the entry is missing or the model cannot be read.
    """
    if not isinstance(entry, Mapping) or not isinstance(entry.get("model"), str):
        raise HostConfigError(f"agent {agent!r} is an ONNX agent but the p2p config carries no model for it")
    try:
        return read_model(base64.b64decode(entry["model"], validate=True))
    except (binascii.Error, ValueError) as exc:  # OnnxModelError is a ValueError
        raise HostConfigError(f"agent {agent!r}: its ONNX model cannot be used: {exc}") from exc


def onnx_seat_policy(agent: str, spec: Mapping[str, Any], ai_block: Mapping[str, Any] | None) -> AgentPolicy:
    """The runtime policy of a ``{"kind": "onnx", ...}`` agent of a p2p scene config (page side).

    Args:
        agent: The agent id.
        spec: Its ``config["agents"]`` entry (``obs_to_input`` ref, ``sample``, ``temperature``, ``frame_skip``).
        ai_block: ``config["p2p"]["ai"]`` (the models, by agent).

    Raises:
        HostConfigError: naming what is wrong.
    """
    model = decode_model(agent, (ai_block or {}).get(agent))
    encode = _encoder(agent, resolve_ref(str(spec["obs_to_input"])))
    fn = seat_function(model, encode, sample=bool(spec.get("sample", False)),
                       temperature=float(spec.get("temperature", 1.0)))
    try:
        return AgentPolicy.function(fn, spec.get("frame_skip", 1))
    except AgentPolicyError as exc:
        raise HostConfigError(f"agent {agent!r}: {exc}") from exc


# -- start-up (server side; pure) -----------------------------------------------------------------------------

def check_onnx_seat(model_bytes: bytes, encode: Callable[[Any, str], Any], agent: str, observation: Any,
                    actions: int | None) -> MlpModel:
    """Checks at start-up that a p2p ONNX seat can play: model readable, within budget, sizes that fit.

    Args:
        model_bytes: The ``.onnx`` file's bytes.
        encode: ``obs_to_input`` adapted to ``(observation, agent)``.
        agent: The agent id.
        observation: The agent's first observation of a freshly reset env.
        actions: Actions of the agent's discrete action space (``None``: not discrete).

    Raises:
        ValueError: with a message that says what to change.
    """
    if actions is None:
        raise ValueError("an ONNX policy picks one of n discrete actions; its agent's action space must be "
                         "Discrete")
    if len(model_bytes) > MAX_SEAT_MODEL_BYTES:
        raise ValueError(f"its ONNX model file is {len(model_bytes)} bytes; p2p mode allows {MAX_SEAT_MODEL_BYTES} "
                         "(it is sent to every page of every game)")
    try:
        model = read_model(model_bytes)
    except OnnxModelError as exc:
        raise ValueError(f"its ONNX model cannot run in p2p mode: {exc}") from None
    if model.macs > MAX_SEAT_MACS:
        raise ValueError(f"its ONNX model needs {model.macs} multiply-adds per decision; p2p mode allows "
                         f"{MAX_SEAT_MACS} (every peer evaluates it on every re-simulated frame): use fewer or "
                         "narrower layers")
    if model.output_size != actions:
        raise ValueError(f"its ONNX model gives {model.output_size} outputs but the agent has {actions} actions")
    try:
        values = list(encode(observation, agent))
        floats = [float(v) for v in values]
    except Exception as exc:  # noqa: BLE001 - the researcher's function; its failure is theirs to see
        raise ValueError(f"obs_to_input failed on the first observation: {type(exc).__name__}: {exc}") from None
    if len(floats) != model.input_size:
        raise ValueError(f"obs_to_input returns {len(floats)} values but the ONNX model takes {model.input_size}")
    if not all(math.isfinite(v) for v in floats):
        raise ValueError("obs_to_input returned a value that is not a finite number on the first observation")
    return model


def model_block(model_bytes: bytes) -> dict[str, str]:
    """One agent's entry of ``config["p2p"]["ai"]``: the model, as base64 text."""
    return {"model": base64.b64encode(model_bytes).decode("ascii")}


def check_episode_pause(seconds: Any) -> float:
    """``GymScene(episode_pause_s=...)`` checked.

    Raises:
        ValueError: for anything but a number of seconds from 0 to :data:`MAX_EPISODE_PAUSE_S`.
    """
    if (isinstance(seconds, bool) or not isinstance(seconds, int | float) or math.isnan(seconds)
            or not 0 <= seconds <= MAX_EPISODE_PAUSE_S):
        raise ValueError(f"episode_pause_s must be a number of seconds from 0 to {MAX_EPISODE_PAUSE_S:g} "
                         f"(got {seconds!r})")
    return float(seconds)


def pause_frames(seconds: float, fps: float) -> int:
    """Frames the simulation holds between two episodes for a pause of ``seconds`` at ``fps``.

    Every peer computes it from the same config, so every peer holds the same frames.
    """
    return max(0, math.ceil(round(float(seconds) * float(fps), 6)))
