"""Plugin discovery from folders, the environment and entry points; failures are isolated."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from core.registry import Registry, UnknownCommand, UnknownProjection

GOOD = '''
"""A good plugin."""
from core.api import Projection, Rejected, command, evolver, handles, upcaster


class Balances(Projection):
    name = "balances"
    version = 1

    @handles("Deposited")
    def deposited(self, view, event):
        doc = view.get(event.data["account"]) or {"balance": 0}
        doc["balance"] += event.data["amount"]
        view.put(event.data["account"], doc)


@evolver("account", initial=lambda: {"balance": 0})
def evolve(state, event):
    return {"balance": state["balance"] + event.data.get("amount", 0)}


@command("Deposit", stream="account-{account}", fields={"account": str, "amount": int})
def deposit(state, data):
    """Put money in."""
    if data["amount"] <= 0:
        raise Rejected("amount must be positive")
    return [("Deposited", data)]


@upcaster("Deposited", from_version=1)
def cents(data):
    return data
'''


def write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def discover(*folders: Path, **options: object) -> Registry:
    return Registry.discover(
        list(folders), environ={}, builtin=False, entry_points=False, **options
    )  # type: ignore[arg-type]


def by_name(registry: Registry) -> dict[str, dict]:  # type: ignore[type-arg]
    return {info.name: info.describe() for info in registry.plugins}


def test_a_plugin_file_contributes_what_it_defines(tmp_path: Path) -> None:
    write(tmp_path, "bank.py", GOOD)
    registry = discover(tmp_path)
    described = by_name(registry)["bank"]
    assert described["status"] == "loaded"
    assert described["origin"] == "path"
    assert described["location"] == str(tmp_path / "bank.py")
    assert described["projections"] == ["balances:1"]
    assert described["commands"] == ["Deposit"]
    assert described["evolvers"] == ["account"]
    assert described["upcasters"] == ["Deposited:1->2"]
    assert registry.projection("balances").reference() == "balances:1"
    assert registry.command("Deposit").describe()["fields"]["amount"] == {
        "type": "int",
        "required": True,
    }


def test_imported_names_are_not_contributions(tmp_path: Path) -> None:
    write(tmp_path, "bank.py", GOOD)
    write(tmp_path, "reuser.py", "from core.api import Projection, handles\n")
    assert by_name(discover(tmp_path))["reuser"]["projections"] == []


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(tmp_path: Path) -> None:
    write(tmp_path, "bank.py", GOOD)
    write(tmp_path, "broken.py", "import core.api\nraise RuntimeError('the plugin is broken')\n")
    registry = discover(tmp_path)
    broken = by_name(registry)["broken"]
    assert broken["status"] == "failed"
    assert "RuntimeError: the plugin is broken" in broken["error"]
    assert "Traceback" in broken["error"]
    assert by_name(registry)["bank"]["status"] == "loaded"
    assert registry.command("Deposit").name == "Deposit"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("import sys\nsys.exit(3)\n", "the plugin called sys.exit(3) while it was imported"),
        ("raise SystemExit('bye')\n", "the plugin called sys.exit('bye') while it was imported"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
        ("class Odd(BaseException): pass\nraise Odd('odd')\n", "Odd: odd"),
    ],
)
def test_a_plugin_that_exits_or_raises_a_base_exception_is_a_failed_plugin(
    tmp_path: Path, body: str, reason: str
) -> None:
    write(tmp_path, "bank.py", GOOD)
    write(tmp_path, "leaver.py", body)
    registry = discover(tmp_path)  # returns: the process neither exits nor stops
    leaver = by_name(registry)["leaver"]
    assert leaver["status"] == "failed"
    assert leaver["error"].strip().splitlines()[-1].endswith(reason)
    assert "Traceback" in leaver["error"]
    assert by_name(registry)["bank"]["status"] == "loaded"
    assert not [m for m in sys.modules if m.endswith("_leaver")]  # nothing half-imported kept


def test_a_duplicate_projection_fails_the_later_plugin(tmp_path: Path) -> None:
    write(tmp_path, "a_bank.py", GOOD)
    write(
        tmp_path,
        "b_copycat.py",
        """
        from core.api import Projection, handles

        class Again(Projection):
            name = "balances"
            version = 1

            @handles("Deposited")
            def deposited(self, view, event):
                pass

        class Fine(Projection):
            name = "other"

            @handles("Deposited")
            def deposited(self, view, event):
                pass
        """,
    )
    registry = discover(tmp_path)
    copycat = by_name(registry)["b_copycat"]
    assert copycat["status"] == "failed"
    assert (
        copycat["error"] == "duplicate projection balances:1 (already contributed by a_bank (path))"
    )
    assert copycat["projections"] == []
    with pytest.raises(UnknownProjection, match="unknown projection 'other'"):
        registry.projection("other")  # a failed plugin contributes nothing at all


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('name = "bad name"\n    version = 1', "name 'bad name' must be a word"),
        ('name = "fine"\n    version = 0', "version 0 must be an integer >= 1"),
        ('name = "fine"\n    version = "2"', "version '2' must be an integer >= 1"),
    ],
)
def test_a_malformed_projection_fails_its_plugin(tmp_path: Path, body: str, reason: str) -> None:
    write(
        tmp_path,
        "odd.py",
        f"""
