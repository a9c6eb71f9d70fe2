"""Finds, loads and validates plugins from the three places of DESIGN §4."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

from core.commands.definition import CommandDefinition, EvolverDefinition, command_of, evolver_of
from core.demo import DemoDefinition, demo_of
from core.errors import EventscopeError
from core.projections.definition import Projection
from core.upcasting import UpcasterDefinition, Upcasters, upcaster_of

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGIN_MODULE_PREFIX",
    "PluginInfo",
    "Registry",
    "UnknownCommand",
    "UnknownProjection",
    "import_plugin_file",
]

ENTRY_POINT_GROUP: Final = "eventscope.plugins"
BUILTIN_PACKAGE: Final = "plugins"
#: Plugins loaded from a folder are modules named ``<prefix><digest of the path>_<name>``.
PLUGIN_MODULE_PREFIX: Final = "_eventscope_plugin_"
_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

Origin = Literal["builtin", "path", "entry_point"]


class UnknownProjection(EventscopeError):
    """No loaded plugin defines that projection (or that version of it)."""


class UnknownCommand(EventscopeError):
    """No loaded plugin defines that command."""


class PluginError(Exception):
    """A plugin contributes something malformed or already contributed."""


@dataclass
class PluginInfo:
    """One plugin: where it came from, what it contributes, and whether it loaded."""

    name: str
    origin: Origin
    location: str
    status: Literal["loaded", "failed"] = "loaded"
    error: str | None = None
    projections: list[type[Projection]] = field(default_factory=list)
    commands: list[CommandDefinition] = field(default_factory=list)
    evolvers: list[EvolverDefinition] = field(default_factory=list)
    upcasters: list[UpcasterDefinition] = field(default_factory=list)
    demos: list[DemoDefinition] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """The JSON line printed by ``eventscope plugins``."""
        described: dict[str, Any] = {
            "name": self.name,
            "origin": self.origin,
            "location": self.location,
            "status": self.status,
            "projections": [p.reference() for p in self.projections],
            "commands": [c.name for c in self.commands],
            "evolvers": [e.category for e in self.evolvers],
            "upcasters": [u.describe() for u in self.upcasters],
            "demos": [d.name for d in self.demos],
        }
        if self.error is not None:
            described["error"] = self.error
        return described


class Registry:
    """Everything the loaded plugins contribute, by name; failed plugins are listed too."""

    def __init__(self) -> None:
        self.plugins: list[PluginInfo] = []
        self.projections: dict[tuple[str, int], type[Projection]] = {}
        self.commands: dict[str, CommandDefinition] = {}
        self.evolvers: dict[str, EvolverDefinition] = {}
        self.upcasters = Upcasters()
        self.demos: dict[str, DemoDefinition] = {}
        self._owner: dict[object, str] = {}

    # -- discovery ----------------------------------------------------------------------------

    @classmethod
    def discover(
        cls,
        plugin_dirs: Sequence[str | os.PathLike[str]] = (),
        *,
        environ: Mapping[str, str] | None = None,
        builtin: bool = True,
        entry_points: bool = True,
    ) -> Registry:
        """Load the shipped plugins, the folders given (and in ``EVENTSCOPE_PLUGINS``),
        and the ``eventscope.plugins`` entry points, in that order.

        A plugin that fails to import or contributes something malformed or duplicated
        is recorded as failed, with the reason; the others still load.
        """
        registry = cls()
        if builtin:
            registry._load_builtin()
        env = os.environ if environ is None else environ
        folders = [
            *plugin_dirs,
            *[p for p in env.get("EVENTSCOPE_PLUGINS", "").split(os.pathsep) if p],
        ]
        for folder in folders:
            registry._load_folder(Path(folder))
        if entry_points:
            for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = point.dist.name if point.dist is not None else "?"
                registry._load(point.name, "entry_point", f"{point.value} ({dist})", point.load)
        return registry

    def _load_builtin(self) -> None:
        try:
            package = importlib.import_module(BUILTIN_PACKAGE)
        except ImportError as error:
            self.plugins.append(
                PluginInfo(BUILTIN_PACKAGE, "builtin", BUILTIN_PACKAGE, "failed", str(error))
            )
            return
        for info in pkgutil.iter_modules(package.__path__):
            module_name = f"{BUILTIN_PACKAGE}.{info.name}"
            self._load(
                info.name,
                "builtin",
                module_name,
                lambda name=module_name: importlib.import_module(name),
            )

    def _load_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            self.plugins.append(
                PluginInfo(folder.name or str(folder), "path", str(folder), "failed",
                           f"{folder}: no such folder")
            )  # fmt: skip
            return
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(("_", ".")):
                continue
            if entry.suffix == ".py" and entry.is_file():
                name, init = entry.stem, entry
            elif entry.is_dir() and (entry / "__init__.py").is_file():
                name, init = entry.name, entry / "__init__.py"
            else:
                continue
            self._load(name, "path", str(entry), lambda n=name, i=init: _import_file(n, i))

    def _load(self, name: str, origin: Origin, location: str, importer: Any) -> None:
        info = PluginInfo(name, origin, location)
        self.plugins.append(info)
        try:
            module = importer()
            if not isinstance(module, ModuleType):
                raise PluginError(f"the entry point gives {type(module).__name__}, not a module")
            _collect(info, list(_modules_of(module)))
            self._check_unique(info)
        except BaseException as error:  # sys.exit or KeyboardInterrupt at import too
            # A plugin's import is its code: whatever it raises, the plugin failed,
            # not the application loading it.
            info.status = "failed"
            info.error = _describe_failure(error)
            info.projections, info.commands, info.evolvers = [], [], []
            info.upcasters, info.demos = [], []
            return
        self._register(info)

    def _check_unique(self, info: PluginInfo) -> None:
        def clash(kind: str, key: object) -> None:
            owner = self._owner.get((kind, key))
            if owner is not None:
                raise PluginError(f"duplicate {kind} {key} (already contributed by {owner})")

        seen: set[tuple[str, object]] = set()
        keys = [
            *[("projection", p.reference()) for p in info.projections],
            *[("command", c.name) for c in info.commands],
            *[("evolver", e.category) for e in info.evolvers],
            *[("upcaster", u.describe()) for u in info.upcasters],
            *[("demo", d.name) for d in info.demos],
        ]
        for kind, key in keys:
            clash(kind, key)
            if (kind, key) in seen:
                raise PluginError(f"duplicate {kind} {key} within the plugin")
            seen.add((kind, key))

    def _register(self, info: PluginInfo) -> None:
        owner = f"{info.name} ({info.origin})"
        for projection in info.projections:
            self.projections[(projection.name, projection.version)] = projection
            self._owner[("projection", projection.reference())] = owner
        for definition in info.commands:
            self.commands[definition.name] = definition
            self._owner[("command", definition.name)] = owner
        for evolver in info.evolvers:
            self.evolvers[evolver.category] = evolver
            self._owner[("evolver", evolver.category)] = owner
        for upcaster in info.upcasters:
            self.upcasters.add(upcaster)
            self._owner[("upcaster", upcaster.describe())] = owner
        for demo in info.demos:
            self.demos[demo.name] = demo
            self._owner[("demo", demo.name)] = owner

    # -- lookups ------------------------------------------------------------------------------

    def projection(self, name: str, version: int | None = None) -> type[Projection]:
        """The projection ``name`` at ``version`` (default: the newest loaded).

        Raises:
            UnknownProjection: naming what is missing and what there is.
        """
        versions = sorted(v for (n, v) in self.projections if n == name)
        if not versions:
            known = ", ".join(sorted({n for n, _ in self.projections})) or "none"
            raise UnknownProjection(f"unknown projection {name!r} (loaded: {known})")
        chosen = versions[-1] if version is None else version
        if chosen not in versions:
            raise UnknownProjection(
                f"projection {name!r} has no version {version} "
                f"(loaded: {', '.join(map(str, versions))})"
            )
        return self.projections[(name, chosen)]

    def command(self, name: str) -> CommandDefinition:
        """The command called ``name``.

        Raises:
            UnknownCommand: naming the commands there are.
        """
        found = self.commands.get(name)
        if found is None:
            known = ", ".join(sorted(self.commands)) or "none"
            raise UnknownCommand(f"unknown command {name!r} (loaded: {known})")
        return found

    @property
    def failed(self) -> list[PluginInfo]:
        """The plugins that did not load."""
        return [info for info in self.plugins if info.status == "failed"]


def _import_file(name: str, init: Path) -> ModuleType:
    """Import a plugin file or package from a folder under a private, unique module name."""
    digest = hashlib.sha1(str(init.resolve()).encode()).hexdigest()[:10]
    safe_name = re.sub(r"\W", "_", name)
    return import_plugin_file(f"{PLUGIN_MODULE_PREFIX}{digest}_{safe_name}", init)


def import_plugin_file(module_name: str, init: Path) -> ModuleType:
    """Import a plugin file (or a package's ``__init__.py``) as ``module_name``, afresh.

    This is how a plugin found in a folder is loaded, and how the child process of an
    isolated projection loads it again (:mod:`core.projections.isolation`).

    Raises:
        PluginError: the file cannot be imported as a module.
    """
    for loaded in [m for m in sys.modules if m == module_name or m.startswith(module_name + ".")]:
        del sys.modules[loaded]  # a fresh load sees the file as it is now
    is_package = init.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        module_name, init, submodule_search_locations=[str(init.parent)] if is_package else None
    )
    if spec is None or spec.loader is None:
        raise PluginError(f"{init}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _modules_of(module: ModuleType) -> Iterator[ModuleType]:
    """The module, and every submodule when it is a package (each imported)."""
    yield module
    path = getattr(module, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=module.__name__ + "."):
        yield importlib.import_module(info.name)


def _collect(info: PluginInfo, modules: Iterable[ModuleType]) -> None:
    """Gather what the modules define (not what they merely import) and validate it."""
    seen: set[int] = set()
    for module in modules:
        for value in list(vars(module).values()):
            if id(value) in seen or getattr(value, "__module__", None) != module.__name__:
                continue
            seen.add(id(value))
            if (
                isinstance(value, type)
                and issubclass(value, Projection)
                and value is not Projection
            ):
                _validate_projection(value)
                info.projections.append(value)
                continue
            if (definition := command_of(value)) is not None:
                info.commands.append(definition)
            elif (folding := evolver_of(value)) is not None:
                info.evolvers.append(folding)
            elif (step := upcaster_of(value)) is not None:
                info.upcasters.append(step)
            elif (demo := demo_of(value)) is not None:
                info.demos.append(demo)
    info.projections.sort(key=lambda p: (p.name, p.version))
    info.commands.sort(key=lambda c: c.name)


def _validate_projection(projection: type[Projection]) -> None:
    where = f"projection class {projection.__qualname__}"
    name = projection.name
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(f"{where}: name {name!r} must be a word (letters, digits, _ . -)")
    version = projection.version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PluginError(f"{where}: version {version!r} must be an integer >= 1")
    if not projection.handlers:
        raise PluginError(f"{where}: no @handles method")


def _describe_failure(error: BaseException) -> str:
    if isinstance(error, PluginError):
        return str(error)
    if isinstance(error, SystemExit):
        trace = "".join(traceback.format_exception(error)).strip()
        return f"{trace}\nthe plugin called sys.exit({error.code!r}) while it was imported"
    return "".join(traceback.format_exception(error)).strip()
