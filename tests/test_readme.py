"""README.md and the docs quickstart say what the code does: every key, every endpoint."""

from __future__ import annotations

import pathlib
import re

from flask_lucia.config import DEFAULTS

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Keys init_app sets outside DEFAULTS (as docs/conf.py's EXTRA_KEYS).
VIEW_KEYS = {"LUCIA_LOGIN_VIEW", "LUCIA_REAUTHENTICATE_VIEW"}


def section(title: str) -> str:
    """The README text from a ``## title`` heading to the next one."""
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : None if end < 0 else end]


def test_the_readme_configuration_table_lists_every_key_the_code_has() -> None:
    rows = set(re.findall(r"^\| `(LUCIA_[A-Z0-9_]+)` \|", section("Configuration"), re.M))
    assert sorted((set(DEFAULTS) | VIEW_KEYS) - rows) == []
    assert sorted(rows - set(DEFAULTS) - VIEW_KEYS) == []


def test_the_readme_endpoint_table_lists_the_device_session_and_confirm_endpoints() -> None:
    table = section("HTTP endpoints")
    paths = set(re.findall(r"^\| `[A-Z, ]+ (/auth/[^`]*)` \|", table, re.M))
    for path in ("/auth/devices", "/auth/sessions", "/auth/sessions/<id>/revoke", "/auth/confirm"):
        assert path in paths
    assert "429 `AUTH_TOO_MANY_ATTEMPTS`" in table and "retry_after" in table


def test_the_readme_docs_command_activates_the_venv_first() -> None:
    line = next(line for line in README.splitlines() if "sphinx-build" in line)
    assert line.index(". .venv/bin/activate") < line.index("pip install")


def test_the_docs_quickstart_installs_from_the_checkout() -> None:
    quickstart = (ROOT / "docs" / "quickstart.rst").read_text(encoding="utf-8")
    install = quickstart[quickstart.index("Install") : quickstart.index("A protected page")]
    assert "pip install -e " in install and "pip install flask-lucia" not in install


def test_the_pages_doc_names_every_page_template() -> None:
    pages = (ROOT / "docs" / "pages.rst").read_text(encoding="utf-8")
    folder = ROOT / "flask_lucia" / "templates" / "lucia"
    templates = sorted(f"lucia/{path.name}" for path in folder.glob("*.html"))
    assert [name for name in templates if f"``{name}``" not in pages] == []
