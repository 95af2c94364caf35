"""Sphinx configuration for the flask-lucia documentation.

Build (must pass with no warnings)::

    sphinx-build -W --keep-going -b html docs /tmp/docs-html

Nothing here fetches anything from the network: no intersphinx.
"""

from __future__ import annotations

import os
import re
import sys

# Document the working tree, whether or not the package is installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "flask-lucia"
author = "flask-lucia contributors"
copyright = "flask-lucia contributors"

try:
    from importlib.metadata import version as _version

    release = _version("flask-lucia")
except Exception:  # not installed: the docs still build from the working tree
    release = ""
version = release

extensions = ["sphinx.ext.autodoc"]

exclude_patterns = ["_build"]
root_doc = "index"
default_role = "literal"

# -- autodoc ---------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_type_aliases = {"ErrorCode": "ErrorCode"}
python_use_unqualified_type_names = True
add_module_names = False

# -- HTML ------------------------------------------------------------------------

try:
    import furo  # noqa: F401

    html_theme = "furo"
except ImportError:  # pragma: no cover - fall back to the theme Sphinx ships
    html_theme = "alabaster"

html_title = f"flask-lucia {release}".strip()
html_show_sourcelink = False


# -- keep the reference tables honest --------------------------------------------
#
# configuration.rst must have a row for every key in flask_lucia.config.DEFAULTS
# (plus the view keys set in init_app), and api.rst a row for every error code
# with the status flask_lucia.errors.STATUS gives it. A key or code added to the
# code without a row here makes the build warn, and so fail under -W.

#: Keys that init_app sets outside DEFAULTS, or that the code reads with .get().
EXTRA_KEYS = frozenset({"LUCIA_LOGIN_VIEW", "LUCIA_REAUTHENTICATE_VIEW"})

_ROW = re.compile(r"^\s*\* - ``([A-Z]+_[A-Z0-9_]+)``\s*$")
_CELL = re.compile(r"^\s*- (\d{3})\s*$")


def _rows(path: str) -> dict[str, str | None]:
    """First-column literals of list-table rows, with the next cell when it is a status."""
    rows: dict[str, str | None] = {}
    last = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = _ROW.match(line)
            if match:
                last = match.group(1)
                rows[last] = None
                continue
            cell = _CELL.match(line)
            if cell and last is not None and rows[last] is None:
                rows[last] = cell.group(1)
            if line.strip().startswith("* -"):
                last = None
    return rows


def _check_tables(app, env) -> None:  # type: ignore[no-untyped-def]
    from sphinx.util import logging

    from flask_lucia.config import DEFAULTS
    from flask_lucia.errors import STATUS

    logger = logging.getLogger("flask_lucia.docs")
    config_doc = os.path.join(app.srcdir, "configuration.rst")
    keys = {k for k in _rows(config_doc) if k.startswith("LUCIA_")}
    expected = set(DEFAULTS) | EXTRA_KEYS
    for key in sorted(expected - keys):
        logger.warning("configuration.rst has no row for %s", key, location="configuration")
    for key in sorted(keys - set(DEFAULTS) - EXTRA_KEYS):
        logger.warning(
            "configuration.rst documents %s, which the code lacks", key, location="configuration"
        )

    api_doc = os.path.join(app.srcdir, "api.rst")
    codes = {k: v for k, v in _rows(api_doc).items() if not k.startswith("LUCIA_")}
    for code, status in sorted(STATUS.items()):
        if code not in codes:
            logger.warning("api.rst has no row for error code %s", code, location="api")
        elif codes[code] != str(status):
            logger.warning(
                "api.rst gives %s status %s; the code says %s",
                code,
                codes[code],
                status,
                location="api",
            )
    for code in sorted(set(codes) - set(STATUS)):
        logger.warning(
            "api.rst documents error code %s, which the code lacks", code, location="api"
        )


#: The code each checked page is compared with: a change there re-reads the page,
#: so an incremental build runs the check again instead of reusing a stale pass.
_CHECKED_AGAINST = {
    "configuration": ("flask_lucia/config.py", "flask_lucia/extension.py"),
    "api": ("flask_lucia/errors.py",),
}


def _note_code_dependencies(app, docname, source):  # type: ignore[no-untyped-def]
    root = os.path.abspath(os.path.join(app.srcdir, ".."))
    for path in _CHECKED_AGAINST.get(docname, ()):
        app.env.note_dependency(os.path.join(root, path))


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("source-read", _note_code_dependencies)
    app.connect("env-check-consistency", _check_tables)
    return {"parallel_read_safe": True}
