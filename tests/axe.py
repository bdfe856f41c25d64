"""axe-core in the page under test: no serious or critical accessibility violation.

The engine is vendored (tests/vendor/axe-core/axe.min.js, axe-core 4.10.3 from npm, MPL-2.0,
licence alongside) so that the check runs offline and the same everywhere. It is evaluated
through the DevTools protocol, which a page's CSP does not govern: pages keep their strict
`default-src 'none'` while they are checked.
"""

from functools import cache
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.10.3"
BLOCKING = ("serious", "critical")
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")


@cache
def _source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.1 A/AA)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    assert page.evaluate("() => window.axe.version") == AXE_VERSION
    result = page.evaluate(
        "tags => window.axe.run(document, {runOnly: {type: 'tag', values: tags}})", list(TAGS)
    )
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def assert_accessible(page: Any) -> None:
    """Fail with each serious or critical axe-core violation and the elements it found."""
    found = violations(page)
    described = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(str(node.get("target")) for node in v.get("nodes", [])[:5])
        for v in found
    ]
    assert not found, f"accessibility violations on {page.url}:\n" + "\n".join(described)
