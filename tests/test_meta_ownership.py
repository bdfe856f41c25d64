"""Only app/messaging/ (and the sandbox that plays Meta) knows Meta's error codes and wire keys.

Issue 10: a new Meta behaviour lands in one place. A code or wire key written anywhere else,
even inside a sentence an employee reads, is a second place that must change with Meta.
"""

from __future__ import annotations

import re
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
OWNERS = (APP / "messaging", APP / "sandbox")
META_TERMS = re.compile(r"\b13\d{4}\b|messaging_product|biz_opaque_callback_data|\bwa_id\b")


def test_meta_codes_and_wire_keys_live_only_in_messaging_and_the_sandbox() -> None:
    found = [
        f"{path.relative_to(APP)}:{number}: {line.strip()}"
        for path in sorted(APP.rglob("*.py"))
        if not any(owner in path.parents for owner in OWNERS)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if META_TERMS.search(line)
    ]
    assert found == []