from core.api import Projection, handles

class Odd(Projection):
    {body}

    @handles("A")
    def a(self, view, event):
        pass
""",
    )
    described = by_name(discover(tmp_path))["odd"]
    assert described["status"] == "failed"
    assert reason in described["error"]


def test_a_projection_without_handlers_fails_its_plugin(tmp_path: Path) -> None:
    write(
        tmp_path,
        "empty.py",
        'from core.api import Projection\nclass E(Projection):\n    name = "e"\n',
    )
    assert "no @handles method" in by_name(discover(tmp_path))["empty"]["error"]


def test_a_package_plugin_with_submodules_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    write(package, "__init__.py", '"""A package plugin."""\nfrom .commands import *  # noqa\n')
    write(package, "commands.py", GOOD.replace('"balances"', '"shop_balances"'))
    write(package, "more.py", "from .commands import deposit\n")
    described = by_name(discover(tmp_path))["shop"]
    assert described["status"] == "loaded"
    assert described["projections"] == ["shop_balances:1"]
    assert described["commands"] == ["Deposit"]  # found once, where it is defined


def test_plugin_folders_from_the_environment_and_a_missing_folder(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    write(first, "bank.py", GOOD)
    write(second, "empty_ok.py", '"""Contributes nothing, loads fine."""\n')
    missing = tmp_path / "nowhere"
    registry = Registry.discover(
        [missing],
        environ={"EVENTSCOPE_PLUGINS": f"{first}{__import__('os').pathsep}{second}"},
        builtin=False,
        entry_points=False,
    )
    described = by_name(registry)
    assert described["nowhere"]["status"] == "failed"
    assert "no such folder" in described["nowhere"]["error"]
    assert described["bank"]["status"] == described["empty_ok"]["status"] == "loaded"


def test_a_changed_file_is_loaded_afresh(tmp_path: Path) -> None:
    write(tmp_path, "bank.py", GOOD)
    assert discover(tmp_path).projection("balances").version == 1
    write(tmp_path, "bank.py", GOOD.replace("version = 1", "version = 2"))
    assert discover(tmp_path).projection("balances").version == 2


def test_lookups_name_what_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "bank.py", GOOD)
    registry = discover(tmp_path)
    with pytest.raises(UnknownProjection, match=r"no version 3 \(loaded: 1\)"):
        registry.projection("balances", 3)
    with pytest.raises(UnknownCommand, match=r"'Withdraw' \(loaded: Deposit\)"):
        registry.command("Withdraw")


def test_an_entry_point_of_an_installed_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real distribution's metadata on sys.path, found by importlib.metadata."""
    site = tmp_path / "site"
    write(site / "acme_plugin", "__init__.py", GOOD.replace('"balances"', '"acme_balances"'))
    info = site / "acme_plugin-1.0.dist-info"
    write(info, "METADATA", "Metadata-Version: 2.1\nName: acme-plugin\nVersion: 1.0\n")
    write(info, "entry_points.txt", "[eventscope.plugins]\nacme = acme_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    registry = Registry.discover([], environ={}, builtin=False)
    described = by_name(registry)["acme"]
    assert described["origin"] == "entry_point"
    assert described["location"] == "acme_plugin (acme-plugin)"
    assert described["status"] == "loaded"
    assert described["projections"] == ["acme_balances:1"]
    sys.modules.pop("acme_plugin", None)


def test_an_entry_point_that_is_not_a_module_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    write(site / "oddity", "__init__.py", "def thing():\n    pass\n")
    info = site / "oddity-0.1.dist-info"
    write(info, "METADATA", "Metadata-Version: 2.1\nName: oddity\nVersion: 0.1\n")
    write(info, "entry_points.txt", "[eventscope.plugins]\nodd = oddity:thing\n")
    monkeypatch.syspath_prepend(str(site))
    described = by_name(Registry.discover([], environ={}, builtin=False))["odd"]
    assert described["status"] == "failed"
    assert "not a module" in described["error"]
    sys.modules.pop("oddity", None)
