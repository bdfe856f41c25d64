"""Console import benchmark: a 20,000-row XLSX through the console's check, confirm and report.

Run with:  .venv/bin/python -m bench.console_import  [--rows 5000,20000]
                                                     [--databases sqlite,postgresql]

The file is the console's own template filled with openpyxl (1 % bad rows). Each run is a fresh
interpreter and a fresh database: it migrates, starts the app, logs a coordinator in through the
login form (username and password), then posts the upload (check page), the confirm form and the
report form as a browser would. It prints each step's time, the RSS just before the upload and
the peak RSS from there to the report (Linux's VmHWM, reset after the login, whose argon2id hash
alone takes 64 MiB), so that runs of different sizes show whether memory stays flat. There is
no target to meet here; figures go in the README.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import fresh_database

OPD_CODE = "BENCH"
PASSWORD = "benchmark password"  # a coordinator logs in as a person, like everyone else
_HIDDEN = r'name="{}" value="([^"]+)"'


def generate_xlsx(path: Path, rows: int, *, seed: int = 20260715) -> int:
    """Fill the console's template; return how many rows are valid."""
    import openpyxl

    from app.console.spreadsheets import template_xlsx

    rng = random.Random(seed)
    book = openpyxl.load_workbook(io.BytesIO(template_xlsx()))
    sheet = book["Daftar"]
    valid = 0
    for n in range(rows):
        digits = f"{n:08d}"
        if rng.random() < 0.01:
            phone = rng.choice(["0812-12", "021-5551234", "112", "6,28123E+12"])
        else:
            valid += 1
            phone = rng.choice([f"0812-{digits[:4]}-{digits[4:]}", f"+62 812 {digits}"])
        method = rng.choice(["formulir kertas", "formulir digital"])
        sheet.append([phone, f"Pegawai {n}", method, rng.choice(["15/07/2025", ""])])
    book.save(path)
    return valid


def _hidden(name: str, html: str) -> str:
    match = re.search(_HIDDEN.format(name), html)
    if match is None:
        raise RuntimeError(f"no {name} field in the page")
    return match.group(1)


def _reset_peak_rss() -> bool:
    """Start a new peak-RSS reading (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) in MB; getrusage's peak elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(url: str, xlsx: Path) -> dict[str, Any]:
    """Migrate, start the app, log in as a coordinator, check, confirm and fetch the report."""
    from cryptography.fernet import Fernet
    from fastapi.testclient import TestClient

    from app import schema_migrations
    from app.auth import users
    from app.auth.models import Role
    from app.auth.principal import cli_principal
    from app.config import Settings
    from app.db import make_engine, session_scope
    from app.main import create_app
    from app.opds import service as opd_service
    from app.opds.schemas import OpdCreate

    schema_migrations.upgrade_to_head(url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="spi-console-bench-")),
        encryption_keys=Fernet.generate_key().decode(),
        blind_index_key=secrets.token_hex(32),
        scheduler_enabled=False,
        worker_enabled=False,
    )
    engine = make_engine(url)
    with session_scope(engine) as session:
        opd_service.create_opd(
            session,
            actor=cli_principal(),
            data=OpdCreate(code=OPD_CODE, name="Benchmark", timezone="Asia/Jakarta"),
        )
        invited = users.invite_user(
            session,
            actor=cli_principal(),
            username="bench.coordinator",
            display_name="Benchmark",
            role=Role.coordinator,
            opd_code=OPD_CODE,
        )
        users.accept_invitation(session, key=invited.invitation_key, password=PASSWORD)
    body = xlsx.read_bytes()
    timings: dict[str, float] = {}
    with TestClient(create_app(settings, engine=engine)) as client:
        form = client.get("/dashboard/login").text
        logged_in = client.post(
            "/dashboard/login",
            data={
                "username": "bench.coordinator",
                "password": PASSWORD,
                "csrf": _hidden("csrf", form),
            },
        )
        if logged_in.status_code != 200 or logged_in.url.path != f"/console/opd/{OPD_CODE}":
            raise RuntimeError(f"login answered {logged_in.status_code} at {logged_in.url.path}")
        home = f"/console/opd/{OPD_CODE}"
        csrf = _hidden("csrf", client.get(home).text)
        # Logging in hashed a password with argon2id (64 MiB): measure the import's own peak.
        rss_before = _rss_mb("VmRSS")
        _reset_peak_rss()
        started = time.perf_counter()
        check = client.post(
            f"{home}/impor/periksa",
            data={"csrf": csrf},
            files={"berkas": ("pegawai.xlsx", body, "application/octet-stream")},
        )
        timings["check"] = time.perf_counter() - started
        if check.status_code != 200:
            raise RuntimeError(f"check answered {check.status_code}")
        confirm_token = _hidden("token", check.text)
        started = time.perf_counter()
        result = client.post(
            f"{home}/impor/konfirmasi", data={"csrf": csrf, "token": confirm_token}
        )
        timings["confirm"] = time.perf_counter() - started
        enrolled = int(re.search(r"<strong>(\d+)</strong> pegawai didaftarkan", result.text)[1])  # type: ignore[index]
        started = time.perf_counter()
        report = client.post(
            f"{home}/impor/laporan",
            data={"csrf": csrf, "token": _hidden("token", result.text)},
        )
        timings["report"] = time.perf_counter() - started
    engine.dispose()
    return {
        "timings": timings,
        "enrolled": enrolled,
        "report_lines": report.text.count("\n") - 1,
        "check_page_kb": len(check.content) / 1024,
        "confirm_token_kb": len(confirm_token) / 1024,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb("VmHWM"),
    }


def _child_result(url: str, xlsx: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.console_import", "--child", url, str(xlsx)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="5000,20000", help="comma-separated file sizes")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--child", nargs=2, metavar=("URL", "XLSX"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child[0], Path(args.child[1]))))
        return 0
    print(
        f"{'database':<11}{'rows':>7}{'check s':>9}{'confirm s':>11}{'report s':>10}"
        f"{'token KB':>10}{'RSS before MB':>15}{'peak RSS MB':>13}"
    )
    with tempfile.TemporaryDirectory(prefix="spi-console-bench-") as tmp:
        for rows in (int(r) for r in args.rows.split(",")):
            xlsx = Path(tmp) / f"pegawai-{rows}.xlsx"
            valid = generate_xlsx(xlsx, rows)
            for database in args.databases.split(","):
                with fresh_database(database, Path(tmp) / f"{database}-{rows}.db") as url:
                    if url is None:
                        continue
                    r = _child_result(url, xlsx)
                if r["enrolled"] != valid or r["report_lines"] != rows:
                    raise SystemExit(f"{database}: expected {valid} enrolled, got {r}")
                t = r["timings"]
                print(
                    f"{database:<11}{rows:>7,}{t['check']:>9.2f}{t['confirm']:>11.2f}"
                    f"{t['report']:>10.2f}{r['confirm_token_kb']:>10.0f}"
                    f"{r['rss_before_mb']:>15.1f}{r['peak_rss_mb']:>13.1f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
