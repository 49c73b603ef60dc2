"""``interactive-gym replay`` for server-mode and p2p episodes, made by the real code paths and the real storage.

Browser-mode episodes are covered in ``test_browser_replay.py``. Exit codes: 0 all match, 1 mismatch, 2 usage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.cli import main
from interactive_gym.experiment_loader import load_experiment
from interactive_gym.netcode.netsim import NetworkConditions
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.remote_game import ServerGame
from interactive_gym.server.storage import StepRecord, Storage, encode_step
from interactive_gym.server.upload_validation import (
    EpisodeUpload,
    episode_write_kwargs,
    rules_from_config,
    validate_episode_upload,
)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO) not in sys.path:
    sys.path.append(str(DEMO))

from test_p2p_host import gatherers_config, play, uploads  # noqa: E402

SCENE = "orchard_with_ai"


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """The demo experiment with short episodes (its own file, as a researcher would pass it)."""
    path = tmp_path / "short_demo.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(DEMO)!r})\nfrom experiment import build_config\n"
                    "config = build_config(max_steps=40)\n")
    return path


def play_server_episode(experiment: Path, db: Path, seed: int = 5) -> int:
    """Drives a ServerGame of the demo's server-mode scene tick by tick and stores it as the game runner does."""
    scene = load_experiment(experiment).stager.scene(SCENE)
    game = ServerGame("game-1", scene, {"agent_0": "P1"}, game_seed=seed)
    rng = random.Random(seed)

    async def run() -> int:
        writer = DataWriter(db, experiment_id="exp")
        await writer.start()
        game.start_episode()
        episode_id = await writer.begin_episode(scene_id=SCENE, game_id=game.game_id, episode=game.episode,
                                                mode="server", source="server", seed=game.seed, agents=game.agents,
                                                meta={"fps": scene.fps})
        for seq in range(10_000):
            game.set_keys("agent_0", rng.sample(["ArrowUp", "ArrowLeft", "ArrowRight"], rng.randrange(2)), seq)
            outcome = game.tick()
            writer.append_steps(episode_id, [StepRecord(**outcome.record)])
            if outcome.episode_done:
                break
        await writer.end_episode(episode_id, status="complete", meta={"steps": game.t})
        await writer.close()
        return game.t

    return asyncio.run(run())


def replay_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["replay", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_server_mode_episode_replays_from_its_stored_actions(experiment: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "data.sqlite"
    assert play_server_episode(experiment, db) == 40
    code, report = replay_json(capsys, str(db), "--participant", "P1", "--episode", "0",
                               "--experiment", str(experiment))
    assert code == 0, report
    assert report["mode"] == "server" and report["match"] is True and report["peers"] is None
    [replay] = report["replays"]
    assert replay["steps"] == replay["replayed"] == 40 and replay["source"] == "server"
    assert report["hash_seed"] == "0"

    # The same episode with one stored reward changed (through the storage API) no longer reproduces.
    with Storage(db, experiment_id="exp") as storage:
        [row] = storage.episodes()
        step = storage.steps(row.id)[12]
        storage.insert_steps([(row.id, encode_step(dataclasses.replace(
            step, rewards={**step.rewards, "agent_1": step.rewards["agent_1"] + 1.0})))])
    code, report = replay_json(capsys, str(db), "--participant", "P1", "--episode", "0",
                               "--experiment", str(experiment))
    assert code == 1 and report["match"] is False
    first = report["replays"][0]["first_mismatch"]
    assert (first["t"], first["what"], first["agent"]) == (12, "rewards", "agent_1")


def test_a_server_mode_episode_needs_the_experiment(experiment: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "data.sqlite"
    play_server_episode(experiment, db)
    assert main(["replay", str(db), "--participant", "P1", "--episode", "0"]) == 2
    assert "server-mode episode: pass --experiment" in capsys.readouterr().err
    assert main(["replay", str(db), "--participant", "P1", "--episode", "0", "--experiment",
                 str(tmp_path / "missing.py")]) == 2
    assert "experiment file not found" in capsys.readouterr().err


def store_p2p(db: Path, config: dict[str, Any], payloads: dict[str, dict[str, Any]],
              players: dict[str, str]) -> None:
    """Stores each peer's upload as its own episode row, in the shape p2p_games.P2PGames writes."""
    agents = tuple(config["agents"])

    async def write() -> None:
        writer = DataWriter(db, experiment_id="exp")
        await writer.start()
        for participant, payload in payloads.items():
            upload = validate_episode_upload(payload, participant_id=participant, participant_scene_id="pair",
                                             rules=rules_from_config(config, agents))
            assert isinstance(upload, EpisodeUpload), upload
            kwargs = episode_write_kwargs(upload, config, received_at=time.time())
            kwargs.update(mode="p2p", game_id="game-9", source=participant, agents=dict(players))
            await writer.write_episode(**kwargs)
        await writer.close()

    asyncio.run(write())


def test_a_p2p_episode_replays_from_each_peers_confirmed_inputs_and_the_peers_agree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gatherers_config(max_steps=40, episodes=1)
    hosts, _ = play(config, NetworkConditions(latency_ms=40, jitter_ms=10, loss=0.05), seed=2)
    payloads = {"A": uploads(hosts[0])[0], "B": uploads(hosts[1])[0]}
    players = {"agent_0": "A", "agent_1": "B"}
    db = tmp_path / "data.sqlite"
    store_p2p(db, config, payloads, players)
    code, report = replay_json(capsys, str(db), "--participant", "A", "--episode", "0")
    assert code == 0, report
    assert report["mode"] == "p2p" and report["game_id"] == "game-9"
    assert sorted(r["source"] for r in report["replays"]) == ["A", "B"]
    assert all(r["match"] and r["steps"] == 40 for r in report["replays"])
    assert report["peers"]["agree"] is True and report["peers"]["frames_compared"] == 40

    # Peer B's upload claims a reward its environment never gave: B's replay and the peers' agreement fail.
    payloads["B"]["steps"][25]["rewards"]["agent_1"] += 1.0
    tampered = tmp_path / "tampered.sqlite"
    store_p2p(tampered, config, payloads, players)
    code, report = replay_json(capsys, str(tampered), "--participant", "B", "--episode", "0")
    assert code == 1 and report["match"] is False
    by_source = {r["source"]: r for r in report["replays"]}
    assert by_source["A"]["match"] is True
    assert by_source["B"]["first_mismatch"]["t"] == 25 and by_source["B"]["first_mismatch"]["agent"] == "agent_1"
    assert report["peers"]["agree"] is False and report["peers"]["first_mismatch"]["t"] == 25


def test_text_output_names_every_peer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = gatherers_config(max_steps=30, episodes=1)
    hosts, _ = play(config, NetworkConditions(), seed=4)
    db = tmp_path / "data.sqlite"
    store_p2p(db, config, {"A": uploads(hosts[0])[0], "B": uploads(hosts[1])[0]}, {"agent_0": "A", "agent_1": "B"})
    assert main(["replay", str(db), "--participant", "B", "--episode", "0"]) == 0
    out = capsys.readouterr().out
    assert "pair episode 0 of A (p2p mode" in out and "pair episode 0 of B (p2p mode" in out
    assert out.count("reproduced: all 30 steps match") == 2 and "peers agree on all 30 frames" in out
