"""Sync layer: which frames are saved, kept cells for checksums and anchors, rollback to an earlier anchor."""

from __future__ import annotations

from session_helpers import summarise

from interactive_gym.netcode.requests import LoadState, SaveState
from interactive_gym.netcode.sync_layer import ANCHOR_INTERVAL, ANCHORS_KEPT, SyncLayer


def _confirm_all(layer: SyncLayer, through: int) -> None:
    for queue in layer.queues:
        while queue.last_confirmed < through:
            queue.add(queue.last_confirmed + 1, b"\x01")


def _run(layer: SyncLayer, frames: int) -> list:
    plans = []
    for _ in range(frames):
        requests = layer.plan_advance()
        for r in requests:
            if isinstance(r, SaveState):
                r.cell.save(r.frame, r.frame, r.frame * 7)
        plans.append(requests)
    return plans


def test_confirmed_frames_are_saved_only_for_checksums_and_anchors() -> None:
    layer = SyncLayer(2, b"\x00", max_prediction=4, checksum_interval=20)
    _confirm_all(layer, 200)
    plans = _run(layer, 130)
    saved = [r.frame for plan in plans for r in plan if isinstance(r, SaveState)]
    assert saved == [0, 20, 30, 40, 60, 80, 90, 100, 120]
    assert [r.checksum_wanted for plan in plans for r in plan if isinstance(r, SaveState)] == [
        True, True, False, True, True, True, False, True, True
    ]


def test_checksum_cells_outlive_the_ring_until_released() -> None:
    layer = SyncLayer(2, b"\x00", max_prediction=2, checksum_interval=20)
    _confirm_all(layer, 200)
    _run(layer, 125)
    assert layer.checksum_of(20) == 140 and layer.checksum_of(100) == 700
    layer.release_checksums_before(101)
    assert layer.checksum_of(20) is None and layer.checksum_of(120) == 840
    anchors = [f for f in range(0, 125, ANCHOR_INTERVAL) if layer.cell(f).frame == f]
    assert len(anchors) <= ANCHORS_KEPT + 1


def test_rollback_without_its_own_save_uses_the_latest_earlier_state() -> None:
    layer = SyncLayer(2, b"\x00", max_prediction=4, checksum_interval=0)
    _confirm_all(layer, 100)
    _run(layer, 70)
    # A disconnection cut makes frame 65 wrong although it was confirmed (and so never saved).
    layer.note_misprediction(65)
    plan = layer.plan_advance()
    assert isinstance(plan[0], LoadState) and plan[0].frame == 60  # the anchor at frame 60
    assert summarise(plan)[1:3] == [("advance", 60, "1C 1C"), ("advance", 61, "1C 1C")]
    assert layer.unrecoverable_rollbacks == 0
