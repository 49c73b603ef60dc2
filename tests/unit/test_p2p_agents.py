"""The AI-seat rule of p2p games (browser/p2p_agents.py) and the ONNX evaluator it runs (browser/onnx_mlp.py).

The evaluator is checked against onnx's own reference implementation on generated perceptrons; the choice of an
action against the table shared with seeded_rng.js; the rule itself (the action of step t is a function of the
observation, the episode seed and t) against the runtime the simulation really uses, including after a rollback.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx.reference import ReferenceEvaluator
from onnx_graphs import conv_bytes, mlp_bytes

from interactive_gym.browser.host import HostConfigError
from interactive_gym.browser.onnx_mlp import SUPPORTED_OPS, OnnxModelError, read_model
from interactive_gym.browser.p2p_agents import (
    MAX_SEAT_MACS,
    MAX_SEAT_MODEL_BYTES,
    argmax,
    check_episode_pause,
    check_onnx_seat,
    decision_uniform,
    decode_model,
    model_block,
    pause_frames,
    sample_categorical,
    seat_choice,
    seat_function,
)
from interactive_gym.envs.agent_runtime import AgentPolicy, AgentPolicyError, AgentRuntime

TABLE = json.loads((Path(__file__).parents[1] / "fixtures" / "sample_categorical_cases.json").read_text())


def encode(observation: list[float], agent: str) -> list[float]:
    return list(observation)


# -- the evaluator -------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(inputs=st.integers(1, 12), hidden=st.lists(st.integers(1, 10), min_size=0, max_size=3),
       actions=st.integers(1, 6), activation=st.sampled_from(["Relu", "Tanh", "Sigmoid", "LeakyRelu"]),
       layout=st.sampled_from(["gemm", "gemm_transposed", "matmul"]), softmax=st.booleans(),
       seed=st.integers(0, 2**16), data=st.data())
def test_forward_matches_the_onnx_reference(inputs: int, hidden: list[int], actions: int, activation: str,
                                            layout: str, softmax: bool, seed: int, data: st.DataObject) -> None:
    blob = mlp_bytes(inputs, hidden, actions, activation=activation, trans_b=layout == "gemm_transposed",
                     matmul=layout == "matmul", softmax=softmax, seed=seed)
    model = read_model(blob)
    assert (model.input_size, model.output_size) == (inputs, actions)
    assert model.macs == sum(a * b for a, b in zip([inputs, *hidden], [*hidden, actions], strict=True))
    x = data.draw(st.lists(st.floats(-10, 10, width=32), min_size=inputs, max_size=inputs))
    reference = ReferenceEvaluator(blob).run(None, {"obs": np.array([x], np.float32)})[0][0]
    ours = model.forward(x)
    # The reference computes in float32, this evaluator in float64: they agree to float32 precision.
    assert ours == pytest.approx(reference.astype(float).tolist(), rel=1e-4, abs=1e-4)


def test_forward_is_the_same_floats_every_time() -> None:
    model = read_model(mlp_bytes(5, (7, 7), 4, activation="Tanh", seed=3))
    x = [0.5, -1.25, 3.0, 0.0, 2.0]
    assert model.forward(x) == model.forward(list(x)) == read_model(mlp_bytes(5, (7, 7), 4, activation="Tanh",
                                                                                seed=3)).forward(x)


def test_a_symbolic_batch_dimension_is_read_from_the_first_layer() -> None:
    assert read_model(mlp_bytes(6, (4,), 3, symbolic_batch=True)).input_size == 6


def test_sigmoid_never_overflows() -> None:
    model = read_model(mlp_bytes(1, (2,), 2, activation="Sigmoid", scale=1e4, seed=1))
    assert all(math.isfinite(v) for v in model.forward([1e4])) and all(math.isfinite(v) for v in model.forward([-1e4]))


@pytest.mark.parametrize(("blob", "message"), [
    (b"", "no graph"),
    (b"\x3a\x05abc", "truncated"),
    (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "malformed number"),
    (conv_bytes(), "operator 'Conv' is not supported in p2p mode"),
])
def test_models_it_cannot_run_are_refused_by_name(blob: bytes, message: str) -> None:
    with pytest.raises(OnnxModelError, match=message):
        read_model(blob)


def test_the_refusal_lists_what_is_supported() -> None:
    with pytest.raises(OnnxModelError) as caught:
        read_model(conv_bytes())
    assert all(op in str(caught.value) for op in SUPPORTED_OPS)


def test_a_wrong_input_length_is_refused() -> None:
    with pytest.raises(OnnxModelError, match="takes 3 inputs, got 2"):
        read_model(mlp_bytes(3)).forward([1.0, 2.0])


# -- choosing an action (the table shared with seeded_rng.js) --------------------------------------------------

@pytest.mark.parametrize("case", TABLE["sample"], ids=lambda c: f"{c['logits']}-T{c['temperature']}-u{c['u']}")
def test_sampling_follows_the_shared_table(case: dict) -> None:
    assert sample_categorical(case["logits"], case["temperature"], case["u"]) == case["expected"]


@pytest.mark.parametrize("case", TABLE["argmax"], ids=lambda c: str(c["values"]))
def test_argmax_follows_the_shared_table(case: dict) -> None:
    assert argmax(case["values"]) == case["expected"]


@given(logits=st.lists(st.floats(-50, 50), min_size=1, max_size=8), u=st.floats(0, 1, exclude_max=True),
       temperature=st.floats(0.05, 20))
def test_the_draw_is_the_interval_u_falls_in(logits: list[float], u: float, temperature: float) -> None:
    index = sample_categorical(logits, temperature, u)
    scaled = [v / temperature for v in logits]
    weights = [math.exp(v - max(scaled)) for v in scaled]
    below = sum(weights[:index]) / sum(weights)
    assert 0 <= index < len(logits)
    assert below <= u + 1e-12  # everything before the index was passed
    assert weights[index] > 0 or index == len(logits) - 1


def test_argmax_uses_no_draw_and_sampling_exactly_one() -> None:
    rng, twin = random.Random(7), random.Random(7)
    seat_choice([0.1, 0.2], sample=False, temperature=1.0, rng=rng)
    assert rng.random() == twin.random()
    seat_choice([0.1, 0.2], sample=True, temperature=1.0, rng=rng)
    twin.random()
    assert rng.random() == twin.random()


# -- the AI-seat rule -------------------------------------------------------------------------------------------

def observation_at(seed: int, t: int) -> list[float]:
    """Any observation sequence (as a simulation would produce)."""
    r = random.Random(f"obs:{seed}:{t}")
    return [r.uniform(-2, 2) for _ in range(4)]


@pytest.mark.parametrize("frame_skip", [1, 2, 3, 5])
@pytest.mark.parametrize("sample", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 12345, 2**31 - 2])
def test_the_action_of_step_t_is_a_function_of_observation_seed_and_t(frame_skip: int, sample: bool,
                                                                       seed: int) -> None:
    model = read_model(mlp_bytes(4, (6,), 4, seed=seed % 97, scale=0.3))
    runtime = AgentRuntime({"ai": AgentPolicy.function(
        seat_function(model, encode, sample=sample, temperature=1.0), frame_skip)})
    runtime.start_episode(seed)
    for t in range(40):
        action = runtime.actions(t, {"ai": observation_at(seed, t)})["ai"]
        decided = t - t % frame_skip  # the decision in force at t
        logits = model.forward(observation_at(seed, decided))
        expected = (sample_categorical(logits, 1.0, decision_uniform(seed, "ai", t, frame_skip)) if sample
                    else argmax(logits))
        assert action == expected, t


def test_a_rollback_recomputes_the_same_actions() -> None:
    model = read_model(mlp_bytes(4, (6,), 4, seed=2, scale=0.2))
    runtime = AgentRuntime({"ai": AgentPolicy.function(seat_function(model, encode, sample=True, temperature=0.8),
                                                       2)})
    runtime.start_episode(99)
    first = [runtime.actions(t, {"ai": observation_at(1, t)})["ai"] for t in range(10)]
    snapshot = runtime.snapshot()
    ahead = [runtime.actions(t, {"ai": observation_at(1, t)})["ai"] for t in range(10, 30)]
    runtime.restore(snapshot)  # a late input: frames 10.. are simulated again
    again = [runtime.actions(t, {"ai": observation_at(1, t)})["ai"] for t in range(10, 30)]
    assert again == ahead and len(set(first + ahead)) > 1  # sampled actions really vary


def test_a_seat_whose_encoder_gives_the_wrong_size_fails_with_its_name() -> None:
    fn = seat_function(read_model(mlp_bytes(4)), lambda obs, agent: [1.0], sample=False, temperature=1.0)
    with pytest.raises(AgentPolicyError, match="obs_to_input for 'ai' returned 1 values; the ONNX model takes 4"):
        fn([0.0] * 4, "ai", random.Random(0))


# -- start-up checks and the config block ---------------------------------------------------------------------

def test_check_accepts_a_model_that_fits() -> None:
    model = check_onnx_seat(mlp_bytes(4, (5,), 3), encode, "ai", [0.0, 1.0, 2.0, 3.0], 3)
    assert model.input_size == 4


@pytest.mark.parametrize(("blob", "observation", "actions", "message"), [
    (mlp_bytes(4, (5,), 3), [0.0] * 3, 3, "obs_to_input returns 3 values but the ONNX model takes 4"),
    (mlp_bytes(4, (5,), 3), [0.0] * 4, 5, "gives 3 outputs but the agent has 5 actions"),
    (mlp_bytes(4, (5,), 3), [0.0] * 4, None, "action space must be Discrete"),
    (mlp_bytes(4, (5,), 3), [0.0, 0.0, float("nan"), 0.0], 3, "not a finite number"),
    (mlp_bytes(4, (5,), 3), None, 3, "obs_to_input failed on the first observation: TypeError"),
    (conv_bytes(), [0.0] * 4, 1, "cannot run in p2p mode: .*'Conv'"),
    (mlp_bytes(150, (140,), 3), [0.0] * 150, 3, f"needs 21420 multiply-adds per decision; p2p mode allows {MAX_SEAT_MACS}"),
    (mlp_bytes(4, (5,), 3) + b"\0" * MAX_SEAT_MODEL_BYTES, [0.0] * 4, 3, "p2p mode allows 524288 .*sent to every page"),
])
def test_check_refuses_with_a_message_that_says_what_to_change(blob: bytes, observation: object, actions: int | None,
                                                               message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_onnx_seat(blob, encode, "ai", observation, actions)


def test_the_config_block_round_trips_the_model() -> None:
    blob = mlp_bytes(3, (4,), 2, seed=5)
    assert decode_model("ai", model_block(blob)).forward([1.0, 2.0, 3.0]) == read_model(blob).forward([1.0, 2.0, 3.0])


@pytest.mark.parametrize(("entry", "message"), [
    (None, "carries no model"), ({"model": 3}, "carries no model"), ({"model": "!!"}, "cannot be used"),
    ({"model": ""}, "cannot be used: the file has no graph"),
])
def test_a_page_config_without_a_usable_model_is_refused(entry: object, message: str) -> None:
    with pytest.raises(HostConfigError, match=f"agent 'ai'.*{message}"):
        decode_model("ai", entry)


# -- the pause between episodes ---------------------------------------------------------------------------------

def test_pause_frames_for_every_fps_and_tenth_of_a_second() -> None:
    for fps in range(1, 61):
        for tenths in range(0, 301):
            frames = pause_frames(tenths / 10, fps)
            assert frames == -(-tenths * fps // 10), (tenths, fps)  # ceil, exactly, without float error


@pytest.mark.parametrize("bad", [-0.1, 30.5, float("nan"), "2", True, None])
def test_episode_pause_must_be_seconds_in_range(bad: object) -> None:
    with pytest.raises(ValueError, match="episode_pause_s must be a number of seconds from 0 to 30"):
        check_episode_pause(bad)
