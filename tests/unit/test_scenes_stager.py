"""Tests for the static scenes and the Stager's order rules and per-participant expansion."""

from __future__ import annotations

import pytest

from interactive_gym.scenes.form_inputs import AnswerError, Likert, TextInput
from interactive_gym.scenes.scene import EndScene, Scene, SceneConfigError, StartScene, StaticScene
from interactive_gym.scenes.stager import RandomizeOrder, Repeat, Stager


def ids(scenes: list[Scene]) -> list[str]:
    return [s.scene_id for s in scenes]


# -- Scene ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scene_id", ["a", "A-b_9", "x" * 64])
def test_good_scene_ids(scene_id: str) -> None:
    assert Scene(scene_id).scene_id == scene_id


@pytest.mark.parametrize("scene_id", ["", "x" * 65, "has space", "dot.ted", "slash/", None, 7, "a\n"])
def test_bad_scene_ids(scene_id: object) -> None:
    with pytest.raises(SceneConfigError, match="use 1-64 letters, digits, '_' or '-'"):
        Scene(scene_id)  # type: ignore[arg-type]


def test_scene_config_error_is_value_error() -> None:
    assert issubclass(SceneConfigError, ValueError)


def test_scene_to_client_and_repr() -> None:
    scene = Scene("s1", title="T", body_html="<p>b</p>")
    assert scene.to_client() == {"kind": "scene", "scene_id": "s1", "title": "T", "body_html": "<p>b</p>"}
    assert repr(scene) == "Scene('s1')"
    assert repr(EndScene()) == "EndScene('end')"


def test_plain_scene_takes_no_answers() -> None:
    assert Scene("s").clean_answers({}) == {}
    with pytest.raises(AnswerError, match="unknown field"):
        Scene("s").clean_answers({"x": 1})


# -- StaticScene ---------------------------------------------------------------------------------------------
def test_static_scene_inputs_and_client_view() -> None:
    scene = StaticScene("survey", title="Q", inputs=[Likert("a", "A", points=3), TextInput("b", "B", required=False)],
                        button_label="Next")
    data = scene.to_client()
    assert data["kind"] == "static"
    assert data["button_label"] == "Next"
    assert [i["name"] for i in data["inputs"]] == ["a", "b"]
    assert scene.clean_answers({"a": 2}) == {"a": 2, "b": None}
    with pytest.raises(AnswerError, match="^a: an answer is required$"):
        scene.clean_answers({})


def test_static_scene_refuses_duplicate_input_names() -> None:
    with pytest.raises(SceneConfigError, match="scene 'survey': two inputs share a name"):
        StaticScene("survey", inputs=[TextInput("a", "x"), Likert("a", "y")])


# -- StartScene ----------------------------------------------------------------------------------------------
def test_start_scene_defaults_and_client_view() -> None:
    scene = StartScene()
    data = scene.to_client()
    assert data["kind"] == "start"
    assert data["scene_id"] == "consent"
    assert data["button_label"] == "Start"
    assert data["consent_label"].startswith("I have read")


@pytest.mark.parametrize("consent", [None, False, "true", 1, "yes"])
def test_start_scene_requires_consent_true(consent: object) -> None:
    answers = {} if consent is None else {"consent": consent}
    with pytest.raises(AnswerError, match="^consent: the participant must agree to continue$"):
        StartScene().clean_answers(answers)


def test_start_scene_with_consent_and_inputs() -> None:
    scene = StartScene(inputs=[TextInput("age", "Age")])
    answers = {"consent": True, "age": "30"}
    assert scene.clean_answers(answers) == {"age": "30", "consent": True}
    assert answers == {"consent": True, "age": "30"}  # the caller's dict is not modified
    with pytest.raises(AnswerError, match="^age: an answer is required$"):
        scene.clean_answers({"consent": True})


# -- EndScene ------------------------------------------------------------------------------------------------
def test_end_scene_client_view_without_redirect() -> None:
    scene = EndScene(completion_code="ABC-123")
    data = scene.client_view("p1")
    assert data["kind"] == "end"
    assert data["completion_code"] == "ABC-123"
    assert "redirect_url" not in data


