"""Environments for the browser-runtime e2e tests; shipped into Pyodide like any experiment module."""

from __future__ import annotations

from typing import Any

import gatherers


class BreakingGatherers(gatherers.FruitGatherers):
    """The demo orchard with a bug: stepping number ``break_at`` divides by zero."""

    def __init__(self, break_at: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.break_at = break_at

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        if self.t + 1 == self.break_at:
            return 1 / 0  # type: ignore[return-value]
        return super().step(actions)


def make_breaking_env(**kwargs: Any) -> BreakingGatherers:
    return BreakingGatherers(**kwargs)
