"""The shell examples of README.md, as a newcomer would type them, in order.

Every line of a ```sh block is a command (a trailing backslash or an open quote continues it);
comment lines are not. A block right after `<!-- readme-examples: skip REASON -->` is not run
and its commands are reported as skipped with that reason; so is `python3 scripts/dev.py …`,
which the test does itself by starting `serve`.
"""

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SKIP_MARK = re.compile(r"<!--\s*readme-examples:\s*skip\s+(.+?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
DEV_SCRIPT_REASON = "starts serve or the suite itself; this test starts serve on its own port"


@dataclass(frozen=True)
class Example:
    """One command of the README, where it is, and why it is not run (if it is not)."""

    line: int
    command: str
    skip_reason: str | None = None

    @property
    def label(self) -> str:
        first = self.command.splitlines()[0]
        return f"README.md:{self.line}: {first[:70]}"


def _complete(command: str) -> bool:
    if command.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(command, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def extract(readme: Path) -> list[Example]:
    """Every command of every ```sh block, in order."""
    examples: list[Example] = []
    block: str | None = None  # the open block's language, None outside blocks
    block_skip: str | None = None
    last_text = ""  # the last non-empty line outside blocks (where a skip mark stands)
    pending: list[str] = []
    start = 0
    for number, line in enumerate(readme.read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if block is None:
            if fence:
                block = fence.group(1)
                mark = SKIP_MARK.search(last_text)
                block_skip = mark.group(1) if mark else None
            elif line.strip():
                last_text = line
            continue
        if fence and not pending:
            block = None
            continue
        if block != "sh" or (not pending and (not line.strip() or line.lstrip().startswith("#"))):
            continue
        if not pending:
            start = number
        pending.append(line)
        command = "\n".join(pending)
        if _complete(command):
            reason = block_skip
            if reason is None and command.startswith("python3 scripts/dev.py"):
                reason = DEV_SCRIPT_REASON
            examples.append(Example(start, command, reason))
            pending = []
    assert not pending, f"README.md:{start}: unfinished command"
    assert block is None, "README.md: a code block is not closed"
    return examples


def for_test_server(command: str, port: int) -> str:
    """The command as run by the test: its port, and curl failing on an HTTP error status."""
    command = re.sub(r"\b(?:localhost|127\.0\.0\.1):8000\b", f"127.0.0.1:{port}", command)
    return re.sub(r"\bcurl -s\b", "curl -sS --fail-with-body", command)
