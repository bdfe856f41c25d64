"""Imports during a round on SQLite: ten concurrent 20,000-row uploads while the worker sends.

Run with:  .venv/bin/python -m bench.import_load  [--people 20000] [--imports 10]
                                                  [--rows 20000] [--baseline-seconds 20]

One `spi-reminder serve` on a fresh SQLite file, as a small institution runs it: the worker,
the scheduler and the in-process sandbox (which posts status webhooks back) in the same process.
A round for `--people` people is queued (send window all day, limit 80 messages/s). Four
clients keep making the requests a console and Meta make (a coordinator's list, statistics,
the OPD list, signed status webhooks): first for `--baseline-seconds` without imports, then
while `--imports` coordinators each upload a `--rows`-row CSV (1 % bad rows) to their own OPD.

Printed: each import's time and status; p50/p99/max latency of the other requests, without and
with imports; the worker's send rate without and during the imports. Afterwards every valid
row must be listed exactly once and counted once, and the scheduler must still lead.
Targets: p99 of the other requests < 1 s, worker rate during imports within 20 % of its rate
without, no 5xx.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import webhook as webhook_bench
from bench.import_bench import generate_csv
from bench.webhook import _free_port, stop_server

ROUND_OPD = "RONDE"
APP_SECRET = "bench-app-secret-" + secrets.token_hex(8)
TARGET_P99_SECONDS = 1.0
TARGET_RATE_SHARE = 0.8


def start_server(url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """`spi-reminder serve` as the embedded default runs: worker, scheduler and sandbox inside."""
    return webhook_bench.start_server(
        url,
        data_dir,
        port,
        SPI_SCHEDULER_ENABLED="true",
        SPI_WORKER_ENABLED="true",
        SPI_WHATSAPP_APP_SECRET=APP_SECRET,
        # The keys the database was seeded with.
        SPI_ENCRYPTION_KEYS=os.environ["SPI_ENCRYPTION_KEYS"],
        SPI_BLIND_INDEX_KEY=os.environ["SPI_BLIND_INDEX_KEY"],
    )


def seed(url: str, people: int, imports: int) -> dict[str, Any]:
    """A migrated database: the round's OPD with `people` listed, one OPD per import, tokens,
    an active campaign sending all day, and a round queued now."""
    from sqlalchemy import insert

    from app import schema_migrations
    from app.auth import service as auth_service
    from app.auth.models import Role
    from app.auth.principal import cli_principal
    from app.campaigns import editing as campaign_editing
    from app.campaigns import service as campaign_service
    from app.campaigns.models import Campaign
    from app.campaigns.rounds import MANUAL, create_round
    from app.campaigns.schemas import CampaignCreate
    from app.config import Settings
    from app.db import make_engine, session_scope
    from app.enrolment.models import Enrolment
    from app.opds import service as opd_service
    from app.opds.schemas import OpdCreate
    from app.security import PhoneVault, load_keys
    from app.templates import service as template_service

    schema_migrations.upgrade_to_head(url)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    vault = PhoneVault(load_keys(settings))
    engine = make_engine(url)
    actor = cli_principal()
    now = datetime.now(UTC)
    tokens: dict[str, str] = {}
    with session_scope(engine) as s:
        opd = opd_service.create_opd(
            s, actor=actor, data=OpdCreate(code=ROUND_OPD, name="Ronde", timezone="WIB")
        )
        for n in range(1, imports + 1):
            code = f"IMP{n:02d}"
            opd_service.create_opd(
                s, actor=actor, data=OpdCreate(code=code, name=code, timezone="WIB")
            )
            _, tokens[code] = auth_service.create_token(
                s, actor=actor, role=Role.coordinator, name=f"koordinator {code}", opd_code=code
            )
        for role in (Role.admin, Role.inspectorate):
            _, tokens[role.value] = auth_service.create_token(
                s, actor=actor, role=role, name=f"bench {role.value}"
            )
        definition = template_service.seed_definitions()[0]
        template = template_service.register(
            s,
            actor=actor,
            name=str(definition["name"]),
            language="id",
            category="UTILITY",
            body=str(definition["body"]),
            parameters=list(definition["parameters"]),
        )
        assert template.id is not None
        yesterday = now - timedelta(days=1)
        campaign = campaign_editing.create_campaign(
            s,
            actor=actor,
            data=CampaignCreate(
                name="SPI bench",
                spi_year=now.year,
                first_day=yesterday.date(),
                last_day=(now + timedelta(days=30)).date(),
                template_id=template.id,
                send_start=datetime.min.time(),
                send_end=datetime.max.time().replace(microsecond=0),
                skip_holidays=False,
            ),
            now=yesterday,
        )
        assert campaign.id is not None
        campaign_service.activate(
            s, actor=actor, campaign_id=campaign.id, now=yesterday, settings=settings
        )
        campaign_id, opd_id = campaign.id, opd.id
    for start in range(0, people, 5000):
        rows = []
        for n in range(start, min(people, start + 5000)):
            phone = f"+62811{n:08d}"
            rows.append(
                {
                    "public_id": secrets.token_hex(8),
                    "opd_id": opd_id,
                    "phone_ciphertext": vault.encrypt(phone),
                    "phone_index": vault.blind_index(phone),
                    "consent_method": "paper_form",
                    "consent_recorded_at": yesterday,
                    "consent_notice_version": "2026-1",
                    "consent_recorded_by": "bench",
                    "status": "active",
                    "enrolled_at": yesterday,
                }
            )
        with session_scope(engine) as s:
            s.execute(insert(Enrolment), rows)
    with session_scope(engine) as s:
        row = s.get(Campaign, campaign_id)
        assert row is not None
        created = create_round(
            s,
            campaign=row,
            timezone="Asia/Jakarta",
            scheduled_for=now,
            send_at=now,
            origin=MANUAL,
            now=now,
            # The whole round is due now, not spread under a new number's messaging limit.
            settings=settings.model_copy(update={"messaging_limit": 0}),
        )
        assert created is not None
        assert created.recipients == people, created
    engine.dispose()
    return {"tokens": tokens, "campaign_id": campaign_id}


@dataclass
class Load:
    """Requests other than the imports, with their latency, until stopped."""

    base: str
    tokens: dict[str, str]
    campaign_id: int
    db_file: Path
    done: list[tuple[float, float, str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, clients: int) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(clients)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _loop(self, n: int) -> None:
        kinds = ["list", "stats", "webhook", "opds"]
        with httpx.Client(base_url=self.base, timeout=120) as http:
            i = n
            while not self.stop.is_set():
                kind = kinds[i % len(kinds)]
                i += 1
                started = time.perf_counter()
                status = self._request(http, kind)
                with self._lock:
                    self.done.append((started, time.perf_counter(), kind, status))
                time.sleep(0.05)

    def _request(self, http: httpx.Client, kind: str) -> int:
        if kind == "list":
            auth = {"Authorization": f"Bearer {self.tokens['IMP01']}"}
            return http.get("/api/v1/opds/IMP01/enrolments?limit=20", headers=auth).status_code
        if kind == "stats":
            auth = {"Authorization": f"Bearer {self.tokens['inspectorate']}"}
            return http.get(f"/api/v1/stats/campaigns/{self.campaign_id}", headers=auth).status_code
        if kind == "opds":
            auth = {"Authorization": f"Bearer {self.tokens['admin']}"}
            return http.get("/api/v1/opds", headers=auth).status_code
        body = _status_body(self.db_file)
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        return http.post("/webhook/whatsapp", content=body, headers=headers).status_code

    def between(self, start: float, end: float) -> list[tuple[float, float, str, int]]:
        with self._lock:
            return [d for d in self.done if start <= d[0] and d[1] <= end]


def _status_body(db_file: Path) -> bytes:
    """A `delivered` status for a few messages already sent, as Meta would repeat it."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT public_id, wamid FROM delivery WHERE wamid IS NOT NULL"
            " ORDER BY random() LIMIT 3"
        ).fetchall()
    stamp = str(int(time.time()) - 5)
    statuses = [
        {
            "id": wamid,
            "status": "delivered",
            "timestamp": stamp,
            "recipient_id": "6281100000000",
            "biz_opaque_callback_data": public_id,
            "pricing": {
                "billable": True,
                "pricing_model": "PMP",
                "type": "regular",
                "category": "utility",
            },
        }
        for public_id, wamid in rows
    ]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "0"},
        "statuses": statuses,
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "0", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload).encode()


