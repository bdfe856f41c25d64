"""Dispatch benchmark: one worker sending a round through the sandbox Graph API on loopback.

Run with:  .venv/bin/python -m bench.dispatch  [--people 50000] [--database sqlite|postgresql]

The fake Graph API runs in its own process (`spi-reminder sandbox serve`), the worker in
another, each phase in a fresh interpreter so that peak RSS is the worker's own:

1. throughput: a round to `--people` (50,000) people, rate limit off: messages/s (first
   claim to last record) and worker CPU seconds per 1,000 messages;
2. memory: peak RSS of the worker for rounds of 10,000 and 200,000 recipients;
3. pacing: the rate the fake receives with the limit at 80/s, over `--paced-seconds`.

Targets on a 2-core machine: >= 1,000 messages/s; peak RSS < 200 MB and flat from 10k to
200k; the limited rate within ±5% of 80/s. Other processes on the machine skew the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# A Tuesday 10:00 in Jakarta: the worker's clock runs from here, inside the send window.
CLOCK_AT = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
OPD_CODE = "BENCH"
TARGET_RATE = 1000.0
TARGET_RSS_MB = 200.0
PACED_RATE = 80.0
# "Flat": the worker keeps no per-recipient state, but native caches (SQLite's page cache,
# malloc arenas of the two DB threads) warm up over the first ~40,000 sends and then stay put;
# a 10,000 run ends before that. Growth up to this share of the 10k figure counts as flat.
FLAT = 0.15


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _keys() -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "SPI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SPI_BLIND_INDEX_KEY": secrets.token_hex(32),
    }


def _settings(url: str) -> Any:
    from app.config import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        encryption_keys=os.environ["SPI_ENCRYPTION_KEYS"],
        blind_index_key=os.environ["SPI_BLIND_INDEX_KEY"],
        institution_name="Pemerintah Kota Contoh",
    )


# -- child: populate -----------------------------------------------------------------------


def populate(url: str, people: int) -> dict[str, Any]:
    """Migrate, enrol `people` (bulk), create an active campaign and one round."""
    from sqlalchemy import insert

    from app import schema_migrations
    from app.auth.principal import cli_principal
    from app.campaigns import editing as campaign_editing
    from app.campaigns import service as campaign_service
    from app.campaigns.models import Campaign
    from app.campaigns.rounds import MANUAL, create_round
    from app.campaigns.schemas import CampaignCreate
    from app.db import make_engine, session_scope
    from app.enrolment.models import Enrolment
    from app.opds import service as opd_service
    from app.opds.schemas import OpdCreate
    from app.security import PhoneVault, load_keys
    from app.templates import service as template_service

    started = time.perf_counter()
    schema_migrations.upgrade_to_head(url)
    settings = _settings(url)
    vault = PhoneVault(load_keys(settings))
    engine = make_engine(url)
    actor = cli_principal()
    day_before = CLOCK_AT - timedelta(days=1)
    with session_scope(engine) as s:
        opd = opd_service.create_opd(
            s, actor=actor, data=OpdCreate(code=OPD_CODE, name="Benchmark", timezone="WIB")
        )
        seed = template_service.seed_definitions()[0]
        template = template_service.register(
            s,
            actor=actor,
            name=str(seed["name"]),
            language="id",
            category="UTILITY",
            body=str(seed["body"]),
            parameters=list(seed["parameters"]),
        )
        assert template.id is not None
        campaign = campaign_editing.create_campaign(
            s,
            actor=actor,
            data=CampaignCreate(
                name="SPI bench",
                spi_year=2026,
                first_day=day_before.date(),
                last_day=(CLOCK_AT + timedelta(days=30)).date(),
                template_id=template.id,
            ),
            now=day_before,
        )
        assert campaign.id is not None
        campaign_service.activate(
            s, actor=actor, campaign_id=campaign.id, now=day_before, settings=settings
        )
        campaign_id = campaign.id
        opd_id = opd.id
    batch: list[dict[str, Any]] = []
    for n in range(people):
        phone = f"+62812{n:08d}"
        batch.append(
            {
                "public_id": secrets.token_hex(8),
                "opd_id": opd_id,
                "phone_ciphertext": vault.encrypt(phone),
                "phone_index": vault.blind_index(phone),
                "consent_method": "paper_form",
                "consent_recorded_at": day_before,
                "consent_notice_version": "2026-1",
                "consent_recorded_by": "bench",
                "status": "active",
                "enrolled_at": day_before,
            }
        )
        if len(batch) == 5000 or n == people - 1:
            with session_scope(engine) as s:
                s.execute(insert(Enrolment), batch)
            batch = []
    with session_scope(engine) as s:
        campaign_row = s.get(Campaign, campaign_id)
        assert campaign_row is not None
        created = create_round(
            s,
            campaign=campaign_row,
            timezone="Asia/Jakarta",
            scheduled_for=CLOCK_AT,
            send_at=CLOCK_AT,
            origin=MANUAL,
            now=CLOCK_AT,
        )
        assert created is not None
        recipients = created.recipients
    engine.dispose()
    return {"recipients": recipients, "seconds": time.perf_counter() - started}


# -- child: run the worker -----------------------------------------------------------------


def run_worker(url: str, expected: int, duration: float | None) -> dict[str, Any]:
    """One worker until `expected` requests were made (or for `duration` seconds)."""
    from app.db import make_engine, session_scope
    from app.outbox import service as outbox_service
    from app.outbox.worker import OutboxWorker
    from app.sandbox import connect as sandbox_connect
    from app.security import PhoneVault, load_keys

    settings = _settings(url)
    engine = make_engine(url, pool_size=4)
    epoch = time.time()

    def clock() -> datetime:
        return CLOCK_AT + timedelta(seconds=time.time() - epoch)

    async def main() -> dict[str, Any]:
        # The fake runs in its own process on loopback (SPI_SANDBOX_URL), as Meta would.
        messenger = await sandbox_connect.open_standalone(settings, url=settings.sandbox_url)
        worker = OutboxWorker(
            engine=engine,
            settings=settings,
            messenger=messenger,
            vault=PhoneVault(load_keys(settings)),
            clock=clock,
        )
        result_start_rss = _rss_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        deadline = None if duration is None else started + duration
        while worker.sent < expected and (deadline is None or time.perf_counter() < deadline):
            await asyncio.sleep(0.05)
            if task.done():
                break
        worker.stop()
        await task
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        await messenger.aclose()
        return {
            "sent": worker.sent,
            "seconds": seconds,
            "cpu_seconds": (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime),
            "batch": worker.batch_limit(),
            "rss_at_start_mb": result_start_rss,
            "concurrency": messenger.concurrency,
        }

    result = asyncio.run(main())
    # Peak before the check below, whose one-off GROUP BY is not the worker's memory.
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with session_scope(engine) as s:
        result["counts"] = outbox_service.outbox_counts(s)
    engine.dispose()
    return result


# -- parent --------------------------------------------------------------------------------


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.dispatch", "--child", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fake:
    """The sandbox Graph API in its own process."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SPI_DATA_DIR": str(tmp / "fake"), "SPI_LOG_LEVEL": "WARNING"}
        env.pop("SPI_DATABASE_URL", None)
        command = [str(BIN / "spi-reminder"), "sandbox", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--webhook-url", ""],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/sandbox/stats", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the sandbox did not start")

    def reset(self) -> None:
        httpx.post(self.url + "/sandbox/reset", timeout=30).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(self.url + "/sandbox/stats", timeout=30).json()
        return answer

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _database(kind: str, tmp: Path, name: str) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / (name + '.db')}", None
    from sqlalchemy import create_engine, text

    db = f"spi_bench_{name}_{secrets.token_hex(3)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db, drop


