"""Dispatch benchmark: worker processes sending rounds through the sandbox Graph API on loopback.

Run with:  .venv/bin/python -m bench.dispatch  [--people 50000] [--database postgresql|sqlite]
           [--workers 1,3] [--latency-ms 150]

The fake Graph API runs in its own process (`spi-reminder sandbox serve`) and answers every
send after `--latency-ms` (150 ms: a Graph round trip from Indonesia); it records when each
request arrived. Each worker runs in a fresh interpreter, so peak RSS is the worker's own.
For each worker count (1, then 3; several workers need PostgreSQL):

1. throughput: a round to `--people` (50,000) people, rate limit off: messages/s at the fake
   (first to last arrival), worker CPU seconds per 1,000 messages, peak RSS per worker;
2. paced: the limit at 80/s for `--paced-seconds`: the rate the fake received (all workers
   together, from the second second on) and its busiest one-second window;

and once, with one worker: 3. memory: peak RSS for rounds of 10,000 and 200,000 recipients.

Targets on a 2-core machine: >= 1,000 messages/s in total; the limited rate within ±5% of
80/s in total; peak RSS < 200 MB and flat from 10k to 200k. Other processes skew the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    from sqlalchemy import insert, text

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
    # As bench.rounds does, and as autovacuum would on a server where it is on (it is off on
    # this machine): without statistics the round's INSERT for 200,000 ran for over 10 minutes.
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
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


def run_worker(url: str, epoch: float) -> dict[str, Any]:
    """One worker until SIGTERM (the parent sends it when the fake has seen enough)."""
    from app.db import make_engine
    from app.outbox.worker import OutboxWorker
    from app.sandbox import connect as sandbox_connect
    from app.security import PhoneVault, load_keys

    settings = _settings(url)
    engine = make_engine(url, pool_size=4)

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
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
        result_start_rss = _rss_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        await worker.run()
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
            "pace": worker.pace.describe(),
        }

    result = asyncio.run(main())
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine.dispose()
    return result


def counts(url: str) -> dict[str, Any]:
    """Deliveries per state after a phase."""
    from app.db import make_engine, session_scope
    from app.outbox import service as outbox_service

    engine = make_engine(url)
    with session_scope(engine) as s:
        result: dict[str, Any] = outbox_service.outbox_counts(s)
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

    def stats(self, *, detail: bool = False) -> dict[str, Any]:
        query = "?detail=1" if detail else ""
        answer: dict[str, Any] = httpx.get(self.url + "/sandbox/stats" + query, timeout=60).json()
        return answer

    def warm_up(self, latency_ms: float) -> None:
        """Compile Meta's spec before the clock runs, then answer after `latency_ms`."""
        path = "/v23.0/100000000000001/messages"
        headers = {"Authorization": "Bearer warm-up"}
        httpx.post(self.url + path, json={"to": "+6281100000000"}, headers=headers, timeout=60)
        faults = {"latency_ms": latency_ms}
        httpx.post(self.url + "/sandbox/faults", json=faults, timeout=10).raise_for_status()

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


def _run_workers(
    fake: Fake, url: str, env: dict[str, str], workers: int, enough: Callable[[Any], bool]
) -> list[dict[str, Any]]:
    """Start `workers` worker processes; stop them once enough(fake stats) holds."""
    epoch = repr(time.time())
    command = [sys.executable, "-m", "bench.dispatch", "--child", "run", url, epoch]
    procs = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(workers)
    ]
    try:
        while not enough(fake.stats()) and all(p.poll() is None for p in procs):
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"benchmark worker failed:\n{err[-4000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _phase(
    fake: Fake,
    kind: str,
    tmp: Path,
    name: str,
    people: int,
    env: dict[str, str],
    *,
    workers: int = 1,
    duration: float | None = None,
) -> dict[str, Any]:
    """Populate a database, send its round with `workers` processes, read the fake's view."""
    url, drop = _database(kind, tmp, name)
    try:
        populated = _child(["populate", url, str(people)], env)
        fake.reset()
        fake_cpu = _cpu_seconds(fake.process.pid)
        recipients = populated["recipients"]
        first_seen: list[float] = []

        def enough(stats: dict[str, Any]) -> bool:
            if duration is None:
                return bool(stats["requests"] >= recipients)
            if stats["requests"] and not first_seen:
                first_seen.append(time.monotonic())
            return bool(first_seen) and time.monotonic() - first_seen[0] >= duration

        each = _run_workers(fake, url, env, workers, enough)
        fake_cpu = _cpu_seconds(fake.process.pid) - fake_cpu
        stats = fake.stats(detail=True)
        arrivals = stats.pop("arrivals")
        times: list[float] = arrivals.pop("times")
        by_callback = stats.pop("by_callback")
        return {
            "workers": each,
            "sent": sum(w["sent"] for w in each),
            "cpu_seconds": sum(w["cpu_seconds"] for w in each),
            "peak_rss_mb": max(w["peak_rss_mb"] for w in each),
            "fake_cpu_seconds": fake_cpu,
            "fake": stats,
            "duplicates": max(by_callback.values(), default=0) > 1,
            "arrived": len(times),
            "span_seconds": arrivals["span_seconds"],
            "busiest_second": arrivals["busiest_second"],
            "steady_rate": _steady_rate(times),
            "recipients": recipients,
            "setup_seconds": populated["seconds"],
            "counts": _child(["counts", url, "-"], env),
        }
    finally:
        if drop is not None:
            drop()


