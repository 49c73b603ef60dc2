"""Browser-mode scenes on the server: code bundles, each participant's scene config, and episode uploads.

The environment runs in the participant's page (Pyodide). The server ships the scene's Python files (built
once at start-up), chooses and records every episode's seed, and stores the episodes the page uploads after
validating them against the scene (``upload_validation.py``); an upload is acknowledged only after commit.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from interactive_gym.browser.scene_config import browser_scene_config, choose_seeds
from interactive_gym.configurations.remote_config import ConfigError, RemoteConfig
from interactive_gym.policies import PolicyConfigError
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.game_over import game_over_record
from interactive_gym.server.participants import Participant
from interactive_gym.server.pyodide_bundle import (
    BrowserBundle,
    BundleError,
    BundleRegistry,
    build_browser_bundle,
)
from interactive_gym.server.upload_validation import (
    EpisodeUpload,
    UploadRejected,
    episode_write_kwargs,
    rules_from_config,
    validate_episode_upload,
)

log = logging.getLogger("interactive_gym.browser")
BROWSER_MODES = ("browser", "p2p")


def in_browser_scenes(scenes: Iterable[Any]) -> list[GymScene]:
    """The game scenes whose environment runs in the page."""
    return [s for s in scenes if isinstance(s, GymScene) and s.mode in BROWSER_MODES]


class BrowserScenes:
    """Bundles and configs of every browser/p2p scene of an experiment.

    Raises:
        ConfigError: at construction (start-up), if a scene's code cannot be shipped to the browser.
    """

    def __init__(self, config: RemoteConfig) -> None:
        assert config.stager is not None
        self.config = config
        self.registry = BundleRegistry()
        self.rejections: Counter[str] = Counter()
        problems = []
        for scene in in_browser_scenes(config.stager.all_scenes()):
            try:
                self.registry.add(build_browser_bundle(scene.scene_id, env_creator=scene.env_creator,
                                                       render_fn=scene.render_fn,
                                                       policy_mapping=scene.policy_mapping))
            except (BundleError, PolicyConfigError) as exc:
                problems.append(f"GymScene {scene.scene_id!r} (mode={scene.mode!r}): {exc}")
        if problems:
            raise ConfigError(problems)

    def bundle(self, scene: GymScene) -> BrowserBundle:
        bundle = self.registry.get(scene.scene_id)
        assert bundle is not None, f"no bundle for scene {scene.scene_id}"
        return bundle

    def scene_config(self, scene: GymScene, seeds: list[int], mode: str = "browser") -> dict:
        """The config a page needs to play ``scene`` with the given episode seeds."""
        bundle = self.bundle(scene)
        pyodide = {"index_url": self.config.pyodide_index_url or "/vendor/pyodide/",
                   "packages": list(self.config.pyodide_packages)}
        return browser_scene_config(
            scene_id=scene.scene_id, bundle=bundle, manifest_url=self.registry.manifest_url(bundle),
            env_creator=scene.env_creator, render_fn=scene.render_fn,
            policy_mapping=scene.policy_mapping,
            controls=scene.key_mapping, fps=scene.fps, num_episodes=scene.num_episodes,
            max_steps=scene.max_steps, width=scene.width, height=scene.height, seeds=seeds,
            env_kwargs=scene.env_kwargs, background=scene.background,
            assets=scene.assets.manifest(scene.asset_url_prefix), pyodide=pyodide, mode=mode)

    def config_for(self, participant: Participant, scene: GymScene) -> dict:
        """The participant's config for a browser-mode scene; seeds are chosen once and kept (reloads)."""
        configs = participant.extra.setdefault("browser_configs", {})
        if scene.scene_id not in configs:
            configs[scene.scene_id] = self.scene_config(scene, choose_seeds(scene.num_episodes))
        return configs[scene.scene_id]

    def preload_for(self, participant: Participant) -> dict | None:
        """What the page can start loading now for the participant's next in-browser scene, if any."""
        for scene in participant.sequence[participant.index + 1:]:
            if isinstance(scene, GymScene) and scene.mode in BROWSER_MODES:
                config = self.config_for(participant, scene) if scene.mode == "browser" else None
                agents = config["agents"] if config else {}
                return {"pyodide": {"index_url": self.config.pyodide_index_url or "/vendor/pyodide/"},
                        "agents": agents}
        return None

    def validate_upload(self, participant: Participant, payload: Any) -> EpisodeUpload | UploadRejected:
        """Checks an uploaded episode against the scene config this participant was sent."""
        configs: dict[str, dict] = participant.extra.get("browser_configs", {})
        claimed = payload.get("scene_id") if isinstance(payload, dict) else None
        config = configs.get(claimed) if isinstance(claimed, str) else None
        if config is None or not isinstance(claimed, str):
            return self._count(UploadRejected("wrong_scene", "upload is for a scene the participant was not sent"))
        scene = self.config.stager.scene(claimed) if self.config.stager else None
        assert isinstance(scene, GymScene)
        visited = [s.scene_id for s in participant.sequence[: participant.index]]
        result = validate_episode_upload(payload, participant_id=participant.participant_id,
                                         participant_scene_id=participant.scene.scene_id,
                                         rules=rules_from_config(config, scene.facts.agents),
                                         visited_scene_ids=visited)
        return self._count(result) if isinstance(result, UploadRejected) else result

    def _count(self, rejected: UploadRejected) -> UploadRejected:
        self.rejections[rejected.code] += 1
        return rejected

    async def store(self, writer: Any, participant: Participant, upload: EpisodeUpload) -> None:
        """Writes a validated upload (one transaction) and notes the participant's progress."""
        config = participant.extra["browser_configs"][upload.scene_id]
        await writer.write_episode(**episode_write_kwargs(upload, config, received_at=time.time()))
        done: set[int] = participant.extra.setdefault("uploaded", {}).setdefault(upload.scene_id, set())
        if not upload.partial:
            done.add(upload.episode)
        if upload.error:
            log.warning("participant %s: environment error in scene %s episode %d:\n%s",
                        participant.participant_id, upload.scene_id, upload.episode, upload.error)

    @staticmethod
    def finished(participant: Participant, scene: GymScene, upload: EpisodeUpload) -> dict[str, str] | None:
        """The game-over record once the scene's game ended (all episodes in, or an error), else None."""
        if upload.end_reason == "error":
            return game_over_record("error")
        done = participant.extra.get("uploaded", {}).get(scene.scene_id, set())
        return game_over_record("complete") if len(done) >= scene.num_episodes else None
