"""Serve the example app as it runs after ``pip install -e .`` alone: the packages of every
extra (oauth, mfa, mail, postgres) refuse to import, though this venv has them.

``python -m tests.without_extras PORT DATABASE_URL`` serves examples/app.py on 127.0.0.1:PORT.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import pathlib
import sys
from collections.abc import Sequence

#: The top-level packages the extras bring (setup.cfg ``[options.extras_require]``).
EXTRAS = (
    "authlib",
    "requests",
    "pyotp",
    "segno",
    "webauthn",
    "cryptography",
    "flask_mailman",
    "psycopg",
)
EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "app.py"


class Blocked(importlib.abc.MetaPathFinder):
    """A finder first on ``sys.meta_path`` that makes these packages not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def block(names: Sequence[str] = EXTRAS) -> Blocked:
    """From now on ``names`` (and their submodules) cannot be imported in this process."""
    finder = Blocked(names)
    sys.meta_path.insert(0, finder)
    return finder


def main(port: int, database: str) -> None:
    block()
    os.environ["FLASK_LUCIA_DATABASE_URL"] = database
    os.environ["FLASK_LUCIA_BASE_URL"] = f"http://127.0.0.1:{port}"
    spec = importlib.util.spec_from_file_location("example_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_app"] = module
    spec.loader.exec_module(module)
    from werkzeug.serving import make_server

    make_server("127.0.0.1", port, module.app, threaded=True).serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
