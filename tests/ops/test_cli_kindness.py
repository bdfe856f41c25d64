"""The CLI as an operator meets it: away from the repository, on a missing, empty or unmigrated
database, with a bad value. One line saying what to do, exit 2, never a traceback."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "spi-reminder")


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPI_")}
    return subprocess.run(
        [CLI, *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def assert_one_kind_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_command_away_from_the_data_says_which_database_it_looked_for(tmp_path: Path) -> None:
    result = run_cli("token", "list", cwd=tmp_path)
    assert_one_kind_line(
        result, "spi-reminder migrate", str(tmp_path / "data" / "pengingat-spi.db")
    )
    assert not (tmp_path / "data").exists(), "an empty database was created"


def test_an_unmigrated_sqlite_file_is_named_with_the_fix(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    data.mkdir()
    sqlite3.connect(data / "pengingat-spi.db").close()
    result = run_cli("opd", "list", cwd=tmp_path, SPI_DATA_DIR=str(data))
    assert_one_kind_line(result, "belum dimigrasi", "kosong", "spi-reminder migrate")


def test_an_unmigrated_postgres_database_is_named_without_its_password(
    tmp_path: Path, empty_postgres: str
) -> None:
    url = empty_postgres.replace("postgres@", "postgres:rahasia@", 1)
    result = run_cli("token", "list", cwd=tmp_path, SPI_DATABASE_URL=url)
    assert_one_kind_line(result, "belum dimigrasi", empty_postgres.rsplit("/", 1)[1])
    assert "rahasia" not in result.stderr


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://spi:rahasia@127.0.0.1:1/spi"
    result = run_cli("token", "list", cwd=tmp_path, SPI_DATABASE_URL=url)
    assert_one_kind_line(result, "tidak dapat dihubungi", "127.0.0.1:1")
    assert "rahasia" not in result.stderr


def test_a_worker_with_a_bad_value_names_the_variable(tmp_path: Path) -> None:
    result = run_cli("worker", cwd=tmp_path, SPI_PORT="delapan-ribu")
    assert_one_kind_line(result, "SPI_PORT")
    assert "delapan-ribu" not in result.stderr


def test_config_prints_the_resolved_data_dir_and_hides_secrets(tmp_path: Path) -> None:
    result = run_cli("config", cwd=tmp_path, SPI_DATA_DIR="relatif", SPI_BLIND_INDEX_KEY="x" * 40)
    assert result.returncode == 0, result.stderr
    assert f"SPI_DATA_DIR\t{tmp_path / 'relatif'}" in result.stdout
    assert f"SQLite {tmp_path / 'relatif' / 'pengingat-spi.db'}" in result.stdout
    assert "SPI_BLIND_INDEX_KEY\t(set)" in result.stdout
    assert "x" * 40 not in result.stdout
    assert not (tmp_path / "relatif").exists()


def test_migrate_then_the_command_works_from_that_directory(tmp_path: Path) -> None:
    assert run_cli("migrate", cwd=tmp_path).returncode == 0
    result = run_cli("opd", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
