"""Round-creation benchmark: one round for 200,000 enrolled people across 200 OPDs, per database.

Run with:  .venv/bin/python -m bench.rounds  [--people N] [--opds N] [--databases sqlite,postgresql]

For each database a fresh one is migrated to head and seeded (executemany of pre-built rows; 1 %
of the numbers are on the suppression list), then `create_round` is timed in a fresh subprocess
so that its peak RSS is its own: first round (no history), then a second round a week later
(every person has one counted delivery, so the budget check reads 200,000 history rows).
Target: under 5 s per round on each database, memory flat (no per-person Python objects).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import fresh_database

TARGET_SECONDS = 5.0
TIMEZONE = "Asia/Jakarta"
FIRST_ROUND = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB
BATCH = 10_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(url: str, people: int, opds: int) -> dict[str, Any]:
    """Migrate and fill a fresh database; return the campaign id and timings."""
    from sqlalchemy import insert, text

    from app import schema_migrations
    from app.campaigns.models import Campaign
    from app.db import make_engine, session_scope
    from app.enrolment.models import Enrolment, Suppression
    from app.opds.models import Opd
    from app.templates.models import MessageTemplate

    started = time.perf_counter()
    schema_migrations.upgrade_to_head(url)
    engine = make_engine(url)
    now = datetime(2026, 2, 20, tzinfo=UTC)
    with session_scope(engine) as session:
        session.execute(
            insert(Opd),
            [
                {"code": f"OPD{n:03d}", "name": f"OPD {n}", "timezone": TIMEZONE, "created_at": now}
                for n in range(opds)
            ],
        )
        opd_ids = [r[0] for r in session.execute(text("SELECT id FROM opd ORDER BY id"))]
        template = MessageTemplate(name="bench", body="Pengingat SPI.", status="SANDBOX")
        session.add(template)
        session.flush()
        campaign = Campaign(
            name="Bench",
            spi_year=2026,
            first_day=date(2026, 3, 1),
            last_day=date(2026, 4, 30),
            template_id=template.id or 0,
            state="active",
            max_reminders=3,
            min_gap_days=7,
        )
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    suppressed = 0
    for start in range(0, people, BATCH):
        rows = [
            {
                "public_id": secrets.token_urlsafe(12),
                "opd_id": opd_ids[n * len(opd_ids) // people],  # imported OPD by OPD
                "phone_ciphertext": "gAAAAABbench-dummy-ciphertext",
                "phone_index": secrets.token_hex(32),
                "consent_method": "paper_form",
                "consent_recorded_at": now,
                "consent_notice_version": "2026-1",
                "consent_recorded_by": "bench",
                "status": "active",
                "enrolled_at": now,
            }
            for n in range(start, min(start + BATCH, people))
        ]
        stops = [
            {"phone_index": r["phone_index"], "source": "stop", "since": now} for r in rows[::100]
        ]
        suppressed += len(stops)
        with session_scope(engine) as session:
            session.execute(insert(Enrolment), rows)
            session.execute(insert(Suppression), stops)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    engine.dispose()
    return {
        "campaign_id": campaign_id,
        "eligible": people - suppressed,
        "seed_seconds": time.perf_counter() - started,
    }


def _backend_cpu_seconds(pid: int | None) -> float:
    """CPU time of the local PostgreSQL backend serving us (0 when not readable)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_round(url: str, campaign_id: int, send_at: datetime) -> dict[str, Any]:
    """Create one round in this (fresh) process; seconds, recipients and peak RSS."""
    from sqlalchemy import text

    from app.campaigns import rounds
    from app.campaigns.models import Campaign
    from app.db import make_engine, session_scope

    engine = make_engine(url)
    with session_scope(engine) as session:  # connect and warm up imports outside the timing
        session.get(Campaign, campaign_id)
    rss_before = _rss_mb()
    started = time.perf_counter()
    cpu_started = time.process_time()
    with session_scope(engine) as session:
        backend = None
        if engine.dialect.name == "postgresql":
            backend = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        backend_started = _backend_cpu_seconds(backend)
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        created = rounds.create_round(
            session,
            campaign=campaign,
            timezone=TIMEZONE,
            scheduled_for=send_at,
            send_at=send_at,
            origin="schedule",
            now=send_at,
        )
        assert created is not None
        recipients = created.recipients
        session.commit()
        backend_cpu = _backend_cpu_seconds(backend) - backend_started
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started + backend_cpu
    engine.dispose()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "recipients": recipients,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb(),
        "load": os.getloadavg()[0],
    }


def _child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.rounds", "--child", *args],
        # The round is timed whole: with the messaging limit on, 200,000 people would be spread
        # over weeks of batches and partly skipped, which is not what the README's row measures.
        env={**os.environ, "SPI_MESSAGING_LIMIT": "0"},
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _run_database(url: str, people: int, opds: int) -> list[dict[str, Any]]:
    seeded = _child("seed", url, str(people), str(opds))
    cid = str(seeded["campaign_id"])
    print(f"  seeded {people:,} enrolments in {opds} OPDs in {seeded['seed_seconds']:.1f} s")
    results = []
    for label, send_at in (
        ("first round", FIRST_ROUND),
        ("a week later", FIRST_ROUND + timedelta(days=7)),
    ):
        result = _child("round", url, cid, send_at.isoformat())
        result["label"] = label
        if result["recipients"] != seeded["eligible"]:
            raise RuntimeError(
                f"{label}: {result['recipients']} recipients, expected {seeded['eligible']}"
            )
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--opds", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, url, *rest = args.child
        if kind == "seed":
            out = seed(url, int(rest[0]), int(rest[1]))
        else:
            out = time_round(url, int(rest[0]), datetime.fromisoformat(rest[1]))
        print(json.dumps(out))
        return 0

    failed = False
    with tempfile.TemporaryDirectory(prefix="spi-bench-") as tmp:
        for database in args.databases.split(","):
            if database not in ("sqlite", "postgresql"):
                parser.error(f"unknown database {database!r}")
            with fresh_database(database, Path(tmp) / "rounds.db") as url:
                if url is None:
                    continue
                print(f"{database}:")
                results = _run_database(url, args.people, args.opds)
            for r in results:
                ok = r["seconds"] < TARGET_SECONDS
                failed = failed or not ok
                print(
                    f"  {r['label']:<13} {r['recipients']:>8,} deliveries  {r['seconds']:6.2f} s "
                    f"(CPU {r['cpu_seconds']:.2f} s, load {r['load']:.1f})  "
                    f"RSS {r['rss_before_mb']:.0f} MB before, peak {r['peak_rss_mb']:.0f} MB  "
                    f"{'ok' if ok else f'OVER {TARGET_SECONDS:.0f} s'}"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
