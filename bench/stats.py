"""Statistics benchmark: 1,000,000 deliveries over 200 OPDs and 90 days, per database.

Run with:  .venv/bin/python -m bench.stats  [--deliveries N] [--requests N]
                                          [--databases sqlite,postgresql]

The statistics read only the aggregate counters, so the deliveries are generated as they end
up in `delivery_tally` (campaign, OPD, local day, outcome): about 87,000 counter rows (a zero is
not stored), plus the enrolment counters (OPD, day, event). The endpoints never read the
`delivery` table, so its 1,000,000 per-person rows are not inserted. OPD sizes vary
(log-normal), so small OPDs have counts below 5 and the suppression has real work.

Each endpoint is called through the real FastAPI app (TestClient: auth, SQL, suppression,
JSON/CSV) after a warm-up, and p50/p95 are reported twice: "cold", with the statistics cache
emptied before each request (every request queries the counters and runs the suppression; the
targets apply to this), and "warm" (unchanged counters, as for the second view of a dashboard
page). PostgreSQL runs in a fresh database spi_bench_<random>, dropped afterwards
(SPI_BENCH_POSTGRES_URL, default postgres@127.0.0.1:5432).

Targets: p95 under 200 ms on PostgreSQL and under 1 s on SQLite.
"""

from __future__ import annotations

import argparse
import random
import secrets
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import fresh_database

TARGET_P95 = {"postgresql": 0.200, "sqlite": 1.0}
OPDS = 200
DAYS = 90
# share of scheduled deliveries per outcome (the rest stay accepted without a delivered status)
SHARES = {
    "failed_not_on_whatsapp": 0.020,
    "failed_refused": 0.004,
    "failed_other": 0.003,
    "unknown": 0.002,
    "skipped": 0.006,
}
DELIVERED_OF_ACCEPTED = 0.93
RETRIED = 0.03