def test_end_scene_fills_in_the_redirect() -> None:
    scene = EndScene(completion_code="C0DE", redirect_url="https://app.example/done?cc={completion_code}&p={participant_id}",
                     redirect_delay_s=2.5)
    data = scene.client_view("part_1")
    assert data["redirect_url"] == "https://app.example/done?cc=C0DE&p=part_1"
    assert data["redirect_delay_s"] == 2.5


def test_end_scene_redirect_without_code_fills_empty() -> None:
    data = EndScene(redirect_url="/thanks?cc={completion_code}").client_view("p")
    assert data["redirect_url"] == "/thanks?cc="
    assert data["completion_code"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"completion_code": ""}, "completion_code must be 1-64 letters/digits/_/-"),
        ({"completion_code": "has space"}, "completion_code must be 1-64"),
        ({"completion_code": "x" * 65}, "completion_code must be 1-64"),
        ({"redirect_url": "javascript:alert(1)"}, "redirect_url must be an http\\(s\\) URL or a path"),
        ({"redirect_url": "ftp://x"}, "redirect_url must be an http\\(s\\) URL or a path"),
        ({"redirect_delay_s": -1}, "redirect_delay_s cannot be negative"),
    ],
)
def test_end_scene_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(SceneConfigError, match=message):
        EndScene("end", **kwargs)


def test_end_scene_redirect_with_unknown_placeholder_fails_at_configuration() -> None:
    # A typo in the placeholder must fail when the experiment is configured, not when a participant finishes.
    with pytest.raises(SceneConfigError, match="redirect_url"):
        EndScene(redirect_url="https://x.example/?cc={completoin_code}")


# -- RandomizeOrder / Repeat ---------------------------------------------------------------------------------
def test_randomize_order_validation() -> None:
    with pytest.raises(SceneConfigError, match="RandomizeOrder needs at least one scene"):
        RandomizeOrder([])
    with pytest.raises(SceneConfigError, match="RandomizeOrder\\(keep=0\\) must be between 1 and 2"):
        RandomizeOrder([Scene("a"), Scene("b")], keep=0)
    with pytest.raises(SceneConfigError, match="RandomizeOrder\\(keep=3\\) must be between 1 and 2"):
        RandomizeOrder([Scene("a"), Scene("b")], keep=3)


def test_repeat_validation() -> None:
    with pytest.raises(SceneConfigError, match="Repeat\\(times\\) must be at least 1"):
        Repeat(Scene("a"), 0)


# -- Stager validation ---------------------------------------------------------------------------------------
def test_empty_stager() -> None:
    with pytest.raises(SceneConfigError, match="the Stager is empty"):
        Stager([])


def test_last_item_must_be_an_end_scene() -> None:
    with pytest.raises(SceneConfigError, match="the last scene must be an EndScene \\(it is StaticScene\\('x'\\)\\)"):
        Stager([StaticScene("x")])


def test_end_scene_only_last() -> None:
    with pytest.raises(SceneConfigError, match="an EndScene can only be the last scene \\(EndScene\\('e1'\\) is at 0\\)"):
        Stager([EndScene("e1"), EndScene("e2")])
    with pytest.raises(SceneConfigError, match="an EndScene can only be the last scene"):
        Stager([RandomizeOrder([EndScene("e1"), Scene("a")]), EndScene("e2")])


def test_end_scene_inside_a_block_at_the_end_is_refused() -> None:
    with pytest.raises(SceneConfigError, match="the last scene must be an EndScene"):
        Stager([Scene("a"), Repeat(EndScene("e"), 1)])


def test_start_scene_only_first() -> None:
    with pytest.raises(SceneConfigError, match="a StartScene \\(consent\\) can only be the first scene"):
        Stager([Scene("a"), StartScene(), EndScene()])
    with pytest.raises(SceneConfigError, match="can only be the first scene"):
        Stager([RandomizeOrder([StartScene(), Scene("a")]), EndScene()])
    with pytest.raises(SceneConfigError, match="can only be the first scene"):
        Stager([Repeat(StartScene(), 1), EndScene()])


