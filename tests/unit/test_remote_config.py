"""Tests for RemoteConfig: the fluent API, database_path, and validate() collecting every problem."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.configurations.remote_config import ConfigError, RemoteConfig
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.scene import EndScene, StartScene, StaticScene
from interactive_gym.scenes.stager import Stager

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

CONTROLS = {"ArrowLeft": gatherers.LEFT, "ArrowRight": gatherers.RIGHT}


def game(scene_id: str = "game", **overrides: Any) -> GymScene:
    kwargs: dict[str, Any] = dict(env_creator=gatherers.make_env, render_fn=gatherers.render, width=432, height=376,
                                  controls=CONTROLS, policy_mapping={"agent_0": "human", "agent_1": "random"})
    kwargs.update(overrides)
    return GymScene(scene_id, **kwargs)


def good_stager(*middle: Any) -> Stager:
    return Stager([StartScene(), *(middle or (game(),)), EndScene()])


def config(stager: Stager | None = None) -> RemoteConfig:
    return RemoteConfig().experiment("study_1", stager=stager or good_stager())


# -- fluent API --------------------------------------------------------------------------------------------------
def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    c = RemoteConfig()
    assert (c.host, c.port, c.experiment_id, c.stager) == ("127.0.0.1", 8000, "experiment", None)
    assert c.data_dir == Path("data") and c.db_path is None
    assert c.base_dir == tmp_path
    assert c.pyodide_index_url is None and c.pyodide_packages == []
    assert c.webrtc_args == {}


def test_every_method_returns_self() -> None:
    c = RemoteConfig()
    stager = good_stager()
    assert c.hosting(host="0.0.0.0", port=9000) is c
    assert c.experiment("exp", stager=stager, data_dir="out", db="x.sqlite") is c
    assert c.pyodide(index_url="https://cdn.example/pyodide/", packages=("numpy",)) is c
    assert c.webrtc("u", "p", force_relay=True) is c
    assert (c.host, c.port) == ("0.0.0.0", 9000)
    assert (c.experiment_id, c.stager, c.data_dir, c.db_path) == ("exp", stager, Path("out"), Path("x.sqlite"))
    assert c.pyodide_index_url == "https://cdn.example/pyodide/" and c.pyodide_packages == ["numpy"]


def test_none_arguments_keep_earlier_values() -> None:
    stager = good_stager()
    c = RemoteConfig().hosting("1.2.3.4", 1234).experiment("e", stager=stager, data_dir="d", db="db.sqlite")
    c.hosting().experiment().pyodide()
    assert (c.host, c.port, c.experiment_id, c.stager) == ("1.2.3.4", 1234, "e", stager)
    assert (c.data_dir, c.db_path) == (Path("d"), Path("db.sqlite"))
    c.hosting(port=5).hosting(host="h")
    assert (c.host, c.port) == ("h", 5)


def test_webrtc_records_every_argument() -> None:
    c = RemoteConfig().webrtc(turn_username="u", turn_credential="p", turn_urls=["turn:a:3478"],
                              stun_urls=["stun:s:3478"], credential_ttl_s=60)
    assert c.webrtc_args == dict(turn_username="u", turn_credential="p", force_relay=False,
                                 turn_urls=["turn:a:3478"], stun_urls=["stun:s:3478"], turn_secret=None,
                                 credential_ttl_s=60)


# -- database_path ---------------------------------------------------------------------------------------------------
def test_database_path_default(tmp_path: Path) -> None:
    c = RemoteConfig().experiment("my_study")
    c.base_dir = tmp_path
    assert c.database_path() == tmp_path / "data" / "my_study.sqlite"


def test_database_path_data_dir(tmp_path: Path) -> None:
    c = RemoteConfig().experiment("s", data_dir="results")
    c.base_dir = tmp_path
    assert c.database_path() == tmp_path / "results" / "s.sqlite"
    c.experiment(data_dir=tmp_path / "abs")
    assert c.database_path() == tmp_path / "abs" / "s.sqlite"


def test_database_path_explicit_db(tmp_path: Path) -> None:
    c = RemoteConfig().experiment("s", data_dir="ignored", db="custom/x.db")
    c.base_dir = tmp_path
    assert c.database_path() == tmp_path / "custom" / "x.db"
    c.experiment(db=tmp_path / "elsewhere.sqlite")
    assert c.database_path() == tmp_path / "elsewhere.sqlite"


# -- validate ----------------------------------------------------------------------------------------------------------
def test_valid_config_passes_and_resolves_webrtc() -> None:
    c = config()
    c.validate(environ={})
    assert c.webrtc_settings is not None
    assert c.stager.scene("game").facts.humans == ("agent_0",)  # GymScene.check ran


def test_config_error_lists_problems() -> None:
    error = ConfigError(["a", "b"])
    assert error.problems == ["a", "b"]
    assert str(error) == "a; b"
    assert isinstance(error, ValueError)


def test_missing_stager() -> None:
    with pytest.raises(ConfigError) as info:
        RemoteConfig().validate(environ={})
    assert info.value.problems == ["experiment(stager=...) is missing: pass a Stager with your scenes"]


@pytest.mark.parametrize("port", [-1, 65536, "8000", 80.0, True])
def test_bad_port(port: object) -> None:
    c = config().hosting(port=port)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        c.validate(environ={})
    assert info.value.problems == [f"hosting(port=...) must be a port number 0-65535, got {port!r}"]


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_port_bounds(port: int) -> None:
    config().hosting(port=port).validate(environ={})


@pytest.mark.parametrize("experiment_id", ["", "has space", "x" * 65, "a/b", "study\n"])
def test_bad_experiment_id(experiment_id: str) -> None:
    with pytest.raises(ConfigError) as info:
        config().experiment(experiment_id).validate(environ={})
    assert info.value.problems == ["experiment(experiment_id=...) must be 1-64 letters, digits, '_' or '-'"]


def test_every_problem_is_collected() -> None:
    c = RemoteConfig().hosting(port=-3).experiment("bad id").webrtc(turn_username="only_me")
    with pytest.raises(ConfigError) as info:
        c.validate(environ={})
    problems = info.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("hosting(port=...)")
    assert problems[1].startswith("experiment(experiment_id=...)")
    assert problems[2].startswith("experiment(stager=...) is missing")
    assert "turn_username is set but turn_credential is not" in problems[3]
    assert str(info.value) == "; ".join(problems)


def test_game_scene_problem_is_reported() -> None:
    stager = good_stager(game(controls={"ArrowLeft": 9}))
    with pytest.raises(ConfigError) as info:
        config(stager).validate(environ={})
    assert info.value.problems == [
        "GymScene 'game', agent 'agent_0': keys ['ArrowLeft'] map to action 9, which is outside the environment's "
        "action space"
    ]


def test_problems_of_several_game_scenes_are_all_listed() -> None:
    stager = good_stager(game("one", controls={"ArrowLeft": 9}), game("two", policy_mapping={"agent_0": "random",
                                                                                          "agent_1": "random"}))
    with pytest.raises(ConfigError) as info:
        config(stager).validate(environ={})
    assert len(info.value.problems) == 2
    assert info.value.problems[0].startswith("GymScene 'one'")
    assert info.value.problems[1].startswith("GymScene 'two': no agent is 'human'")


def test_unknown_timeout_scene() -> None:
    stager = good_stager(game(timeout_scene_id="sorry"))
    with pytest.raises(ConfigError) as info:
        config(stager).validate(environ={})
    assert info.value.problems == [
        "scene 'game': timeout_scene_id 'sorry' is not a scene of this experiment"
    ]


def test_known_timeout_scene() -> None:
    stager = good_stager(game(timeout_scene_id="sorry"), StaticScene("sorry", title="No partner found"))
    config(stager).validate(environ={})


def test_stager_changed_after_construction_is_revalidated() -> None:
    stager = good_stager()
    stager.items = stager.items[:-1]
    with pytest.raises(ConfigError) as info:
        config(stager).validate(environ={})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("the last scene must be an EndScene")


def test_webrtc_problems_from_the_environment() -> None:
    with pytest.raises(ConfigError) as info:
        config().validate(environ={"TURN_USERNAME": "u"})
    assert len(info.value.problems) == 1
    assert "turn_username is set but turn_credential is not" in info.value.problems[0]


def test_webrtc_settings_from_environment() -> None:
    c = config()
    c.validate(environ={"TURN_USERNAME": "u", "TURN_CREDENTIAL": "p"})
    assert c.webrtc_settings.turn_username == "u"
    assert c.webrtc_settings.has_turn