def _split(total: int, weights: list[float], rng: random.Random) -> list[int]:
    """`total` split into integers proportional to `weights` (exact sum)."""
    scale = sum(weights)
    raw = [total * w / scale for w in weights]
    out = [int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[
        : total - sum(out)
    ]:
        out[i] += 1
    return out


def _binomial(n: int, p: float, rng: random.Random) -> int:
    if n <= 0:
        return 0
    if n < 50:
        return sum(rng.random() < p for _ in range(n))
    mean, sd = n * p, (n * p * (1 - p)) ** 0.5
    return max(0, min(n, round(rng.gauss(mean, sd))))


def populate(url: str, *, deliveries: int, seed: int = 20261121) -> dict[str, Any]:
    """Schema, 200 OPDs, tokens, one 90-day campaign, and its counters."""
    from cryptography.fernet import Fernet  # noqa: F401  (keys are made by the caller)
    from sqlalchemy import insert

    from app import schema_migrations
    from app.auth import service as auth_service
    from app.auth.models import Role
    from app.auth.principal import cli_principal
    from app.campaigns.models import Campaign
    from app.db import make_engine, session_scope, utcnow
    from app.enrolment.models import EnrolmentTally
    from app.opds.models import Opd
    from app.outbox.models import DeliveryTally
    from app.stats.service import last_closed_day
    from app.templates.models import MessageTemplate

    rng = random.Random(seed)
    schema_migrations.upgrade_to_head(url)
    engine = make_engine(url)
    # The statistics' today is the WIB date (a day closes when it has ended in WIB).
    today = last_closed_day(utcnow()) + timedelta(days=1)
    first = today - timedelta(days=DAYS - 1)
    started = time.perf_counter()
    with session_scope(engine) as s:
        zones = ["Asia/Jakarta"] * 6 + ["Asia/Makassar"] * 3 + ["Asia/Jayapura"]
        s.execute(
            insert(Opd),
            [
                {"code": f"OPD{i:03d}", "name": f"Dinas Uji {i}", "timezone": zones[i % 10]}
                for i in range(OPDS)
            ],
        )
        template = MessageTemplate(name="bench_stats", body="Pengingat SPI {{1}}", status="SANDBOX")
        s.add(template)
        s.flush()
        assert template.id is not None
        campaign = Campaign(
            name="SPI bench",
            spi_year=today.year,
            first_day=first,
            last_day=today,
            template_id=template.id,
            state="active",
        )
        s.add(campaign)
        s.flush()
        assert campaign.id is not None
        campaign_id = campaign.id
        opd_ids = [o for (o,) in s.execute(Opd.__table__.select().with_only_columns(Opd.id))]  # type: ignore[attr-defined]
        _, inspectorate = auth_service.create_token(
            s, actor=cli_principal(), role=Role.inspectorate, name="bench inspektorat"
        )
        _, coordinator = auth_service.create_token(
            s, actor=cli_principal(), role=Role.coordinator, name="bench koord", opd_code="OPD007"
        )
    sizes = [rng.lognormvariate(0, 1.0) for _ in opd_ids]
    per_opd = _split(deliveries, sizes, rng)
    tally_rows: list[dict[str, Any]] = []
    enrol_rows: list[dict[str, Any]] = []
    for opd_id, total in zip(opd_ids, per_opd, strict=True):
        per_day = _split(total, [rng.uniform(0.5, 1.5) for _ in range(DAYS)], rng)
        people = max(1, total // 3)  # about three reminders per person
        enrol_rows.append(
            {
                "opd_id": opd_id,
                "day": first - timedelta(days=7),
                "event": "enrolled",
                "count": people,
            }
        )
        for d, scheduled in enumerate(per_day):
            if scheduled == 0:
                continue
            day = first + timedelta(days=d)
            counts = {"scheduled": scheduled}
            left = scheduled
            for outcome, share in SHARES.items():
                n = min(left, _binomial(scheduled, share, rng))
                counts[outcome] = n
                left -= n
            counts["accepted"] = left
            counts["delivered"] = _binomial(left, DELIVERED_OF_ACCEPTED, rng)
            counts["retried"] = _binomial(scheduled, RETRIED, rng)
            tally_rows += [
                {"campaign_id": campaign_id, "opd_id": opd_id, "day": day, "outcome": o, "count": n}
                for o, n in counts.items()
                if n
            ]
            for event, share in (("opted_out", 0.004), ("unreachable", 0.006)):
                n = _binomial(scheduled, share, rng)
                if n:
                    enrol_rows.append({"opd_id": opd_id, "day": day, "event": event, "count": n})
    with session_scope(engine) as s:
        for i in range(0, len(tally_rows), 20_000):
            s.execute(insert(DeliveryTally), tally_rows[i : i + 20_000])
        s.execute(insert(EnrolmentTally), enrol_rows)
    if url.startswith("postgresql"):
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {
        "campaign_id": campaign_id,
        "inspectorate": inspectorate,
        "coordinator": coordinator,
        "tally_rows": len(tally_rows),
        "enrolment_rows": len(enrol_rows),
        "deliveries": sum(r["count"] for r in tally_rows if r["outcome"] == "scheduled"),
        # today has not closed: the statistics count up to yesterday
        "deliveries_closed": sum(
            r["count"] for r in tally_rows if r["outcome"] == "scheduled" and r["day"] < today
        ),
        "populate_seconds": time.perf_counter() - started,
        "first_day": first,
    }


def measure(url: str, data: dict[str, Any], *, requests: int, tmp: Path) -> dict[str, list[float]]:
    """Timings (seconds) of each endpoint through the FastAPI app."""
    from cryptography.fernet import Fernet
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.db import make_engine
    from app.main import create_app
    from app.stats import service as stats_service
    from app.stats.router import metrics_router, router

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        data_dir=tmp,
        encryption_keys=Fernet.generate_key().decode(),
        blind_index_key=secrets.token_hex(32),
        scheduler_enabled=False,
        worker_enabled=False,
    )
    engine = make_engine(url)
    app = create_app(settings, engine=engine)
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/api/v1/stats/campaigns/{campaign_id}" not in paths:
        app.include_router(router)
    if "/metrics" not in paths:
        app.include_router(metrics_router)
    # The lifespan runs as under `serve` (scheduler and worker are off in these settings).
    client = TestClient(app).__enter__()
    cid = data["campaign_id"]
    ins = {"Authorization": f"Bearer {data['inspectorate']}"}
    coord = {"Authorization": f"Bearer {data['coordinator']}"}
    cases = {
        "stats (inspectorate, 200 OPDs)": (f"/api/v1/stats/campaigns/{cid}", ins),
        "daily (inspectorate, 90 days)": (f"/api/v1/stats/campaigns/{cid}/daily", ins),
        "stats (coordinator, 1 OPD)": (f"/api/v1/stats/campaigns/{cid}", coord),
        "daily (coordinator, 1 OPD)": (f"/api/v1/stats/campaigns/{cid}/daily", coord),
        "stats CSV export": (f"/api/v1/stats/campaigns/{cid}?format=csv", ins),
    }
    timings: dict[str, list[float]] = {}
    for name, (path, headers) in cases.items():
        for _ in range(3):  # warm-up: connection pool, statement caches
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code} {response.text[:300]}")
        for mode in ("cold", "warm"):
            samples = []
            for _ in range(requests):
                if mode == "cold":  # every request computes from the counters
                    stats_service.clear_cache()
                t0 = time.perf_counter()
                response = client.get(path, headers=headers)
                samples.append(time.perf_counter() - t0)
                assert response.status_code == 200
            timings[f"{name} [{mode}]"] = samples
    body = client.get(cases["stats (inspectorate, 200 OPDs)"][0], headers=ins).json()
    total, rows = body["total"], body["rows"]
    # Every row is rounded (within 4 of its truth) and the total is their sum.
    if abs(total["scheduled"] - data["deliveries_closed"]) > 4 * len(rows):
        raise SystemExit(f"total scheduled {total['scheduled']} != {data['deliveries_closed']}")
    timings["_rows"] = [float(len(rows))]
    client.__exit__(None, None, None)
    engine.dispose()
    return timings


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    ok = True
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="spi-bench-stats-") as tmp:
        for database in args.databases.split(","):
            if database not in ("sqlite", "postgresql"):
                parser.error(f"unknown database {database!r}")
            with fresh_database(database, Path(tmp) / "bench.db") as url:
                if url is None:
                    continue
                data = populate(url, deliveries=args.deliveries)
                print(
                    f"{database}: {data['deliveries']:,} deliveries over {OPDS} OPDs and {DAYS} "
                    f"days -> {data['tally_rows']:,} delivery counter rows, "
                    f"{data['enrolment_rows']:,} enrolment counter rows "
                    f"({data['populate_seconds']:.1f} s to load)"
                )
                timings = measure(url, data, requests=args.requests, tmp=Path(tmp))
            rows = int(timings.pop("_rows")[0])
            target = TARGET_P95[database]
            report.append(
                f"\n{database} ({args.requests} requests each; target p95 < "
                f"{target * 1000:.0f} ms; {rows} rows in the OPD table after grouping)"
            )
            report.append(f"  {'endpoint':<41}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  target")
            for name, samples in timings.items():
                p50, p95 = _pct(samples, 0.50), _pct(samples, 0.95)
                met = p95 < target
                if name.endswith("[cold]"):
                    ok = ok and met
                report.append(
                    f"  {name:<41}{p50 * 1000:>9.1f}{p95 * 1000:>9.1f}{max(samples) * 1000:>9.1f}"
                    f"  {'met' if met else 'MISSED'}"
                )
    print("\n".join(report))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