def _steady_rate(times: list[float]) -> float:
    """Arrivals per second from the second second on (workers start one after another)."""
    steady = [t for t in times if t >= 1.0]
    if len(steady) < 2:
        return 0.0
    return (len(steady) - 1) / (steady[-1] - steady[0])


@dataclass(frozen=True)
class Bench:
    """What every phase of one benchmark run shares."""

    fake: Fake
    args: argparse.Namespace
    tmp: Path
    report: dict[str, Any]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--paced-seconds", type=float, default=30.0)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--workers", default="1,3", help="worker counts to run, in order")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--phases", default="throughput,paced,memory")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        what, url, number = args.child
        if what == "populate":
            print(json.dumps(populate(url, int(number))))
        elif what == "counts":
            print(json.dumps(counts(url)))
        else:
            print(json.dumps(run_worker(url, float(number))))
        return 0

    phases = set(args.phases.split(","))
    worker_counts = [int(n) for n in args.workers.split(",")]
    if args.database == "sqlite" and max(worker_counts) > 1:
        parser.error("several workers share a queue only on PostgreSQL")
    report: dict[str, Any] = {
        "database": args.database,
        "cpus": os.cpu_count(),
        "latency_ms": args.latency_ms,
    }
    ok = True
    with tempfile.TemporaryDirectory(prefix="spi-dispatch-") as tmp_name:
        tmp = Path(tmp_name)
        fake = Fake(tmp)
        fake.warm_up(args.latency_ms)
        # Rounds are measured whole: the messaging limit (which would spread 50,000 people over
        # many days) is off, so every delivery is due now and the worker's rate is what counts.
        env = {**os.environ, **_keys(), "SPI_SANDBOX_URL": fake.url, "SPI_MESSAGING_LIMIT": "0"}
        env.pop("SPI_WHATSAPP_ACCESS_TOKEN", None)
        unlimited = {**env, "SPI_SEND_RATE_PER_SECOND": "0"}
        paced = {**env, "SPI_SEND_RATE_PER_SECOND": str(PACED_RATE)}
        run = Bench(fake, args, tmp, report)
        try:
            for workers in worker_counts:
                if "throughput" in phases:
                    ok &= _throughput(run, unlimited, workers)
                if "paced" in phases:
                    ok &= _paced(run, paced, workers)
            if "memory" in phases:
                ok &= _memory(run, unlimited)
        finally:
            fake.close()
    print(json.dumps(report, default=str))
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


def _throughput(run: Bench, env: dict[str, str], workers: int) -> bool:
    fake, args, tmp, report = run.fake, run.args, run.tmp, run.report
    name = f"throughput{workers}"
    r = _phase(fake, args.database, tmp, name, args.people, env, workers=workers)
    report[name] = r
    rate = r["arrived"] / r["span_seconds"] if r["span_seconds"] else 0.0
    sent = max(1, r["sent"])
    print(
        f"throughput, {workers} worker(s): {r['arrived']:,} messages at the fake in "
        f"{r['span_seconds']:.1f} s = {rate:,.0f}/s (target >= {TARGET_RATE:,.0f}); worker CPU "
        f"{r['cpu_seconds'] / sent * 1000:.2f} s per 1,000; fake CPU "
        f"{r['fake_cpu_seconds'] / sent * 1000:.2f} s per 1,000; peak RSS per worker "
        f"{r['peak_rss_mb']:.0f} MB; {r['workers'][0]['concurrency']} in flight per worker; "
        f"duplicates at the fake: {r['duplicates']}"
    )
    return rate >= TARGET_RATE and not r["duplicates"]


def _paced(run: Bench, env: dict[str, str], workers: int) -> bool:
    fake, args, tmp, report = run.fake, run.args, run.tmp, run.report
    name = f"paced{workers}"
    people = max(args.people, int(PACED_RATE * (args.paced_seconds + 5)))
    r = _phase(
        fake, args.database, tmp, name, people, env, workers=workers, duration=args.paced_seconds
    )
    report[name] = r
    rate = r["steady_rate"]
    print(
        f"paced, {workers} worker(s): {r['arrived']:,} messages in {r['span_seconds']:.1f} s, "
        f"{rate:.2f}/s after the first second (limit {PACED_RATE:.0f}/s, target ±5%); busiest "
        f"second {r['busiest_second']} (limit +5%: {PACED_RATE * 1.05:.0f}); pace: "
        f"{'; '.join(w['pace'] for w in r['workers'])}"
    )
    # A second may hold one message more than the rate + 5 % (whole messages, 40 ms lateness).
    return abs(rate - PACED_RATE) <= 0.05 * PACED_RATE and (
        r["busiest_second"] <= PACED_RATE * 1.05 + 1
    )


def _memory(run: Bench, env: dict[str, str]) -> bool:
    fake, args, tmp, report = run.fake, run.args, run.tmp, run.report
    rss = {}
    for people in (args.small, args.large):
        r = _phase(fake, args.database, tmp, f"rss{people}", people, env)
        report[f"memory_{people}"] = r
        rss[people] = r["peak_rss_mb"]
        rate = r["arrived"] / r["span_seconds"] if r["span_seconds"] else 0.0
        print(
            f"memory: {people:,} recipients: peak RSS {r['peak_rss_mb']:.0f} MB "
            f"({rate:,.0f} messages/s)"
        )
    growth = rss[args.large] - rss[args.small]
    flat = f"(flat: < {FLAT:.0%})"
    print(f"memory: growth {growth:+.1f} MB from {args.small:,} to {args.large:,} {flat}")
    return max(rss.values()) < TARGET_RSS_MB and growth < FLAT * rss[args.small]


if __name__ == "__main__":
    sys.exit(main())
