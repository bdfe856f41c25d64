"""An import's checked and sealed rows, spooled between reading the file and applying it."""

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO


@dataclass
class InvalidRow:
    """A row refused, with the reason the coordinator reads."""

    row: int
    reason: str


@dataclass
class Sealed:
    """A valid row ready to insert: its number only as blind index, mask and ciphertext."""

    row: int
    index: str
    masked: str
    phone_ciphertext: str
    label_ciphertext: str | None
    method: str
    recorded_at: datetime


Staged = Sealed | InvalidRow


class Staging:
    """Checked and sealed rows spooled in file order (never a plain number), for the apply pass."""

    def __init__(self) -> None:
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=4 << 20)  # noqa: SIM115

    def add(self, item: Staged) -> None:
        """Spool one row, in file order."""
        if isinstance(item, InvalidRow):
            line: list[object] = [item.row, item.reason]
        else:
            line = [
                item.row,
                None,
                item.index,
                item.masked,
                item.phone_ciphertext,
                item.label_ciphertext,
                item.method,
                item.recorded_at.isoformat(),
            ]
        self._spool.write(json.dumps(line).encode() + b"\n")

    def __iter__(self) -> Iterator[Staged]:
        self._spool.seek(0)
        for raw in self._spool:
            line = json.loads(raw)
            if len(line) == 2:
                yield InvalidRow(line[0], line[1])
            else:
                row, _, index, masked, phone_ct, label_ct, method, recorded_at = line
                at = datetime.fromisoformat(recorded_at)
                yield Sealed(row, index, masked, phone_ct, label_ct, method, at)

    def close(self) -> None:
        """Drop the spooled rows."""
        self._spool.close()
