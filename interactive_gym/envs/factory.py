"""Import an environment factory named ``module:factory`` and build an environment from it."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any


class FactoryError(ValueError):
    """The factory cannot be found, imported or called; the message says what to change."""


def load_factory(spec: str) -> Callable[..., Any]:
    """Imports ``module:attribute`` (with the current directory on ``sys.path``) and returns the callable.

    Raises:
        FactoryError: Bad spelling, module not importable, attribute missing or not callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise FactoryError(f"expected module:factory (e.g. examples.demo.gatherers:make_env), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FactoryError(f"cannot import module {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise FactoryError(f"module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise FactoryError(f"{spec} is not callable (it should build and return an environment)")
    return target


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """Parses ``--kwargs`` JSON into a dict (empty when ``text`` is empty)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactoryError(f"--kwargs is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise FactoryError("--kwargs must be a JSON object, e.g. '{\"width\": 9}'")
    return value


def env_builder(spec: str, kwargs_json: str | None = None) -> Callable[[], Any]:
    """A no-argument callable that builds a fresh environment from ``spec`` and ``--kwargs`` JSON.

    The factory is called once here so that a broken factory fails now with a clear message.
    """
    factory = load_factory(spec)
    kwargs = parse_kwargs(kwargs_json)

    def build() -> Any:
        return factory(**kwargs)

    try:
        build()
    except Exception as exc:
        raise FactoryError(f"calling {spec}({', '.join(f'{k}=...' for k in kwargs)}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    return build
