"""Browser uploads name their visit and attempt, and carry the times they were played: the checks on both,
and the times handed to storage (page clock + offset as played, the page's readings kept, arrival apart)."""

from __future__ import annotations

from typing import Any

import pytest

from interactive_gym.server.upload_validation import (
    CLOCK_SLACK_S,
    EpisodeUpload,
    UploadRejected,
    UploadRules,
    episode_write_kwargs,
    validate_episode_upload,
)

AGENTS = ("agent_0",)
ISSUED = 1_764_120_000.0  # attempt 1 issued; attempt 2 ten minutes later
RULES = UploadRules(scene_id="solo", num_episodes=2, max_steps=3, agent_ids=AGENTS, seeds=(11, 22),
                    bundle_hash="h" * 64, scene_index=4, attempts_issued_at=(ISSUED, ISSUED + 600),
                    require_clock=True)
CONFIG = {"scene_id": "solo", "fps": 10, "max_steps": 3, "num_episodes": 2, "seeds": [11, 22],
          "bundle": {"hash": "h" * 64, "factory": "m:make", "render": "m:render", "env_kwargs": {}},
          "agents": {"agent_0": {"kind": "human"}}}
PAGE_START = ISSUED + 5.0 - 30.0  # the page's clock runs 30 s behind the server's


def step(t: int, ts: float, last: bool = False) -> dict[str, Any]:
    return {"t": t, "keys": {"agent_0": []}, "actions": {"agent_0": 0}, "rewards": {"agent_0": 0.0},
            "terminated": {"agent_0": False}, "truncated": {"agent_0": last}, "client_ts": ts}


def payload(**changes: Any) -> dict[str, Any]:
    base = {"scene_id": "solo", "episode": 0, "seed": 11, "bundle_hash": "h" * 64, "partial": False,
            "end_reason": "done", "steps": [step(t, PAGE_START + 0.1 * (t + 1), t == 2) for t in range(3)],
            "scene_index": 4, "attempt": 1,
            "clock": {"started_at": PAGE_START, "ended_at": PAGE_START + 0.4, "offset_s": 30.0, "rtt_s": 0.02}}
    base.update(changes)
    return base


def check(p: Any, received_at: float = ISSUED + 60.0) -> EpisodeUpload | UploadRejected:
    return validate_episode_upload(p, participant_id="P1", participant_scene_id="solo", rules=RULES,
                                   received_at=received_at)


def code(p: Any, **kw: Any) -> str | None:
    result = check(p, **kw)
    return result.code if isinstance(result, UploadRejected) else None


def test_a_well_timed_upload_is_stored_with_corrected_times_and_its_arrival() -> None:
    upload = check(payload())
    assert isinstance(upload, EpisodeUpload) and upload.time_flags == ()
    kwargs = episode_write_kwargs(upload, CONFIG, received_at=ISSUED + 60.0)
    assert kwargs["started_at"] == pytest.approx(ISSUED + 5.0)
    assert kwargs["ended_at"] == pytest.approx(ISSUED + 5.4)
    assert [s.server_ts for s in kwargs["steps"]] == pytest.approx([ISSUED + 5.1, ISSUED + 5.2, ISSUED + 5.3])
    assert [s.client_ts for s in kwargs["steps"]] == [r["client_ts"] for r in payload()["steps"]]
    assert (kwargs["client_started_at"], kwargs["clock_offset"], kwargs["received_at"]) == (
        PAGE_START, 30.0, ISSUED + 60.0)
    assert (kwargs["scene_index"], kwargs["attempt"], kwargs["game_id"]) == (4, 1, "P1:4:1")
    assert kwargs["meta"]["clock_rtt_s"] == 0.02


@pytest.mark.parametrize(("changes", "expected"), [
    ({"scene_index": 3}, "wrong_visit"),
    ({"scene_index": None}, "wrong_visit"),
    ({"attempt": 3}, "bad_attempt"),
    ({"attempt": 0}, "bad_attempt"),
    ({"attempt": "1"}, "bad_attempt"),
    ({"attempt": True}, "bad_attempt"),
    ({"clock": None}, "bad_clock"),
    ({"clock": []}, "bad_clock"),
    ({"clock": {"started_at": PAGE_START}}, "bad_clock"),
    ({"clock": {"started_at": PAGE_START, "ended_at": PAGE_START, "extra": 1}}, "bad_clock"),
    ({"clock": {"started_at": "now", "ended_at": PAGE_START}}, "bad_clock"),
    ({"clock": {"started_at": -5.0, "ended_at": PAGE_START}}, "bad_clock"),
    ({"clock": {"started_at": PAGE_START + 1, "ended_at": PAGE_START}}, "bad_clock"),
    ({"clock": {"started_at": PAGE_START, "ended_at": PAGE_START, "offset_s": 2e5}}, "bad_clock"),
    ({"clock": {"started_at": PAGE_START, "ended_at": PAGE_START, "offset_s": True}}, "bad_clock"),
    ({"clock": {"started_at": PAGE_START, "ended_at": PAGE_START, "rtt_s": -1}}, "bad_clock"),
    ({"partial": False, "end_reason": "error"}, "malformed"),
])
def test_bad_visits_attempts_and_clocks_are_refused_with_a_code(changes: dict[str, Any], expected: str) -> None:
    assert code(payload(**changes)) == expected


def test_non_finite_clock_values_are_refused() -> None:
    # JSON cannot carry NaN, but a transport might: the validator measures the payload and refuses it.
    assert code(payload(clock={"started_at": float("nan"), "ended_at": PAGE_START})) == "malformed"


def test_an_earlier_attempt_still_in_flight_is_accepted_for_its_own_window() -> None:
    late = check(payload(attempt=1), received_at=ISSUED + 3600)
    assert isinstance(late, EpisodeUpload) and late.attempt == 1 and late.time_flags == ()


def test_times_before_the_attempt_was_issued_or_after_arrival_are_flagged_not_lost() -> None:
    early = check(payload(attempt=2))  # played 595 s before attempt 2 existed
    assert isinstance(early, EpisodeUpload) and early.time_flags == ("implausible_time",)
    future = check(payload(), received_at=PAGE_START + 30.0 - CLOCK_SLACK_S - 1)
    assert isinstance(future, EpisodeUpload) and "implausible_time" in future.time_flags
    backwards = payload()
    backwards["steps"][2]["client_ts"] = PAGE_START
    result = check(backwards)
    assert isinstance(result, EpisodeUpload) and result.time_flags == ("unordered_steps",)
    kwargs = episode_write_kwargs(result, CONFIG, received_at=ISSUED + 60.0)
    assert kwargs["meta"]["time_flags"] == ["unordered_steps"]


def test_an_unknown_offset_leaves_the_page_clock_uncorrected() -> None:
    upload = check(payload(clock={"started_at": ISSUED + 5, "ended_at": ISSUED + 5.4},
                           steps=[step(t, ISSUED + 5.1 + 0.1 * t, t == 2) for t in range(3)]))
    assert isinstance(upload, EpisodeUpload) and upload.time_flags == ()
    kwargs = episode_write_kwargs(upload, CONFIG, received_at=ISSUED + 60.0)
    assert (kwargs["started_at"], kwargs["clock_offset"]) == (ISSUED + 5, None)
