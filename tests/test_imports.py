"""The project's modules import each other without cycles; billing_site stays generic."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_imports", ROOT / "scripts" / "check_imports.py")
check_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_imports)


def write(root: Path, module: str, text: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if str(parent) != ".":
            (root / parent / "__init__.py").touch()
    path.write_text(text)


def test_the_project_has_no_import_cycle_and_billing_site_imports_no_app():
    assert check_imports.problems() == []


def test_a_cycle_hidden_inside_a_function_is_found(tmp_path):
    write(tmp_path, "billing_site.limits", "def f():\n    from accounts.auth import thing\n")
    write(tmp_path, "accounts.auth", "from billing_site.limits import f\nthing = 1\n")

    found = check_imports.problems(tmp_path)

    assert "import cycle: accounts.auth <-> billing_site.limits" in found
    assert "billing_site.limits imports the app module accounts.auth" in found


def test_the_composition_root_may_name_the_apps(tmp_path):
    write(tmp_path, "billing_site.urls", "from accounts import views\n")
    write(tmp_path, "accounts.views", "from . import auth\n")
    write(tmp_path, "accounts.auth", "import billing_site\n")

    assert check_imports.problems(tmp_path) == []
