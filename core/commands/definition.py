"""How a plugin defines commands (decide) and the state they decide on (evolve)."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from core.errors import EventscopeError
from core.events import NewEvent, RecordedEvent
from core.store.validation import SYSTEM_STREAM_PREFIX

__all__ = [
    "FIELD_TYPES",
    "CommandDefinition",
    "EvolverDefinition",
    "Field",
    "Rejected",
    "command",
    "evolver",
]

FIELD_TYPES: Final = (str, int, float, bool, list, dict)
_COMMAND = "__eventscope_command__"
_EVOLVER = "__eventscope_evolver__"

_Function = TypeVar("_Function", bound=Callable[..., Any])

Decision = Sequence[
    NewEvent | tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], Mapping[str, Any]]
]


class Rejected(EventscopeError):
    """A command handler refuses the command; nothing is appended.

    Args:
        reason: why, in words an operator understands ("amount must be positive").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a command's data: its type, whether it is required, a default, help.

    The console builds a form from these; the bus checks data against them.
    """

    type: type = str
    required: bool = True
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            names = ", ".join(t.__name__ for t in FIELD_TYPES)
            raise TypeError(f"a command field's type is one of {names}, not {self.type!r}")

    def describe(self) -> dict[str, Any]:
        """The field as JSON, for ``eventscope plugins`` and the console's forms."""
        described: dict[str, Any] = {"type": self.type.__name__, "required": self.required}
        if self.default is not None:
            described["default"] = self.default
        if self.help:
            described["help"] = self.help
        if self.choices:
            described["choices"] = list(self.choices)
        return described


def _check_value(name: str, spec: Field, value: Any) -> Any:
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (spec.type is not bool and isinstance(value, bool)) or not isinstance(value, spec.type):
        raise Rejected(f"{name}: must be {spec.type.__name__}, not {type(value).__name__}")
    if spec.choices and value not in spec.choices:
        raise Rejected(f"{name}: must be one of {', '.join(map(str, spec.choices))}")
    return value


@dataclass(frozen=True, slots=True)
class CommandDefinition:
    """A command contributed by a plugin: its name, target stream, fields and handler."""

    name: str
    stream: str
    fields: Mapping[str, Field]
    handler: Callable[[Any, dict[str, Any]], Decision]
    description: str = ""
    module: str = ""

    def stream_for(self, data: Mapping[str, Any]) -> str:
        """The stream this command decides on, from the template and the data."""
        try:
            stream_id = self.stream.format_map(dict(data))
        except KeyError as missing:
            raise Rejected(f"{missing.args[0]}: required to name the stream") from None
        if stream_id.startswith(SYSTEM_STREAM_PREFIX):
            raise Rejected(f"{stream_id!r} is a system stream: only Eventscope writes those")
        return stream_id

    def checked_data(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The data with defaults filled in, after checking it against the fields.

        Raises:
            Rejected: a required field is missing, a value has the wrong type, or a
                field is unknown.
        """
        if not isinstance(data, Mapping):
            raise Rejected("data must be a JSON object")
        unknown = sorted(set(data) - set(self.fields)) if self.fields else []
        if unknown:
            raise Rejected(f"unknown field(s): {', '.join(unknown)}")
        checked = dict(data)
        for name, spec in self.fields.items():
            if name not in checked or checked[name] is None:
                if spec.required and spec.default is None:
                    raise Rejected(f"{name}: required")
                if spec.default is not None:
                    checked[name] = spec.default
                continue
            checked[name] = _check_value(name, spec, checked[name])
        return checked

    def describe(self) -> dict[str, Any]:
        """The command as JSON, for ``eventscope plugins`` and the console's forms."""
        return {
            "name": self.name,
            "stream": self.stream,
            "fields": {name: spec.describe() for name, spec in self.fields.items()},
            "description": self.description,
        }


def command(
    name: str,
    *,
    stream: str,
    fields: Mapping[str, Field | type] | None = None,
) -> Callable[[_Function], _Function]:
    """Register a function as the handler of a command.

    The handler is ``handler(state, data) -> events``: ``state`` is the target stream's
    events folded by the plugin's ``@evolver`` for the stream's category (None when the
    category has none), ``data`` the checked command data. It returns the events to
    append — ``(type, data)``, ``(type, data, metadata)`` or ``NewEvent`` — or raises
    ``Rejected``.

    Args:
        name: the command's name (``PlaceOrder``).
        stream: the target stream, a template over the data (``order-{order_id}``).
        fields: the data's fields: a type, or a ``Field`` for more detail.
    """
    if not isinstance(name, str) or not name:
        raise TypeError("@command needs a name")
    placeholders = {part[1] for part in string.Formatter().parse(stream) if part[1]}
    specs = {
        key: value if isinstance(value, Field) else Field(value)
        for key, value in (fields or {}).items()
    }
    missing = sorted(placeholders - set(specs)) if specs else []
    if missing:
        raise TypeError(f"@command {name}: the stream template uses undeclared field(s) {missing}")

    def register(handler: _Function) -> _Function:
        doc = (handler.__doc__ or "").strip().splitlines()
        setattr(
            handler,
            _COMMAND,
            CommandDefinition(
                name, stream, specs, handler, doc[0] if doc else "", handler.__module__
            ),
        )
        return handler

    return register


@dataclass(frozen=True, slots=True)
class EvolverDefinition:
    """How the streams of one category fold into the state their commands decide on."""

    category: str
    function: Callable[[Any, RecordedEvent], Any]
    initial: Callable[[], Any] = field(default=lambda: None)
    module: str = ""

    def fold(self, events: Sequence[RecordedEvent]) -> Any:
        """The state after ``events`` (oldest first)."""
        state = self.initial()
        for event in events:
            state = self.function(state, event)
        return state


def evolver(
    category: str, *, initial: Callable[[], Any] | None = None
) -> Callable[[_Function], _Function]:
    """Register ``evolve(state, event) -> state`` for the streams of a category.

    Args:
        category: the streams' category (``order`` for ``order-17``).
        initial: makes the state before the first event (default: None).
    """

    def register(function: _Function) -> _Function:
        setattr(
            function,
            _EVOLVER,
            EvolverDefinition(category, function, initial or (lambda: None), function.__module__),
        )
        return function

    return register


def command_of(value: object) -> CommandDefinition | None:
    """The command a function was registered as, if any."""
    found = getattr(value, _COMMAND, None)
    return found if isinstance(found, CommandDefinition) else None


def evolver_of(value: object) -> EvolverDefinition | None:
    """The evolver a function was registered as, if any."""
    found = getattr(value, _EVOLVER, None)
    return found if isinstance(found, EvolverDefinition) else None
