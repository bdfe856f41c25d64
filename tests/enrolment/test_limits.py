"""Hostile spreadsheets are refused while streaming, with the bound named in Indonesian."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.enrolment.limits import LimitExceeded, SpreadsheetLimits
from app.enrolment.rows import FileFormatError, RawRow, iter_rows
from tests.enrolment import hostile

LIMITS = SpreadsheetLimits()


def read(path: Path, limits: SpreadsheetLimits = LIMITS) -> list[RawRow]:
    with path.open("rb") as stream:
        return list(iter_rows(stream, filename=path.name, limits=limits))


def refusal(path: Path, limits: SpreadsheetLimits = LIMITS) -> str:
    with pytest.raises(LimitExceeded) as caught:
        read(path, limits)
    return str(caught.value)


# --- XLSX ---------------------------------------------------------------------------------


def many_shared_strings(path: Path, count: int) -> Path:
    return hostile.write_xlsx(
        path,
        sheet_xml=lambda: hostile.sheet([hostile.header_row(), *hostile.phone_rows(3)]),
        strings_xml=lambda: hostile.shared_strings(["s0"], repeat=count - 1),
    )


def test_five_million_shared_strings_are_refused_by_the_part_size(tmp_path: Path) -> None:
    path = many_shared_strings(tmp_path / "strings.xlsx", 5_000_000)
    assert path.stat().st_size < 30_000_000
    message = refusal(path)
    assert "sharedStrings.xml" in message
    assert "64 MB" in message


def test_too_many_shared_strings_are_refused_by_count(tmp_path: Path) -> None:
    path = many_shared_strings(tmp_path / "strings.xlsx", 500_001)
    assert "lebih dari 500.000 teks berbeda" in refusal(path)
    limits = SpreadsheetLimits(shared_strings=1_000)
    assert len(read(many_shared_strings(tmp_path / "ok.xlsx", 1_000), limits)) == 3
    assert "lebih dari 1.000 teks" in refusal(
        many_shared_strings(tmp_path / "no.xlsx", 1_001), limits
    )


def test_shared_strings_under_the_limit_are_read(tmp_path: Path) -> None:
    rows = read(many_shared_strings(tmp_path / "strings.xlsx", 1_000))
    assert [(r.row_number, r.label) for r in rows] == [(2, "s0"), (3, "s0"), (4, "s0")]


def huge_string(path: Path, chars: int) -> Path:
    def strings() -> list[str]:
        megabyte = "a" * (1 << 20)  # one string object, repeated: the test stays small too
        body = [megabyte] * (chars >> 20) + ["a" * (chars % (1 << 20))]
        return [hostile.SST_START, "<si><t>", *body, "</t></si></sst>"]

    return hostile.write_xlsx(
        path,
        sheet_xml=lambda: hostile.sheet([hostile.header_row(), *hostile.phone_rows(1)]),
        strings_xml=strings,
    )


def test_one_300_mb_string_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = huge_string(tmp_path / "huge.xlsx", 300 * 1024 * 1024)
    assert path.stat().st_size < 2_000_000
    message = refusal(path)
    assert "melebihi 64 MB" in message


def test_a_string_longer_than_a_cell_may_be_is_refused_while_streaming(tmp_path: Path) -> None:
    path = huge_string(tmp_path / "long.xlsx", 5 * 1024 * 1024)
    assert "lebih panjang dari 2.000 karakter" in refusal(path)


def test_inline_cell_over_the_limit_is_refused(tmp_path: Path) -> None:
    long_cell = f'<row r="2"><c r="A2" t="inlineStr"><is><t>{"9" * 2_001}</t></is></c></row>'
    path = hostile.write_xlsx(
        tmp_path / "cell.xlsx", sheet_xml=lambda: hostile.sheet([hostile.header_row(), long_cell])
    )
    assert "Baris 2: sebuah sel lebih panjang dari 2.000 karakter" in refusal(path)


def test_a_million_rows_stop_at_the_row_limit(tmp_path: Path) -> None:
    path = hostile.write_xlsx(
        tmp_path / "rows.xlsx",
        sheet_xml=lambda: hostile.sheet(
            [hostile.header_row(), *hostile.phone_rows(1_048_575, named=False)]
        ),
    )
    assert path.stat().st_size < 10_000_000
    assert "lebih dari 50.000 baris data" in refusal(path)


def test_rows_up_to_the_configured_limit_are_read(tmp_path: Path) -> None:
    def build(count: int) -> Path:
        return hostile.write_xlsx(
            tmp_path / f"rows{count}.xlsx",
            sheet_xml=lambda: hostile.sheet([hostile.header_row(), *hostile.phone_rows(count)]),
        )

    limits = SpreadsheetLimits(rows=1_000)
    assert len(read(build(1_000), limits)) == 1_000
    assert "lebih dari 1.000 baris data" in refusal(build(1_001), limits)


def test_an_oversized_part_is_refused(tmp_path: Path) -> None:
    path = hostile.write_xlsx(
        tmp_path / "part.xlsx",
        sheet_xml=lambda: hostile.sheet([hostile.header_row(), *hostile.phone_rows(40_000)]),
    )
    limits = SpreadsheetLimits(xlsx_part_bytes=1024 * 1024)
    message = refusal(path, limits)
    assert "xl/worksheets/sheet1.xml" in message
    assert "melebihi 1 MB" in message


def test_the_whole_archive_is_bounded_too(tmp_path: Path) -> None:
    path = hostile.write_xlsx(
        tmp_path / "total.xlsx",
        sheet_xml=lambda: hostile.sheet([hostile.header_row(), *hostile.phone_rows(20_000)]),
        strings_xml=lambda: hostile.shared_strings(f"nama {i}" for i in range(40_000)),
    )
    limits = SpreadsheetLimits(xlsx_part_bytes=2 * 1024 * 1024, xlsx_bytes=2 * 1024 * 1024)
    assert "isinya melebihi 2 MB" in refusal(path, limits)


def zip_bomb(path: Path) -> Path:
    """A 256 MB worksheet of spaces that compresses to a few hundred KB."""

    def spaces() -> list[str]:
        return [hostile.SHEET_START, " " * (1 << 20)] * 256

    return hostile.write_xlsx(path, sheet_xml=spaces)


def test_zip_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "bomb.xlsx")
    assert path.stat().st_size < 5_000_000
    assert "melebihi 64 MB" in refusal(path)


def test_zip_bomb_that_lies_about_its_size_is_stopped(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "liar.xlsx")
    hostile.lie_about_sizes(path, "xl/worksheets/sheet1.xml", 10_000)
    # zipfile stops inflating at the declared size, and the checksum then fails.
    with pytest.raises(FileFormatError, match="rusak"):
        read(path)


def test_too_many_parts_are_refused_before_the_directory_is_read(tmp_path: Path) -> None:
    path = hostile.write_xlsx(
        tmp_path / "parts.xlsx",
        sheet_xml=lambda: hostile.sheet([hostile.header_row(), *hostile.phone_rows(1)]),
    )
    import zipfile

    with zipfile.ZipFile(path, "a") as archive:
        for i in range(1_100):
            archive.writestr(f"xl/media/x{i}.bin", b"")
    assert "lebih dari 1.000 bagian" in refusal(path)


# --- CSV ----------------------------------------------------------------------------------


def csv_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_10_mb_line_is_refused_naming_the_line_limit(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "line.csv", b"nomor_hp;nama\n0812;" + b"x" * 10_000_000 + b"\n")
    assert "Baris 2 lebih panjang dari 65.536 karakter" in refusal(path)


def test_a_10_mb_header_line_is_refused_too(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "first.csv", b"a" * 10_000_000)
    assert "Baris 1 lebih panjang dari 65.536 karakter" in refusal(path)


def test_ten_thousand_columns_are_refused(tmp_path: Path) -> None:
    wide = b";".join(b"k" for _ in range(10_000))
    path = csv_file(tmp_path / "wide.csv", b"nomor_hp;nama;" + wide + b"\n0812;Budi\n")
    assert "Baris 1 memuat lebih dari 256 kolom" in refusal(path)


def test_a_long_cell_is_refused(tmp_path: Path) -> None:
    path = csv_file(tmp_path / "cell.csv", b"nomor_hp;nama\n0812;" + b"y" * 3_000 + b"\n")
    assert "Baris 2: sebuah sel lebih panjang dari 2.000 karakter" in refusal(path)


def test_too_many_csv_rows_are_refused(tmp_path: Path) -> None:
    lines = [b"nomor_hp;nama"] + [b"0812%08d;P" % i for i in range(1_001)]
    path = csv_file(tmp_path / "rows.csv", b"\n".join(lines) + b"\n")
    assert "lebih dari 1.000 baris data" in refusal(path, SpreadsheetLimits(rows=1_000))
    assert len(read(path, SpreadsheetLimits(rows=1_001))) == 1_001


def test_utf16_csv_is_read_within_the_same_bounds(tmp_path: Path) -> None:
    text = "nomor_hp\tnama\r\n0812\tSérgio\r\n"
    path = csv_file(tmp_path / "u16.csv", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert read(path) == [RawRow(2, "0812", "Sérgio", None, None)]
    wide = "nomor_hp\tnama\t" + "\t".join("k" for _ in range(300))
    path = csv_file(tmp_path / "wide16.csv", codecs.BOM_UTF16_LE + wide.encode("utf-16-le"))
    assert "memuat lebih dari 256 kolom" in refusal(path)


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4096,  # binary garbage
        "nomor_hp\n0812\n".encode("utf-16-le"),  # UTF-16 without its byte-order mark
    ],
    ids=["binary", "utf16-without-bom"],
)
def test_binary_is_refused_with_a_reason(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(FileFormatError) as caught:
        read(csv_file(tmp_path / "x.csv", data))
    assert "CSV" in str(caught.value)


# --- memory -------------------------------------------------------------------------------

_PEAK_SCRIPT = """
import json, sys
from app.enrolment.rows import FileFormatError, iter_rows
results = {}
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as stream:
            count = sum(1 for _ in iter_rows(stream, filename=path))
        results[path] = f"read {count}"
    except FileFormatError as exc:
        results[path] = type(exc).__name__
