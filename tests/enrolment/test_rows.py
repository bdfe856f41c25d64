"""Tests for the streaming CSV/XLSX row readers and consent parsers."""

from __future__ import annotations

import datetime as dt
import io
import logging
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from app.enrolment import rows as rows_module
from app.enrolment import xlsx as xlsx_module
from app.enrolment.limits import SpreadsheetLimits
from app.enrolment.rows import (
    FileFormatError,
    RawRow,
    iter_rows,
    parse_consent_date,
    parse_consent_method,
)


def read(data: bytes, filename: str | None = None) -> list[RawRow]:
    """Read all rows of an in-memory upload."""
    return list(iter_rows(io.BytesIO(data), filename=filename))


def read_path(path: Path) -> list[RawRow]:
    """Read all rows of a file on disk, as the upload handler would."""
    with path.open("rb") as stream:
        return list(iter_rows(stream, filename=path.name))


def phones(rows: list[RawRow]) -> list[tuple[int, str | None]]:
    """Row numbers with their phone text."""
    return [(r.row_number, r.phone) for r in rows]


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    """Write a one-sheet workbook with openpyxl."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


# --- CSV --------------------------------------------------------------------------------


CSV_CASES: list[tuple[str, bytes, list[RawRow]]] = [
    (
        "comma, English headers",
        b"phone,name,consent_method,consent_date\n"
        b"0812-3456-7890,Budi,paper_form,2026-07-15\n"
        b"+62 813 1111 2222,Siti,digital_form,15/07/2026\n",
        [
            RawRow(2, "0812-3456-7890", "Budi", "paper_form", "2026-07-15"),
            RawRow(3, "+62 813 1111 2222", "Siti", "digital_form", "15/07/2026"),
        ],
    ),
    (
        "semicolon, Indonesian Excel, BOM, CRLF",
        b"\xef\xbb\xbfNama;Nomor HP;Metode Persetujuan;Tanggal Persetujuan\r\n"
        b"Budi;0812-3456-7890;Formulir Kertas;15/07/2026\r\n"
        b"Siti, S.Pd;081311112222;daring;16.07.2026\r\n",
        [
            RawRow(2, "0812-3456-7890", "Budi", "Formulir Kertas", "15/07/2026"),
            RawRow(3, "081311112222", "Siti, S.Pd", "daring", "16.07.2026"),
        ],
    ),
    (
        "tab",
        b"no_wa\tnama\n0812 3456 7890\tBudi, S.E.; M.M.\n",
        [RawRow(2, "0812 3456 7890", "Budi, S.E.; M.M.", None, None)],
    ),
    (
        "quoted delimiters, quotes and newlines",
        b"nomor_hp;nama;keterangan_lain\r\n"
        b'"0812-3456-7890";"Budi; Kepala Seksi, Bidang A";"baris satu\r\nbaris dua"\r\n'
        b'0813;"Siti ""Ani"" Rahma";x\r\n',
        [
            RawRow(2, "0812-3456-7890", "Budi; Kepala Seksi, Bidang A", None, None),
            RawRow(3, "0813", 'Siti "Ani" Rahma', None, None),
        ],
    ),
    (
        "extra columns ignored, values stripped",
        b"No,NIP,Nama,Jabatan,No HP,Unit\n1,1980,  Budi  ,Staf, 0812 ,Umum\n",
        [RawRow(2, "0812", "Budi", None, None)],
    ),
    (
        "blank lines skipped but counted",
        b"hp,nama\r\n"  # 1
        b"\r\n"  # 2
        b"0812,A\r\n"  # 3
        b",\r\n"  # 4: Excel writes empty rows as delimiters only
        b'"0813","multi\r\nline"\r\n'  # 5: one spreadsheet row
        b"   \r\n"  # 6
        b"0814,C",  # 7: no final newline
        [
            RawRow(3, "0812", "A", None, None),
            RawRow(5, "0813", "multi\r\nline", None, None),
            RawRow(7, "0814", "C", None, None),
        ],
    ),
    (
        "rows with only unrecognised columns skipped",
        b"No;Nama;HP\n1;Budi;0812\n2;;\n3;;\n4;Ani;\n",
        [RawRow(2, "0812", "Budi", None, None), RawRow(5, None, "Ani", None, None)],
    ),
    (
        "title rows above the header",
        b"DAFTAR PEGAWAI DINAS KESEHATAN;;\n;;\nNo;Nama;No WA\n1;Budi;0812\n",
        [RawRow(4, "0812", "Budi", None, None)],
    ),
    (
        "Excel sep= line is not a row",
        b"sep=,\r\nhp,nama\r\n0812,Budi\r\n",
        [RawRow(2, "0812", "Budi", None, None)],
    ),
    (
        "cp1252 fallback",
        "hp;nama\n0812;José Ñandú\n".encode("cp1252"),
        [RawRow(2, "0812", "José Ñandú", None, None)],
    ),
    (
        "UTF-16 Unicode Text export",
        "hp\tnama\r\n0812\tJosé\r\n".encode("utf-16"),
        [RawRow(2, "0812", "José", None, None)],
    ),
    (
        "scientific notation left for phone validation",
        b"hp\n6.28123E+12\n",
        [RawRow(2, "6.28123E+12", None, None, None)],
    ),
    ("header only", b"nomor_hp,nama\r\n", []),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in CSV_CASES], ids=[c[0] for c in CSV_CASES]
)
def test_csv(tmp_path: Path, data: bytes, expected: list[RawRow]) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(data)
    assert read_path(path) == expected


@pytest.mark.parametrize(
    "header",
    [
        "nomor_hp", "No HP", "NO_HP", "Nomor HP", "nomor-wa", "No. WA", "WhatsApp",
        "Telepon", "HP", "Phone", "phone_number", "Phone Number", "Mobile",
    ],
)  # fmt: skip
def test_phone_header_aliases(header: str) -> None:
    assert phones(read(f"{header},x\n0812\n".encode())) == [(2, "0812")]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (("Nama", "Persetujuan", "Tgl Persetujuan"), ("Budi", "kertas", "2026-07-15")),
        (("Keterangan", "metode_persetujuan", "tanggal"), ("Budi", "kertas", "2026-07-15")),
        (("Label", "Consent", "Consent Date"), ("Budi", "kertas", "2026-07-15")),
        (("NAME", "consent-method", "TANGGAL_PERSETUJUAN"), ("Budi", "kertas", "2026-07-15")),
    ],
)
def test_other_header_aliases(labels: tuple[str, str, str], expected: tuple[str, ...]) -> None:
    data = f"hp;{';'.join(labels)}\n0812;Budi;kertas;2026-07-15\n".encode()
    row = read(data)[0]
    assert (row.label, row.consent_method, row.consent_date) == expected


def test_utf8_decision_covers_whole_file() -> None:
    # Non-ASCII far beyond the first chunk must still be decoded correctly.
    body = b"".join(b"08%09d;x\n" % i for i in range(20_000))
    data = b"hp;nama\n" + body + "0899;Sérgio\n".encode()
    assert read(data)[-1] == RawRow(20_002, "0899", "Sérgio", None, None)


FILE_ERRORS: list[tuple[str, bytes, str | None, str]] = [
    ("no phone column", b"nama,jabatan\nBudi,Staf\n", None, "salah satu dari: nomor_hp"),
    ("two phone columns", b"telepon,no_wa\n021,0812\n", None, "lebih dari satu kolom nomor HP"),
    ("PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "a.csv", "bukan tabel CSV atau XLSX"),
    ("binary", bytes(range(256)) * 16, "upload.csv", "bukan tabel CSV atau XLSX"),
    ("empty", b"", None, "Berkas kosong"),
    ("blank lines only", b"\r\n\r\n  \n;;\n", None, "Berkas kosong"),
    ("BOM only", b"\xef\xbb\xbf", None, "Berkas kosong"),
    ("undecodable", b"hp,nama\n0812,\x81\x8d\xff\n", None, "Pengodean teks"),
    ("old .xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "a.xls", r"\(\.xls,"),
    ("corrupt zip", b"PK\x03\x04" + b"\x00" * 200, "x.xlsx", "rusak"),
    ("CSV named .xlsx", b"nomor_hp\n0812\n", "x.xlsx", "bukan berkas Excel yang valid"),
]


@pytest.mark.parametrize(
    ("data", "filename", "message"), [c[1:] for c in FILE_ERRORS], ids=[c[0] for c in FILE_ERRORS]
)
def test_file_level_errors(data: bytes, filename: str | None, message: str) -> None:
    with pytest.raises(FileFormatError, match=message):
        read(data, filename=filename)


def test_caller_stream_is_left_open() -> None:
    stream = io.BytesIO(b"hp\n0812\n0813\n")
    iterator = iter_rows(stream)
    assert next(iterator).phone == "0812"
    del iterator
    assert not stream.closed


class _NonSeekable(io.RawIOBase):
    """A pipe-like stream that can only be read forwards."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_stream(tmp_path: Path) -> None:
    csv_rows = list(iter_rows(_NonSeekable(b"hp\n0812\n")))  # type: ignore[arg-type]
    assert phones(csv_rows) == [(2, "0812")]
    xlsx = write_xlsx(tmp_path / "a.xlsx", [["hp"], ["0813"]]).read_bytes()
    assert phones(list(iter_rows(_NonSeekable(xlsx)))) == [(2, "0813")]  # type: ignore[arg-type]


