"""Input codecs: fixed sizes, round trips, and bad bytes decoding to the default action."""

from __future__ import annotations

import math
import random

import gymnasium.spaces as spaces
import numpy as np
import pytest

from interactive_gym.envs.input_codecs import (
    BoxCodec,
    DiscreteCodec,
    InputCodecError,
    MultiBinaryCodec,
    MultiDiscreteCodec,
    codec_for_space,
)
from interactive_gym.envs.spaces import Discrete


def test_discrete_sizes_and_round_trip() -> None:
    assert DiscreteCodec(5).size == 1 and DiscreteCodec(300).size == 2 and DiscreteCodec(70_000).size == 4
    codec = DiscreteCodec(300, start=-10)
    for action in (-10, 0, 289):
        assert codec.decode(codec.encode(action)) == action
    assert codec.decode(b"\xff\xff") == -10  # invalid -> default
    with pytest.raises(ValueError, match="outside"):
        codec.encode(290)


def test_chords_and_multidiscrete() -> None:
    chord = MultiBinaryCodec(10)
    assert chord.size == 2
    assert chord.decode(chord.encode([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])) == [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    multi = MultiDiscreteCodec([3, 500])
    assert multi.size == 3 and multi.decode(multi.encode([2, 499])) == [2, 499]
    assert multi.decode(b"\x09\xff\xff") == [0, 0]


def test_box_clips_and_survives_nan() -> None:
    box = BoxCodec([-1.0, 0.0], [1.0, 2.0])
    assert box.size == 8
    assert box.decode(box.encode([0.5, 1.5])) == [0.5, 1.5]
    assert box.decode(box.encode([9.0, -3.0])) == [1.0, 0.0]
    nan = box._format.pack(math.nan, math.inf)
    assert box.decode(nan) == [-1.0, 2.0]
    with pytest.raises(InputCodecError):
        BoxCodec([0.0], [math.inf])


def test_codec_for_spaces() -> None:
    assert isinstance(codec_for_space(Discrete(5)), DiscreteCodec)
    assert codec_for_space(spaces.Discrete(4, start=1)).decode(b"\x00") == 1
    assert isinstance(codec_for_space(spaces.MultiBinary(4)), MultiBinaryCodec)
    assert isinstance(codec_for_space(spaces.MultiDiscrete([2, 3])), MultiDiscreteCodec)
    box = codec_for_space(spaces.Box(low=-1, high=1, shape=(2,), dtype=np.float32))
    value = box.decode(box.encode(np.array([0.25, -0.5], dtype=np.float32)))
    assert isinstance(value, np.ndarray) and value.dtype == np.float32 and value.tolist() == [0.25, -0.5]
    with pytest.raises(InputCodecError, match="Dict"):
        codec_for_space(spaces.Dict({"a": spaces.Discrete(2)}))


def test_random_inputs_are_valid() -> None:
    rng = random.Random(0)
    for codec in (DiscreteCodec(7), MultiBinaryCodec(5), MultiDiscreteCodec([4, 4]), BoxCodec([0.0], [1.0])):
        for _ in range(50):
            data = codec.random(rng)
            assert len(data) == codec.size
            assert codec.encode(codec.decode(data)) == data or isinstance(codec, BoxCodec)
