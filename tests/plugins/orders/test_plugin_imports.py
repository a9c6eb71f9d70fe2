"""The order plugin needs nothing of Eventscope but ``core.api`` (DESIGN §4)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import plugins.orders

PACKAGE = Path(plugins.orders.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add("." * node.level + (node.module or ""))
    return modules


def allowed(module: str) -> bool:
    root = module.split(".")[0]
    own = module == "plugins.orders" or module.startswith("plugins.orders.")
    return module == "core.api" or own or root in sys.stdlib_module_names


def test_plugin_modules_import_only_core_api_the_standard_library_and_each_other() -> None:
    found = {path.name: imported_modules(path) for path in sorted(PACKAGE.glob("*.py"))}

    offenders = {
        name: sorted(m for m in modules if not allowed(m)) for name, modules in found.items()
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
    assert {"commands.py", "demo.py", "projections.py", "state.py", "upcasters.py"} <= set(found)


def test_the_check_catches_an_offender(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from core.events import NewEvent\nimport sqlalchemy\nfrom . import x\n")

    assert sorted(m for m in imported_modules(sneaky) if not allowed(m)) == [
        ".",
        "core.events",
        "sqlalchemy",
    ]
