"""A p2p experiment app with ``GymScene(rollback_smoothing_frames=N)`` (the smoothing e2e test and the latency
benchmark): ``p2p_app`` builds the demo pair with the default (0), and this sets the option on its game scene
with the constructor's own check, before any game starts (the p2p block is built per game)."""

from __future__ import annotations

from typing import Any

from interactive_gym.scenes.gym_scene import GymScene, check_rollback_smoothing


def with_rollback_smoothing(app: Any, frames: int) -> Any:
    """Returns ``app`` (an ``ExperimentApp``) with its p2p game scenes smoothing rollbacks over ``frames``."""
    scenes = [s for s in app.config.stager.all_scenes() if isinstance(s, GymScene) and s.mode == "p2p"]
    if not scenes:
        raise ValueError("the app has no p2p game scene")
    for scene in scenes:
        scene.rollback_smoothing_frames = check_rollback_smoothing(scene.scene_id, scene.mode, frames)
    return app
