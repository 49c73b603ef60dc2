"""The collector's settings while the server serves: start-up objects frozen, young collections rarer, and both
restored when it stops (a process that starts several servers, like the test suite, gets its defaults back)."""

from __future__ import annotations

import gc

import pytest

from interactive_gym.server.app import YOUNG_GC_THRESHOLD, serving_heap


def test_serving_freezes_the_start_up_heap_and_raises_the_young_threshold_then_restores_both() -> None:
    before = gc.get_threshold()
    assert before[0] != YOUNG_GC_THRESHOLD
    with serving_heap(YOUNG_GC_THRESHOLD):
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_settings_are_restored_when_serving_ends_with_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), serving_heap(1234):
        raise RuntimeError("the server failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_cyclic_garbage_made_while_serving_is_still_collected_automatically() -> None:
    class Node:
        peer: Node

    with serving_heap(1000):
        gc.collect()
        for _ in range(5000):  # 10,000 objects in cycles only the collector can free, none collected by hand
            a, b = Node(), Node()
            a.peer, b.peer = b, a
        left = sum(isinstance(o, Node) for o in gc.get_objects())
    assert left <= 2000  # young collections ran (about every 1,000 net allocations); without them: 10,000