def _phase(
    fake: Fake,
    kind: str,
    tmp: Path,
    name: str,
    people: int,
    env: dict[str, str],
    duration: float | None = None,
) -> dict[str, Any]:
    url, drop = _database(kind, tmp, name)
    try:
        populated = _child(["populate", url, str(people)], env)
        fake.reset()
        fake_cpu = _cpu_seconds(fake.process.pid)
        expected = populated["recipients"] if duration is None else 10**9
        result = _child(
            ["run", url, str(expected), str(duration if duration is not None else "")], env
        )
        result["fake_cpu_seconds"] = _cpu_seconds(fake.process.pid) - fake_cpu
        result["fake"] = fake.stats()
        result["recipients"] = populated["recipients"]
        result["setup_seconds"] = populated["seconds"]
        return result
    finally:
        if drop is not None:
            drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--paced-seconds", type=float, default=30.0)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--phases", default="throughput,memory,paced")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        what, url, number, *rest = args.child
        if what == "populate":
            print(json.dumps(populate(url, int(number))))
        else:
            duration = float(rest[0]) if rest and rest[0] else None
            print(json.dumps(run_worker(url, int(number), duration)))
        return 0

    phases = set(args.phases.split(","))
    report: dict[str, Any] = {"database": args.database, "cpus": os.cpu_count()}
    ok = True
    with tempfile.TemporaryDirectory(prefix="spi-dispatch-") as tmp_name:
        tmp = Path(tmp_name)
        fake = Fake(tmp)
        # Rounds are measured whole: the messaging limit (which would spread 50,000 people over
        # many days) is off, so every delivery is due now and the worker's rate is what counts.
        env = {**os.environ, **_keys(), "SPI_SANDBOX_URL": fake.url, "SPI_MESSAGING_LIMIT": "0"}
        env.pop("SPI_WHATSAPP_ACCESS_TOKEN", None)
        unlimited = {**env, "SPI_SEND_RATE_PER_SECOND": "0"}
        try:
            if "throughput" in phases:
                r = _phase(fake, args.database, tmp, "throughput", args.people, unlimited)
                rate = r["sent"] / r["seconds"]
                report["throughput"] = r
                ok &= rate >= TARGET_RATE
                print(
                    f"throughput: {r['sent']:,} messages in {r['seconds']:.1f} s = {rate:,.0f}/s "
                    f"(target >= {TARGET_RATE:,.0f}); worker CPU "
                    f"{r['cpu_seconds'] / r['sent'] * 1000:.2f} s per 1,000; fake CPU "
                    f"{r['fake_cpu_seconds'] / r['sent'] * 1000:.2f} s per 1,000; "
                    f"peak RSS {r['peak_rss_mb']:.0f} MB; duplicates at the fake: "
                    f"{r['fake']['max_per_callback'] > 1}"
                )
            if "memory" in phases:
                rss = {}
                for people in (args.small, args.large):
                    r = _phase(fake, args.database, tmp, f"rss{people}", people, unlimited)
                    report[f"memory_{people}"] = r
                    rss[people] = r["peak_rss_mb"]
                    print(
                        f"memory: {people:,} recipients: peak RSS {r['peak_rss_mb']:.0f} MB "
                        f"({r['sent'] / r['seconds']:,.0f} messages/s)"
                    )
                growth = rss[args.large] - rss[args.small]
                ok &= max(rss.values()) < TARGET_RSS_MB and growth < FLAT * rss[args.small]
                print(
                    f"memory: growth {growth:+.1f} MB from {args.small:,} to {args.large:,} "
                    f"(flat: < {FLAT:.0%})"
                )
            if "paced" in phases:
                paced = {**env, "SPI_SEND_RATE_PER_SECOND": str(PACED_RATE)}
                r = _phase(
                    fake, args.database, tmp, "paced", args.people, paced, args.paced_seconds
                )
                rate = r["sent"] / r["seconds"]
                report["paced"] = r
                ok &= abs(rate - PACED_RATE) <= 0.05 * PACED_RATE
                print(
                    f"paced: {r['sent']:,} messages in {r['seconds']:.1f} s = {rate:.2f}/s "
                    f"(limit {PACED_RATE:.0f}/s, target ±5%)"
                )
        finally:
            fake.close()
    print(json.dumps(report, default=str))
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