# VmHWM is this process's own peak; ru_maxrss would carry the test runner's over exec.
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"peak_mb": peak_kb / 1024, "results": results}))
"""
PEAK_RSS_BOUND_MB = 120


def test_peak_memory_stays_bounded_for_every_hostile_file(tmp_path: Path) -> None:
    files = [
        many_shared_strings(tmp_path / "strings.xlsx", 5_000_000),
        many_shared_strings(tmp_path / "count.xlsx", 500_001),
        huge_string(tmp_path / "huge.xlsx", 300 * 1024 * 1024),
        huge_string(tmp_path / "long.xlsx", 30 * 1024 * 1024),
        zip_bomb(tmp_path / "bomb.xlsx"),
        csv_file(tmp_path / "line.csv", b"nomor_hp;nama\n0812;" + b"x" * 10_000_000 + b"\n"),
    ]
    liar = zip_bomb(tmp_path / "liar.xlsx")
    hostile.lie_about_sizes(liar, "xl/worksheets/sheet1.xml", 10_000)
    files.append(liar)
    # The largest honest file: just under the row limit, read to the end.
    files.append(
        hostile.write_xlsx(
            tmp_path / "full.xlsx",
            sheet_xml=lambda: hostile.sheet([hostile.header_row(), *hostile.phone_rows(49_999)]),
        )
    )
    baseline = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, check=True
    )
    measured = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(measured.stdout)
    assert result["results"][str(files[-1])] == "read 49999"
    assert all(v == "LimitExceeded" for v in list(result["results"].values())[:6]), result
    assert result["results"][str(liar)] == "FileFormatError"
    growth = result["peak_mb"] - json.loads(baseline.stdout)["peak_mb"]
    assert result["peak_mb"] < PEAK_RSS_BOUND_MB, result
    assert growth < 60, growth