def test_streaming_memory_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("nomor_hp;nama;metode_persetujuan;tanggal_persetujuan\r\n")
        for i in range(200_000):
            out.write(f"08{i:010d};Pegawai nomor {i};formulir kertas;15/07/2026\r\n")
    assert path.stat().st_size > 10_000_000
    tracemalloc.start()
    try:
        count, last = 0, None
        with path.open("rb") as stream:
            for row in iter_rows(
                stream, filename="big.csv", limits=SpreadsheetLimits(rows=200_000)
            ):
                count, last = count + 1, row
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert last is not None
    assert last.row_number == 200_001
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


# --- XLSX -------------------------------------------------------------------------------


def test_xlsx_cell_types(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "pegawai.xlsx",
        [
            ["No", "Nama", "Nomor HP", "Persetujuan", "Tanggal Persetujuan"],
            [1, "Budi", 81234567890, "kertas", dt.datetime(2026, 7, 15, 9, 30)],
            [2, "Siti", "0812-3456-7891", "digital", dt.date(2026, 7, 16)],
            [3, "  Ani ", 6281234567892.0, None, "15/07/2026"],
            [4, None, None, None, None],
            [5, "Dedi", "6.28123E+12", "online", None],
        ],
    )
    assert read_path(path) == [
        RawRow(2, "81234567890", "Budi", "kertas", "2026-07-15"),
        RawRow(3, "0812-3456-7891", "Siti", "digital", "2026-07-16"),
        RawRow(4, "6281234567892", "Ani", None, "15/07/2026"),
        RawRow(6, "6.28123E+12", "Dedi", "online", None),
    ]


