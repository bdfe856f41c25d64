"""Group commit of status-only webhooks: one transaction per group, failures stay isolated."""

import asyncio
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.messaging.inbound import StatusEvent
from app.security import PhoneVault
from app.webhook.coalescer import StatusCoalescer
from tests.factories import add_delivery_row, add_round_rows, enrol_number
from tests.webhook import payloads
from tests.webhook.helpers import delivery, delivery_tallies


def _event(n: int) -> StatusEvent:
    return StatusEvent("delivered", f"wamid.{n}", f"cb{n}", None, None, None)


def test_waiting_requests_share_a_transaction_and_a_bad_one_fails_alone(
    engine: Engine, vault: PhoneVault
) -> None:
    applied: list[list[str]] = []
    gate = threading.Event()

    def apply(events: list[StatusEvent]) -> None:
        gate.wait(5)
        if any(e.callback == "cb3" for e in events):
            raise RuntimeError("bad request")
        applied.append([e.callback or "" for e in events])

    async def main() -> list[BaseException | None]:
        coalescer = StatusCoalescer(engine, vault, apply=apply)
        tasks = [asyncio.create_task(coalescer.apply([_event(n)])) for n in range(6)]
        await asyncio.sleep(0.05)  # the first is being written; the other five are waiting
        gate.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(main())
    assert [r is None for r in results] == [True, True, True, False, True, True]
    assert isinstance(results[3], RuntimeError)
    # All six were grouped; the group failed on cb3, then each went alone.
    assert applied == [["cb0"], ["cb1"], ["cb2"], ["cb4"], ["cb5"]]


def test_a_burst_that_reaches_the_writer_over_a_few_loop_passes_is_one_group(
    engine: Engine, vault: PhoneVault
) -> None:
    groups: list[int] = []

    async def main() -> None:
        coalescer = StatusCoalescer(engine, vault, apply=lambda e: groups.append(len(e)))

        async def request(n: int) -> None:
            # Requests read in one go still take a few awaits each to reach the writer.
            for _ in range(n % 4):
                await asyncio.sleep(0)
            await coalescer.apply([_event(n)])

        await asyncio.gather(*(request(n) for n in range(64)))

    asyncio.run(main())
    assert groups == [64]


def test_concurrent_status_webhooks_count_each_outcome_once(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    vault: PhoneVault,
    opd: str,
) -> None:
    ids = []
    _, round_id = add_round_rows(engine, opd_code=opd)
    for n in range(12):
        enrolment_id = enrol_number(engine, vault, opd, f"+62812000001{n:02d}")
        ids.append(
            add_delivery_row(engine, round_id=round_id, enrolment_id=enrolment_id, state="sending")
        )
    bodies = [
        payloads.statuses(payloads.status(kind, message_id=f"wamid.{p}", callback=p))
        for p in ids
        for kind in ("read", "sent", "delivered", "delivered")
    ]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda b: payloads.post(client, settings, b).status_code, bodies))
    assert codes == [200] * len(bodies)
    # Every status carries pricing; each delivery's charge is billed once, like its outcome.
    assert delivery_tallies(engine, billed=True) == {
        "scheduled": 12,
        "accepted": 12,
        "delivered": 12,
        "billed_utility": 12,
    }
    for public_id in ids:
        row = delivery(engine, public_id)
        assert row is not None
        assert row.state == "delivered"


@pytest.mark.parametrize("size", [1, 3])
def test_group_size_is_capped(engine: Engine, vault: PhoneVault, size: int) -> None:
    groups: list[int] = []

    async def main() -> None:
        coalescer = StatusCoalescer(
            engine, vault, max_events=size, apply=lambda e: groups.append(len(e))
        )
        await asyncio.gather(*(coalescer.apply([_event(n)]) for n in range(7)))

    asyncio.run(main())
    assert sum(groups) == 7
    assert max(groups) <= size
