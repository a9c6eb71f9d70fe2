"""Read-model references (DESIGN §5, contract): ``NAME[:VERSION][@POINT]``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from core.errors import EventscopeError
from core.events import format_time, parse_time

__all__ = ["InvalidReference", "Point", "ReadModelRef"]

_REFERENCE: Final = re.compile(r"^(?P<name>[^:@]+)(?::(?P<version>[^@]*))?(?:@(?P<point>.*))?$")
_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class InvalidReference(EventscopeError, ValueError):
    """A read-model reference that does not parse; the message names the part."""


@dataclass(frozen=True, slots=True)
class Point:
    """A point in the log: the head, a position, or a time (the longest prefix up to it)."""

    kind: Literal["head", "position", "time"]
    position: int | None = None
    time: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> Point:
        """``head``, a position (``1500``) or an ISO-8601 time with a zone."""
        text = text.strip()
        if text in ("", "head"):
            return cls("head")
        if text.isdigit():
            return cls("position", position=int(text))
        try:
            return cls("time", time=parse_time(text))
        except ValueError as error:
            raise InvalidReference(
                f"point {text!r} is not head, a position or an ISO-8601 time with a zone ({error})"
            ) from None

    def __str__(self) -> str:
        if self.kind == "position":
            return str(self.position)
        if self.kind == "time" and self.time is not None:
            return format_time(self.time)
        return "head"


HEAD: Final = Point("head")


@dataclass(frozen=True, slots=True)
class ReadModelRef:
    """A read model: a projection's name, optionally a version, and a point."""

    name: str
    version: int | None = None
    point: Point = HEAD

    @classmethod
    def parse(cls, text: str) -> ReadModelRef:
        """Parse ``NAME[:VERSION][@POINT]``.

        Raises:
            InvalidReference: naming the part that is wrong.
        """
        match = _REFERENCE.match(text.strip())
        if match is None:
            raise InvalidReference(f"{text!r} is not NAME[:VERSION][@POINT]")
        name = match["name"]
        if not _NAME.match(name):
            raise InvalidReference(f"projection name {name!r} is not a word")
        version: int | None = None
        if match["version"] is not None:
            if not match["version"].isdigit() or int(match["version"]) < 1:
                raise InvalidReference(f"version {match['version']!r} is not a number >= 1")
            version = int(match["version"])
        point = Point.parse(match["point"]) if match["point"] is not None else HEAD
        return cls(name, version, point)

    def __str__(self) -> str:
        shown = self.name if self.version is None else f"{self.name}:{self.version}"
        return shown if self.point.kind == "head" else f"{shown}@{self.point}"
