"""axe-core in a Playwright page: fail on serious or critical accessibility violations.

axe-core 4.14.1 is vendored from the npm registry (`npm pack axe-core@4.14.1`) under
tests/vendor/axe-core/ with its licence (MPL-2.0). It is evaluated through the DevTools
protocol, which the pages' Content-Security-Policy (no inline script) does not block.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE_SOURCE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, plus axe's best practices (landmarks, headings) for good measure.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING_IMPACTS = {"serious", "critical"}


def violations(page: "Page") -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    found: list[dict[str, Any]] = result["violations"]
    return found


def assert_accessible(page: "Page") -> None:
    """Fail with a readable list when axe finds a serious or critical violation."""
    bad = [v for v in violations(page) if v.get("impact") in FAILING_IMPACTS]
    if bad:
        lines = [
            f"{v['impact']}: {v['id']} – {v['help']} at "
            + ", ".join(str(node["target"]) for node in v["nodes"][:5])
            for v in bad
        ]
        raise AssertionError(f"axe found on {page.url}:\n" + "\n".join(lines))
