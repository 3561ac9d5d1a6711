"""The dependency order of the apps (README, "Architecture in brief"), read from the code's own imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each app may import the ones before it, never one after it.
APP_ORDER = ["snapshots", "analytics", "tracking", "alerts"]
APPS = {*APP_ORDER, "devtools"}


def _product_modules(package: str) -> list[Path]:
    files = (ROOT / package).rglob("*.py") if (ROOT / package).is_dir() else []
    return [f for f in files if "tests" not in f.relative_to(ROOT).parts]


def _imported_apps(file: Path) -> set[str]:
    """Top-level packages of this project that `file` imports, anywhere in it (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & APPS
    return found


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from analytics.cache import cached\n    import snapshots.jikan\n")
    assert _imported_apps(module) == {"analytics", "snapshots"}


def test_the_shell_imports_no_app():
    offenders = {str(f.relative_to(ROOT)): _imported_apps(f) for f in _product_modules("animedash")}
    assert {file: apps for file, apps in offenders.items() if apps} == {}


@pytest.mark.parametrize("app", APP_ORDER)
def test_an_app_imports_only_the_apps_before_it(app):
    allowed = set(APP_ORDER[: APP_ORDER.index(app) + 1])
    offenders = {str(f.relative_to(ROOT)): _imported_apps(f) - allowed for f in _product_modules(app)}
    assert {file: apps for file, apps in offenders.items() if apps} == {}


def test_nothing_in_the_product_imports_devtools():
    product = [f for package in ("animedash", *APP_ORDER) for f in _product_modules(package)]
    product += [ROOT / "manage.py"]
    assert product
    assert [str(f.relative_to(ROOT)) for f in product if "devtools" in _imported_apps(f)] == []
