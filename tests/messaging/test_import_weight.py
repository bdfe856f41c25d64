"""Production processes never load the sandbox, Meta's spec or its validator.

Run in a fresh interpreter: other tests have long imported everything into this one.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import messaging

HEAVY = ("openapi_schema_validator", "app.messaging.spec", "app.sandbox.graph")
META_CREDENTIALS = {
    "SPI_WHATSAPP_ACCESS_TOKEN": "x",
    "SPI_WHATSAPP_PHONE_NUMBER_ID": "1",
    "SPI_WHATSAPP_APP_SECRET": "s",
}


def _loaded_after(code: str, env: dict[str, str]) -> dict[str, bool]:
    probe = (
        f"import sys, json\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded: dict[str, bool] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    ("code", "env"),
    [
        ("import app.outbox.worker", {}),
        ("import app.outbox.commands", {}),
        ("import app.cli", META_CREDENTIALS),
        ("import app.main; app.main.create_app()", META_CREDENTIALS),
    ],
)
def test_production_imports_leave_out_the_sandbox_and_the_spec(
    code: str, env: dict[str, str]
) -> None:
    assert _loaded_after(code, env) == dict.fromkeys(HEAVY, False)


def test_messaging_never_imports_the_sandbox() -> None:
    imported: set[str] = set()
    for path in Path(messaging.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert not {m for m in imported if m.startswith(("app.sandbox", "app.webhook"))}
