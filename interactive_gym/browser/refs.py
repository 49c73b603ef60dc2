"""References to module-level functions as ``"module:function"`` strings.

Browser mode never executes code typed into a page: the server ships the experiment's Python files into
Pyodide and tells the page *which* functions to call by name. A reference is the importable module name
plus the function name, which both the server (to find the file to ship) and Pyodide (to import and call
it) understand. Pure Python; runs in CPython and Pyodide.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class RefError(ValueError):
    """A function that cannot be named by reference, or a reference that does not resolve."""


def module_name_of(fn: Callable[..., Any]) -> str:
    """The importable module name of ``fn``; ``__main__`` becomes the script's file stem.

    An experiment started as a script has its functions in ``__main__``; inside Pyodide the same file
    is imported under its file name, so the reference uses that name.
    """
    module = getattr(fn, "__module__", None)
    if not module:
        raise RefError(f"{fn!r} has no module: use a function defined at module level in a .py file")
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if not main_file:
            raise RefError(f"{fn!r} is defined in an interactive session: put it in a .py file")
        return Path(main_file).stem
    return module


def function_ref(fn: Any, what: str) -> str:
    """Returns ``"module:function"`` for a module-level function.

    Args:
        fn: The function (env factory, render function, policy, observation encoder).
        what: What it is for, used in the error message (``"env_creator"``).

    Raises:
        RefError: for lambdas, nested functions, methods, or non-callables, saying what to change.
    """
    if not callable(fn) or not inspect.isfunction(fn):
        raise RefError(f"{what} must be a function defined at module level in a .py file, got {fn!r}")
    name = fn.__name__
    qualname = getattr(fn, "__qualname__", name)
    if name == "<lambda>":
        raise RefError(
            f"{what} is a lambda; browser mode ships Python files and calls functions by name, "
            "so define it with `def` at module level"
        )
    if qualname != name:
        raise RefError(
            f"{what} ({qualname}) is not a module-level function; move it to the top level of its module"
        )
    return f"{module_name_of(fn)}:{name}"


def split_ref(ref: str) -> tuple[str, str]:
    """Splits ``"module:function"`` into its two parts, checking the shape."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise RefError(f"expected a reference 'module:function', got {ref!r}")
    module, name = ref.split(":")
    if not module or not name.isidentifier() or not all(p.isidentifier() for p in module.split(".")):
        raise RefError(f"expected a reference 'module:function', got {ref!r}")
    return module, name


def resolve_ref(ref: str) -> Callable[..., Any]:
    """Imports the module of ``ref`` and returns the named callable.

    Raises:
        RefError: if the module or the function is missing or not callable.
    """
    module_name, name = split_ref(ref)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RefError(f"cannot import module {module_name!r} for {ref!r}: {exc}") from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise RefError(f"module {module_name!r} has no function {name!r} (from {ref!r})")
    return fn
