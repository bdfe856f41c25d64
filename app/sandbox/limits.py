"""Meta's two walls, played by the sandbox when asked to (faults.enforce_limits).

- throughput: more template or text sends in one second than the number's level allows are
  refused with 130429, as Meta does;
- messaging limit: a template to a person beyond the portfolio's unique people of the moving
  24 h is taken (Meta answers 200) but then fails. Meta documents no error code for this
  (docs/whatsapp-cloud-api.md §8); the sandbox uses 131048, whose text speaks of restrictions
  on how many messages the number may send. People are kept in this process's memory only.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from app.sandbox.account import SandboxAccount

LIMIT_FAILURE_CODE = 131048
WINDOW_SECONDS = 24 * 3600


class LimitKeeper:
    """Counts sends per second and people per moving 24 h."""

    def __init__(self, account: SandboxAccount) -> None:
        self._account = account
        self._second = 0
        self._in_second = 0
        self._people: OrderedDict[str, float] = OrderedDict()

    def clear(self) -> None:
        self._second, self._in_second = 0, 0
        self._people.clear()

    def over_throughput(self, now: float | None = None) -> bool:
        """Count one send; True when it is beyond this second's allowance."""
        second = int(time.monotonic() if now is None else now)
        if second != self._second:
            self._second, self._in_second = second, 0
        self._in_second += 1
        return self._in_second > self._account.throughput_per_second

    def over_messaging_limit(self, to: str, now: float | None = None) -> bool:
        """Count a template to `to`; True when `to` is a new person beyond the limit."""
        now = time.monotonic() if now is None else now
        while self._people and next(iter(self._people.values())) <= now - WINDOW_SECONDS:
            self._people.popitem(last=False)
        if to in self._people:
            self._people.move_to_end(to)
            self._people[to] = now
            return False
        limit = self._account.messaging_limit
        if limit > 0 and len(self._people) >= limit:
            return True
        self._people[to] = now
        return False
