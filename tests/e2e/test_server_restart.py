"""After a server restart participants resume where they were, and those who finished cannot start again."""

from __future__ import annotations

from pathlib import Path

from experiment_harness import build_app

from interactive_gym import EndScene, RemoteConfig, Stager, StartScene, StaticScene


def _config(db: Path) -> RemoteConfig:
    stager = Stager([StartScene("consent", body_html="<p>Hello</p>"), StaticScene("middle", title="Middle"),
                     EndScene("end", completion_code="RESTART1")])
    return RemoteConfig().experiment("restart", stager=stager, db=db)


def test_progress_survives_a_server_restart(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    first = live_server(build_app(_config(db)).asgi)
    midway, finisher = new_context().new_page(), new_context().new_page()
    midway.goto(f"{first.url}/?subject_id=midway")
    midway.check("#consent")
    midway.click("#continue")
    midway.wait_for_selector("[data-scene-id=middle]")
    finisher.goto(f"{first.url}/?subject_id=finisher")
    finisher.check("#consent")
    finisher.click("#continue")
    finisher.wait_for_selector("[data-scene-id=middle]")
    finisher.click("#continue")
    finisher.wait_for_selector(".scene-end")
    first.stop()

    second = live_server(build_app(_config(db)).asgi, port=first.port)
    midway.goto(f"{second.url}/?subject_id=midway")
    midway.wait_for_selector("[data-scene-id=middle]")  # resumed, not sent back to consent
    finisher.goto(f"{second.url}/?subject_id=finisher")
    finisher.wait_for_selector(".scene-end")  # their end page again, not a new start
    assert finisher.text_content("#completion-code") == "RESTART1"
    assert not finisher.query_selector("#consent")


def test_after_a_restart_the_id_alone_still_does_not_resume(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    first = live_server(build_app(_config(db)).asgi)
    owner = new_context().new_page()
    owner.goto(f"{first.url}/?subject_id=owner")
    owner.check("#consent")
    owner.click("#continue")
    owner.wait_for_selector("[data-scene-id=middle]")
    first.stop()

    second = live_server(build_app(_config(db)).asgi, port=first.port)
    stranger = new_context().new_page()  # another browser that knows only the id
    stranger.goto(f"{second.url}/?subject_id=owner")
    stranger.wait_for_selector("[data-refused=refused_not_yours]")
    assert "contact the researcher" in stranger.text_content("#scene")
    owner.goto(f"{second.url}/?subject_id=owner")
    owner.wait_for_selector("[data-scene-id=middle]")  # the owner's browser still resumes
