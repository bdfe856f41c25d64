"""A long import shares the database: reads, webhooks and the worker keep going meanwhile.

On SQLite there is one write lock for the whole file. An import used to hold it for the whole
upload, so every request (token lookups included) and the worker queued behind it. Here the
import is made deliberately slow (every batch holds the lock a while longer, as a slow disk
would), and the test checks that the others are served *during* it, not after it, that none
waits more than about a second or gets a 5xx, that the worker keeps its rate within 20 % and
that every row is applied exactly once (issue 12). The p99 target itself is judged by
`bench/import_load.py` on a quiet machine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from app.auth.models import Role
from app.config import Settings
from app.db import read_scope
from app.enrolment import service as enrolment_service
from app.enrolment.models import Enrolment, EnrolmentTally
from app.main import create_app
from app.opds.models import Opd
from app.outbox.models import Delivery
from app.outbox.worker import OutboxWorker, WorkerConfig
from app.sandbox import connect as sandbox_connect
from app.sandbox.graph import SandboxGraph
from app.security import PhoneVault
from tests.factories import add_opd, add_token, bearer
from tests.outbox.conftest import Clock, make_world
from tests.webhook import payloads

ROWS = 6_000
BATCH = 200
# Extra time each import batch holds its transaction (on SQLite: the write lock), as a slow
# disk would; SQLite batches hold it about this long for real (500 rows).
SLOW_BATCH_SECONDS = 0.05
SEND_RATE = 20.0
# "About a second" (issue 12), with room for the CPU-bound statistics on a loaded 2-core test
# machine, and far below the import's own duration (> 3 s), which is what a request queued
# behind the whole import would wait. The bench judges p99 < 1 s on a quiet machine.
MAX_WAIT_SECONDS = 1.5
# The worker's rate during the import, against its paced rate: within 20 %.
MIN_RATE_SHARE = 0.8
BASELINE_SECONDS = 3.0
WARM_UP_SECONDS = 2.0


@dataclass
class Timings:
    """Latency and status of every request one kind of caller made."""

    done: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, request: Callable[[], Any]) -> None:
        started = time.perf_counter()
        status = request().status_code
        with self.lock:
            self.done.append((started, time.perf_counter(), status))

    def statuses(self) -> set[int]:
        return {status for _, _, status in self.done}

    def longest(self) -> float:
        return max(end - start for start, end, _ in self.done)

    def finished_within(self, start: float, end: float) -> int:
        return sum(1 for _, done, _ in self.done if start < done < end)


def _repeat(stop: threading.Event, action: Callable[[], None]) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            action()
            time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _csv(rows: int) -> bytes:
    lines = ["nomor_hp;nama;metode_persetujuan", *[f"0813{n:08d};P{n};kertas" for n in range(rows)]]
    return ("\n".join(lines) + "\n").encode()


def _sent_wamids(engine: Engine, seen: set[str]) -> list[tuple[str, str]]:
    with read_scope(engine) as s:
        rows = s.exec(
            select(Delivery.public_id, Delivery.wamid).where(col(Delivery.wamid).is_not(None))
        ).all()
    return [(p, w) for p, w in rows if w is not None and w not in seen]


@pytest.fixture
def load_settings(settings: Settings) -> Settings:
    settings.import_batch_size = BATCH
    settings.send_rate_per_second = SEND_RATE
    settings.sandbox_url = ""
    return settings.model_copy(update={"whatsapp_app_secret": SecretStr("uji-app-secret-0123")})


def test_a_long_import_leaves_reads_webhooks_and_the_worker_going(
    engine: Engine,
    load_settings: Settings,
    vault: PhoneVault,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings
    world = make_world(engine, vault, people=1_000)
    add_opd(engine, "BAPPEDA")
    coordinator = add_token(engine, Role.coordinator, "BAPPEDA")
    inspector = add_token(engine, Role.inspectorate)

    looked_up = enrolment_service.listed_in_opd_among

    def slow_disk(session: Session, *, opd_id: int, indexes: Any) -> set[str]:
        found = looked_up(session, opd_id=opd_id, indexes=indexes)
        time.sleep(SLOW_BATCH_SECONDS)  # inside the batch's write transaction
        return found

    monkeypatch.setattr(enrolment_service, "listed_in_opd_among", slow_disk)

    stop = threading.Event()
    # Sends counted at each mark: "baseline" (the others already running), "start", "end".
    sent_at: dict[str, int] = {}
    window: dict[str, float] = {}

    def run_worker() -> None:
        async def main() -> None:
            messenger = await sandbox_connect.open_in_process(
                settings, sandbox=SandboxGraph(secret=b"load-test")
            )
            worker = OutboxWorker(
                engine=engine,
                settings=settings,
                messenger=messenger,
                vault=vault,
                config=WorkerConfig(batch_size=50, lease_seconds=60, poll_seconds=0.05),
                clock=Clock(),
                worker_id="load-worker",
            )
            task = asyncio.create_task(worker.run())
            for mark in ("baseline", "start", "end"):
                while mark not in window:
                    await asyncio.sleep(0.005)
                sent_at[mark] = worker.sent
            worker.stop()
            await task
            await messenger.aclose()

        asyncio.run(main())

    reads, stats, hooks = Timings(), Timings(), Timings()
    posted: set[str] = set()

    with TestClient(create_app(settings, engine=engine)) as client:

        def post_statuses() -> None:
            sent = _sent_wamids(engine, posted)[:20]
            if not sent:
                return
            posted.update(w for _, w in sent)
            items = [payloads.status("delivered", message_id=w, callback=p) for p, w in sent]
            hooks.call(lambda: payloads.post(client, settings, payloads.statuses(*items)))

        url = f"/api/v1/stats/campaigns/{world.campaign_id}"
        threads = [
            threading.Thread(target=run_worker, daemon=True),
            _repeat(
                stop,
                lambda: reads.call(
                    lambda: client.get(
                        "/api/v1/opds/BAPPEDA/enrolments?limit=5", headers=bearer(coordinator)
                    )
                ),
            ),
            _repeat(stop, lambda: stats.call(lambda: client.get(url, headers=bearer(inspector)))),
            _repeat(stop, post_statuses),
        ]
        threads[0].start()
        time.sleep(WARM_UP_SECONDS)  # the worker and the others have started
        window["baseline"] = time.perf_counter()
        time.sleep(BASELINE_SECONDS)  # the worker's rate without an import
        window["start"] = time.perf_counter()
        response = client.post(
            "/api/v1/opds/BAPPEDA/enrolments/import",
            headers=bearer(coordinator),
            files={"file": ("pegawai.csv", _csv(ROWS), "text/csv")},
        )
        window["end"] = time.perf_counter()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    start, end = window["start"], window["end"]
    assert response.status_code == 200, response.text[:300]
    assert response.json()["summary"]["enrolled"] == ROWS
    # The import really was long: a request queued behind all of it would have waited this long.
    assert end - start > (ROWS / BATCH) * SLOW_BATCH_SECONDS
    for kind, timings in (("list", reads), ("statistics", stats), ("webhook", hooks)):
        assert timings.statuses() == {200}, kind
        assert timings.longest() < MAX_WAIT_SECONDS, (kind, timings.longest())
        assert timings.finished_within(start, end) >= 3, f"{kind}: nothing served during import"
    # The worker kept its paced rate within 20 % while the import ran.
    assert len(sent_at) == 3
    without = (sent_at["start"] - sent_at["baseline"]) / (start - window["baseline"])
    during = (sent_at["end"] - sent_at["start"]) / (end - start)
    assert without > 0.5 * SEND_RATE, without  # the baseline itself is a real rate
    assert during >= MIN_RATE_SHARE * without, (during, without)
    assert during >= MIN_RATE_SHARE * SEND_RATE, during  # and of the rate it is paced at

    # Every row applied exactly once, and counted once.
    with Session(engine) as s:
        opd_id = s.exec(select(Opd.id).where(col(Opd.code) == "BAPPEDA")).one()
        listed = s.exec(
            select(func.count(), func.count(func.distinct(Enrolment.phone_index))).where(
                col(Enrolment.opd_id) == opd_id
            )
        ).one()
        counted = s.exec(
            select(func.sum(EnrolmentTally.count)).where(
                col(EnrolmentTally.opd_id) == opd_id, col(EnrolmentTally.event) == "enrolled"
            )
        ).one()
    assert tuple(listed) == (ROWS, ROWS)
    assert counted == ROWS