def test_duplicate_ids_between_different_scenes() -> None:
    with pytest.raises(SceneConfigError, match="two different scenes share the id\\(s\\) \\['a'\\]"):
        Stager([Scene("a"), StaticScene("a"), EndScene()])
    with pytest.raises(SceneConfigError, match="\\['a', 'b'\\]"):
        Stager([Scene("a"), Scene("b"), RandomizeOrder([Scene("b"), Scene("a")]), EndScene()])


def test_the_same_scene_object_may_appear_twice() -> None:
    a = Scene("a")
    stager = Stager([a, Repeat(a, 2), EndScene()])
    assert ids(stager.all_scenes()) == ["a", "end"]
    assert ids(stager.sequence_for("p")) == ["a", "a", "a", "end"]


def test_items_that_are_not_scenes_are_refused() -> None:
    with pytest.raises(SceneConfigError, match="which is neither a scene nor RandomizeOrder/Repeat"):
        Stager(["intro", EndScene()])  # type: ignore[list-item]
    with pytest.raises(SceneConfigError, match="neither a scene"):
        Stager([RandomizeOrder([Scene("a"), 3]), EndScene()])  # type: ignore[list-item]


def test_only_an_end_scene_is_a_valid_stager() -> None:
    assert ids(Stager([EndScene()]).sequence_for("x")) == ["end"]


# -- Stager queries ------------------------------------------------------------------------------------------
def build() -> Stager:
    return Stager([
        StartScene(),
        Scene("intro"),
        RandomizeOrder([Scene("c1"), Scene("c2"), Scene("c3")]),
        Repeat(Scene("round"), 3),
        EndScene(),
    ])


def test_all_scenes_in_declaration_order() -> None:
    assert ids(build().all_scenes()) == ["consent", "intro", "c1", "c2", "c3", "round", "end"]


def test_scene_lookup() -> None:
    stager = build()
    assert stager.scene("c2").scene_id == "c2"
    assert stager.scene("nope") is None


def test_fixed_scenes_keep_their_place() -> None:
    seq = ids(build().sequence_for("p1"))
    assert seq[:2] == ["consent", "intro"]
    assert sorted(seq[2:5]) == ["c1", "c2", "c3"]
    assert seq[5:] == ["round", "round", "round", "end"]


def test_sequence_is_deterministic_per_participant() -> None:
    assert ids(build().sequence_for("alice")) == ids(build().sequence_for("alice"))
    stager = build()
    assert ids(stager.sequence_for("bob")) == ids(stager.sequence_for("bob"))


def test_sequence_varies_across_participants() -> None:
    orders = {tuple(ids(build().sequence_for(f"p{i}"))[2:5]) for i in range(60)}
    # Six orders exist; 60 participants must see several of them (all six with overwhelming probability).
    assert len(orders) >= 4
    assert all(sorted(order) == ["c1", "c2", "c3"] for order in orders)


def test_keep_selects_a_subset_per_participant() -> None:
    stager = Stager([RandomizeOrder([Scene("a"), Scene("b"), Scene("c")], keep=2), EndScene()])
    chosen = []
    for i in range(40):
        seq = ids(stager.sequence_for(f"id{i}"))
        assert len(seq) == 3 and seq[-1] == "end"
        assert len(set(seq[:2])) == 2 and set(seq[:2]) <= {"a", "b", "c"}
        assert ids(stager.sequence_for(f"id{i}")) == seq
        chosen.append(frozenset(seq[:2]))
    assert len(set(chosen)) == 3  # every pair of conditions is used by someone among 40 participants


def test_nested_blocks_expand() -> None:
    stager = Stager([
        Repeat(RandomizeOrder([Scene("x"), Scene("y")]), 2),
        RandomizeOrder([Repeat(Scene("r"), 2), Scene("s")]),
        EndScene(),
    ])
    for pid in ("a", "b", "c", "d"):
        seq = ids(stager.sequence_for(pid))
        assert len(seq) == 2 + 2 + 3 + 1
        assert sorted(seq[0:2]) == ["x", "y"] and sorted(seq[2:4]) == ["x", "y"]
        assert seq[4:7] in (["r", "r", "s"], ["s", "r", "r"])
        assert seq[7] == "end"


def test_sequences_use_the_same_scene_objects() -> None:
    stager = build()
    seq = stager.sequence_for("p")
    for scene in seq:
        assert stager.scene(scene.scene_id) is scene
