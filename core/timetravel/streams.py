"""One stream through time: its aggregate state at a version, as the plugin folds it."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.events import format_time

__all__ = ["StreamState", "jsonable"]


@dataclass(frozen=True, slots=True)
class StreamState:
    """A stream folded up to a version by its category's ``@evolver``."""

    stream_id: str
    version: int | None  # the version folded to (None: the stream has no events)
    evolver: str | None  # the category whose evolver folded it (None: no plugin has one)
    state: Any  # the plugin's state object (None without an evolver)

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready values."""
        return {
            "stream_id": self.stream_id,
            "version": self.version,
            "evolver": self.evolver,
            "state": jsonable(self.state),
        }


def jsonable(value: Any) -> Any:
    """A plugin's state as JSON values: dataclasses as objects, enums by value, tuples
    and sets as arrays, times as ISO-8601 text; anything else as its ``repr``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(item) for item in value), key=repr)
    if isinstance(value, datetime):
        return format_time(value)
    return repr(value)
