"""The storage error and the durability levels, shared by both engines and everything above them."""

from __future__ import annotations

from typing import Literal

__all__ = ["StorageError", "Synchronous"]

# FULL: a commit returns once it is on disk (survives power loss). NORMAL: once the engine has it (survives the
# death of our process; the last commits can be lost if the machine, or the PostgreSQL server, crashes).
Synchronous = Literal["FULL", "NORMAL"]


class StorageError(Exception):
    """The database cannot be opened, is of the wrong kind or version, or a write was rejected."""
