"""Balanced assignment of AssignCondition arms: the pure rule (exhaustively), the assigner over a registry, the
stager's expansion with given arms, and many simultaneous arrivals through the real participant registry."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from interactive_gym.scenes.scene import EndScene, Scene, SceneConfigError, StaticScene
from interactive_gym.scenes.stager import AssignCondition, RandomizeOrder, Repeat, Stager
from interactive_gym.server.flow.conditions import ConditionAssigner, balanced_arm
from interactive_gym.server.flow.participants import ParticipantRegistry, Status


def ids(scenes: list[Scene]) -> list[str]:
    return [s.scene_id for s in scenes]


# -- the pure rule -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arms", [("a", "b"), ("a", "b", "c")])
def test_the_rule_over_every_small_count(arms: tuple[str, ...]) -> None:
    """For every (completed, in progress) count 0..3 per arm: the chosen arm has the lightest load (completed +
    in progress), among those the fewest completed, and it is one of the arms tied on both."""
    for counts in itertools.product(range(4), repeat=2 * len(arms)):
        completed = dict(zip(arms, counts[: len(arms)], strict=True))
        in_progress = dict(zip(arms, counts[len(arms):], strict=True))
        chosen = balanced_arm(arms, completed, in_progress, "seed:p")
        rank = {a: (completed[a] + in_progress[a], completed[a]) for a in arms}
        assert rank[chosen] == min(rank.values()), (completed, in_progress, chosen)


def test_ties_are_a_seeded_draw_spread_over_the_tied_arms() -> None:
    zero = {"a": 0, "b": 0, "c": 0}
    draws = [balanced_arm(["a", "b", "c"], zero, zero, f"0:condition:p{i}") for i in range(300)]
    assert draws == [balanced_arm(["a", "b", "c"], zero, zero, f"0:condition:p{i}") for i in range(300)]
    assert all(n > 60 for n in Counter(draws).values()) and len(set(draws)) == 3
    # Only tied arms are drawn: "b" is heavier.
    assert {balanced_arm(["a", "b", "c"], zero, {"b": 1}, f"s{i}") for i in range(50)} == {"a", "c"}


def test_in_progress_participants_count_so_completions_alone_do_not_overfill_an_arm() -> None:
    # a: 3 completed; b: 2 completed and 10 still playing. By completed alone b would win; by load a does.
    assert balanced_arm(["a", "b"], {"a": 3, "b": 2}, {"b": 10}, "x") == "a"
    # Equal loads: the arm with fewer completed catches up.
    assert balanced_arm(["a", "b"], {"a": 5}, {"b": 5}, "x") == "b"


def test_no_arms_is_an_error() -> None:
    with pytest.raises(ValueError):
        balanced_arm([], {}, {}, "x")


# -- the block ---------------------------------------------------------------------------------------------------
def test_assign_condition_checks_its_arms() -> None:
    s = StaticScene("s")
    with pytest.raises(SceneConfigError, match="at least two arms"):
        AssignCondition({"only": [s]})
    with pytest.raises(SceneConfigError, match="has no scenes"):
        AssignCondition({"a": [s], "b": []})
    with pytest.raises(SceneConfigError, match="arm name"):
        AssignCondition({"a b": [s], "c": [StaticScene("t")]})
    with pytest.raises(SceneConfigError, match="name="):
        AssignCondition({"a": [s], "b": [StaticScene("t")]}, name="no spaces")


def test_two_blocks_may_not_share_a_name() -> None:
    first = AssignCondition({"a": StaticScene("a1"), "b": StaticScene("b1")})
    second = AssignCondition({"a": StaticScene("a2"), "b": StaticScene("b2")})
    with pytest.raises(SceneConfigError, match="share the name"):
        Stager([first, second, EndScene()])


def test_the_sequence_follows_the_given_arm_and_needs_one() -> None:
    block = AssignCondition({"easy": [StaticScene("e1"), StaticScene("e2")],
                             "hard": Repeat(StaticScene("h"), 2)})
    stager = Stager([StaticScene("intro"), block, EndScene()])
    assert ids(stager.sequence_for("p", lambda b: "easy")) == ["intro", "e1", "e2", "end"]
    assert ids(stager.sequence_for("p", lambda b: "hard")) == ["intro", "h", "h", "end"]
    assert sorted(ids(stager.all_scenes())) == ["e1", "e2", "end", "h", "intro"]
    assert stager.conditions() == [block]
    with pytest.raises(SceneConfigError, match="arm must be given"):
        stager.sequence_for("p")
    with pytest.raises(SceneConfigError, match="no arm 'medium'"):
        stager.sequence_for("p", lambda b: "medium")


def test_a_shuffle_inside_an_arm_stays_seeded_by_the_id() -> None:
    block = AssignCondition({"a": RandomizeOrder([StaticScene(f"a{i}") for i in range(4)]), "b": StaticScene("b")})
    stager = Stager([block, EndScene()])
    orders = {tuple(ids(stager.sequence_for(f"p{i}", lambda b: "a"))) for i in range(30)}
    assert len(orders) > 1
    assert ids(stager.sequence_for("p3", lambda b: "a")) == ids(stager.sequence_for("p3", lambda b: "a"))


# -- the assigner ------------------------------------------------------------------------------------------------
def _two_arm_stager() -> Stager:
    return Stager([AssignCondition({"a": StaticScene("sa"), "b": StaticScene("sb")}, seed=7), EndScene()])


def test_arrivals_fill_the_arms_in_turn_and_keep_their_arm() -> None:
    statuses: dict[str, Status] = {}
    assigner = ConditionAssigner(_two_arm_stager(), lambda: statuses.items())
    arms = []
    for i in range(10):
        pid = f"p{i}"
        sequence = assigner.sequence_for(pid)
        statuses[pid] = Status.ACTIVE
        arms.append(sequence[0].scene_id)
        assert assigner.sequence_for(pid) == sequence  # asked again (restore, model): same arm, same order
    assert Counter(arms) == {"sa": 5, "sb": 5}
    assert all(Counter(arms[: 2 * k]) == {"sa": k, "sb": k} for k in range(1, 6))


def test_dropped_timed_out_and_errored_free_their_place_completed_keep_it() -> None:
    statuses: dict[str, Status] = {}
    assigner = ConditionAssigner(_two_arm_stager(), lambda: statuses.items())
    for pid, arm in (("x1", "a"), ("x2", "a"), ("x3", "b"), ("x4", "b")):
        assigner.restore(pid, {"condition": arm})
    statuses.update(x1=Status.COMPLETED, x2=Status.DROPPED, x3=Status.TIMED_OUT, x4=Status.ERRORED)
    assert assigner.loads("condition") == ({"a": 1, "b": 0}, {"a": 0, "b": 0})
    assert assigner.sequence_for("new")[0].scene_id == "sb"
    assert assigner.unrecorded("new") == {"condition": "b"}
    assigner.recorded("new")
    assert assigner.unrecorded("new") is None and assigner.conditions_of("new") == {"condition": "b"}


def test_restored_arms_of_a_changed_experiment_are_assigned_again() -> None:
    assigner = ConditionAssigner(_two_arm_stager(), lambda: [])
    assigner.restore("old", {"condition": "gone_arm", "gone_block": "a"})
    assert assigner.conditions_of("old") == {}
    assigner.restore("kept", {"condition": "b"})
    assert assigner.sequence_for("kept")[0].scene_id == "sb" and assigner.unrecorded("kept") is None


def test_many_simultaneous_arrivals_through_the_registry_stay_within_one() -> None:
    """200 arrivals, each assigned and entered in the registry in one step (as the event loop runs them); some
    drop and are replaced, everyone else completes: the completed counts of the three arms end within one."""
    stager = Stager([AssignCondition({"a": StaticScene("sa"), "b": StaticScene("sb"), "c": StaticScene("sc")}),
                     EndScene()])
    holder: dict[str, ParticipantRegistry] = {}
    assigner = ConditionAssigner(stager, lambda: ((p.participant_id, p.status) for p in holder["r"].all()))
    registry = holder["r"] = ParticipantRegistry(assigner.sequence_for)
    for i in range(200):
        registry.connect(f"p{i}", f"t{i}", f"s{i}", {}, 0.0)
        assert max(assigner.loads("condition")[1].values()) - min(assigner.loads("condition")[1].values()) <= 1
    for i in range(0, 200, 7):  # every 7th drops out
        registry.get(f"p{i}").status = Status.DROPPED  # type: ignore[union-attr]
    for i in range(200, 240):  # newcomers refill the arms the dropped left
        registry.connect(f"p{i}", f"t{i}", f"s{i}", {}, 0.0)
    for p in registry.all():
        if p.status is Status.ACTIVE:
            p.status = Status.COMPLETED
    completed, _ = assigner.loads("condition")
    assert sum(completed.values()) == 240 - len(range(0, 200, 7))
    assert max(completed.values()) - min(completed.values()) <= 1, completed
