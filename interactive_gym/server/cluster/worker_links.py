"""What one worker of several holds open to the others: its Redis client, Socket.IO manager and placement."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from interactive_gym.configurations.remote_config import ConfigError, RemoteConfig
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.cluster.options import ClusterOptions
from interactive_gym.server.cluster.placement import HandoverHandler, Placement
from interactive_gym.server.cluster.redis_emits import RedisEmitManager
from interactive_gym.server.modes.waiting import shared_room_problems

REDIS_CONNECTIONS = 64
REDIS_WAIT_S = 20.0


def worker_problems(config: RemoteConfig) -> list[str]:
    """What keeps this experiment from running on several workers (empty when nothing does)."""
    assert config.stager is not None
    scenes = [s for s in config.stager.all_scenes() if isinstance(s, GymScene) and s.mode != "browser"]
    return shared_room_problems(scenes)


class WorkerLinks:
    """The shared parts of one worker, named after the experiment so two experiments on one Redis never meet.

    Args:
        config: The validated experiment.
        options: Which worker this is and where Redis is.

    Raises:
        ConfigError: the experiment cannot run on several workers (:func:`worker_problems`).
    """

    def __init__(self, config: RemoteConfig, options: ClusterOptions) -> None:
        problems = worker_problems(config)
        if problems:
            raise ConfigError(problems)
        prefix = f"ig:{config.experiment_id}"
        self.options = options
        # Bounded, and a burst of joins waits for a free connection instead of failing (each room transaction
        # holds one connection while it watches the room's keys).
        pool = BlockingConnectionPool.from_url(options.redis_url, max_connections=REDIS_CONNECTIONS,
                                               timeout=REDIS_WAIT_S)
        self.client = Redis(connection_pool=pool)
        self.manager = RedisEmitManager(options.redis_url, channel=prefix)
        self.placement = Placement(self.client, prefix, options.worker)

    async def start(self, on_handover: HandoverHandler) -> None:
        await self.placement.start(on_handover)

    async def close(self) -> None:
        await self.placement.close()
        await self.manager.close()
        await self.client.aclose()