def test_xlsx_detected_by_magic_bytes_without_filename(tmp_path: Path) -> None:
    data = write_xlsx(tmp_path / "x.xlsx", [["hp"], [6281234567890]]).read_bytes()
    assert phones(read(data)) == [(2, "6281234567890")]
    assert phones(read(data, filename="renamed.csv")) == [(2, "6281234567890")]


def test_xlsx_blank_rows_title_rows_and_first_sheet_only(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "Daftar pegawai yang bersedia"
    sheet.append([])
    sheet.append(["NO_WA", "NAMA"])
    sheet["A7"] = "0812"
    sheet["B9"] = "Tanpa nomor"
    workbook.create_sheet("Lain").append(["hp", "0899"])
    path = tmp_path / "gaps.xlsx"
    workbook.save(path)
    assert read_path(path) == [
        RawRow(7, "0812", None, None, None),
        RawRow(9, None, "Tanpa nomor", None, None),
    ]


def test_xlsx_missing_phone_column(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "x.xlsx", [["Nama", "Jabatan"], ["Budi", "Staf"]])
    with pytest.raises(FileFormatError, match="Kolom nomor HP tidak ditemukan"):
        read_path(path)


def test_empty_xlsx(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="Berkas kosong"):
        read_path(write_xlsx(tmp_path / "x.xlsx", []))


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "notes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hp\n0812\n")
    with pytest.raises(FileFormatError, match="rusak"):
        read_path(path)


