"""Suite-wide test ordering.

Browser tests run last: once Playwright's sync API has started, it keeps an asyncio event loop running in the
main thread for the rest of the session, and tests that call ``asyncio.run`` there would fail.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path))  # stable: keeps the order within each group
