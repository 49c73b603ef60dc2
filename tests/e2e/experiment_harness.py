"""Helpers for end-to-end tests of whole experiments: load an example's config with test settings and serve it."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from db_under_test import location_for

from interactive_gym.configurations.remote_config import RemoteConfig
from interactive_gym.experiment_loader import import_experiment_module
from interactive_gym.server.app import ExperimentApp, create_app

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def load_example(relative: str) -> ModuleType:
    """Imports an example experiment file the way ``interactive-gym run`` does (its folder on sys.path)."""
    return import_experiment_module(ROOT / relative)


def build_app(config: RemoteConfig) -> ExperimentApp:
    """Validates like ``interactive-gym run`` does, then builds the app.

    Under ``INTERACTIVE_GYM_TEST_DB=postgresql`` the experiment's database moves to PostgreSQL first (see
    ``db_under_test``); read it back with ``db_under_test.connect``/``open_storage`` and the same path.
    """
    config.experiment(db=location_for(config.database_path()))
    config.validate()
    return create_app(config)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs an asyncio scenario (real Socket.IO clients) to completion in its own thread.

    Playwright's sync API keeps an event loop running in the test thread once a browser test has run, so
    ``asyncio.run`` cannot be called there directly.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
