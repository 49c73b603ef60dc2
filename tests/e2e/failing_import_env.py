"""An env module that imports fine on the server (CPython) but raises at import in the browser (Pyodide):
the classic "works on my machine" bug of a browser-mode game that cannot start."""

from __future__ import annotations

import sys
from typing import Any

import gatherers

if sys.platform == "emscripten":
    raise ImportError("failing_import_env needs the 'native_orchard' extension, which does not exist in Pyodide")


def make_env(**kwargs: Any) -> gatherers.FruitGatherers:
    return gatherers.FruitGatherers(**kwargs)