def test_xlsx_warnings_are_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["hp", "tanggal"])
    sheet.append(["0812", 1e10])
    sheet["B2"].number_format = "yyyy-mm-dd"  # a serial far outside Excel's date range
    path = tmp_path / "w.xlsx"
    workbook.save(path)
    with caplog.at_level(logging.DEBUG, logger=rows_module.__name__):
        assert read_path(path) == [RawRow(2, "0812", None, None, "#VALUE!")]
    assert "outside the limits" in caplog.text


def test_xlsx_workbook_closed_even_when_iteration_stops_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    real_open = xlsx_module.open_first_sheet

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(xlsx_module, "open_first_sheet", spy)
    path = write_xlsx(tmp_path / "x.xlsx", [["hp"], ["0812"], ["0813"]])
    with path.open("rb") as stream:
        iterator: Iterator[RawRow] = iter_rows(stream)
        assert next(iterator).phone == "0812"
        iterator.close()  # type: ignore[attr-defined]
        assert opened[0].archive.fp is None
        assert not stream.closed


# --- consent parsing --------------------------------------------------------------------

PAPER = ["formulir kertas", "Formulir  Kertas", "KERTAS", "paper", "paper_form", "Paper-Form",
         "formulir"]  # fmt: skip
DIGITAL = ["formulir digital", "Digital", "online", "digital_form", "DARING"]
REFUSED = ["whatsapp", "WA", "google form", "lisan", "", None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(r, "paper_form") for r in PAPER]
    + [(r, "digital_form") for r in DIGITAL]
    + [(r, None) for r in REFUSED],
)
def test_parse_consent_method(raw: str | None, expected: str | None) -> None:
    assert parse_consent_method(raw) == expected


JULY_15 = dt.date(2026, 7, 15)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-07-15", JULY_15), ("15/07/2026", JULY_15), ("15-07-2026", JULY_15),
        ("15.07.2026", JULY_15), (" 15/7/2026 ", JULY_15), ("2026/07/15", JULY_15),
        ("05/07/2026", dt.date(2026, 7, 5)),  # day first, never US month first
        ("2026-07-15T10:30:00", JULY_15), ("2026-07-15 10:30", JULY_15),
        ("2026-07-15T10:30:00+07:00", JULY_15), ("2026-07-15T23:30:00Z", JULY_15),
        ("", None), ("   ", None), (None, None),
    ],
)  # fmt: skip
def test_parse_consent_date(raw: str | None, expected: dt.date | None) -> None:
    assert parse_consent_date(raw) == expected


@pytest.mark.parametrize(
    "raw", ["kemarin", "31/02/2026", "07/15/2026", "15/07/26", "2026-13-01", "46218", "15/07-2026"]
)
def test_parse_consent_date_garbage(raw: str) -> None:
    with pytest.raises(ValueError, match="Tanggal persetujuan tidak dapat dibaca"):
        parse_consent_date(raw)
