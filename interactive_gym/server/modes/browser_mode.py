"""Browser mode: the env runs in the participant's page (Pyodide); the server sends the scene's config and
stores the episodes the page uploads (over the socket, or with ``sendBeacon`` from a closing page).

Per-visit state (attempts, seeds, uploaded episodes) lives in
:class:`~interactive_gym.server.browser_scenes.BrowserScenes` and the database; this class adds the socket
side: which config a page gets, beacon tokens, and the game-over record once the visit's game is over.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.base import Ack, FlowHooks

log = logging.getLogger("interactive_gym.browser")


class BrowserMode:
    """Browser-mode scenes of one experiment.

    Args:
        browser: Bundles, configs and uploads of in-browser scenes.
        hooks: The participant flow.
        verifier: Optional replay verifier (``submit(scene, participant_id, key, upload)``; see
            ``episode_verifier.py``): every stored upload is replayed off the event loop and judged.
    """

    name = "browser"

    def __init__(self, browser: BrowserScenes, hooks: FlowHooks, verifier: Any = None) -> None:
        self.browser = browser
        self.hooks = hooks
        self.verifier = verifier
        self.rejections: Counter[str] = Counter()
        self._beacon_tokens: dict[str, str] = {}  # secret token in a page's beacon URL -> participant id
        self._token_of: dict[str, str] = {}
        # participant id -> (scene index, page id, view): a socket blip of the same page keeps its attempt.
        self._views: dict[str, tuple[int, str, dict[str, Any]]] = {}

    # -- GameMode ---------------------------------------------------------------------------------------------
    async def scene_view(self, participant: Participant, scene: GymScene) -> dict[str, Any]:
        cached = self._views.get(participant.participant_id)
        if cached is not None and cached[0] == participant.index and cached[1] == participant.page_id:
            return cached[2]
        view = {"browser": await self.browser.config_for(participant, scene),
                "beacon_url": f"/beacon/{self._beacon_token(participant)}"}
        self._views[participant.participant_id] = (participant.index, participant.page_id, view)
        return view

    async def presence_changed(self, participant: Participant) -> None:
        return None

    async def disconnected(self, participant: Participant) -> None:
        return None

    async def reconnected(self, participant: Participant) -> None:
        return None

    async def left_scene(self, participant: Participant, scene: GymScene) -> None:
        self._views.pop(participant.participant_id, None)

    async def dropped(self, participant: Participant) -> None:
        return None

    async def excluded(self, participant: Participant) -> None:
        return None  # one player, in their own page: leaving the scene ends their game

    async def expire(self, now: float) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    # -- uploads ----------------------------------------------------------------------------------------------
    def knows_beacon_token(self, token: str) -> bool:
        """Cheap check before a beacon body is read at all."""
        return token in self._beacon_tokens

    def beacon_participant(self, token: str) -> Participant | None:
        return self.hooks.lookup(self._beacon_tokens.get(token, ""))

    async def upload(self, participant: Participant, payload: Any) -> Ack:
        """An episode played in the page: validate, store (committed), then acknowledge."""
        result = await self.browser.receive_upload(participant, payload)
        upload = result.upload
        if result.ack.get("ok") and upload is not None and self.verifier is not None:
            index = upload.scene_index if upload.scene_index is not None else participant.index
            scene = participant.sequence[index]
            self.verifier.submit(scene, participant.participant_id, {
                "scene_id": upload.scene_id, "scene_index": upload.scene_index, "attempt": upload.attempt,
                "episode": upload.episode, "source": participant.participant_id}, upload)
        if result.game_over is not None and isinstance(participant.scene, GymScene) \
                and participant.game_over is None and result.upload is not None \
                and result.upload.scene_id == participant.scene.scene_id:
            participant.game_over = dict(result.game_over)
            if result.game_over.get("reason") == "error":
                await self.hooks.record_event("game_error", {"error": str(result.game_over.get("error", ""))[:4000]},
                                              participant, scene_id=participant.scene.scene_id)
        if not result.ack.get("ok"):
            self.rejections[str(result.ack.get("code", "rejected"))] += 1
        return result.ack

    def _beacon_token(self, participant: Participant) -> str:
        token = self._token_of.get(participant.participant_id)
        if token is None:
            token = secrets.token_urlsafe(24)
            self._token_of[participant.participant_id] = token
            self._beacon_tokens[token] = participant.participant_id
        return token