def sent_count(db_file: Path) -> int:
    """Messages the worker has handed to the (sandbox) Graph API so far."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=30) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM delivery WHERE wamid IS NOT NULL").fetchone()[0]
        )


def rate_over(db_file: Path, seconds: float) -> float:
    before, started = sent_count(db_file), time.perf_counter()
    time.sleep(seconds)
    return (sent_count(db_file) - before) / (time.perf_counter() - started)


def upload(base: str, token: str, code: str, csv_path: Path, out: dict[str, Any]) -> None:
    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=600) as http, csv_path.open("rb") as fh:
        response = http.post(
            f"/api/v1/opds/{code}/enrolments/import",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("pegawai.csv", fh, "text/csv")},
        )
    out[code] = {
        "seconds": time.perf_counter() - started,
        "status": response.status_code,
        "summary": response.json().get("summary")
        if response.status_code == 200
        else response.text[:200],
        "started": started,
        "ended": time.perf_counter(),
    }


def latency_line(label: str, done: list[tuple[float, float, str, int]]) -> str:
    waits = sorted(end - start for start, end, _, _ in done)
    if not waits:
        return f"{label}: no requests"
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    errors = sum(1 for *_, status in done if status >= 500)
    return (
        f"{label}: {len(waits)} requests, p50 {statistics.median(waits) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms, 5xx {errors}"
    )


def p99(done: list[tuple[float, float, str, int]]) -> float:
    waits = sorted(end - start for start, end, _, _ in done)
    return waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else 0.0


def verify(db_file: Path, valid: int, imports: int) -> dict[str, Any]:
    """Per import OPD: rows listed, distinct numbers, and the enrolled tally."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        listed = dict(
            conn.execute(
                "SELECT o.code, COUNT(*) || '/' || COUNT(DISTINCT e.phone_index) FROM enrolment e"
                " JOIN opd o ON o.id = e.opd_id WHERE o.code LIKE 'IMP%' GROUP BY o.code"
            ).fetchall()
        )
        tallied = dict(
            conn.execute(
                "SELECT o.code, SUM(t.count) FROM enrolment_tally t JOIN opd o ON o.id = t.opd_id"
                " WHERE o.code LIKE 'IMP%' AND t.event = 'enrolled' GROUP BY o.code"
            ).fetchall()
        )
    expected = {f"IMP{n:02d}" for n in range(1, imports + 1)}
    ok = set(listed) == expected and all(
        listed[c] == f"{valid}/{valid}" and tallied.get(c) == valid for c in expected
    )
    return {"ok": ok, "listed": listed, "tallied": tallied}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--imports", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    from cryptography.fernet import Fernet

    os.environ["SPI_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    os.environ["SPI_BLIND_INDEX_KEY"] = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="spi-bench-") as tmp_name:
        tmp = Path(tmp_name)
        db_file = tmp / "spi.db"
        url = f"sqlite:///{db_file}"
        started = time.perf_counter()
        seeded = seed(url, args.people, args.imports)
        csv_path = tmp / "pegawai.csv"
        valid = generate_csv(csv_path, args.rows)
        print(
            f"seeded {args.people:,} people and a round in {time.perf_counter() - started:.1f} s;"
            f" each import: {args.rows:,} rows, {valid:,} valid"
        )
        port = _free_port()
        server = start_server(url, tmp, port)
        base = f"http://127.0.0.1:{port}"
        try:
            result = _measure(base, db_file, seeded, csv_path, args)
            metrics = httpx.get(base + "/metrics", timeout=30).text
        finally:
            stop_server(server)
        leader = any(line.startswith("spi_scheduler_leader 1") for line in metrics.splitlines())
        checked = verify(db_file, valid, args.imports)
    return _report(result, checked, leader, args)


def _measure(
    base: str, db_file: Path, seeded: dict[str, Any], csv_path: Path, args: Any
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while sent_count(db_file) == 0:
        if time.monotonic() > deadline:
            raise SystemExit("the worker sent nothing within 60 s")
        time.sleep(0.5)
    load = Load(base, seeded["tokens"], seeded["campaign_id"], db_file)
    threads = load.run(args.clients)
    time.sleep(3)  # warm-up
    base_start = time.perf_counter()
    base_rate = rate_over(db_file, args.baseline_seconds)
    base_end = time.perf_counter()
    uploads: dict[str, Any] = {}
    workers = [
        threading.Thread(
            target=upload,
            args=(base, seeded["tokens"][f"IMP{n:02d}"], f"IMP{n:02d}", csv_path, uploads),
        )
        for n in range(1, args.imports + 1)
    ]
    sent_before, imports_start = sent_count(db_file), time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    imports_end = time.perf_counter()
    import_rate = (sent_count(db_file) - sent_before) / (imports_end - imports_start)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return {
        "base_rate": base_rate,
        "import_rate": import_rate,
        "uploads": uploads,
        "base_requests": load.between(base_start, base_end),
        "import_requests": load.between(imports_start, imports_end),
        "window": imports_end - imports_start,
        "sent_total": sent_count(db_file),
    }


def _report(result: dict[str, Any], checked: dict[str, Any], leader: bool, args: Any) -> int:
    print(f"\n{'import':<8}{'status':>7}{'seconds':>9}  summary")
    for code, r in sorted(result["uploads"].items()):
        s = r["summary"]
        text = f"{s['enrolled']:,} enrolled, {s['invalid']:,} invalid" if isinstance(s, dict) else s
        print(f"{code:<8}{r['status']:>7}{r['seconds']:>9.1f}  {text}")
    print(f"imports window: {result['window']:.1f} s for {args.imports} x {args.rows:,} rows")
    print(latency_line("other requests without imports", result["base_requests"]))
    print(latency_line("other requests during imports ", result["import_requests"]))
    for kind in ("list", "stats", "opds", "webhook"):
        print(
            latency_line(
                f"  {kind:<7} during imports",
                [d for d in result["import_requests"] if d[2] == kind],
            )
        )
    share = result["import_rate"] / result["base_rate"] if result["base_rate"] else 0.0
    print(
        f"worker: {result['base_rate']:.1f} msg/s without imports,"
        f" {result['import_rate']:.1f} msg/s during them ({share:.0%});"
        f" {result['sent_total']:,} sent in all"
    )
    print(
        f"every valid row listed once and counted once: {checked['ok']}"
        + ("" if checked["ok"] else f" {checked}")
    )
    print(f"scheduler still leads: {leader}")
    statuses_ok = all(r["status"] == 200 for r in result["uploads"].values())
    no_5xx = not any(d[3] >= 500 for d in result["import_requests"])
    latency_ok = p99(result["import_requests"]) < TARGET_P99_SECONDS
    rate_ok = share >= TARGET_RATE_SHARE
    met = statuses_ok and no_5xx and latency_ok and rate_ok and checked["ok"] and leader
    print(
        f"targets (p99 < {TARGET_P99_SECONDS:.0f} s, worker >= {TARGET_RATE_SHARE:.0%} of its rate,"
        f" no 5xx, all imports 200): {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
